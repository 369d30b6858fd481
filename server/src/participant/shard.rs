//! One shard replica on this node: its Raft group, its state, and, while this node leads it,
//! the participant side of the transaction protocol (docs/transactions.md).
//!
//! Requests a leader serves:
//!
//! ```text
//!   Lock        take S/X/range lock (waiting in FIFO order); READ/SCAN also read the data
//!   Prepare     take the X locks it lists (writes sent with END; waiting as Lock would);
//!               check locks still held in the same term; replicate Prepare; release S
//!               unless told to keep them (more locks still to take elsewhere); vote
//!               (read-only: confirm leadership by lease or ReadIndex, release, vote)
//!   Acquire     take the X locks a prepare would (after the same check of held locks),
//!               replicating nothing: END's locks taken before any vote checks a read
//!   CommitOnePhase   the same checks; replicate CommitOnePhase; release; answer
//!   CommitAtHome     the same, at a timestamp at least the others' votes: the decision and
//!                    home's writes in one entry (the record stays unfinished until Finish)
//!   Finalize    replicate Commit/Abort of a prepared transaction; release
//!   Decide      compare-and-set the record (home shard)
//!   Single      a one-statement READ/WRITE/SCAN, locked and committed right here
//!   ProbeShard / Confirm        deadlock detection (docs/transactions.md, "Deadlocks")
//! ```
//!
//! A lock wait is one task that waits for its grant, probes for deadlocks after
//! `probe_delay_ms` (and again every `probe_interval_ms`), and gives up after `lock_wait_ms`.
//!
//! Background loops per shard: the leadership watcher (creates and drops the per-term
//! [`LeaderState`]), the resolver (resolves old prepared transactions through their record,
//! and asks coordinators whether old lock holders still live), the close loop (closed
//! timestamps, on demand: module `close_demand`) and the collector.

use std::collections::BTreeMap;
use std::sync::Arc;

use openraft::async_runtime::WatchReceiver;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use openraft::Instant as _;
use openraft::LinearizerOption;
use openraft::ReadPolicy;
use openraft::ServerState;
use tokio::sync::oneshot;
use tokio::time::Instant;
use txn::command::AbortReason;
use txn::command::Applied;
use txn::command::Command;
use txn::command::Decision;
use txn::command::VersionPos;
use txn::command::Write;
use txn::deadlock::ConfirmStep;
use txn::deadlock::Confirmation;
use txn::deadlock::Probe;
use txn::deadlock::ProbeRounds;
use txn::deadlock::ProbeStep;
use txn::deadlock::shard_step;
use txn::deadlock::start_probes;
use txn::lock::Acquired;
use txn::lock::LockMode;
use txn::lock::LockSpan;
use txn::lock::RequestId;
use txn::state::Record;
use txn::state::Version;
use txn::types::Key;
use txn::types::NodeId;
use txn::types::ShardId;
use txn::types::Timestamp;
use txn::types::TxnId;

use crate::config::Timing;
use crate::context::Counters;
use crate::context::NodeContext;
use crate::participant::close_demand::CloseDemand;
use crate::participant::close_demand::close_due;
use crate::participant::leader::EndedTxns;
use crate::participant::leader::LeaderState;
use crate::participant::leader::PreparedInfo;
use crate::participant::leader::WaitEnd;
use crate::participant::proposer::ProposeError;
use crate::participant::proposer::Proposer;
use crate::peer::message::Inspection;
use crate::peer::message::LockOp;
use crate::peer::message::LockRequest;
use crate::peer::message::PeerReply;
use crate::peer::message::PeerRequest;
use crate::peer::message::PrepareRequest;
use crate::peer::message::ProbeOutcome;
use crate::peer::message::ReadResult;
use crate::peer::message::SingleOp;
use crate::peer::message::SnapshotAt;
use crate::peer::message::SnapshotOp;
use crate::peer::message::WaitLine;
use replication::canary;
use replication::canary::Canary;
use replication::store::LogStore;
use replication::store::ShardReader;
use replication::types::Raft;
use replication::types::term_of;
use replication::vote_gate::VoteGate;

/// How long a new leader waits before it reads its prepared transactions again after a failed
/// read (`Shard::become_ready`; a failed read is an I/O error, logged each time).
pub const READY_READ_RETRY: Duration = Duration::from_secs(1);

/// How often the resolver looks at old prepared transactions.
pub const RESOLVER_PERIOD: Duration = Duration::from_millis(200);
/// Every this many resolver passes, it also asks lock holders' coordinators whether the holders
/// still run (so locks of a crashed coordinator's transactions never leak, even unwatched).
pub const HOLDER_CHECK_PASSES: u64 = 5;
/// Prepared transactions a resolver pass settles at the same time at most.
pub const RESOLVES_IN_FLIGHT_MAX: usize = 32;
/// A leader that is not its shard's preferred replica hands over after leading this long (and
/// only once the preferred replica has every entry), so that leaders spread over the nodes.
pub const HANDOVER_AFTER: Duration = Duration::from_secs(3);
/// Evicted transaction ids are remembered this long (a transaction cannot live longer without
/// being idle-aborted, unless its coordinator keeps it busy; the coordinator then learns of the
/// eviction at its next statement here).
pub const EVICTED_MEMORY: Duration = Duration::from_secs(600);
/// Finished records a leader queues for its close loop; beyond this a Finish is proposed alone.
pub const FINISHING_QUEUED_MAX: usize = 4096;
/// Unfinished committed records older than the retention window that one collection round
/// finishes at most ([`Shard::finish_orphans`]; each costs a call to every other shard).
pub const ORPHANS_PER_ROUND_MAX: usize = 64;
/// The pause between two garbage-collection passes, so that a round spreads its work over
/// time instead of taking the state writer in one burst (a round removes about as many rows
/// as were written in a quarter of the retention window). At this pace one shard collects up
/// to 50,000 rows a second.
pub const COLLECT_PASS_PAUSE: Duration = Duration::from_millis(20);

/// One shard replica.
pub struct Shard {
    /// The shard.
    pub id: ShardId,
    /// Its Raft group on this node.
    pub raft: Raft,
    /// Its Raft log on this node (openraft owns it; this clone answers whether it holds an
    /// entry, see `replication::network::serve_snapshot`).
    pub log: LogStore,
    /// Reads of its replicated state.
    pub reader: ShardReader,
    /// Whether this replica may vote (closed after a fresh start until it caught up:
    /// [`crate::participant::rejoin`]).
    pub gate: Arc<VoteGate>,
    ctx: Arc<NodeContext>,
    leader: Mutex<Option<LeaderState>>,
    /// The transactions that ended here, while this node does not lead the shard (its leader
    /// state holds them while it does). Locked only under `leader`'s lock.
    ended_between_terms: Mutex<EndedTxns>,
    /// The deadlock probes this shard sent on in the current round.
    probes_sent: Mutex<ProbeRounds<Instant>>,
    /// Its proposals while it leads (group commit).
    proposer: Arc<Proposer>,
    /// Whether causal readers want fresh closed timestamps (closes on demand).
    demand: CloseDemand,
}

/// What a prepare request asks of a participant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrepareKind {
    /// Phase 1 of two: replicate the writes and vote.
    Vote,
    /// The whole commit of a transaction that wrote only here (its home).
    OnePhase,
    /// The commit of a one-statement WRITE coordinated by this shard's leader
    /// ([`Shard::handle_single`]): as `OnePhase`, but its transaction is not remembered as
    /// ended once committed, since a resend of the statement must hear COMMITTED again.
    Single,
    /// The commit at home of a transaction that also wrote elsewhere, once every other
    /// participant voted YES at a prepare timestamp at most `after`: the decision and home's
    /// writes in one entry.
    AtHome {
        /// The largest prepare timestamp of the other participants.
        after: Timestamp,
    },
}

fn aborted(reason: AbortReason, detail: impl Into<String>) -> PeerReply {
    PeerReply::Aborted { reason, detail: detail.into() }
}

/// What an ABORTED reply says, for messages.
fn refused_detail(reply: &PeerReply) -> String {
    match reply {
        PeerReply::Aborted { reason, detail } => format!("{reason:?}: {detail}"),
        other => format!("{other:?}"),
    }
}

impl Shard {
    /// A replica of `id` around its running Raft group.
    pub fn new(
        id: ShardId,
        raft: Raft,
        log: LogStore,
        reader: ShardReader,
        gate: Arc<VoteGate>,
        ctx: Arc<NodeContext>,
    ) -> Arc<Shard> {
        let proposer = Proposer::new(raft.clone(), Timing::ms(ctx.config.timing.rpc_ms));
        // The group starts with elections off (`node::raft_config`): no campaign of its own
        // until the gate opens ([`Shard::open_votes`]) and its quiet after the start ends (a
        // vote for itself is a vote); turned on below if both hold already.
        let quiet_until = gate.quiet_until();
        let shard = Arc::new(Shard {
            id,
            proposer,
            raft,
            log,
            reader,
            gate,
            ctx,
            leader: Mutex::new(None),
            ended_between_terms: Mutex::new(EndedTxns::default()),
            probes_sent: Mutex::new(ProbeRounds::default()),
            demand: CloseDemand::default(),
        });
        shard.campaign_if_allowed();
        let weak = Arc::downgrade(&shard);
        tokio::spawn(async move {
            tokio::time::sleep_until(quiet_until).await;
            if let Some(shard) = weak.upgrade() {
                shard.campaign_if_allowed();
            }
        });
        shard
    }

    /// Opens the vote gate with `floor` (stored durably by the caller) and lets the group
    /// campaign again unless the quiet after the start still runs: the two go together
    /// ([`crate::participant::rejoin`]).
    pub(crate) fn open_votes(&self, floor: u64) {
        self.gate.open(floor);
        self.campaign_if_allowed();
    }

    /// Lets the group campaign once its gate is open and its quiet after the start is over
    /// ([`VoteGate::may_campaign`]); called when either happens (both stay so, so whichever
    /// comes second turns elections on).
    fn campaign_if_allowed(&self) {
        if self.gate.may_campaign() {
            self.raft.runtime_config().elect(true);
        }
    }

    /// The node's context.
    pub(crate) fn context(&self) -> &Arc<NodeContext> {
        &self.ctx
    }

    fn timing(&self) -> &Timing {
        &self.ctx.config.timing
    }

    fn state(&self) -> MutexGuard<'_, Option<LeaderState>> {
        self.leader.lock().expect("leader state lock")
    }

    /// Taken only while holding [`Shard::state`]'s guard (one lock order).
    fn ended_between_terms(&self) -> MutexGuard<'_, EndedTxns> {
        self.ended_between_terms.lock().expect("ended transactions lock")
    }

    /// The leader of this shard as this replica sees it.
    pub fn current_leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow_watched().current_leader
    }

    fn not_leader(&self) -> PeerReply {
        let leader = self.current_leader().filter(|leader| *leader != self.ctx.me);
        PeerReply::NotLeader { leader }
    }

    /// False when this leader has heard from no quorum for an election timeout: it is probably
    /// cut off, and another leader may be elected. It then takes no new work, so that clients
    /// try elsewhere instead of waiting for requests that cannot commit. (Safety never depends on
    /// this: a deposed leader's prepares cannot commit, and its reads are confirmed by ReadIndex.)
    fn has_quorum(&self) -> bool {
        if self.ctx.topology.replicas(self.id).len() < 2
            || canary::is(Canary::FollowerSequentialRead)
        {
            return true;
        }
        let limit = Timing::ms(self.timing().election_max_ms);
        let acked = self.raft.metrics().borrow_watched().last_quorum_acked;
        acked.is_none_or(|at| at.into_inner().elapsed() < limit)
    }

    /// Runs `f` on the ready leader state, or answers why not.
    fn with_ready<T>(&self, f: impl FnOnce(&mut LeaderState) -> T) -> Result<T, PeerReply> {
        let quorum = self.has_quorum();
        let mut guard = self.state();
        match guard.as_mut() {
            None => Err(self.not_leader()),
            Some(state) if !state.ready => {
                Err(PeerReply::Unavailable(format!("{} leader not ready yet", self.id)))
            }
            Some(_) if !quorum => Err(PeerReply::NotLeader { leader: None }),
            Some(state) => Ok(f(state)),
        }
    }

    /// Starts the background loops (leadership watcher, resolver, closer, collector).
    pub fn start(self: &Arc<Shard>) {
        let shard = self.clone();
        tokio::spawn(async move { shard.watch_leadership().await });
        let shard = self.clone();
        tokio::spawn(async move { shard.resolve_loop().await });
        let shard = self.clone();
        tokio::spawn(async move { shard.close_loop().await });
        let shard = self.clone();
        tokio::spawn(async move { shard.collect_loop().await });
    }

    // ---- closed timestamps and garbage collection -----------------------------------------

    /// While leading, replicates `Close(t)`: a promise that nothing will prepare or commit here
    /// at or below `t`. `t` is the leader's clock less `close_lag_ms` (0 by default: `fresh_ts`
    /// hands out only timestamps above the promise) and stays below every timestamp still in
    /// flight. Followers serve causal snapshots up to the closed timestamp they applied (see
    /// `handle_snapshot_read`). It ticks every `close_interval_ms` and closes at a tick when
    /// `close_due` says so: at every tick while causal readers want closes, else every
    /// `close_idle_interval_ms` (module `close_demand`).
    async fn close_loop(self: Arc<Shard>) {
        let interval = self.timing().close_interval_ms.max(1);
        let idle_interval = Timing::ms(self.timing().close_idle_interval_ms);
        let lag = self.timing().close_lag_ms;
        let mut last_close = Instant::now();
        loop {
            // Ticks fall on multiples of the interval of the node's physical clock, so the
            // closes of every shard this node leads (and, clocks agreeing, those its followers
            // receive from other leaders) reach the log writer together and share one fsync.
            let now_ms = self.ctx.clock.physical_ms();
            tokio::time::sleep(Timing::ms(interval - now_ms % interval)).await;
            let now = Instant::now();
            let wanted = self.demand.wanted(now);
            let (promise, finished) = {
                let mut guard = self.state();
                match guard.as_mut().filter(|s| s.ready) {
                    Some(state)
                        if !close_due(
                            wanted,
                            now.saturating_duration_since(last_close),
                            idle_interval,
                            state.finishing.len(),
                        ) =>
                    {
                        (None, Vec::new())
                    }
                    Some(state) => {
                        // The whole reading, logical part included: while the clock runs
                        // ahead of physical time (it observed a faster node's clock, or a
                        // token from ahead), its readings differ only there, and a close cut
                        // to the millisecond stayed below every commit made since, so causal
                        // reads at those commits waited until physical time caught up (found
                        // by a review, 2026-12-06). Safe as the millisecond was: taken under
                        // the state lock, below every later `fresh_ts`, capped by `pending_ts`.
                        let now = self.ctx.clock.now();
                        let ts = if canary::is(Canary::CloseToTheMillisecond) {
                            Timestamp::new(now.physical_ms().saturating_sub(lag), 0)
                        } else {
                            Timestamp(now.0.saturating_sub(lag << Timestamp::LOGICAL_BITS))
                        };
                        (state.next_closed(ts), std::mem::take(&mut state.finishing))
                    }
                    None => (None, Vec::new()),
                }
            };
            let command = match (promise, finished.is_empty()) {
                (None, true) => continue,
                (Some(ts), true) => Command::Close { ts },
                (ts, false) => {
                    Command::CloseAndFinish { ts: ts.unwrap_or(Timestamp::ZERO), finished }
                }
            };
            last_close = now;
            // Not awaited: closes may pipeline; a lost one is superseded by the next (a lost
            // finish leaves a record unfinished: kept, never wrong).
            let shard = self.clone();
            tokio::spawn(async move {
                let _ = shard.propose(command).await;
            });
        }
    }

    /// While leading, collects garbage every quarter of the retention window: versions and
    /// finished records older than the window (behind the closed timestamp) go, in passes
    /// ([`Shard::collect`]).
    async fn collect_loop(self: Arc<Shard>) {
        let retention = self.timing().retention_ms;
        let period = Timing::ms((retention / 4).max(1_000));
        loop {
            tokio::time::sleep(period).await;
            // The window ends at the closed timestamp or at this node's physical time, whichever
            // is earlier: a clock pushed ahead (a token from up to
            // `CAUSAL_TOKEN_AHEAD_MAX_MS` ahead, a node whose clock runs fast) moves the closed
            // timestamp at once, and a window measured from it alone passed every transaction
            // and snapshot in flight, aborting them all (found by a review, 2026-12-06).
            let physical_ms = self.ctx.clock.physical_ms();
            let before = {
                let guard = self.state();
                match guard.as_ref().filter(|s| s.ready) {
                    Some(state) => {
                        let end_ms = state.closed_promised.physical_ms().min(physical_ms);
                        (end_ms > retention).then(|| Timestamp::new(end_ms - retention, 0))
                    }
                    None => None,
                }
            };
            if let Some(before) = before {
                self.collect(before).await;
            }
        }
    }

    /// One round of garbage collection below `before`: `CollectVersions` over the data table,
    /// then `CollectRecords` over the records of transactions that started at or below
    /// `before`, each pass `[limits] collect_pass_rows` rows long (the bounds come from this
    /// leader's tables; every replica applies the same bounds to the same state). One entry
    /// over the whole table held the node's state writer, which every shard's applies share,
    /// for 0.2 s per 100,000 versions (2 us per row). The passes run one after the other; a
    /// failed one ends the round (the next round starts over).
    async fn collect(&self, before: Timestamp) {
        let rows = self.ctx.config.limits.collect_pass_rows;
        let mut from: Option<VersionPos> = None;
        loop {
            let Ok(to) = self.reader.version_after(from.as_ref(), rows) else {
                return;
            };
            let pass = Command::CollectVersions { before, from, to: to.clone() };
            if self.propose(pass).await.is_err() {
                return;
            }
            match to {
                Some(to) => from = Some(to),
                None => break,
            }
            tokio::time::sleep(COLLECT_PASS_PAUSE).await;
        }
        self.finish_orphans(before).await;
        let mut from: Option<TxnId> = None;
        loop {
            let Ok(to) = self.reader.record_after(from.as_ref(), rows) else {
                return;
            };
            if self.propose(Command::CollectRecords { before, from, to }).await.is_err() {
                return;
            }
            // Records sort by age: past the first transaction younger than `before`, none
            // is collectable.
            match to {
                Some(to) if to.start_ts <= before => from = Some(to),
                _ => break,
            }
            tokio::time::sleep(COLLECT_PASS_PAUSE).await;
        }
    }

    /// Phase 2 of committed transactions homed here whose record is still unfinished after the
    /// retention window: their coordinator died after the decision, or gave up on a
    /// participant it could not reach (`PHASE2_ATTEMPTS_MAX`). Nobody else would ever finish
    /// such a record (participants' resolvers commit through it but cannot tell whether the
    /// others have), so it was never collected: a leak per coordinator crash. The record does
    /// not name its participants, so home sends the commit to every other shard: a `Commit` of
    /// a transaction not prepared there changes nothing (`txn::state`), and one prepared there
    /// commits as the record says. Once every shard has answered, no participant can still need
    /// the record, and it is finished (the next round collects it). A shard that does not
    /// answer leaves the record, and the round's later ones, for the next round. At most
    /// [`ORPHANS_PER_ROUND_MAX`] records a round.
    async fn finish_orphans(&self, before: Timestamp) {
        let Ok(orphans) = self.reader.unfinished_records(before, ORPHANS_PER_ROUND_MAX) else {
            return;
        };
        let deadline = Timing::ms(self.timing().rpc_ms);
        for (txn, commit_ts) in orphans {
            let decision = Decision::Committed { commit_ts };
            let others =
                (0..self.ctx.topology.shard_count()).map(ShardId).filter(|s| *s != self.id);
            let calls = others.map(|shard| {
                let request = PeerRequest::Finalize { shard, txn, decision, prepared: true };
                self.ctx.peers.call_shard(shard, request, deadline)
            });
            let replies = join_all(calls).await;
            if !replies.iter().all(|reply| matches!(reply, Ok((_, PeerReply::Done)))) {
                // A shard that did not answer would most likely not answer the next orphan's
                // calls either, and each waits out its deadline: 64 of them held the round,
                // and the collection behind it, for two minutes (a review, 2026-12-07). Every
                // orphan needs every shard, so the rest wait for the next round.
                break;
            }
            tracing::info!(shard = %self.id, %txn, "finished the record of a committed transaction its coordinator left unfinished");
            let _ = self.handle_finish(txn).await;
        }
    }

    /// The safe time of this replica: every snapshot at or below it is complete here and will
    /// never change (the closed timestamp applied, below every undecided prepared transaction),
    /// and the garbage-collection watermark (snapshots at or below it are gone).
    pub fn safe_time(&self) -> Result<(Timestamp, Timestamp), PeerReply> {
        let (closed, oldest_prepared, collected) =
            self.reader.safe_time_parts().map_err(|e| PeerReply::Unavailable(e.to_string()))?;
        let safe = match oldest_prepared {
            Some(prepared) => closed.min(prepared.prev()),
            None => closed,
        };
        Ok((safe, collected))
    }

    /// Records that causal readers read this replica (or pick snapshots on this node): closes
    /// become wanted here, and a follower asks its leader (at most every `ASK_EVERY`) so that
    /// the leader closes at every tick rather than at the idle period (module `close_demand`).
    pub fn note_causal_reader(&self) {
        let now = Instant::now();
        self.demand.want(now);
        let Some(leader) = self.current_leader().filter(|leader| *leader != self.ctx.me) else {
            return;
        };
        if !self.demand.take_ask(now) {
            return;
        }
        let peers = self.ctx.peers.clone();
        let request = PeerRequest::WantCloses { shard: self.id };
        let deadline = Timing::ms(self.timing().rpc_ms);
        // Not awaited: a lost ask leaves the shard at the idle period until the next one.
        tokio::spawn(async move {
            let _ = peers.call(leader, request, deadline).await;
        });
    }

    /// A replica's ask for fresh closed timestamps (module `close_demand`). Recorded even when
    /// this replica does not lead: it applies if it becomes leader within `WANTED_FOR`.
    pub fn handle_want_closes(&self) -> PeerReply {
        self.demand.want(Instant::now());
        PeerReply::Done
    }

    /// A snapshot read at this replica, leader or follower, without locks: it waits (up to
    /// `wait`) until the replica's safe time reaches the snapshot, then reads as of it.
    pub async fn handle_snapshot_read(
        &self,
        at: SnapshotAt,
        op: SnapshotOp,
        wait: Duration,
    ) -> PeerReply {
        self.note_causal_reader();
        let give_up = Instant::now() + wait;
        let mut metrics = self.raft.metrics();
        loop {
            let (safe, collected) = match self.safe_time() {
                Ok(times) => times,
                Err(reply) => return reply,
            };
            let ts = match at {
                SnapshotAt::Exactly(ts) => ts,
                SnapshotAt::AtLeast(token) => token.max(safe),
            };
            if ts <= collected {
                // A snapshot chosen by the caller is too old. One chosen here is at or below the
                // watermark only because this replica's safe time is (it applied no `Close`
                // yet: a new cluster, a rebuilt replica): it is behind, so wait, and then let
                // the caller try another replica; "too old" would tell it to give up. Before
                // 2026-12-05 a new session's first causal read on a fresh replica was refused
                // as older than the retention window (a review found it).
                if let SnapshotAt::Exactly(_) = at {
                    return self.too_old(ts, collected);
                }
            } else if ts <= safe || canary::is(Canary::SkipSafeTimeWait) {
                match self.read_snapshot(ts, &op) {
                    // A collection pass committed between the safe time's read and the data's
                    // and passed the snapshot picked here: pick again, as above (the replica
                    // is behind), rather than answer "too old", which is final to the caller
                    // (found by a review, 2026-12-07).
                    PeerReply::TooOld(_) if matches!(at, SnapshotAt::AtLeast(_)) => {}
                    reply => return reply,
                }
            }
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return PeerReply::Unavailable(format!(
                    "the replica of {} on node {} is behind: safe time {safe}, snapshot {ts}",
                    self.id, self.ctx.me
                ));
            }
            // Applying entries (a Close, a Commit) is what moves the safe time. A Raft group
            // that stopped (its storage failed, the node shuts down) never changes again: its
            // metrics channel is closed and would answer at once, so the loop would spin (in
            // the simulation without time passing at all: chaos `disk-failure`, 2026-12-04).
            if let Ok(Err(_)) = tokio::time::timeout(left, metrics.changed()).await {
                return PeerReply::Unavailable(format!(
                    "the replica of {} on node {} has stopped",
                    self.id, self.ctx.me
                ));
            }
        }
    }

    /// `version` as a READ answers it: itself, but for the canary `ReadSkipsTombstones`, under
    /// which a delete is skipped and the READ answers the version before it.
    fn canary_skip_tombstone(
        &self,
        key: &[u8],
        version: Option<Version>,
    ) -> std::io::Result<Option<Version>> {
        match version {
            Some((at, None)) if canary::is(Canary::ReadSkipsTombstones) && at > Timestamp::ZERO => {
                self.reader.read_version(key, Timestamp(at.0 - 1))
            }
            version => Ok(version),
        }
    }

    /// The refusal of a snapshot at or below the collected watermark `collected`.
    fn too_old(&self, ts: Timestamp, collected: Timestamp) -> PeerReply {
        PeerReply::TooOld(format!(
            "snapshot {ts} of {} is older than the retention window (versions up to \
             {collected} are collected)",
            self.id
        ))
    }

    /// Reads as of `ts`. The session's token rises to the newest version observed, not to the
    /// snapshot: causality only binds what was seen (everything in its causal past has a
    /// smaller timestamp), and a token no higher than needed keeps other replicas able to serve
    /// the session, on the minority side of a partition too.
    ///
    /// The read and the check against the collected watermark use one state, so a collection
    /// pass that commits meanwhile cannot make a removed version read as absent. A key read
    /// as deleted raises the token to its delete; one read as absent, to the watermark (a
    /// delete or versions collected below it were there to see).
    fn read_snapshot(&self, ts: Timestamp, op: &SnapshotOp) -> PeerReply {
        let read = match op {
            SnapshotOp::Read { key } => {
                self.reader.read_version_at_snapshot(key, ts).and_then(|(version, collected)| {
                    Ok(match self.canary_skip_tombstone(key, version)? {
                        Some((version_ts, Some(value))) => {
                            (vec![(key.clone(), value)], version_ts, collected)
                        }
                        Some((version_ts, None)) => (Vec::new(), version_ts, collected),
                        None => (Vec::new(), collected, collected),
                    })
                })
            }
            SnapshotOp::Scan { from, to, limit } => self
                .reader
                .scan_at_snapshot(from, to.as_deref(), *limit, ts)
                .map(|(rows, newest, collected)| {
                    let rows = rows.into_iter().map(|(k, _, v)| (k, v)).collect();
                    (rows, newest.max(collected), collected)
                }),
        };
        match read {
            Ok((_, _, collected)) if ts <= collected => self.too_old(ts, collected),
            Ok((rows, version_ts, _)) => {
                self.ctx.clock.observe(ts);
                PeerReply::Read(ReadResult { rows, version_ts, snapshot_ts: ts, range_end: None })
            }
            Err(error) => PeerReply::Unavailable(error.to_string()),
        }
    }

    // ---- leadership -----------------------------------------------------------------------

    async fn watch_leadership(self: Arc<Shard>) {
        let mut metrics = self.raft.metrics();
        loop {
            let (leading, term) = {
                let m = metrics.borrow_and_update();
                (m.state == ServerState::Leader, m.current_term)
            };
            let started = {
                let mut guard = self.state();
                let current = guard.as_ref().map(|s| s.term);
                if (!leading || current.is_some_and(|t| t != term))
                    && let Some(mut old) = guard.take()
                {
                    old.fail_all(AbortReason::LeaderChanged, "the shard's leader changed");
                    *self.ended_between_terms() = std::mem::take(&mut old.ended);
                    tracing::info!(shard = %self.id, term = old.term, "no longer leader");
                }
                if leading && guard.is_none() {
                    let ended = std::mem::take(&mut *self.ended_between_terms());
                    *guard = Some(LeaderState::new(term, ended));
                    true
                } else {
                    false
                }
            };
            if started {
                tracing::info!(shard = %self.id, term, "became leader");
                let shard = self.clone();
                tokio::spawn(async move { shard.become_ready(term).await });
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    }

    /// Waits until the leader applied its first entry of `term`, then restores the prepared
    /// transactions' locks and starts serving.
    async fn become_ready(self: Arc<Shard>, term: u64) {
        // A read that fails is tried again (a failed commit stops the node anyway): giving up
        // left the shard "leader not ready" for the whole term, and a closed timestamp read as
        // zero would have let this leader's clock stay below an earlier leader's promise.
        let (prepared, closed) = loop {
            if self.state().as_ref().is_none_or(|s| s.term != term) {
                return;
            }
            if self.read_index().await {
                match (self.reader.prepared(), self.reader.watermarks()) {
                    (Ok(prepared), Ok((closed, _))) => break (prepared, closed),
                    (Err(error), _) | (_, Err(error)) => {
                        tracing::error!(shard = %self.id, %error, "cannot read the prepared transactions and closed timestamp; trying again");
                        tokio::time::sleep(READY_READ_RETRY).await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.ctx.clock.observe(closed);
        let now = Instant::now();
        let mut guard = self.state();
        let Some(state) = guard.as_mut().filter(|s| s.term == term) else { return };
        let mut restored = 0;
        for (txn, info) in &prepared {
            // Read again under the state lock: a phase 2 proposed in an earlier term may have
            // applied since the read above, and its handler, finding nothing to drop then,
            // would leave these locks to the resolver (a review found the window,
            // 2026-12-07). One that applies after this read drops them itself.
            if let Ok(None) = self.reader.prepared_txn(txn) {
                continue;
            }
            restored += 1;
            state.locks.restore_exclusive(*txn, info.writes.iter().map(|w| w.key.clone()));
            let info = PreparedInfo { home: info.home, since: now, attempts: 1 };
            state.prepared.insert(*txn, info);
        }
        state.closed_promised = closed;
        state.ready = true;
        state.ready_at = Instant::now();
        tracing::info!(shard = %self.id, term, prepared = restored, "leader ready");
    }

    // ---- proposals --------------------------------------------------------------------------

    /// Entries this replica's proposer wrote (while it led), and the commands they carried.
    pub fn proposals_written(&self) -> (u64, u64) {
        self.proposer.written()
    }

    /// Replicates `command` and answers what applying it answered (`participant::proposer`:
    /// proposals made while the log is busy share an entry).
    async fn propose(&self, command: Command) -> Result<Applied, ProposeError> {
        self.proposer.propose(command).await
    }

    /// A fresh timestamp for a prepare or commit here: above everything closed.
    fn fresh_ts(&self, state: &LeaderState) -> Timestamp {
        let ts = self.ctx.clock.now();
        assert!(
            ts > state.closed_promised,
            "clock {ts} not above closed {}",
            state.closed_promised
        );
        ts
    }

    // ---- locks ------------------------------------------------------------------------------

    /// When a statement's lock request, made now, gives up waiting: `lock_wait_ms` from now.
    /// (The locks END takes share the budget their prepare carries instead.)
    fn statement_give_up(&self) -> Instant {
        Instant::now() + Timing::ms(self.timing().lock_wait_ms)
    }

    /// Acquires a lock for `txn`, waiting if needed until `give_up`. Returns the term of the
    /// grant. With `held`, the request is an upgrade of a lock the transaction's statement
    /// took (a key read, then written with END): it is refused unless that lock is still held
    /// when the request is made ([`Shard::acquire_for_prepare`]).
    async fn acquire(
        self: &Arc<Shard>,
        txn: TxnId,
        span: LockSpan,
        mode: LockMode,
        held: Option<LockMode>,
        lock_term: Option<u64>,
        give_up: Instant,
    ) -> Result<u64, PeerReply> {
        let (term, wait) = self.with_ready(|state| {
            if lock_term.is_some_and(|t| t != state.term) {
                return Err(aborted(
                    AbortReason::LeaderChanged,
                    format!(
                        "the leader of {} changed since the transaction's first lock there",
                        self.id
                    ),
                ));
            }
            if state.ending(&txn) {
                return Err(aborted(
                    AbortReason::CoordinatorLost,
                    "the transaction is ending here, or its locks were evicted",
                ));
            }
            // A coordinator sends one statement of a transaction to a shard at a time, so a
            // second request while one waits is another delivery of the same call: a retry of
            // a call whose connection broke, or a first delivery whose handler ran late. The
            // new request takes the wait over; the other answers that the outcome is open
            // (`WaitEnd::Superseded`), never ABORTED: this request goes on and may commit
            // (chaos seed 13 with `--duplicate-calls 3 --duplicate-late-ms 200`: a one-statement
            // WRITE answered ABORTED while its late copy committed it).
            if let Some(stale) = state.locks.waiting(txn) {
                state.cancel(stale, WaitEnd::Superseded);
            }
            if let (Some(held), LockSpan::Key(key)) = (held, &span)
                && !state.locks.holds(txn, key, held)
            {
                return Err(aborted(
                    AbortReason::CoordinatorLost,
                    format!("a lock of the transaction at {} was lost", self.id),
                ));
            }
            match state.locks.acquire(txn, span, mode) {
                Acquired::Granted => Ok((state.term, None)),
                Acquired::Waiting(request) => {
                    let (wake, woken) = oneshot::channel();
                    let since = Instant::now();
                    state
                        .waiters
                        .insert(request, crate::participant::leader::Waiter { txn, since, wake });
                    Ok((state.term, Some((request, woken))))
                }
            }
        })??;
        if let Some((request, woken)) = wait {
            // Not marked waiting in the registry here: the transaction's coordinator marks its
            // own waits around its calls (`Coordinator::lock`, `call_prepare`, `single_once`).
            // Marked here too, a stale delivery's unmark on the coordinator's node could clear
            // the mark of the request that superseded it, and probes would stop there (found
            // by a review, 2026-12-05).
            let end = self.wait_for_grant(term, request, woken, give_up).await;
            match end {
                WaitEnd::Granted => {}
                WaitEnd::Aborted { reason, detail } => return Err(aborted(reason, detail)),
                WaitEnd::Superseded => {
                    return Err(PeerReply::Unavailable(format!(
                        "another delivery of {txn}'s request took its lock wait at {} over",
                        self.id
                    )));
                }
            }
        }
        Ok(term)
    }

    async fn wait_for_grant(
        self: &Arc<Shard>,
        term: u64,
        request: RequestId,
        mut woken: oneshot::Receiver<WaitEnd>,
        give_up: Instant,
    ) -> WaitEnd {
        let timing = self.timing();
        let since = Instant::now();
        let mut next_probe = Instant::now() + Timing::ms(timing.probe_delay_ms);
        loop {
            tokio::select! {
                // In this order when several are ready: a run replays from its seed.
                biased;
                end = &mut woken => {
                    return end.unwrap_or(WaitEnd::Aborted {
                        reason: AbortReason::LeaderChanged,
                        detail: format!("the leader of {} changed while waiting", self.id),
                    });
                }
                _ = tokio::time::sleep_until(next_probe) => {
                    self.probe_from(term, request);
                    next_probe = Instant::now() + Timing::ms(timing.probe_interval_ms);
                }
                _ = tokio::time::sleep_until(give_up) => {
                    let waited = since.elapsed().as_millis();
                    let detail = format!("waited {waited} ms for a lock at {}", self.id);
                    let cancelled = {
                        let mut guard = self.state();
                        match guard.as_mut().filter(|s| s.term == term) {
                            Some(state) => {
                                let end = WaitEnd::Aborted { reason: AbortReason::LockTimeout, detail };
                                state.cancel(request, end)
                            }
                            None => false,
                        }
                    };
                    if !cancelled {
                        // The wait ended some other way just now: take that ending.
                        return woken.await.unwrap_or(WaitEnd::Aborted {
                            reason: AbortReason::LeaderChanged,
                            detail: "the leader changed while waiting".into(),
                        });
                    }
                }
            }
        }
    }

    /// Reads the newest version of `key`. The clock observes the version's timestamp: whatever
    /// this node does next (and, through the reply's clock, whatever the reader does next) gets
    /// a later timestamp, so commit order and timestamp order agree even when this node's
    /// physical clock is behind (a restart, a skew) the clock that committed the version.
    ///
    /// What was seen is what `version_ts` (the session's token) rises to, as for a snapshot
    /// read ([`Shard::read_snapshot`]): a key found deleted, to its delete; a key with no
    /// version, to the collected watermark (a delete collected below it was there to see).
    /// Before 2026-12-05 a locking read of an absent key, and a locking scan that passed over
    /// deletes, answered only the rows returned, so a causal read after them could be served
    /// the value from before the delete by a replica behind it (a review found it).
    async fn read_one(&self, key: &[u8]) -> Result<ReadResult, PeerReply> {
        let read = self.reader.read_version_at_snapshot(key, Timestamp::MAX).and_then(
            |(version, collected)| Ok((self.canary_skip_tombstone(key, version)?, collected)),
        );
        let read = match read {
            Ok((Some((ts, Some(value))), _)) => ReadResult {
                rows: vec![(key.to_vec(), value)],
                version_ts: ts,
                ..ReadResult::default()
            },
            Ok((Some((ts, None)), _)) => {
                ReadResult { rows: Vec::new(), version_ts: ts, ..ReadResult::default() }
            }
            Ok((None, collected)) => ReadResult { version_ts: collected, ..ReadResult::default() },
            Err(error) => return Err(PeerReply::Unavailable(error.to_string())),
        };
        self.ctx.clock.observe(read.version_ts);
        Ok(read)
    }

    /// Reads the newest rows of `[from, to)`, up to `limit`; `version_ts` is the newest version
    /// the scan passed, deletes included, and at least the collected watermark (see
    /// [`Shard::read_one`]).
    fn read_range(
        &self,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<ReadResult, PeerReply> {
        match self.reader.scan_at_snapshot(from, to, limit, Timestamp::MAX) {
            Ok((rows, newest, collected)) => {
                let version_ts = newest.max(collected);
                self.ctx.clock.observe(version_ts);
                Ok(ReadResult {
                    rows: rows.into_iter().map(|(k, _, v)| (k, v)).collect(),
                    version_ts,
                    ..ReadResult::default()
                })
            }
            Err(error) => Err(PeerReply::Unavailable(error.to_string())),
        }
    }

    /// Handles a statement's lock request.
    pub async fn handle_lock(self: &Arc<Shard>, request: LockRequest) -> PeerReply {
        let LockRequest { txn, lock_term, op, .. } = request;
        crate::failpoint::panic_at("lock", || self.state());
        let (span, mode) = op.lock();
        let early = match (&op, canary::is(Canary::ScanReadsBeforeItsLock)) {
            // Canary: the range is read before its lock is granted (so while a writer may
            // still hold a key in it), and that read is answered.
            (LockOp::Scan { from, to, limit }, true) => {
                Some(self.read_range(from, to.as_deref(), *limit))
            }
            _ => None,
        };
        let give_up = self.statement_give_up();
        let term = match self.acquire(txn, span, mode, None, lock_term, give_up).await {
            Ok(term) => term,
            Err(reply) => return reply,
        };
        let read = match (early, &op) {
            (Some(read), _) => read,
            (None, LockOp::Read { key, .. }) => self.read_one(key).await,
            (None, LockOp::Write { .. }) => Ok(ReadResult::default()),
            (None, LockOp::Scan { from, to, limit }) => {
                self.read_range(from, to.as_deref(), *limit)
            }
        };
        match read {
            Ok(mut read) => {
                // The acquire recorded a hold of the range for this request alone (even when
                // the transaction's other ranges covered it), and only that hold narrows.
                if let LockOp::Scan { from, to, limit } = &op {
                    read.range_end =
                        self.narrow_scan(txn, term, from, to.as_deref(), *limit, &read);
                }
                PeerReply::Locked { term, read }
            }
            Err(reply) => reply,
        }
    }

    /// Narrows the range lock of a SCAN that stopped at its `limit` to end just past its last
    /// row (the rows after it were not read: writers may go on there); the new end, if it
    /// narrowed. A SCAN that returned fewer rows read its whole range and keeps it locked.
    fn narrow_scan(
        &self,
        txn: TxnId,
        term: u64,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
        read: &ReadResult,
    ) -> Option<Key> {
        if read.rows.len() < limit {
            return None;
        }
        let (last, _) = read.rows.last()?;
        let mut end = last.clone();
        end.push(0);
        if to.is_some_and(|to| end.as_slice() >= to) {
            return None;
        }
        let mut guard = self.state();
        let state = guard.as_mut().filter(|state| state.term == term)?;
        let grants = state.locks.narrow_range(txn, from, to, end.clone())?;
        state.wake(grants);
        Some(end)
    }

    // ---- prepare and commit -----------------------------------------------------------------

    /// Takes the exclusive locks a prepare asks for (writes sent with END), one after the
    /// other, each waiting as a statement's lock would, all within the request's `wait_ms`.
    /// Returns the term of all the transaction's locks here.
    ///
    /// A key that a statement locked (read, then written with END) is upgraded, never taken
    /// afresh: the check that the statements' locks are still held ([`Shard::check_held`])
    /// takes an exclusive lock for the shared one it covers, so an exclusive lock granted
    /// after the shared one was lost (a concurrent delivery whose proposal was not proposed
    /// dropped the transaction's locks between the caller's check and this request, and
    /// another transaction wrote the key meanwhile) would pass for the read's protection: a
    /// lost update (a review found it, 2026-12-05; it needs threads, so the simulation cannot
    /// produce it). Refused unless still held when requested; a drop after that cancels the
    /// waiting request.
    async fn acquire_for_prepare(
        self: &Arc<Shard>,
        request: &PrepareRequest,
    ) -> Result<u64, PeerReply> {
        let mut term = request.lock_term;
        let give_up = Instant::now() + Timing::ms(request.wait_ms);
        // Looked up once per key: a search of the list for each was quadratic in a bulk END.
        let locks: BTreeMap<&LockSpan, LockMode> =
            request.locks.iter().map(|(span, mode)| (span, *mode)).collect();
        for key in &request.acquire {
            let span = LockSpan::Key(key.clone());
            let held = locks.get(&span).copied();
            let granted = self.acquire(request.txn, span, LockMode::Exclusive, held, term, give_up);
            term = Some(granted.await?);
        }
        term.ok_or_else(|| {
            PeerReply::Invalid(format!("a prepare at {} holds no locks and takes none", self.id))
        })
    }

    /// Checks, under the state lock, that `txn` still holds, in `term`, everything it believes
    /// it holds.
    fn check_locks(
        state: &LeaderState,
        shard: ShardId,
        term: u64,
        request: &PrepareRequest,
    ) -> Result<(), PeerReply> {
        Self::check_held(state, shard, term, request)?;
        for write in &request.writes {
            if !state.locks.holds(request.txn, &write.key, LockMode::Exclusive) {
                return Err(aborted(
                    AbortReason::CoordinatorLost,
                    format!("a write lock at {shard} was lost"),
                ));
            }
        }
        Ok(())
    }

    /// [`Shard::check_held`] now, for a request that names the term of earlier locks here.
    fn check_still_held(&self, request: &PrepareRequest) -> Result<(), PeerReply> {
        let Some(term) = request.lock_term else { return Ok(()) };
        self.with_ready(|state| Self::check_held(state, self.id, term, request))?
    }

    /// Checks, under the state lock, that `txn` still holds, in `term`, the locks its
    /// statements took here (`request.locks`) and was not evicted.
    fn check_held(
        state: &LeaderState,
        shard: ShardId,
        term: u64,
        request: &PrepareRequest,
    ) -> Result<(), PeerReply> {
        let txn = request.txn;
        if term != state.term {
            return Err(aborted(
                AbortReason::LeaderChanged,
                format!("the leader of {shard} changed since the transaction locked there"),
            ));
        }
        if state.ending(&txn) {
            return Err(aborted(
                AbortReason::CoordinatorLost,
                "the transaction is ending here, or its locks were evicted",
            ));
        }
        for (span, mode) in &request.locks {
            let held = match span {
                LockSpan::Key(key) => state.locks.holds(txn, key, *mode),
                LockSpan::Range { from, to } => state.locks.holds_range(txn, from, to.as_deref()),
            };
            if !held {
                return Err(aborted(
                    AbortReason::CoordinatorLost,
                    format!("a lock of the transaction at {shard} was lost"),
                ));
            }
        }
        Ok(())
    }

    /// Takes the exclusive locks of a transaction's writes sent with END ahead of its votes
    /// (`Coordinator::acquire_first`): the locks its statements took here must still be held,
    /// as for a prepare; the new ones live in this leader's table like a statement's, and the
    /// prepare that follows checks them all again.
    pub async fn handle_acquire(self: &Arc<Shard>, request: PrepareRequest) -> PeerReply {
        if let Err(reply) = self.check_still_held(&request) {
            return reply;
        }
        match self.acquire_for_prepare(&request).await {
            Ok(term) => PeerReply::Locked { term, read: ReadResult::default() },
            Err(reply) => reply,
        }
    }

    /// Phase 1, or a commit at the home shard (`kind`).
    pub async fn handle_prepare(
        self: &Arc<Shard>,
        mut request: PrepareRequest,
        kind: PrepareKind,
    ) -> PeerReply {
        let txn = request.txn;
        let read_only = request.writes.is_empty() && matches!(kind, PrepareKind::Vote);
        // The locks its statements took here must still be held before the prepare takes
        // more. One lost meanwhile (an earlier attempt that was not proposed forgot them) and
        // then taken again by `acquire` would pass `check_locks` below, although another
        // transaction may have locked and written the key in between: a lost update (chaos
        // seed 6 with 5 nodes, 2026-12-04: a READ's shared lock on an account, released by a
        // refused commit at home, then re-taken exclusively by its retry).
        if let Err(reply) = self.check_still_held(&request) {
            return self.vote_again(&request, kind).unwrap_or(reply);
        }
        // Another delivery of this prepare may have applied meanwhile (and released the
        // shared locks these checks look for): its vote is the answer, not a NO (a review
        // found the checks below answering NO after the first delivery's YES, 2026-12-07).
        let lock_term = match self.acquire_for_prepare(&request).await {
            Ok(term) => term,
            Err(reply) => return self.vote_again(&request, kind).unwrap_or(reply),
        };
        if let PrepareKind::AtHome { after } = kind {
            // The commit timestamp is at least every other participant's vote.
            self.ctx.clock.observe(after);
        }
        // The new versions must sort after the current ones: the clock first observes the
        // newest version of every key written (X locks keep them from changing meanwhile).
        for write in &request.writes {
            match self.reader.read_version(&write.key, Timestamp::MAX) {
                Ok(Some((ts, _))) => self.ctx.clock.observe(ts),
                Ok(None) => {}
                Err(error) => return PeerReply::Unavailable(error.to_string()),
            }
        }
        // The check and the proposal are made under one hold of the state lock, as phase 2
        // marks a transaction ending and proposes its decision: this proposal is in the log
        // before that decision, or refused (`LeaderState::committing`).
        let checked = self.with_ready(|state| {
            Self::check_locks(state, self.id, lock_term, &request)?;
            if read_only {
                return Ok(None);
            }
            let ts = match kind {
                PrepareKind::AtHome { after } => self.fresh_ts(state).max(after),
                PrepareKind::Vote | PrepareKind::OnePhase | PrepareKind::Single => {
                    self.fresh_ts(state)
                }
            };
            state.hold_ts(ts);
            let attempts = state.prepared.get(&txn).map_or(0, |info| info.attempts) + 1;
            let info = PreparedInfo { home: request.home, since: Instant::now(), attempts };
            state.prepared.insert(txn, info);
            let writes = std::mem::take(&mut request.writes);
            let command = match kind {
                PrepareKind::OnePhase | PrepareKind::Single => {
                    Command::CommitOnePhase { txn, writes, commit_ts: ts, lock_term }
                }
                PrepareKind::AtHome { .. } => {
                    Command::CommitAtHome { txn, writes, commit_ts: ts, lock_term }
                }
                PrepareKind::Vote => {
                    Command::Prepare { txn, home: request.home, writes, prepare_ts: ts, lock_term }
                }
            };
            Ok(Some((ts, self.proposer.submit(command))))
        });
        let (ts, proposal) = match checked {
            Ok(Ok(Some(proposed))) => proposed,
            Ok(Ok(None)) => {
                return self.vote_read_only(txn, lock_term, request.release_shared).await;
            }
            Ok(Err(reply)) => return self.vote_again(&request, kind).unwrap_or(reply),
            Err(reply) => return reply,
        };
        let proposed = proposal.await;
        if let Some(state) = self.state().as_mut().filter(|s| s.term == lock_term) {
            state.release_ts(ts);
        }
        match proposed {
            Ok(Applied::Prepared { prepare_ts }) => {
                let mut guard = self.state();
                if let Some(state) = guard.as_mut().filter(|s| s.term == lock_term) {
                    let grants = if canary::is(Canary::ReleaseLocksAtPrepare) {
                        state.locks.release_all(txn)
                    } else if request.release_shared {
                        state.locks.release_shared(txn)
                    } else {
                        Vec::new()
                    };
                    state.wake(grants);
                }
                PeerReply::Voted { prepare_ts: Some(prepare_ts) }
            }
            Ok(Applied::Committed { commit_ts }) => {
                // A commit at home ends the transaction here, as a phase 2 does: remembered
                // as ended, so that a late copy of one of its statements' lock requests takes
                // no lock after the commit (it held it until the holder check, about a
                // second; a review found it, 2026-12-07). A resent commit refused as ending
                // is settled by its coordinator through the record (`commit_at_home`).
                // A one-statement write is not remembered: a resend of it is the same
                // transaction, and must reach its entry's apply, which finds the record and
                // answers Committed again.
                if let PrepareKind::Single = kind {
                    self.forget(txn, lock_term);
                } else {
                    self.forget_ended(txn, lock_term);
                }
                PeerReply::Committed { commit_ts }
            }
            Ok(Applied::Refused { reason, detail }) => {
                self.forget(txn, lock_term);
                aborted(reason, detail)
            }
            // Nothing changed now, and an earlier attempt's effect (if any) is applied: no
            // lock protects anything pending.
            Ok(Applied::Forgotten { detail }) => {
                self.forget(txn, lock_term);
                PeerReply::TooOld(detail)
            }
            Ok(other) => panic!("unexpected apply result {other:?} for a prepare"),
            // Refused before it was appended, but another delivery's entry may still apply
            // (chaos seed 342: a one-phase commit's first attempt timed out, a retry was not
            // proposed and released the locks, another transaction read the key and wrote
            // it, then the first entry committed: an acknowledged write lost). Another
            // delivery may also be in flight (a call resent after its stream broke), or come
            // after this one failed and before it answers. The locks stay with the
            // transaction in `prepared`, as for an unknown outcome, until the coordinator's
            // decision or the resolver settles it.
            Err(ProposeError::NotProposed(_)) => {
                // More than one delivery reached its proposal: another may still apply.
                if self.forget_unless(txn, lock_term, |info| info.attempts > 1) {
                    aborted(
                        AbortReason::LeaderChanged,
                        format!("{} lost its leader before preparing", self.id),
                    )
                } else {
                    PeerReply::Unavailable(format!(
                        "outcome unknown: {} lost its leader, and another attempt may still apply",
                        self.id
                    ))
                }
            }
            // In doubt: the entry may still apply. The transaction stays in `prepared` so that
            // its locks are kept until the resolver (or the coordinator) settles it.
            Err(ProposeError::Unknown(why)) => {
                PeerReply::Unavailable(format!("outcome unknown: {why}"))
            }
        }
    }

    /// The YES vote of a prepare delivered again after its first delivery prepared (a call
    /// resent after its stream broke, chaos `--duplicate-calls`): that delivery released the
    /// shared locks the request names, so the check of held locks fails, but its vote stands
    /// in the log, checked when the first delivery ran, and is the answer the coordinator
    /// missed. `None` (answer as checked) unless the log holds this very prepare.
    fn vote_again(&self, request: &PrepareRequest, kind: PrepareKind) -> Option<PeerReply> {
        if !matches!(kind, PrepareKind::Vote) {
            return None;
        }
        if request.writes.is_empty() {
            // A read-only vote leaves nothing in the log: the leader remembers it this term.
            // Before 2026-12-05 a resent read-only prepare answered NO after its first delivery
            // voted YES, and the transaction aborted for nothing (a review found it).
            let voted = |state: &mut LeaderState| {
                Some(state.term) == request.lock_term
                    && state.voted_read_only.contains(&request.txn)
            };
            return self.with_ready(voted).ok()?.then_some(PeerReply::Voted { prepare_ts: None });
        }
        self.with_ready(|_| ()).ok()?;
        let prepared = self.reader.prepared_txn(&request.txn).ok()??;
        (prepared.home == request.home && prepared.writes == request.writes)
            .then_some(PeerReply::Voted { prepare_ts: Some(prepared.prepare_ts) })
    }

    /// [`Shard::forget`], unless `keep` says otherwise of its `prepared` entry; decided and
    /// done under one hold of the state lock, so that no other delivery of the transaction
    /// slips in between. True if forgotten (or the term is over: nothing left to keep).
    fn forget_unless(
        &self,
        txn: TxnId,
        term: u64,
        keep: impl FnOnce(&PreparedInfo) -> bool,
    ) -> bool {
        let mut guard = self.state();
        let Some(state) = guard.as_mut().filter(|s| s.term == term) else { return true };
        if state.prepared.get(&txn).is_some_and(keep) {
            return false;
        }
        state.prepared.remove(&txn);
        state.drop_txn(txn, None);
        true
    }

    /// Forgets a transaction here: not prepared, no locks.
    fn forget(&self, txn: TxnId, term: u64) {
        let mut guard = self.state();
        if let Some(state) = guard.as_mut().filter(|s| s.term == term) {
            state.prepared.remove(&txn);
            state.drop_txn(txn, None);
        }
    }

    /// [`Shard::forget`] a transaction that ended here, and remember it as ended
    /// ([`LeaderState::ended`]), in whatever term this node leads now, or until it does.
    fn forget_ended(&self, txn: TxnId, term: u64) {
        self.forget(txn, term);
        self.remember_ended(txn);
    }

    /// Remembers `txn` as ended here ([`LeaderState::ended`]): in this term if this node
    /// leads the shard, else in the memory the next term it leads starts with.
    fn remember_ended(&self, txn: TxnId) {
        let mut guard = self.state();
        match guard.as_mut() {
            Some(state) => state.ended(txn),
            None => self.ended_between_terms().insert(txn),
        }
    }

    /// The term in which this node still leads its group, if it does: confirmed by its lease
    /// when that is valid (no message: a quorum acknowledged a heartbeat sent less than
    /// `lease_read_percent` of a lease ago, and followers refuse to elect anyone else for a
    /// whole lease after hearing from it), else by a ReadIndex round; always by a ReadIndex
    /// round when lease reads are off (`lease_read_percent = 0`).
    async fn confirmed_term(&self) -> Option<u64> {
        let counters = &self.ctx.counters;
        let percent = self.timing().lease_read_percent;
        if percent > 0 {
            // Bounded as the ReadIndex round is: a lease read waits for the apply to catch up,
            // which a stalled state writer would make last for ever.
            let deadline = Timing::ms(self.timing().rpc_ms);
            let lease = lease_read(Timing::ms(self.timing().election_max_ms), percent);
            let lease = tokio::time::timeout(deadline, self.raft.ensure_linearizable(lease)).await;
            match lease {
                Ok(Ok(read)) => {
                    Counters::bump(&counters.lease_reads);
                    return Some(term_of(read.log_id()));
                }
                Ok(Err(_)) => {}
                Err(_) => return None,
            }
        }
        let term = self.read_index_term().await;
        if term.is_some() {
            Counters::bump(&counters.read_index_reads);
        }
        term
    }

    /// The term of this node's leadership if a ReadIndex round confirms it within `rpc_ms`
    /// (and its state machine applied everything committed before the round).
    async fn read_index_term(&self) -> Option<u64> {
        let confirmed = tokio::time::timeout(
            Timing::ms(self.timing().rpc_ms),
            self.raft.ensure_linearizable(ReadPolicy::ReadIndex),
        )
        .await;
        match confirmed {
            Ok(Ok(read)) => Some(term_of(read.log_id())),
            _ => None,
        }
    }

    /// Whether a ReadIndex round confirms this node's leadership ([`Shard::read_index_term`]).
    async fn read_index(&self) -> bool {
        self.read_index_term().await.is_some()
    }

    /// The vote of a participant that only read: its reads stand if this node still leads in
    /// the term of its locks. With `release`, the locks go at once; else they wait for the
    /// decision (released by phase 2).
    async fn vote_read_only(
        self: &Arc<Shard>,
        txn: TxnId,
        lock_term: u64,
        release: bool,
    ) -> PeerReply {
        // The reads were made under locks granted in `lock_term`; confirming that this node
        // still leads in that term proves no other leader changed the data meanwhile. The term
        // confirmed is Raft's own, not the leader state's: that state is replaced by a watcher
        // task, and a node that lost the shard and won it back before the watcher ran would
        // still show `lock_term` there (found by a review, 2026-12-06).
        match self.confirmed_term().await {
            Some(term) if term == lock_term => {}
            Some(_) => {
                return aborted(
                    AbortReason::LeaderChanged,
                    format!("the leader of {} changed", self.id),
                );
            }
            None => {
                return aborted(
                    AbortReason::LeaderChanged,
                    format!("{} could not confirm its leader", self.id),
                );
            }
        }
        let mut guard = self.state();
        match guard.as_mut().filter(|s| s.term == lock_term) {
            // Another delivery of this prepare voted and released: its vote stands.
            Some(state) if state.voted_read_only.contains(&txn) => {
                PeerReply::Voted { prepare_ts: None }
            }
            Some(state) if !state.ending(&txn) => {
                if release {
                    // Its locks end here and nothing will release any other: a late copy of
                    // one of its statements must not take one again (`ended`; until
                    // 2026-12-07 it did, and held it until the holder check evicted it;
                    // found by a review).
                    state.drop_txn(txn, None);
                    state.voted_read_only.insert(txn);
                    state.ended(txn);
                }
                PeerReply::Voted { prepare_ts: None }
            }
            Some(_) => {
                aborted(AbortReason::CoordinatorLost, "the transaction's locks were evicted")
            }
            None => {
                aborted(AbortReason::LeaderChanged, format!("the leader of {} changed", self.id))
            }
        }
    }

    /// Phase 2 at this participant.
    pub async fn handle_finalize(
        self: &Arc<Shard>,
        txn: TxnId,
        decision: Decision,
        prepared: bool,
    ) -> PeerReply {
        if !prepared {
            return self.handle_release(txn);
        }
        // The mark and the proposal under one hold of the state lock: a prepare of the
        // transaction is in the log before the decision, or refused (`LeaderState::aborting`,
        // `LeaderState::committing`).
        let proposal = {
            let mut guard = self.state();
            let Some(state) = guard.as_mut() else {
                drop(guard);
                return self.not_leader();
            };
            // Not before the leader is ready: `become_ready` restores the locks of the
            // transactions it read as prepared, and a phase 2 applied between that read and
            // the restore left the ended transaction's write locks in the table, holding its
            // keys until the resolver came (a review found it, 2026-12-05). The caller retries.
            if !state.ready {
                return PeerReply::Unavailable(format!("{} leader not ready yet", self.id));
            }
            let command = match decision {
                Decision::Committed { commit_ts } => {
                    state.committing(txn);
                    Command::Commit { txn, commit_ts }
                }
                Decision::Aborted { reason } => {
                    state.aborting(txn, Instant::now());
                    // Its wait here (a prepare still waiting for locks: it proposed nothing)
                    // ends now, not when the abort applies: queued until then it stayed an
                    // edge a deadlock confirmation could find, and a cycle through it that
                    // this abort already broke chose a second victim (a review found it,
                    // 2026-12-06).
                    if let Some(request) = state.locks.waiting(txn) {
                        let detail = "the transaction is aborting".to_string();
                        state.cancel(request, WaitEnd::Aborted { reason, detail });
                    }
                    Command::Abort { txn }
                }
            };
            self.proposer.submit(command)
        };
        let proposed = proposal.await;
        let mut guard = self.state();
        match proposed {
            Ok(_) => {
                if let Some(state) = guard.as_mut() {
                    state.prepared.remove(&txn);
                    state.drop_txn(txn, None);
                    state.committed(txn);
                    state.ended(txn);
                }
                PeerReply::Done
            }
            // This proposal will never apply; another delivery's commit may still (its mark
            // stays: `LeaderState::commit_not_proposed`).
            Err(ProposeError::NotProposed(leader)) => {
                if let (Some(state), Decision::Committed { .. }) = (guard.as_mut(), decision) {
                    state.commit_not_proposed(txn);
                }
                PeerReply::NotLeader { leader }
            }
            // The commit may still apply: the mark stays (this term) so that no prepare
            // follows it into the log; a later phase 2 (a retry, the resolver) clears it.
            Err(ProposeError::Unknown(why)) => PeerReply::Unavailable(why),
        }
    }

    /// Releases an unprepared transaction's locks (any term). A node that does not lead the
    /// shard holds none and answers NotLeader, so the caller goes on to the leader: until
    /// 2026-12-06 it answered Done, and a release sent to a stale leader hint was lost, the
    /// locks held until the holder check (found by a review).
    pub fn handle_release(&self, txn: TxnId) -> PeerReply {
        let quorum = self.has_quorum();
        let mut guard = self.state();
        let Some(state) = guard.as_mut() else {
            drop(guard);
            return self.not_leader();
        };
        if !state.prepared.contains_key(&txn) {
            state.drop_txn(txn, Some((AbortReason::User, "the transaction ended".into())));
            state.ended(txn);
        }
        if !quorum {
            // Released here, but this leader has heard from no quorum for an election timeout
            // and may be deposed: the caller goes on to the shard's leader, whose locks are
            // the ones that hold others up (answered Done, they stayed there until its holder
            // check; found by a review, 2026-12-07).
            return PeerReply::NotLeader { leader: None };
        }
        PeerReply::Done
    }

    /// The compare-and-set of a record at its home shard. With `one_phase` (the transaction
    /// tried to commit in one phase, or the asker cannot tell) a missing record below the
    /// collected watermark answers `TooOld` instead: it may have been a collected COMMITTED one.
    pub async fn handle_decide(
        &self,
        txn: TxnId,
        decision: Decision,
        one_phase: bool,
    ) -> PeerReply {
        if self.state().as_ref().is_none_or(|s| !s.ready) {
            return self.not_leader_or_unready();
        }
        let command = if one_phase {
            Command::DecideOnePhase { txn, decision }
        } else {
            Command::Decide { txn, decision }
        };
        match self.propose(command).await {
            Ok(Applied::Decided(decision)) => PeerReply::Decided(decision),
            Ok(Applied::Forgotten { detail }) => PeerReply::TooOld(detail),
            Ok(other) => panic!("unexpected apply result {other:?} for a decide"),
            Err(ProposeError::NotProposed(leader)) => PeerReply::NotLeader { leader },
            Err(ProposeError::Unknown(why)) => PeerReply::Unavailable(why),
        }
    }

    fn not_leader_or_unready(&self) -> PeerReply {
        match self.state().as_ref() {
            None => self.not_leader(),
            Some(_) => PeerReply::Unavailable(format!("{} leader not ready yet", self.id)),
        }
    }

    /// Marks a committed record finished: queued for the close loop's next entry (within
    /// `close_interval_ms`), or proposed alone when the queue is full.
    pub async fn handle_finish(&self, txn: TxnId) -> PeerReply {
        // Queued at a leader that may be deposed, the Finish would be lost with its queue
        // (the record then waits for `finish_orphans`): the caller goes on to the leader.
        if !self.has_quorum() {
            return PeerReply::NotLeader { leader: None };
        }
        {
            let mut guard = self.state();
            let Some(state) = guard.as_mut() else {
                drop(guard);
                return self.not_leader();
            };
            if state.finishing.len() < FINISHING_QUEUED_MAX {
                state.finishing.push(txn);
                return PeerReply::Done;
            }
        }
        match self.propose(Command::Finish { txn }).await {
            Ok(_) => PeerReply::Done,
            Err(ProposeError::NotProposed(leader)) => PeerReply::NotLeader { leader },
            Err(ProposeError::Unknown(why)) => PeerReply::Unavailable(why),
        }
    }

    /// The record of a transaction homed here; with `resolve`, decides an undecided one ABORTED.
    /// A transaction at or below the collected watermark without a record is ABORTED for an
    /// asker that holds it prepared (`prepared_here`), and too old to tell for anyone else.
    pub async fn handle_status(&self, txn: TxnId, resolve: bool, prepared_here: bool) -> PeerReply {
        if self.state().as_ref().is_none_or(|s| !s.ready) {
            return self.not_leader_or_unready();
        }
        // A linearizable read of the record: nothing decided before this call is missed.
        if !self.read_index().await {
            return PeerReply::Unavailable(format!("{} could not confirm its leader", self.id));
        }
        // The record and the watermark from one state: read apart, a commit at home and a
        // collection pass could apply between the two reads, and a record written just then
        // would look collected (found by a review, 2026-12-06). Fails closed: without the
        // watermark, no ABORTED can be answered here.
        match self.reader.record_and_collected(&txn) {
            Err(error) => PeerReply::Unavailable(error.to_string()),
            Ok((Some(record), _)) => PeerReply::Decided(record.decision),
            Ok((None, _)) if !resolve => PeerReply::Record(None),
            Ok((None, collected)) => {
                if txn.start_ts <= collected {
                    // Its record, if it had one, was collected: it was aborted, or it committed
                    // and every participant applied it (a one-phase commit's record is finished
                    // at once). A participant still holding it prepared may abort it: it did
                    // not commit, or it did and this is a prepare delivered again after its
                    // phase 2 applied there (whose abort changes no data). Nothing is recorded,
                    // and anyone else (a client's TxnStatus) cannot be told which.
                    if !prepared_here {
                        return PeerReply::TooOld(format!(
                            "{txn} started before the retention window: its record may have \
                             been collected, so its outcome is no longer known"
                        ));
                    }
                    return PeerReply::Decided(Decision::Aborted {
                        reason: AbortReason::CoordinatorLost,
                    });
                }
                // Checked again where it is applied: the watermark may pass the transaction
                // before the decision applies, and only a participant holding it prepared
                // knows that it cannot have committed.
                let aborted = Decision::Aborted { reason: AbortReason::CoordinatorLost };
                self.handle_decide(txn, aborted, !prepared_here).await
            }
        }
    }

    // ---- one-statement operations ---------------------------------------------------------

    /// A READ, WRITE, DELETE or SCAN outside a transaction, coordinated right here. It runs in
    /// a task of its own, to completion even if its caller gives up waiting: otherwise a lock
    /// granted after the caller left would be held by a transaction nobody ends.
    pub async fn handle_single(self: &Arc<Shard>, mut txn: TxnId, op: SingleOp) -> PeerReply {
        if canary::is(Canary::SingleIdPerDelivery) {
            // Canary: each delivery is a transaction of its own.
            txn.start_ts = self.ctx.clock.now();
        }
        let shard = self.clone();
        let task = tokio::spawn(async move { shard.single(txn, op).await });
        let reply = task.await.unwrap_or_else(|error| {
            PeerReply::Unavailable(format!("the operation failed: {error}"))
        });
        if let PeerReply::Aborted { .. } = reply {
            // Answered ABORTED: another delivery of the same operation (a copy whose handler
            // runs late) must not commit it now, even if this node has lost its leadership
            // meanwhile (an abort for a leader change) and wins it again before the copy
            // arrives. A committed one is not remembered: its resend must hear COMMITTED from
            // the record (`LeaderState::ended`).
            self.remember_ended(txn);
        }
        reply
    }

    async fn single(self: &Arc<Shard>, txn: TxnId, op: SingleOp) -> PeerReply {
        if let (true, SingleOp::Read { key }) = (canary::is(Canary::FollowerSequentialRead), &op) {
            // Canary: whoever believes it leads answers from its own state, unlocked and
            // unconfirmed (a deposed leader serves stale data).
            if self.state().is_some() {
                return match self.read_one(key).await {
                    Ok(read) => PeerReply::Read(read),
                    Err(reply) => reply,
                };
            }
        }
        let (span, mode) = match &op {
            SingleOp::Read { key } => (LockSpan::Key(key.clone()), LockMode::Shared),
            SingleOp::Write { key, .. } => (LockSpan::Key(key.clone()), LockMode::Exclusive),
            SingleOp::Scan { from, to, .. } => {
                (LockSpan::Range { from: from.clone(), to: to.clone() }, LockMode::Shared)
            }
        };
        let is_write = matches!(op, SingleOp::Write { .. });
        let give_up = self.statement_give_up();
        let term = match self.acquire(txn, span.clone(), mode, None, None, give_up).await {
            Ok(term) => term,
            Err(reply) if is_write => return self.refused_single_write(txn, reply).await,
            Err(reply) => return reply,
        };
        match op {
            SingleOp::Read { key } => {
                let read = self.read_one(&key).await;
                self.finish_read(txn, term, read).await
            }
            SingleOp::Scan { from, to, limit } => {
                let read = self.read_range(&from, to.as_deref(), limit);
                self.finish_read(txn, term, read).await
            }
            SingleOp::Write { key, value } => {
                let request = PrepareRequest {
                    shard: self.id,
                    txn,
                    home: self.id,
                    lock_term: Some(term),
                    acquire: Vec::new(),
                    wait_ms: 0,
                    writes: vec![Write { key, value }],
                    release_shared: true,
                    locks: vec![(span, mode)],
                };
                match self.handle_prepare(request, PrepareKind::Single).await {
                    PeerReply::Unavailable(_) => self.settle_in_doubt(txn, term).await,
                    // Nothing was written (refused before or at proposal): the caller may
                    // retry at the shard's current leader.
                    PeerReply::Aborted { reason: AbortReason::LeaderChanged, .. } => {
                        self.not_leader()
                    }
                    reply @ PeerReply::Aborted { .. } => {
                        self.refused_single_write(txn, reply).await
                    }
                    reply => reply,
                }
            }
        }
    }

    /// The answer to a one-statement WRITE refused with `reply`: a COORDINATOR_LOST refusal,
    /// whatever the check that made it, is answered from the record instead
    /// ([`Shard::outcome_of_single`]): the transaction may be ending here because another
    /// delivery committed it (and the resolver finished it), or another delivery may have
    /// committed and released the locks this one found lost, and neither leaves a mark that
    /// outlives a check made a moment later (a phase 2 that was not proposed clears its own,
    /// a term change clears them all). The record's answer is always true: its decision, or
    /// an open outcome while there is none.
    ///
    /// Any other refusal (a lock wait that failed: LEADER_CHANGED, LOCK_TIMEOUT, DEADLOCK)
    /// stands only once the shard's record says ABORTED: the refusal is settled through the
    /// record at the shard's leader (a one-phase `Decide`, [`Shard::settle_refused`]), which
    /// decides an undecided transaction ABORTED, so that no other delivery of it can
    /// commit afterwards, at this node or at any later leader. This may be a copy of a
    /// delivery that committed and released the key (its answer lost), which then waited
    /// behind a later holder (a review found it, 2026-12-05; chaos `prepare_resend.rs`, sixth
    /// case); or it may have waited at a deposed leader that has not heard of its successor,
    /// whose own record knows nothing of the delivery the new leader committed. Before
    /// 2026-12-07 only this node's record was read, so the second case answered ABORTED for
    /// a write that committed, and a late copy arriving at a later leader could commit a write
    /// answered ABORTED, which the client had then written again (found by a review).
    async fn refused_single_write(&self, txn: TxnId, reply: PeerReply) -> PeerReply {
        match reply {
            PeerReply::Aborted { reason: AbortReason::CoordinatorLost, .. } => {
                self.outcome_of_single(txn)
            }
            refused @ PeerReply::Aborted { .. } => match self.settle_refused(txn).await {
                Ok(Decision::Committed { commit_ts }) => PeerReply::Committed { commit_ts },
                Ok(Decision::Aborted { .. }) => refused,
                Err(why) => PeerReply::Unavailable(format!(
                    "{txn}'s write was refused ({}), and its record could not be settled: {why}",
                    refused_detail(&refused)
                )),
            },
            reply => reply,
        }
    }

    /// The decision of the record of a one-statement write that this delivery did not commit:
    /// the record's if this replica has one (a decision is final), else ABORTED proposed at the
    /// shard's leader as a compare-and-set (`Decide`, one-phase: it answers the record's
    /// decision if one is there, and `TooOld` below the collected watermark), through the peer
    /// caller, which finds the leader: this node may be a deposed one. Bounded by half an RPC
    /// deadline, so that the caller (which waits the lock wait plus one RPC deadline) hears
    /// the answer.
    async fn settle_refused(&self, txn: TxnId) -> Result<Decision, String> {
        if let Ok(Some(record)) = self.reader.record(&txn) {
            return Ok(record.decision);
        }
        let deadline = Timing::ms(self.timing().rpc_ms) / 2;
        let decision = Decision::Aborted { reason: AbortReason::CoordinatorLost };
        let request = PeerRequest::Decide { shard: self.id, txn, decision, one_phase: true };
        match self.ctx.peers.call_shard(self.id, request, deadline).await {
            Ok((_, PeerReply::Decided(decision))) => Ok(decision),
            Ok((node, other)) => Err(format!("node {node} answered {other:?}")),
            Err(error) => Err(error.to_string()),
        }
    }

    /// The answer to a delivery of a one-statement WRITE whose transaction is already ending
    /// here (another delivery committed it and the resolver finished it, or it was answered
    /// ABORTED, or it is being aborted): the record's decision if there is one, else an open
    /// outcome, never a bare ABORTED (chaos seed 4 at 120 s, 2026-12-04: a WRITE committed,
    /// its answer was lost, the resolver finished its record and remembered it as ended, and
    /// the caller's resend was answered ABORTED). The caller retries an open outcome until the
    /// record decides or its deadline passes (then its client hears "unknown").
    fn outcome_of_single(&self, txn: TxnId) -> PeerReply {
        match self.reader.record(&txn) {
            Ok(Some(Record { decision: Decision::Committed { commit_ts }, .. })) => {
                PeerReply::Committed { commit_ts }
            }
            Ok(Some(Record { decision: Decision::Aborted { reason }, .. })) => {
                aborted(reason, format!("{txn} was resolved as aborted"))
            }
            Ok(None) | Err(_) => PeerReply::Unavailable(format!(
                "{txn} is ending at {} and has no record yet: its outcome is open",
                self.id
            )),
        }
    }

    async fn finish_read(
        self: &Arc<Shard>,
        txn: TxnId,
        term: u64,
        read: Result<ReadResult, PeerReply>,
    ) -> PeerReply {
        let read = match read {
            Ok(read) => read,
            Err(reply) => {
                self.forget(txn, term);
                return reply;
            }
        };
        match self.vote_read_only(txn, term, true).await {
            PeerReply::Voted { .. } => PeerReply::Read(read),
            // Its leadership not confirmed in time (in the same term, the lock is still here):
            // the read is refused, so its lock goes now, not at the holder check's eviction
            // about a second later (a review, 2026-12-07).
            reply => {
                self.forget(txn, term);
                reply
            }
        }
    }

    /// A one-phase commit whose outcome was lost: the record (this shard is its home) settles
    /// it, deciding ABORTED if the commit never applied.
    async fn settle_in_doubt(self: &Arc<Shard>, txn: TxnId, term: u64) -> PeerReply {
        let deadline = Timing::ms(self.timing().rpc_ms);
        let request =
            PeerRequest::Status { shard: self.id, txn, resolve: true, prepared_here: false };
        let reply = self.ctx.peers.call_shard(self.id, request, deadline).await;
        // Its locks go only once no entry of it can commit any more (the record decides), or
        // if nothing of it was proposed. Released while its entry may still apply, another
        // transaction could read the key before the write applies and overwrite it after (as
        // chaos seed 342 did to a transaction's commit); the resolver settles it instead.
        if matches!(reply, Ok((_, PeerReply::Decided(_)))) {
            self.forget(txn, term);
        } else {
            // Kept if proposed (in `prepared`: in doubt).
            self.forget_unless(txn, term, |_| true);
        }
        match reply {
            Ok((_, PeerReply::Decided(Decision::Committed { commit_ts }))) => {
                PeerReply::Committed { commit_ts }
            }
            Ok((_, PeerReply::Decided(Decision::Aborted { reason }))) => {
                aborted(reason, "the write's outcome was lost and it was resolved as aborted")
            }
            _ => PeerReply::Unavailable("the write's outcome is unknown".into()),
        }
    }

    // ---- deadlock detection ------------------------------------------------------------------

    /// Starts probes for a request that has waited long enough.
    fn probe_from(self: &Arc<Shard>, term: u64, request: RequestId) {
        if canary::is(Canary::NoDeadlockProbes) {
            return;
        }
        let steps = {
            let guard = self.state();
            match guard.as_ref().filter(|s| s.term == term) {
                Some(state) => start_probes(&state.locks, self.id, request),
                None => return,
            }
        };
        self.follow(steps);
    }

    /// Acts on probe steps: forwards probes to coordinators, aborts deadlock victims.
    fn follow(self: &Arc<Shard>, steps: Vec<ProbeStep>) {
        for step in steps {
            match step {
                ProbeStep::Forward(probe) => {
                    // Once a round per (next holder, initiator), as a coordinator forwards
                    // (`txn::deadlock::ProbeRounds`).
                    let now = Instant::now();
                    let round_end = now + self.timing().probe_round();
                    let first = self.probes_sent.lock().expect("probes lock").first(
                        probe.last_holder(),
                        probe.initiator(),
                        now,
                        round_end,
                    );
                    if !first {
                        continue;
                    }
                    Counters::bump(&self.ctx.counters.probes_sent);
                    let shard = self.clone();
                    tokio::spawn(async move { shard.send_probe(probe).await });
                }
                ProbeStep::Deadlock(deadlock) => {
                    Counters::bump(&self.ctx.counters.deadlocks_found);
                    tracing::debug!(shard = %self.id, cycle = %deadlock.describe(), "deadlock detected");
                    self.confirm(Confirmation::new(deadlock));
                }
                ProbeStep::Drop(_) => {}
            }
        }
    }

    /// Sends a probe to its last holder's coordinator; evicts the holder here if that
    /// coordinator no longer knows it, or has not answered for too long.
    async fn send_probe(self: Arc<Shard>, probe: Probe) {
        let holder = probe.last_holder();
        let deadline = Timing::ms(self.timing().rpc_ms);
        let outcome = self
            .ctx
            .peers
            .call(holder.coordinator, PeerRequest::ProbeTxn { probe }, deadline)
            .await;
        self.judge_holder(holder, outcome.ok());
    }

    /// Acts on a coordinator's answer (or silence) about a lock holder.
    fn judge_holder(self: &Arc<Shard>, holder: TxnId, answer: Option<PeerReply>) {
        let now = Instant::now();
        let lost_after = Timing::ms(self.timing().coordinator_lost_ms);
        let mut guard = self.state();
        let Some(state) = guard.as_mut() else { return };
        // A holder that has left the lock table meanwhile needs no judging, and an entry for
        // it in `unanswered` would stay for the whole term (found by a review, 2026-12-06).
        if !state.locks.has_txn(holder) {
            state.unanswered.remove(&holder);
            return;
        }
        let gone = match answer {
            Some(PeerReply::Probe(ProbeOutcome::Unknown)) => true,
            Some(PeerReply::Alive(alive)) if !alive.first().copied().unwrap_or(false) => true,
            Some(_) => {
                state.unanswered.remove(&holder);
                false
            }
            None => {
                let since = *state.unanswered.entry(holder).or_insert(now);
                now.duration_since(since) >= lost_after
            }
        };
        if gone && state.evict(holder, now) {
            Counters::bump(&self.ctx.counters.evictions);
            tracing::info!(shard = %self.id, txn = %holder, "evicted the locks of a transaction whose coordinator is gone");
        }
    }

    /// A probe arrived for a transaction that waits here.
    pub fn handle_probe(self: &Arc<Shard>, probe: Probe) -> PeerReply {
        let steps = {
            let guard = self.state();
            match guard.as_ref() {
                Some(state) => shard_step(&state.locks, self.id, &probe),
                None => return self.not_leader(),
            }
        };
        self.follow(steps);
        PeerReply::Done
    }

    /// Moves a deadlock confirmation along its cycle: checks (and pins) the edges waiting at
    /// this shard, then hands it to the next edge's shard; at the victim's shard, aborts the
    /// victim's wait if every edge existed.
    pub fn confirm(self: &Arc<Shard>, mut confirmation: Confirmation) -> PeerReply {
        loop {
            if confirmation.shard() != self.id {
                let shard = confirmation.shard();
                let ctx = self.ctx.clone();
                tokio::spawn(async move {
                    let deadline = Timing::ms(ctx.config.timing.rpc_ms);
                    let request = PeerRequest::Confirm { shard, confirmation };
                    let _ = ctx.peers.call_shard(shard, request, deadline).await;
                });
                return PeerReply::Done;
            }
            let mut guard = self.state();
            let Some(state) = guard.as_mut() else { return self.not_leader() };
            let now = state.now_ms();
            state.pins.expire(now);
            let victim_request = confirmation.deadlock.victim().request;
            match confirmation.step(&mut state.locks, &mut state.pins, self.id, now) {
                ConfirmStep::Forward(next) => confirmation = next,
                ConfirmStep::Abort { victim, grants, deadlock } => {
                    Counters::bump(&self.ctx.counters.victims);
                    let detail = format!("victim of deadlock {}", deadlock.describe());
                    tracing::info!(shard = %self.id, %victim, %detail, "deadlock victim");
                    if let Some(waiter) = state.waiters.remove(&victim_request) {
                        assert_eq!(
                            waiter.txn, victim,
                            "the victim's request belongs to the victim"
                        );
                        let _ = waiter
                            .wake
                            .send(WaitEnd::Aborted { reason: AbortReason::Deadlock, detail });
                    }
                    state.wake(grants);
                    return PeerReply::Done;
                }
                ConfirmStep::Drop(_) => return PeerReply::Done,
            }
        }
    }

    /// The current lock waits here (empty unless leader).
    pub fn waits(&self) -> Vec<WaitLine> {
        let guard = self.state();
        let Some(state) = guard.as_ref() else { return Vec::new() };
        let now = Instant::now();
        state
            .locks
            .waits()
            .into_iter()
            .map(|wait| WaitLine {
                shard: self.id,
                txn: wait.txn,
                span: wait.span,
                mode: wait.mode,
                blockers: wait.blockers.iter().map(|b| b.txn).collect(),
                waited_ms: state
                    .waiters
                    .get(&wait.request)
                    .map(|w| now.duration_since(w.since).as_millis() as u64)
                    .unwrap_or(0),
            })
            .collect()
    }

    /// This replica's state, for convergence and leak checks. The applied index and the digest
    /// come from one read transaction, so they match.
    pub fn inspect(&self) -> PeerReply {
        let (applied, digest, prepared) = match self.reader.snapshot_summary() {
            Ok(summary) => summary,
            Err(error) => return PeerReply::Unavailable(error.to_string()),
        };
        let (leading, lock_holders) = match self.state().as_ref() {
            Some(state) if state.ready => (true, state.locks.txns().len()),
            _ => (false, 0),
        };
        let snapshots_exported = self.reader.snapshots_exported();
        PeerReply::Inspected(Inspection {
            applied,
            digest,
            prepared,
            leading,
            lock_holders,
            snapshots_exported,
        })
    }

    /// This replica's Raft term and last log id (for a replica whose vote gate is closed).
    pub fn raft_state(&self) -> PeerReply {
        let term = self.raft.metrics().borrow_watched().current_term;
        PeerReply::RaftState { term, last_log: self.log.last_log_id(), voting: self.gate.is_open() }
    }

    /// Lock holders and prepared transactions here, for STATUS and leak checks.
    pub fn lock_summary(&self) -> Option<(usize, usize)> {
        let guard = self.state();
        guard.as_ref().map(|state| (state.locks.txns().len(), state.prepared.len()))
    }

    // ---- resolution --------------------------------------------------------------------------

    async fn resolve_loop(self: Arc<Shard>) {
        for pass in 1u64.. {
            tokio::time::sleep(RESOLVER_PERIOD).await;
            self.resolve_once(pass % HOLDER_CHECK_PASSES == 0).await;
            self.hand_over().await;
        }
    }

    /// Hands leadership to the shard's preferred replica (the first in its replica list) when
    /// this node leads instead, has led for a while, and the preferred replica is caught up.
    /// Once per term: if the transfer fails, the next term may try again.
    async fn hand_over(self: &Arc<Shard>) {
        let preferred = self.ctx.topology.replicas(self.id)[0];
        if preferred == self.ctx.me {
            return;
        }
        let term = {
            let guard = self.state();
            let Some(state) = guard.as_ref() else { return };
            if !state.ready || state.handed_over || state.ready_at.elapsed() < HANDOVER_AFTER {
                return;
            }
            let metrics = self.raft.metrics().borrow_watched().clone();
            let last = metrics.last_log_index;
            let caught_up = metrics
                .replication
                .as_ref()
                .and_then(|progress| progress.get(&preferred).cloned())
                .flatten()
                .is_some_and(|matched| Some(matched.index) == last);
            if !caught_up {
                return;
            }
            state.term
        };
        // Only to a replica that votes: one on a fresh data directory refuses the transfer until
        // it has caught up (participant::rejoin), and a refused transfer leaves the group
        // without heartbeats until an election.
        let request = PeerRequest::RaftState { shard: self.id };
        let deadline = Timing::ms(self.timing().rpc_ms);
        match self.ctx.peers.call(preferred, request, deadline).await {
            Ok(PeerReply::RaftState { voting: true, .. }) => {}
            _ => return,
        }
        {
            let mut guard = self.state();
            let Some(state) = guard.as_mut().filter(|s| s.term == term) else { return };
            if state.handed_over {
                return;
            }
            state.handed_over = true;
        }
        tracing::info!(shard = %self.id, to = preferred, "handing leadership to the preferred replica");
        self.transfer_leadership(preferred).await;
    }

    /// Lets the node's WAL drop this replica's old entries: purges the log up to the latest
    /// snapshot if that is past the purge point, else asks for a snapshot (the next call then
    /// purges). Regardless of `log_kept_behind_snapshot`: a follower that lagged behind the
    /// purge catches up by snapshot. Called when this shard keeps the WAL's oldest segment.
    pub async fn compact_log(&self) {
        let (snapshot, purged) = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow_watched();
            (metrics.snapshot, metrics.purged)
        };
        match snapshot {
            Some(snapshot) if purged.is_none_or(|purged| purged.index < snapshot.index) => {
                tracing::info!(shard = %self.id, upto = snapshot.index, "purging the log for the WAL");
                let _ = self.raft.trigger().purge_log(snapshot.index).await;
            }
            _ => {
                tracing::info!(shard = %self.id, "snapshotting so that the WAL can drop old entries");
                let _ = self.raft.trigger().snapshot().await;
            }
        }
    }

    /// Before this node stops (SIGTERM, Ctrl-C): if this replica leads, hands the shard to
    /// another replica that votes and holds every entry, and waits (at most `within`) until
    /// this replica leads no more. So the shard is led again within a round trip, instead of
    /// an election timeout after this node is gone, its requests refused meanwhile (a review,
    /// 2026-12-07). Without such a replica, nothing is asked: the election follows the stop.
    pub async fn hand_off_before_stop(self: &Arc<Shard>, within: Duration) {
        let me = self.ctx.me;
        let metrics = self.raft.metrics().borrow_watched().clone();
        if metrics.current_leader != Some(me) {
            return;
        }
        let last = metrics.last_log_index;
        let caught_up = |node: &NodeId| {
            let progress = metrics.replication.as_ref().and_then(|p| p.get(node).cloned());
            progress.flatten().is_some_and(|matched| Some(matched.index) == last)
        };
        let deadline = Timing::ms(self.timing().rpc_ms).min(within);
        for &to in self.ctx.topology.replicas(self.id).iter().filter(|node| **node != me) {
            if !caught_up(&to) {
                continue;
            }
            // Only to a replica that votes (see `hand_over`).
            let request = PeerRequest::RaftState { shard: self.id };
            match self.ctx.peers.call(to, request, deadline).await {
                Ok(PeerReply::RaftState { voting: true, .. }) => {}
                _ => continue,
            }
            tracing::info!(shard = %self.id, to, "handing leadership over before stopping");
            self.transfer_leadership(to).await;
            let moved = |m: &replication::types::RaftMetrics| m.current_leader != Some(me);
            let _ = self.raft.wait(Some(within)).metrics(moved, "leadership handed over").await;
            return;
        }
    }

    /// Asks this replica, if it leads, to hand leadership to replica `to` (openraft's
    /// TransferLeader: the target campaigns at once). Ignored by a follower; the old leader's
    /// unprepared locks die with its term, like at any leader change.
    pub async fn transfer_leadership(&self, to: NodeId) {
        let _ = self.raft.trigger().transfer_leader(to).await;
    }

    /// One pass: resolve old prepared transactions; with `check_holders`, also ask the lock
    /// holders' coordinators whether the holders still run.
    pub async fn resolve_once(self: &Arc<Shard>, check_holders: bool) {
        let now = Instant::now();
        let (old_prepared, holders) = {
            let mut guard = self.state();
            let Some(state) = guard.as_mut().filter(|s| s.ready) else { return };
            state.evicted.retain(|_, when| now.duration_since(*when) < EVICTED_MEMORY);
            let resolve_after = Timing::ms(self.timing().prepared_resolve_ms);
            let old: Vec<(TxnId, ShardId)> = state
                .prepared
                .iter()
                .filter(|(_, info)| now.duration_since(info.since) >= resolve_after)
                .map(|(txn, info)| (*txn, info.home))
                .collect();
            let holders: Vec<TxnId> = state
                .locks
                .txns()
                .into_iter()
                .filter(|txn| !state.prepared.contains_key(txn))
                .collect();
            (old, holders)
        };
        if canary::is(Canary::YesVoterAbortsAlone) {
            for (txn, _) in old_prepared {
                let decision = Decision::Aborted { reason: AbortReason::CoordinatorLost };
                let _ = self.handle_finalize(txn, decision, true).await;
            }
        } else {
            self.settle_prepared(old_prepared).await;
        }
        // Ask each holder's coordinator whether the holder is still running (cheap: one call
        // per coordinator node); holders of dead coordinators are evicted.
        if !check_holders {
            return;
        }
        for (txn, alive) in self.ask_alive(holders).await {
            self.judge_holder(txn, alive.map(|alive| PeerReply::Alive(vec![alive])));
        }
    }

    /// Settles `old` prepared transactions (with their homes) through their records, but
    /// those whose coordinators still run them (they are finishing them). All together: one
    /// at a time, each after a call to a dead coordinator's node that may take the whole RPC
    /// deadline, N of them took N deadlines, and their keys' writers timed out meanwhile (a
    /// review found it, 2026-12-06).
    async fn settle_prepared(self: &Arc<Shard>, old: Vec<(TxnId, ShardId)>) {
        let alive = self.ask_alive(old.iter().map(|(txn, _)| *txn)).await;
        let settle = old
            .into_iter()
            .filter(|(txn, _)| alive.get(txn) != Some(&Some(true)))
            .map(|(txn, home)| self.resolve_prepared(txn, home));
        futures::stream::iter(settle)
            .buffer_unordered(RESOLVES_IN_FLIGHT_MAX)
            .collect::<Vec<()>>()
            .await;
    }

    /// Asks each coordinator node, once and all at the same time, which of `txns` (of its
    /// own) still run: per transaction, whether it does, or None if its node did not answer.
    async fn ask_alive(
        &self,
        txns: impl IntoIterator<Item = TxnId>,
    ) -> BTreeMap<TxnId, Option<bool>> {
        let mut by_node: BTreeMap<NodeId, Vec<TxnId>> = BTreeMap::new();
        for txn in txns {
            by_node.entry(txn.coordinator).or_default().push(txn);
        }
        let deadline = Timing::ms(self.timing().rpc_ms);
        let calls = by_node.into_iter().map(|(node, txns)| async move {
            let answer = self
                .ctx
                .peers
                .call(node, PeerRequest::Alive { txns: txns.clone() }, deadline)
                .await;
            let alive = |i: usize| match &answer {
                Ok(PeerReply::Alive(alive)) => Some(alive.get(i).copied().unwrap_or(false)),
                Ok(_) | Err(_) => None,
            };
            txns.into_iter().enumerate().map(|(i, txn)| (txn, alive(i))).collect::<Vec<_>>()
        });
        join_all(calls).await.into_iter().flatten().collect()
    }

    /// Settles a prepared transaction (whose coordinator is not known to run it any more)
    /// through its record and applies the outcome here.
    async fn resolve_prepared(self: &Arc<Shard>, txn: TxnId, home: ShardId) {
        let deadline = Timing::ms(self.timing().rpc_ms);
        // Home's own commit in one entry (a one-phase commit, or a commit at home) whose
        // outcome it did not hear is not prepared in the sense of `prepared_here`: if it
        // applied, its record may be a finished one that a collection pass has removed since
        // (a one-phase commit's is finished at once). So home asks as anyone would: a missing
        // record below the collected watermark is `TooOld`, checked again where the ABORTED
        // decision applies (`Command::DecideOnePhase`), and no ABORTED is recorded for a
        // commit whose COMMITTED record was collected. `TooOld` also means that no copy of the
        // commit can apply any more (every such apply checks the watermark first): what it
        // wrote, if anything, is in place, and its locks protect nothing.
        let own = home == self.id;
        let request = PeerRequest::Status { shard: home, txn, resolve: true, prepared_here: !own };
        let reply = self.ctx.peers.call_shard(home, request, deadline).await;
        let decision = match reply {
            Ok((_, PeerReply::Decided(decision))) => decision,
            Ok((_, PeerReply::TooOld(_))) if own => {
                Decision::Aborted { reason: AbortReason::CoordinatorLost }
            }
            _ => return,
        };
        Counters::bump(&self.ctx.counters.resolved);
        tracing::info!(shard = %self.id, %txn, ?decision, "resolved a prepared transaction through its record");
        let _ = self.handle_finalize(txn, decision, true).await;
    }
}

/// A lease read that relies on `percent` of a leader lease of `lease` (`lease_read_percent`,
/// [`crate::config::LEASE_READ_PERCENT_DEFAULT`]), and fails at once (no wait) when no quorum
/// acknowledged a heartbeat sent within it.
fn lease_read(lease: Duration, percent: u64) -> LinearizerOption {
    debug_assert!(percent <= crate::config::LEASE_READ_PERCENT_MAX, "validated");
    let relied_on = lease * percent as u32 / 100;
    LinearizerOption::new(Some(relied_on), false).with_wait_timeout(Duration::ZERO)
}
