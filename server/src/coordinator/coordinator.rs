//! The coordinator: runs the statements of the transactions begun on this node.
//!
//! Each statement locks at the shard leader of its key (`Lock`), following leader hints and
//! retrying while no leader answers; writes stay buffered here until END. A server-side abort
//! (deadlock, lock timeout, leader change, unreachable shard, idle timeout) releases every lock
//! of the transaction at once and leaves it `Aborted`, so that later statements fail until the
//! client ends it. END runs the commit protocol (`commit.rs`); writes sent with END are
//! buffered without locks, which the prepares then take.
//!
//! Statements of one transaction run one at a time (a per-transaction async mutex); different
//! transactions run concurrently. A transaction's lock waits are visible to deadlock probes
//! through the node's registry.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::time::Duration;

use replication::canary;
use replication::canary::Canary;
use tokio::time::Instant;
use txn::command::AbortReason;
use txn::deadlock::Probe;
use txn::deadlock::ProbeRounds;
use txn::state::SCAN_BYTES_MAX;
use txn::state::rows_bytes;
use txn::types::Key;
use txn::types::ShardId;
use txn::types::Timestamp;
use txn::types::TxnId;
use txn::types::Value;

use crate::config::Timing;
use crate::context::Counters;
use crate::context::NodeContext;
use crate::coordinator::txn_state::ENTRY_OVERHEAD_BYTES;
use crate::coordinator::txn_state::Outcome;
use crate::coordinator::txn_state::Status;
use crate::coordinator::txn_state::TxnState;
use crate::coordinator::txn_state::write_cost;
use crate::peer::caller::CallError;
use crate::peer::message::LockOp;
use crate::peer::message::LockRequest;
use crate::peer::message::PeerReply;
use crate::peer::message::PeerRequest;
use crate::peer::message::ProbeOutcome;
use crate::peer::message::ReadResult;
use crate::peer::message::SingleOp;
use txn::lock::LockSpan;

/// How often idle transactions and old ended ones are swept.
pub const SWEEP_PERIOD: Duration = Duration::from_secs(1);
/// An ended transaction's outcome is remembered this long after its END (END and TxnStatus
/// answer it).
pub const ENDED_MEMORY: Duration = Duration::from_secs(120);
/// At most this many ended transactions are remembered; beyond it the sweep forgets the oldest
/// early. Forgetting is safe: a TxnStatus then learns the outcome from the transaction's
/// record at its home shard (kept for the retention window), and a retried END answers
/// NOT_FOUND (kv.proto: ask TxnStatus).
pub const ENDED_REMEMBERED_MAX: usize = 100_000;
/// Runs, in all, of a one-statement transaction that keeps being chosen as a deadlock victim
/// (`Coordinator::run_again`).
pub const ONE_STATEMENT_RUNS_MAX: usize = 3;

/// Why a statement failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// The transaction is aborted: nothing of it will be visible.
    #[error("{reason}: {detail}")]
    Aborted {
        /// Why.
        reason: AbortReason,
        /// For people.
        detail: String,
    },
    /// Bad input; nothing changed, the transaction stays usable.
    #[error("{0}")]
    Invalid(String),
    /// Not allowed in this state; nothing changed.
    #[error("{0}")]
    NotAllowed(String),
    /// No such transaction here.
    #[error("no open transaction {0} on this node")]
    NotFound(String),
    /// A snapshot older than the retention window.
    #[error("{0}")]
    TooOld(String),
    /// A one-statement operation could not complete in time; for a write, its outcome is
    /// unknown.
    #[error("{0}")]
    Unavailable(String),
}

/// Refuses a scan whose rows exceed `SCAN_BYTES_MAX` (each shard stops just past it, so its
/// reply fits one message; the answer to the client must too). Nothing is written; within a
/// transaction, the range locks the scan took stay until it ends, as a read's do.
pub(crate) fn check_scan_bytes(rows: &[(Key, Value)]) -> Result<(), StatementError> {
    let bytes = rows_bytes(rows);
    if bytes > SCAN_BYTES_MAX {
        return Err(StatementError::Invalid(format!(
            "the rows of this SCAN exceed {} MiB: narrow the range or add a LIMIT",
            SCAN_BYTES_MAX >> 20
        )));
    }
    Ok(())
}

fn abort_error(reason: AbortReason, detail: impl Into<String>) -> StatementError {
    StatementError::Aborted { reason, detail: detail.into() }
}

/// One transaction's entry: its state behind an async lock (statements run one at a time).
pub struct TxnEntry {
    /// The id.
    pub id: TxnId,
    /// The state.
    pub state: tokio::sync::Mutex<TxnState>,
    /// The last time a statement started or ended.
    pub last_active: Mutex<Instant>,
    /// A statement of it was cancelled before its answer ([`Unanswered`]): whoever takes the
    /// state next aborts it first ([`Coordinator::state_of`]).
    pub cancelled: std::sync::atomic::AtomicBool,
    /// How many of its ENDs were received and may still run (counted up before an END runs,
    /// down if END refuses its writes as bad input): while any, [`Coordinator::abandon`] leaves
    /// its lock waits alone, since they are END's own (the locks of writes sent with it). A
    /// count, not a flag: of two ENDs sent at once, the one refused must not clear the mark of
    /// the one that runs (found by a review, 2026-12-06).
    pub ending: std::sync::atomic::AtomicUsize,
    /// Its session stream closed ([`Coordinator::abandon`]): a lock wait that abandon ends
    /// aborts it as [`ABANDONED`], not as the client's ABORT.
    pub abandoned: std::sync::atomic::AtomicBool,
    /// It reads a snapshot (a causal READ ONLY transaction): it holds nothing, so a statement
    /// of it cancelled before its answer leaves it open, as one answered UNAVAILABLE does
    /// (kv.proto); the client may send the statement again.
    pub snapshot: bool,
    /// What it counts against `node_txn_bytes_max`, as last charged ([`StateGuard`]).
    pub charged: AtomicUsize,
}

impl TxnEntry {
    pub(crate) fn touch(&self) {
        *self.last_active.lock().expect("activity lock") = Instant::now();
    }
}

/// Why a transaction whose session stream closed was aborted.
pub(crate) const ABANDONED: &str =
    "the session stream it was begun on closed (its client went away)";

/// Why a transaction with a cancelled statement was aborted.
const CANCELLED: &str = "a statement of the transaction was cancelled before its answer";

/// A statement of one of this node's transactions, in flight for a client. If it is dropped
/// before [`Unanswered::answered`] (its client cancelled the call, or the transport's deadline
/// for it passed), the transaction is aborted: its client cannot know what the statement did
/// (kv.proto: a statement left without an answer leaves its transaction aborted). Before
/// 2026-12-05 such a transaction stayed active: a WRITE cancelled in its lock wait was missing
/// from a later END that answered COMMITTED, and a lock it was still waiting for could be
/// granted with nobody to use it (found by a review).
pub struct Unanswered {
    coordinator: Arc<Coordinator>,
    txn: TxnId,
    /// Also forget the transaction: its client never learned its id.
    forget: bool,
    armed: bool,
}

impl Unanswered {
    /// The statement is answered: nothing to do.
    fn answered(mut self) {
        self.armed = false;
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (coordinator, txn, forget) = (self.coordinator.clone(), self.txn, self.forget);
        let Ok(entry) = coordinator.entry(&txn) else { return };
        // Marked before anything else can take the state: `answering` drops this before the
        // statement and its hold of the state, and a request waiting for the state (the
        // client's END, sent as soon as it gave up on the statement, can arrive before the
        // transport drops the statement) may be handed it next, and must find the
        // transaction aborted. Found by e2e
        // `bad_input::a_cancelled_statement_leaves_its_transaction_aborted`, whose END once
        // went ahead and prepared. The abort itself (and its releases) waits for the state in
        // a task of its own: whoever takes the state first aborts the transaction on the way.
        entry.cancelled.store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::spawn(async move {
            drop(coordinator.state_of(&entry).await);
            if forget {
                coordinator.forget(txn);
            }
        });
    }
}

/// The coordinator of this node's transactions.
pub struct Coordinator {
    pub(crate) ctx: Arc<NodeContext>,
    txns: Mutex<BTreeMap<u64, Arc<TxnEntry>>>,
    /// Probes forwarded lately, by (holder, initiator): a second probe of one initiator
    /// through one holder within a probe round is dropped (see `handle_probe`).
    probes_forwarded: Mutex<ProbeRounds<Instant>>,
    pub(crate) replicas: std::sync::OnceLock<Arc<dyn crate::coordinator::snapshot::LocalReplicas>>,
    /// What the running transactions count together against `node_txn_bytes_max`: the sum of
    /// every entry's `charged`, brought up to date whenever a transaction's state is let go
    /// ([`StateGuard`]). Every change of a charge, and the sweep's recount, happens under this
    /// lock, so the count is the sum of the charges of the entries in `txns` (an atomic count
    /// raced the recount: a charge between its reading of the entries and its store was lost,
    /// and its later release wrapped the count; a review, 2026-12-07).
    buffered: Mutex<usize>,
}

/// A transaction's state, held ([`Coordinator::state_of`]). Let go, it charges the
/// transaction's bytes to the node's count ([`Coordinator::buffered`]): the one place where
/// the count follows the states, whatever a statement changed.
pub(crate) struct StateGuard<'e, 'c> {
    state: tokio::sync::MutexGuard<'e, TxnState>,
    entry: &'e TxnEntry,
    buffered: &'c Mutex<usize>,
}

impl std::ops::Deref for StateGuard<'_, '_> {
    type Target = TxnState;
    fn deref(&self) -> &TxnState {
        &self.state
    }
}

impl std::ops::DerefMut for StateGuard<'_, '_> {
    fn deref_mut(&mut self) -> &mut TxnState {
        &mut self.state
    }
}

impl Drop for StateGuard<'_, '_> {
    fn drop(&mut self) {
        charge(self.entry, &self.state, self.buffered);
    }
}

/// Sets `entry`'s charge to what `state` counts now (nothing once it is not running: its
/// writes and locks are dropped), and moves the node's count by the difference.
fn charge(entry: &TxnEntry, state: &TxnState, buffered: &Mutex<usize>) {
    let now = match state.status {
        Status::Active => state.write_bytes + state.lock_bytes,
        _ => 0,
    };
    let mut count = buffered.lock().expect("buffered lock");
    let before = entry.charged.swap(now, Ordering::SeqCst);
    *count = (*count + now).saturating_sub(before);
}

impl Coordinator {
    /// A coordinator for this node.
    pub fn new(ctx: Arc<NodeContext>) -> Arc<Coordinator> {
        Arc::new(Coordinator {
            ctx,
            txns: Mutex::new(BTreeMap::new()),
            probes_forwarded: Mutex::new(ProbeRounds::default()),
            replicas: std::sync::OnceLock::new(),
            buffered: Mutex::new(0),
        })
    }

    pub(crate) fn timing(&self) -> &Timing {
        &self.ctx.config.timing
    }

    /// The deadline of a statement's lock request: the lock wait plus a round trip.
    pub(crate) fn lock_deadline(&self) -> Duration {
        Timing::ms(self.timing().lock_wait_ms + self.timing().rpc_ms)
    }

    pub(crate) fn rpc_deadline(&self) -> Duration {
        Timing::ms(self.timing().rpc_ms)
    }

    /// Takes a transaction's state (statements run one at a time), first aborting the
    /// transaction if one of its statements was cancelled ([`Unanswered`]).
    pub(crate) async fn state_of<'e>(&self, entry: &'e TxnEntry) -> StateGuard<'e, '_> {
        let mut state = entry.state.lock().await;
        self.settle_cancelled(entry, &mut state);
        StateGuard { state, entry, buffered: &self.buffered }
    }

    /// Checks that the node's running transactions may count `more` bytes
    /// (`node_txn_bytes_max`); if not, aborts `txn` (UNAVAILABLE, retryable: the node is busy,
    /// and the abort lets this transaction's own bytes go too).
    pub(crate) fn check_node_budget(
        &self,
        txn: TxnId,
        state: &mut TxnState,
        more: usize,
    ) -> Result<(), StatementError> {
        let max = self.ctx.config.limits.node_txn_bytes_max;
        let used = self.buffered_bytes();
        if more == 0 || used.saturating_add(more) <= max {
            return Ok(());
        }
        let detail = format!(
            "this node's running transactions already count {used} bytes of writes and locks \
             (node_txn_bytes_max {max})"
        );
        self.abort_active(txn, state, AbortReason::Unavailable, detail.clone());
        Err(abort_error(AbortReason::Unavailable, detail))
    }

    /// What this node's running transactions count against `node_txn_bytes_max`.
    pub fn buffered_bytes(&self) -> usize {
        *self.buffered.lock().expect("buffered lock")
    }

    /// Aborts an active transaction one of whose statements was cancelled.
    fn settle_cancelled(&self, entry: &TxnEntry, state: &mut TxnState) {
        if entry.cancelled.load(std::sync::atomic::Ordering::SeqCst) {
            self.abort_active(entry.id, state, AbortReason::Unavailable, CANCELLED.into());
        }
    }

    /// Runs `statement` of `txn` for a client: dropped before it ends, it aborts the
    /// transaction ([`Unanswered`]; with `forget`, for a client that does not know the
    /// transaction's id yet, the transaction is forgotten too).
    pub async fn answering<T>(
        self: &Arc<Self>,
        txn: TxnId,
        forget: bool,
        statement: impl Future<Output = T>,
    ) -> T {
        // Declared in this order so that, dropped, `unanswered` goes first (locals drop in
        // reverse): the transaction is marked cancelled before the statement's hold of its
        // state goes and a waiting END can take it. Awaited as a temporary, the statement went
        // first, and an END polled on another worker in between could commit without the
        // cancelled statement (a review found it, 2026-12-06).
        let statement = std::pin::pin!(statement);
        // A snapshot transaction's client that learned its id keeps it open (see
        // `TxnEntry::snapshot`); one that never learned it cannot use it again.
        let armed = forget || !self.entry(&txn).is_ok_and(|entry| entry.snapshot);
        let unanswered = Unanswered { coordinator: self.clone(), txn, forget, armed };
        let answer = statement.await;
        unanswered.answered();
        answer
    }

    /// Starts a transaction; `snapshot` makes it a causal read-only transaction reading that
    /// snapshot.
    pub fn begin(&self, read_only: bool) -> Result<TxnId, StatementError> {
        self.begin_with(read_only, None)
    }

    /// Starts a causal read-only transaction at a snapshot at or above `token`.
    pub fn begin_snapshot(&self, token: Timestamp) -> Result<TxnId, StatementError> {
        self.begin_with(true, Some(self.pick_snapshot(token)))
    }

    fn begin_with(
        &self,
        read_only: bool,
        snapshot: Option<Timestamp>,
    ) -> Result<TxnId, StatementError> {
        // Running transactions count, not ended ones remembered for a retried END: a sustained
        // load of a few hundred transactions a second must not fill the table.
        let open = self.ctx.registry.len();
        if open >= self.ctx.config.limits.open_txns_max {
            return Err(StatementError::Unavailable(format!(
                "this node already coordinates {open} transactions"
            )));
        }
        let id = self.ctx.mint_txn();
        let entry = Arc::new(TxnEntry {
            id,
            state: tokio::sync::Mutex::new(TxnState { snapshot, ..TxnState::new(read_only) }),
            last_active: Mutex::new(Instant::now()),
            cancelled: std::sync::atomic::AtomicBool::new(false),
            ending: std::sync::atomic::AtomicUsize::new(0),
            abandoned: std::sync::atomic::AtomicBool::new(false),
            snapshot: snapshot.is_some(),
            charged: AtomicUsize::new(0),
        });
        self.txns.lock().expect("txns lock").insert(id.seq, entry);
        Ok(id)
    }

    pub(crate) fn entry(&self, txn: &TxnId) -> Result<Arc<TxnEntry>, StatementError> {
        let not_found = || {
            StatementError::NotFound(format!(
                "transaction {txn} is not known here (it ended or was aborted and has been \
                 forgotten, or its node restarted since it began)"
            ))
        };
        if !self.ctx.is_mine(txn) {
            return Err(not_found());
        }
        let entry =
            self.txns.lock().expect("txns lock").get(&txn.seq).cloned().ok_or_else(not_found)?;
        if entry.id != *txn {
            return Err(not_found());
        }
        Ok(entry)
    }

    /// Forgets a transaction that ended (and that no client will ask about again).
    pub(crate) fn forget(&self, txn: TxnId) {
        let removed = self.txns.lock().expect("txns lock").remove(&txn.seq);
        if let Some(entry) = removed {
            let mut count = self.buffered.lock().expect("buffered lock");
            *count = count.saturating_sub(entry.charged.swap(0, Ordering::SeqCst));
        }
    }

    pub(crate) fn check_key(&self, key: &[u8]) -> Result<(), StatementError> {
        let max = self.ctx.config.limits.key_bytes_max;
        if key.is_empty() {
            return Err(StatementError::Invalid("empty key".into()));
        }
        if key.len() > max {
            return Err(StatementError::Invalid(format!(
                "key of {} bytes is over the limit of {max}",
                key.len()
            )));
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<(), StatementError> {
        let max = self.ctx.config.limits.value_bytes_max;
        if value.len() > max {
            return Err(StatementError::Invalid(format!(
                "value of {} bytes is over the limit of {max}",
                value.len()
            )));
        }
        Ok(())
    }

    pub(crate) fn check_range(&self, from: &[u8], to: Option<&[u8]>) -> Result<(), StatementError> {
        let max = self.ctx.config.limits.key_bytes_max;
        if from.len() > max || to.is_some_and(|to| to.len() > max) {
            return Err(StatementError::Invalid(format!(
                "a scan bound is over the key limit of {max} bytes"
            )));
        }
        if to.is_some_and(|to| to < from) {
            return Err(StatementError::Invalid(
                "scan range is backwards: from is after to".into(),
            ));
        }
        Ok(())
    }

    /// Fails unless the transaction is active.
    fn check_active(state: &TxnState) -> Result<(), StatementError> {
        match &state.status {
            Status::Active => Ok(()),
            Status::Aborted { reason, detail } => Err(abort_error(*reason, detail.clone())),
            Status::Ended(_) => Err(StatementError::NotFound("the transaction has ended".into())),
        }
    }

    /// Aborts an active transaction: releases its locks everywhere and remembers why.
    pub(crate) fn abort_active(
        &self,
        txn: TxnId,
        state: &mut TxnState,
        reason: AbortReason,
        detail: String,
    ) {
        if state.status != Status::Active {
            return;
        }
        state.status = Status::Aborted { reason, detail };
        self.ctx.registry.end(txn);
        Counters::bump(&self.ctx.counters.aborted);
        self.release_all(txn, state);
        state.drop_writes();
    }

    /// Releases every lock of an unprepared transaction, in the background.
    pub(crate) fn release_all(&self, txn: TxnId, state: &TxnState) {
        self.release_at(txn, state.parts.keys().copied());
    }

    /// Releases the transaction's unprepared locks at `shards`, in the background.
    pub(crate) fn release_at(&self, txn: TxnId, shards: impl IntoIterator<Item = ShardId>) {
        for shard in shards {
            let ctx = self.ctx.clone();
            let deadline = self.rpc_deadline();
            tokio::spawn(async move {
                let _ = ctx
                    .peers
                    .call_shard(shard, PeerRequest::Release { shard, txn }, deadline)
                    .await;
            });
        }
    }

    /// Takes a lock for a statement and returns what it read. Any failure aborts the
    /// transaction (the lock may or may not have been granted; releasing covers both).
    async fn lock(
        &self,
        entry: &TxnEntry,
        state: &mut TxnState,
        shard: ShardId,
        op: LockOp,
    ) -> Result<ReadResult, StatementError> {
        let txn = entry.id;
        let (span, mode) = op.lock();
        // A new span must fit the lock budget; refused, nothing was asked of the shard.
        let cost = state.new_lock_cost(shard, &span);
        self.check_lock_budget(state, cost)?;
        self.check_node_budget(txn, state, cost)?;
        let lock_term = state.parts.get(&shard).and_then(|part| part.term);
        let request = PeerRequest::Lock(LockRequest { shard, txn, lock_term, op });
        // A participant from the moment the request may reach it: an abort releases there even
        // if this statement never hears back (it failed, or it was dropped: `Unanswered`).
        let fresh = !state.parts.contains_key(&shard);
        state.parts.entry(shard).or_default();
        // While the lock request is out, a deadlock probe reaching this coordinator must know
        // that the transaction may be waiting at `shard` (the shard drops the probe if not).
        self.ctx.registry.set_waiting(txn, shard, true);
        let reply = self.ctx.peers.call_shard(shard, request, self.lock_deadline()).await;
        self.ctx.registry.set_waiting(txn, shard, false);
        let (reason, detail) = match reply {
            Ok((_, PeerReply::Locked { term, read })) => {
                // A SCAN that stopped at its limit holds its range only up to just past its
                // last row: that is what the prepare checks is still held.
                let span = match (span, &read.range_end) {
                    (LockSpan::Range { from, to }, Some(end))
                        if from < *end && to.as_ref().is_none_or(|to| end < to) =>
                    {
                        LockSpan::Range { from, to: Some(end.clone()) }
                    }
                    (span, _) => span,
                };
                if state.granted(shard, term, span, mode) {
                    state.seen_ts = state.seen_ts.max(read.version_ts);
                    return Ok(read);
                }
                (
                    AbortReason::LeaderChanged,
                    format!("the leader of {shard} changed during the transaction"),
                )
            }
            // Its wait ended by `abandon` (the stream closed): the abort is the stream's, not
            // the client's ABORT (until 2026-12-06 USER, which told a client library not to
            // retry; found by a review).
            Ok((_, PeerReply::Aborted { reason: AbortReason::User, .. }))
                if entry.abandoned.load(std::sync::atomic::Ordering::SeqCst) =>
            {
                (AbortReason::Unavailable, ABANDONED.into())
            }
            Ok((_, PeerReply::Aborted { reason, detail })) => (reason, detail),
            Ok((_, PeerReply::Invalid(why))) => {
                // Refused before it took anything; the transaction goes on without it.
                if fresh {
                    state.parts.remove(&shard);
                }
                return Err(StatementError::Invalid(why));
            }
            Ok((_, other)) => {
                (AbortReason::Unavailable, format!("unexpected reply from {shard}: {other:?}"))
            }
            Err(CallError::Timeout(after)) => {
                (AbortReason::Unavailable, format!("{shard} did not answer within {after:?}"))
            }
            Err(error) => (AbortReason::Unavailable, error.to_string()),
        };
        self.abort_active(txn, state, reason, detail.clone());
        Err(abort_error(reason, detail))
    }

    /// READ in a transaction; `for_update` locks the key exclusively (the transaction means
    /// to write it, so it will not need an S->X upgrade, the classic deadlock of two
    /// read-modify-writes of one key). Answers the value, the newest timestamp the
    /// transaction saw, and the snapshot the read was served at (a causal READ ONLY
    /// transaction's, as [`Coordinator::causal_read`] answers it; zero for a locking read).
    pub async fn read(
        &self,
        txn: TxnId,
        key: Key,
        for_update: bool,
    ) -> Result<(Option<Value>, Timestamp, Timestamp), StatementError> {
        self.check_key(&key)?;
        let entry = self.entry(&txn)?;
        let mut state = self.state_of(&entry).await;
        entry.touch();
        Self::check_active(&state)?;
        if for_update && state.read_only {
            return Err(StatementError::NotAllowed(
                "cannot read for update in a READ ONLY transaction".into(),
            ));
        }
        let shard = self.ctx.topology.shard_of(&key);
        if let Some(ts) = state.snapshot.map(|ts| self.statement_snapshot(ts)) {
            let op = crate::peer::message::SnapshotOp::Read { key };
            let read = self
                .snapshot_call(shard, crate::peer::message::SnapshotAt::Exactly(ts), op)
                .await?;
            entry.touch();
            state.seen_ts = state.seen_ts.max(read.version_ts);
            let value = read.rows.into_iter().next().map(|(_, value)| value);
            return Ok((value, state.seen_ts, ts));
        }
        if let Some(buffered) = state.buffered(shard, &key)
            && !canary::is(Canary::ReadSkipsOwnWrite)
        {
            return Ok((buffered.clone(), state.seen_ts, Timestamp::ZERO));
        }
        let read = self.lock(&entry, &mut state, shard, LockOp::Read { key, for_update }).await?;
        entry.touch();
        let value = read.rows.into_iter().next().map(|(_, value)| value);
        Ok((value, state.seen_ts, Timestamp::ZERO))
    }

    /// Checks one write's key and value against the limits; returns its bytes.
    pub(crate) fn check_write(
        &self,
        key: &[u8],
        value: &Option<Value>,
    ) -> Result<usize, StatementError> {
        self.check_key(key)?;
        if let Some(value) = value {
            self.check_value(value)?;
        }
        Ok(write_cost(key, value.as_ref()))
    }

    /// Checks that an active transaction may lock `bytes` more ([`TxnState::new_lock_cost`]).
    pub(crate) fn check_lock_budget(
        &self,
        state: &TxnState,
        bytes: usize,
    ) -> Result<(), StatementError> {
        let max = self.ctx.config.limits.txn_lock_bytes_max;
        if state.lock_bytes + bytes > max {
            return Err(StatementError::Invalid(format!(
                "the transaction would hold locks on more than {max} bytes (each key or range \
                 counts its keys plus {ENTRY_OVERHEAD_BYTES}; txn_lock_bytes_max)"
            )));
        }
        Ok(())
    }

    /// Checks that an active transaction may write, and may use `after` bytes of its write
    /// budget ([`TxnState::write_bytes_after`]).
    pub(crate) fn check_write_budget(
        &self,
        state: &TxnState,
        after: usize,
    ) -> Result<(), StatementError> {
        if state.read_only {
            return Err(StatementError::NotAllowed(
                "cannot write in a READ ONLY transaction".into(),
            ));
        }
        let max = self.ctx.config.limits.txn_write_bytes_max;
        if after > max {
            return Err(StatementError::Invalid(format!(
                "the transaction would write more than {max} bytes (each write counts its key \
                 and value plus {ENTRY_OVERHEAD_BYTES}; txn_write_bytes_max)"
            )));
        }
        Ok(())
    }

    /// WRITE or DELETE in a transaction. Returns the home shard.
    pub async fn write(
        &self,
        txn: TxnId,
        key: Key,
        value: Option<Value>,
    ) -> Result<ShardId, StatementError> {
        let bytes = self.check_write(&key, &value)?;
        let entry = self.entry(&txn)?;
        let mut state = self.state_of(&entry).await;
        entry.touch();
        Self::check_active(&state)?;
        let shard = self.ctx.topology.shard_of(&key);
        // The lock changes no buffered write (this statement holds the state throughout).
        let write_bytes = state.write_bytes_after([(shard, &key[..], bytes)]);
        self.check_write_budget(&state, write_bytes)?;
        let more = write_bytes.saturating_sub(state.write_bytes);
        self.check_node_budget(txn, &mut state, more)?;
        self.lock(&entry, &mut state, shard, LockOp::Write { key: key.clone() }).await?;
        entry.touch();
        state.write_bytes = write_bytes;
        let home = *state.home.get_or_insert(shard);
        state.parts.get_mut(&shard).expect("locked part").writes.insert(key, value);
        Ok(home)
    }

    /// SCAN `[from, to)` in a transaction: range locks shard by shard, merged with the
    /// transaction's own buffered writes. Answers as [`Coordinator::read`] does: the rows, the
    /// newest timestamp seen, the snapshot served at (zero for a locking scan).
    pub async fn scan(
        &self,
        txn: TxnId,
        from: Key,
        to: Option<Key>,
        limit: Option<usize>,
    ) -> Result<(Vec<(Key, Value)>, Timestamp, Timestamp), StatementError> {
        self.check_range(&from, to.as_deref())?;
        let limit = limit
            .unwrap_or(self.ctx.config.limits.scan_rows_max)
            .min(self.ctx.config.limits.scan_rows_max);
        let entry = self.entry(&txn)?;
        let mut state = self.state_of(&entry).await;
        entry.touch();
        Self::check_active(&state)?;
        let mut rows: Vec<(Key, Value)> = Vec::new();
        if limit == 0 {
            return Ok((rows, state.seen_ts, state.snapshot.unwrap_or(Timestamp::ZERO)));
        }
        if let Some(ts) = state.snapshot.map(|ts| self.statement_snapshot(ts)) {
            let (rows, seen) = self.snapshot_scan(ts, &from, to.as_deref(), limit).await?;
            entry.touch();
            state.seen_ts = state.seen_ts.max(seen);
            return Ok((rows, state.seen_ts, ts));
        }
        let topology = self.ctx.topology.clone();
        let parts = topology.split_range(&from, to.as_deref());
        // The budget for every range this SCAN may lock, checked before it locks any: refused,
        // it holds nothing more (each shard's check alone left the earlier shards' ranges
        // locked; found by a review, 2026-12-06).
        let new_bytes: usize = parts
            .iter()
            .map(|(shard, from, to)| {
                state.new_lock_cost(*shard, &LockSpan::Range { from: from.clone(), to: to.clone() })
            })
            .sum();
        self.check_lock_budget(&state, new_bytes)?;
        self.check_node_budget(txn, &mut state, new_bytes)?;
        'parts: for (shard, part_from, part_to) in parts {
            // Where this shard's next scan starts: past the last row of one that stopped at
            // the byte cap, or the part's start.
            let mut cursor = part_from;
            loop {
                let wanted = limit - rows.len();
                // Own writes in the range: deletes may hide stored rows, so ask for that many
                // more.
                let own: BTreeMap<Key, Option<Value>> = state
                    .parts
                    .get(&shard)
                    .map(|part| {
                        part.writes
                            .range(cursor.clone()..)
                            .take_while(|(k, _)| part_to.as_ref().is_none_or(|to| *k < to))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                let hidden = own.values().filter(|v| v.is_none()).count();
                let op = LockOp::Scan {
                    from: cursor.clone(),
                    to: part_to.clone(),
                    limit: wanted + hidden,
                };
                let read = self.lock(&entry, &mut state, shard, op).await?;
                // A shard's scan stops at the first row past the byte cap: over it, the answer
                // was cut short, and only the keys up to its last row are known. Own writes
                // past that row wait for the next scan, which starts just after it (under the
                // range lock this one took, whole: a cut scan is not narrowed). Before
                // 2026-12-07 a cut answer shrunk under the cap by own writes (a smaller value,
                // a delete) passed as whole, without the rows after the cut (a serializability
                // violation), and then one over the cap was refused even when own deletes hid
                // it and a LIMIT asked for a row past them (both found by reviews).
                let cut = (rows_bytes(&read.rows) > SCAN_BYTES_MAX)
                    .then(|| read.rows.last().map(|(key, _)| key.clone()))
                    .flatten();
                let mut merged: BTreeMap<Key, Value> = read.rows.into_iter().collect();
                for (key, value) in own {
                    if cut.as_ref().is_some_and(|last| key > *last) {
                        break;
                    }
                    match value {
                        Some(value) => merged.insert(key, value),
                        None => merged.remove(&key),
                    };
                }
                rows.extend(merged.into_iter().take(wanted));
                check_scan_bytes(&rows)?;
                if rows.len() >= limit {
                    break 'parts;
                }
                match cut {
                    Some(mut next) => {
                        next.push(0);
                        if part_to.as_ref().is_some_and(|to| next >= *to) {
                            break;
                        }
                        cursor = next;
                    }
                    None => break,
                }
            }
        }
        entry.touch();
        Ok((rows, state.seen_ts, Timestamp::ZERO))
    }

    /// ABORT: ends the transaction without effect. Idempotent. Refused (NotAllowed) when the
    /// transaction already committed, or its END left the outcome unknown: an OK would tell the
    /// client that nothing of it took effect (found by a review, 2026-12-06; until then it
    /// answered OK).
    pub async fn abort(&self, txn: TxnId) -> Result<(), StatementError> {
        let entry = self.entry(&txn)?;
        // A statement of it waiting for a lock holds its state (a shell's Ctrl-C aborts while
        // its statement waits): end its waits, so that it answers now and the abort runs,
        // instead of both waiting for the lock wait's timeout.
        if let Some(shards) = self.ctx.registry.waits_of(&txn) {
            self.release_at(txn, shards);
        }
        let mut state = self.state_of(&entry).await;
        entry.touch();
        match &state.status {
            Status::Active => {
                self.abort_active(
                    txn,
                    &mut state,
                    AbortReason::User,
                    "aborted by the client".into(),
                );
            }
            Status::Ended(Outcome::Committed { .. }) => {
                return Err(StatementError::NotAllowed(format!(
                    "{txn} already committed: ABORT cannot undo it"
                )));
            }
            Status::Ended(Outcome::Unknown(_)) => {
                return Err(StatementError::NotAllowed(format!(
                    "{txn} ended with its outcome unknown: ask TxnStatus"
                )));
            }
            Status::Aborted { .. } | Status::Ended(_) => {}
        }
        if let Status::Aborted { reason, detail } = &state.status {
            state.status =
                Status::Ended(Outcome::Aborted { reason: *reason, detail: detail.clone() });
        }
        Ok(())
    }

    /// Counts an END of `txn` as received ([`TxnEntry::ending`]), if this node knows `txn`.
    pub fn count_end(&self, txn: &TxnId) {
        if let Ok(entry) = self.entry(txn) {
            entry.ending.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Whether an END of `txn` was received and may still run ([`TxnEntry::ending`]).
    pub fn end_received(&self, txn: &TxnId) -> bool {
        self.entry(txn)
            .is_ok_and(|entry| entry.ending.load(std::sync::atomic::Ordering::SeqCst) > 0)
    }

    /// The client of `txn` went away (the session stream it was begun on closed,
    /// [`crate::api::session_txns`]): aborts it as ABORT would, ending a statement's lock
    /// waits first, with `UNAVAILABLE` (retryable: a client whose stream broke may well run it
    /// again, and its next statement hears why). A transaction that ended, or whose END was
    /// received, is left as it is: END runs to its end (its lock waits too), and this waits
    /// for it.
    pub async fn abandon(&self, txn: TxnId) {
        let Ok(entry) = self.entry(&txn) else { return };
        let ending = entry.ending.load(std::sync::atomic::Ordering::SeqCst) > 0;
        entry.abandoned.store(true, std::sync::atomic::Ordering::SeqCst);
        if !ending && let Some(shards) = self.ctx.registry.waits_of(&txn) {
            self.release_at(txn, shards);
        }
        let mut state = self.state_of(&entry).await;
        if state.status == Status::Active {
            tracing::info!(%txn, "aborting a transaction whose session stream closed");
            self.abort_active(txn, &mut state, AbortReason::Unavailable, ABANDONED.into());
        }
    }

    /// True while this node remembers `txn` (running, or ended recently).
    pub fn knows(&self, txn: &TxnId) -> bool {
        self.entry(txn).is_ok()
    }

    /// The outcome of one of this node's transactions, if it is remembered; an active one is
    /// aborted (its client asked for its fate, so it has given up on it).
    pub async fn local_outcome(&self, txn: TxnId) -> Option<(Outcome, Option<ShardId>)> {
        let entry = self.entry(&txn).ok()?;
        let mut state = self.state_of(&entry).await;
        if state.status == Status::Active {
            // Retryable: the client asks because it lost its answer (its END may never have
            // arrived), and the transaction committed nothing, so it may well run again. USER,
            // which it was until 2026-12-05, told the client library not to retry it.
            self.abort_active(
                txn,
                &mut state,
                AbortReason::CoordinatorLost,
                "its client asked for its status without ending it".into(),
            );
        }
        let outcome = match &state.status {
            Status::Ended(outcome) => outcome.clone(),
            Status::Aborted { reason, detail } => {
                Outcome::Aborted { reason: *reason, detail: detail.clone() }
            }
            Status::Active => return None,
        };
        Some((outcome, state.home))
    }

    // ---- one-statement operations -----------------------------------------------------------

    /// A one-statement operation on one shard, executed by its leader, run again as a new
    /// transaction when it was a deadlock victim ([`Coordinator::run_again`]). It holds no lock
    /// while it waits for its one, but the queue is FIFO: a transaction queued behind it waits
    /// for it, so it can close a cycle, and be the cycle's youngest (a review found both,
    /// 2026-12-05).
    async fn single(&self, shard: ShardId, op: SingleOp) -> Result<PeerReply, StatementError> {
        self.statement_runs(|| self.single_once(shard, op.clone())).await
    }

    /// Runs a one-statement operation (`run`), and again as [`Coordinator::one_statement`]
    /// says of a statement that aborted: no run starts once half of `lock_wait_ms` has passed.
    async fn statement_runs<T, Fut>(&self, run: impl FnMut() -> Fut) -> Result<T, StatementError>
    where
        Fut: std::future::Future<Output = Result<T, StatementError>>,
    {
        let again_until = Instant::now() + Timing::ms(self.timing().lock_wait_ms) / 2;
        self.one_statement(again_until, run, |result| match result {
            Err(StatementError::Aborted { reason, .. }) => Some(*reason),
            _ => None,
        })
        .await
    }

    /// One run of [`Coordinator::single`]. The operation is a transaction of this node's, live
    /// while the call runs (lock holders' coordinators are asked whether they still run), with
    /// one id for every delivery, and marked waiting at its shard meanwhile: a deadlock probe
    /// that reaches it here goes on to its shard (unmarked, it answered "not waiting", and a
    /// cycle through it lasted until the lock timeout).
    async fn single_once(&self, shard: ShardId, op: SingleOp) -> Result<PeerReply, StatementError> {
        let deadline = self.lock_deadline();
        let txn = self.ctx.mint_txn();
        let request = PeerRequest::Single { shard, txn, op };
        // In a task of its own, so that the operation stays registered exactly while its call
        // runs, even if the caller gives up: a unary call's handler is dropped when its client
        // cancels, and the id would then stay registered as running for good, counted against
        // `open_txns_max` (a review found it, 2026-12-05; e2e `bad_input.rs`).
        let ctx = self.ctx.clone();
        let call = tokio::spawn(async move {
            ctx.registry.set_waiting(txn, shard, true);
            let reply = ctx.peers.call_shard(shard, request, deadline).await;
            ctx.registry.end(txn);
            reply
        });
        let reply = match call.await {
            Ok(reply) => reply,
            Err(error) => {
                return Err(StatementError::Unavailable(format!("the call failed: {error}")));
            }
        };
        match reply {
            Ok((_, PeerReply::Aborted { reason, detail })) => Err(abort_error(reason, detail)),
            Ok((_, PeerReply::Invalid(why))) => Err(StatementError::Invalid(why)),
            // Unavailable: for a write, its outcome is unknown.
            Ok((_, PeerReply::Unavailable(why)) | (_, PeerReply::TooOld(why))) => {
                Err(StatementError::Unavailable(why))
            }
            Ok((_, reply)) => Ok(reply),
            Err(error) => Err(StatementError::Unavailable(error.to_string())),
        }
    }

    /// READ outside a transaction: linearizable, through the shard leader.
    pub async fn single_read(
        &self,
        key: Key,
    ) -> Result<(Option<Value>, Timestamp), StatementError> {
        self.check_key(&key)?;
        let shard = self.ctx.topology.shard_of(&key);
        match self.single(shard, SingleOp::Read { key }).await? {
            PeerReply::Read(read) => {
                Ok((read.rows.into_iter().next().map(|(_, v)| v), read.version_ts))
            }
            other => Err(StatementError::Unavailable(format!("unexpected reply {other:?}"))),
        }
    }

    /// WRITE or DELETE outside a transaction: committed before it returns (its commit
    /// timestamp), or an error with nothing written; `Unavailable` means unknown.
    pub async fn single_write(
        &self,
        key: Key,
        value: Option<Value>,
    ) -> Result<Timestamp, StatementError> {
        self.check_key(&key)?;
        if let Some(value) = &value {
            self.check_value(value)?;
        }
        let shard = self.ctx.topology.shard_of(&key);
        match self.single(shard, SingleOp::Write { key, value }).await? {
            PeerReply::Committed { commit_ts } => Ok(commit_ts),
            other => Err(StatementError::Unavailable(format!("unexpected reply {other:?}"))),
        }
    }

    /// SCAN outside a transaction: one shard directly; several as a read-only transaction, so
    /// the rows come from one consistent state. That transaction runs again when it is a
    /// deadlock victim (`Coordinator::run_again`), while less than half of `lock_wait_ms` has
    /// passed. (Each shard's lock wait has `lock_wait_ms` of its own, so a run over several
    /// contended shards can outlast the client's deadline, with or without reruns; the client
    /// then hears "unavailable", nothing applied.)
    pub async fn single_scan(
        &self,
        from: Key,
        to: Option<Key>,
        limit: Option<usize>,
    ) -> Result<(Vec<(Key, Value)>, Timestamp), StatementError> {
        self.check_range(&from, to.as_deref())?;
        let max = self.ctx.config.limits.scan_rows_max;
        let limit = limit.unwrap_or(max).min(max);
        let parts = self.ctx.topology.split_range(&from, to.as_deref());
        if limit == 0 || parts.is_empty() {
            return Ok((Vec::new(), Timestamp::ZERO));
        }
        if parts.len() == 1 {
            let (shard, from, to) = parts.into_iter().next().expect("one part");
            return match self.single(shard, SingleOp::Scan { from, to, limit }).await? {
                PeerReply::Read(read) => {
                    check_scan_bytes(&read.rows)?;
                    Ok((read.rows, read.version_ts))
                }
                other => Err(StatementError::Unavailable(format!("unexpected reply {other:?}"))),
            };
        }
        self.statement_runs(|| self.scan_once(&from, to.as_ref(), limit)).await
    }

    /// One run of a SCAN over several shards, as a read-only transaction of its own.
    async fn scan_once(
        &self,
        from: &Key,
        to: Option<&Key>,
        limit: usize,
    ) -> Result<(Vec<(Key, Value)>, Timestamp), StatementError> {
        let txn = self.begin(true)?;
        let scanned = self.scan(txn, from.clone(), to.cloned(), Some(limit)).await;
        let outcome = self.commit(txn).await;
        // Nobody holds its id: nothing will ask about it again.
        self.forget(txn);
        match (scanned, outcome) {
            (Ok((rows, seen, _)), Outcome::Committed { .. }) => Ok((rows, seen)),
            (Err(error), _) => Err(error),
            (Ok(_), Outcome::Aborted { reason, detail }) => Err(abort_error(reason, detail)),
            (Ok(_), Outcome::Unknown(why)) => Err(StatementError::Unavailable(why)),
        }
    }

    /// Whether a one-statement transaction (a statement outside BEGIN that spans shards, or a
    /// Commit without a handle) that aborted for `reason` after `runs` runs runs again, as a
    /// new transaction. Only a deadlock victim does, as CockroachDB retries implicit
    /// transactions: nothing of it applied, nobody holds its id to run it again, and the client
    /// asked for one statement, which no deadlock of its own can explain. Its new run is
    /// younger than the winner of the cycle, and queues behind the locks the winner now gets.
    /// A lock timeout does not run again: waiting as long once more would hide a lock held
    /// too long. At most [`ONE_STATEMENT_RUNS_MAX`] runs, and none starts after `until`.
    fn run_again(&self, reason: AbortReason, runs: usize, until: Instant) -> bool {
        let again = reason == AbortReason::Deadlock
            && runs < ONE_STATEMENT_RUNS_MAX
            && Instant::now() < until;
        if again {
            Counters::bump(&self.ctx.counters.runs_again);
        }
        again
    }

    /// Runs a one-statement transaction (`run`), and runs it anew while
    /// [`Coordinator::run_again`] says so of the abort reason that `aborted` finds in its
    /// result; `until` as there.
    pub(crate) async fn one_statement<T, Fut>(
        &self,
        until: Instant,
        mut run: impl FnMut() -> Fut,
        aborted: impl Fn(&T) -> Option<AbortReason>,
    ) -> T
    where
        Fut: std::future::Future<Output = T>,
    {
        let mut runs = 1;
        loop {
            let result = run().await;
            match aborted(&result) {
                Some(reason) if self.run_again(reason, runs, until) => runs += 1,
                _ => return result,
            }
        }
    }

    // ---- deadlock probes and liveness --------------------------------------------------------

    /// A probe whose last holder this node coordinates: forward it to where that holder waits.
    pub fn handle_probe(&self, probe: Probe) -> PeerReply {
        let holder = probe.last_holder();
        if !self.ctx.is_mine(&holder) {
            return PeerReply::Probe(ProbeOutcome::Unknown);
        }
        let Some(shards) = self.ctx.registry.waits_of(&holder) else {
            return PeerReply::Probe(ProbeOutcome::Unknown);
        };
        if shards.is_empty() {
            return PeerReply::Probe(ProbeOutcome::NotWaiting);
        }
        if !self.first_forward(holder, probe.initiator()) {
            return PeerReply::Probe(ProbeOutcome::Forwarded);
        }
        for shard in shards {
            Counters::bump(&self.ctx.counters.probes_sent);
            let ctx = self.ctx.clone();
            let probe = probe.clone();
            let deadline = self.rpc_deadline();
            tokio::spawn(async move {
                let _ = ctx
                    .peers
                    .call_shard(shard, PeerRequest::ProbeShard { shard, probe }, deadline)
                    .await;
            });
        }
        PeerReply::Probe(ProbeOutcome::Forwarded)
    }

    /// True the first time in a probe round that a probe of `initiator` reaches `holder` here
    /// (`txn::deadlock::ProbeRounds`): forwarding them all made the probes grow with the
    /// number of paths through a dense wait-for graph: 8 hot accounts under 16 clients
    /// (`kvbench --workload bank`) sent over 1,500 probe messages a second per node for about
    /// 10 commits. A round is half the probe interval ([`Timing::probe_round`]), well below the
    /// period at which waiters send fresh probes.
    fn first_forward(&self, holder: TxnId, initiator: TxnId) -> bool {
        let now = Instant::now();
        let round_end = now + self.timing().probe_round();
        self.probes_forwarded.lock().expect("probes lock").first(holder, initiator, now, round_end)
    }

    /// Aborts transactions idle too long and forgets ended ones after a while.
    pub async fn sweep_loop(self: Arc<Coordinator>) {
        loop {
            tokio::time::sleep(SWEEP_PERIOD).await;
            self.sweep().await;
        }
    }

    async fn sweep(&self) {
        let idle = Timing::ms(self.timing().idle_ms);
        let now = Instant::now();
        let entries: Vec<Arc<TxnEntry>> =
            self.txns.lock().expect("txns lock").values().cloned().collect();
        let mut forget = Vec::new();
        let mut ended = Vec::new();
        // The node's count, recounted from the charges of the entries it remembers: a
        // transaction forgotten while a statement still held its state charges once more when
        // the statement lets it go (a bound on memory, not an exact quota). Under the count's
        // lock (then the entries'), so that no charge changes meanwhile.
        {
            let mut count = self.buffered.lock().expect("buffered lock");
            let txns = self.txns.lock().expect("txns lock");
            *count = txns.values().map(|entry| entry.charged.load(Ordering::SeqCst)).sum();
        }
        for entry in entries {
            // A statement in progress is not idleness: skip transactions whose lock is held.
            let Ok(state) = entry.state.try_lock() else { continue };
            let mut state = StateGuard { state, entry: &entry, buffered: &self.buffered };
            // Read under the lock: a statement that ended just before it was taken has touched
            // the entry (read before, it looked idle and was aborted although it had just run).
            let quiet = now.duration_since(*entry.last_active.lock().expect("activity lock"));
            match &state.status {
                Status::Active if quiet >= idle => {
                    let detail = format!("idle for more than {} ms", self.timing().idle_ms);
                    tracing::info!(txn = %entry.id, "aborting an idle transaction");
                    self.abort_active(entry.id, &mut state, AbortReason::IdleTimeout, detail);
                }
                // One that may not commit any more lets its locks go now, not at its END (only
                // one that wrote: a read-write transaction that only read commits nothing).
                Status::Active
                    if state.home.is_some()
                        && let Some(detail) = self.too_old(entry.id) =>
                {
                    tracing::info!(txn = %entry.id, "aborting a transaction too old to commit");
                    self.abort_active(entry.id, &mut state, AbortReason::TooOld, detail);
                }
                Status::Ended(_) | Status::Aborted { .. } if quiet >= ENDED_MEMORY => {
                    forget.push(entry.id.seq)
                }
                // Aborted and not yet ended by its client counts too: otherwise a client that
                // begins and abandons transactions without end kept them all for two minutes,
                // past the cap (found by a review, 2026-12-06).
                Status::Ended(_) | Status::Aborted { .. } => ended.push(entry.id.seq),
                _ => {}
            }
        }
        let mut txns = self.txns.lock().expect("txns lock");
        for seq in forget {
            txns.remove(&seq);
        }
        // Oldest first (`entries` came in sequence order).
        let excess = txns.len().saturating_sub(ENDED_REMEMBERED_MAX);
        for seq in ended.into_iter().take(excess) {
            txns.remove(&seq);
        }
    }

    /// How many transactions this node remembers (running or recently ended).
    pub fn remembered(&self) -> usize {
        self.txns.lock().expect("txns lock").len()
    }
}
