//! END: the commit protocol, run by the coordinator.
//!
//! ```text
//!   no writes            read-only prepare at every participant (confirm leadership, release)
//!                        -> COMMITTED
//!   writes at home only  read-only prepares at the other participants, then
//!                        CommitOnePhase at home (one Raft entry: record + versions)
//!   writes at several    Prepare at every participant but home, in parallel (read-only ones
//!                        just confirm and release); all YES ->
//!                        CommitAtHome{after = max(prepare_ts)} at home: ONE Raft entry writes
//!                        the record COMMITTED and home's versions at a timestamp >= after
//!                        -> answer the client -> Finalize at the others -> Finish at home
//!                        any NO -> ABORTED -> Finalize(abort) at every participant
//! ```
//!
//! Writes sent with END have no locks yet: the prepares (and the commit at home) take them
//! first. Until the last of them is taken no participant releases a shared lock (two-phase
//! locking): votes keep them (`release_shared` false) and `release_kept` frees them after the
//! commit. Keeping is not protecting, though: the lock of a key read and not written (shared,
//! or for update) lives only in its leader's memory, so a vote's check must come after the
//! last lock is taken. When a participant other than home has such reads to check and
//! another has locks to take ([`TxnState::acquire_first`]), END
//! first takes every pending lock (`Acquire`, in parallel), then runs the protocol above.
//!
//! Committing at home in the entry that records the decision saves home's Prepare and Commit
//! entries (four Raft entries for a two-shard transaction instead of six), at no cost in round
//! trips: the decision waits for the votes either way.
//!
//! The client hears COMMITTED only once the decision is durable in the record (Raft-replicated
//! at home), so a coordinator that dies after answering cannot lose the commit: participants
//! learn it from the record. A coordinator that dies before deciding leaves the transaction to
//! the participants' resolvers, which decide ABORTED by compare-and-set on the record; whoever
//! writes the record first wins (a CommitAtHome after an ABORTED record is refused), and
//! everybody obeys the record.
//!
//! When the decision itself cannot be learned in time (the home shard unreachable), END
//! answers that the outcome is unknown, never a guess; `TxnStatus` settles it.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use futures::StreamExt;
use futures::future::join_all;
use futures::stream::FuturesUnordered;
use replication::canary;
use replication::canary::Canary;
use tokio::time::Instant;
use txn::command::AbortReason;
use txn::command::Decision;
use txn::lock::LockSpan;
use txn::types::Key;
use txn::types::ShardId;
use txn::types::Timestamp;
use txn::types::TxnId;
use txn::types::Value;

use crate::config::Timing;
use crate::context::Counters;
use crate::coordinator::coordinator::ABANDONED;
use crate::coordinator::coordinator::Coordinator;
use crate::coordinator::coordinator::StatementError;
use crate::coordinator::txn_state::Outcome;
use crate::coordinator::txn_state::Status;
use crate::coordinator::txn_state::TxnState;
use crate::peer::caller::CallError;
use crate::peer::message::PeerReply;
use crate::peer::message::PeerRequest;
use crate::peer::message::PrepareRequest;

/// Why [`Coordinator::decide`] brought no decision back.
pub(crate) enum Undecided {
    /// The home shard could not be reached or answered otherwise in time.
    Unknown(String),
    /// A one-phase transaction whose record may have been collected (`TooOld`).
    Forgotten(String),
}

/// Attempts at phase 2 per participant before leaving it to that participant's resolver.
pub const PHASE2_ATTEMPTS_MAX: usize = 10;

/// A transaction may commit until it is `retention_ms / TXN_AGE_MAX_DIVISOR` old
/// (`Coordinator::too_old`): the other half of the window is the margin for its commit.
pub const TXN_AGE_MAX_DIVISOR: u64 = 2;

/// A participant's vote.
enum Vote {
    Yes(Option<Timestamp>),
    No(AbortReason, String),
}

impl Coordinator {
    /// END: commits the transaction (or reports why it aborted). Idempotent.
    pub async fn commit(&self, txn: TxnId) -> Outcome {
        match self.commit_with(txn, Vec::new()).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::Unknown(error.to_string()),
        }
    }

    /// END with the transaction's last writes (`None` deletes): they are buffered as WRITEs
    /// would be, their locks left to the prepares, then the transaction commits. Bad writes
    /// are refused before anything happens (the transaction stays open). A transaction that
    /// already ended answers its outcome and ignores `writes` (a retried END).
    pub async fn commit_with(
        &self,
        txn: TxnId,
        writes: Vec<(Key, Option<Value>)>,
    ) -> Result<Outcome, StatementError> {
        let entry = self.entry(&txn)?;
        let mut state = self.state_of(&entry).await;
        if state.status == Status::Active && !writes.is_empty() {
            let mut costs = Vec::with_capacity(writes.len());
            for (key, value) in &writes {
                let cost = self.check_write(key, value)?;
                costs.push((self.ctx.topology.shard_of(key), &key[..], cost));
            }
            let write_bytes = state.write_bytes_after(costs);
            self.check_write_budget(&state, write_bytes)?;
            // The locks its prepares will take: keys neither locked nor staged yet, once each.
            let mut staged = BTreeSet::new();
            let mut lock_bytes = 0;
            for (key, _) in &writes {
                let shard = self.ctx.topology.shard_of(key);
                let span = LockSpan::Key(key.clone());
                if !staged.contains(&span) {
                    lock_bytes += state.new_lock_cost(shard, &span);
                    staged.insert(span);
                }
            }
            self.check_lock_budget(&state, lock_bytes)?;
            let more = write_bytes.saturating_sub(state.write_bytes) + lock_bytes;
            // Refused, the transaction is aborted, and END answers so (below).
            if self.check_node_budget(txn, &mut state, more).is_ok() {
                state.write_bytes = write_bytes;
                state.lock_bytes += lock_bytes;
                for (key, value) in writes {
                    let shard = self.ctx.topology.shard_of(&key);
                    state.home.get_or_insert(shard);
                    state.parts.entry(shard).or_default().stage(key, value);
                }
            }
        }
        let was_active = state.status == Status::Active;
        let outcome = self.end(txn, &mut state).await;
        // Remembered for ENDED_MEMORY from its END, not from its last statement.
        entry.touch();
        if !was_active && let Outcome::Unknown(_) = outcome {
            // A retried END of a transaction whose first END could not learn the outcome:
            // the record knows it by now, or decides it (as TxnStatus does).
            drop(state);
            return Ok(self.txn_status(txn, None).await.unwrap_or(outcome));
        }
        // Its prepares' lock waits ended by `abandon` (the stream it was begun on closed while
        // this END, sent on another, waited): the abort is the stream's, not the client's
        // ABORT, so retryable, as for a statement (found by a review, 2026-12-06). Only for
        // the END that ran the commit: a retried END answers what was recorded.
        if let Outcome::Aborted { reason: AbortReason::User, .. } = outcome
            && was_active
            && entry.abandoned.load(std::sync::atomic::Ordering::SeqCst)
        {
            let outcome =
                Outcome::Aborted { reason: AbortReason::Unavailable, detail: ABANDONED.into() };
            state.status = Status::Ended(outcome.clone());
            return Ok(outcome);
        }
        Ok(outcome)
    }

    /// A transaction of its own made of `writes` alone (a Commit without a handle): begun,
    /// committed and forgotten in one call, so one client round trip instead of two (BEGIN,
    /// END). Bad writes are refused with nothing changed. Nobody holds its id, so a lost
    /// answer leaves its outcome unknown to the client, as a one-statement WRITE's. A deadlock
    /// victim runs again (as a new transaction) within the first run's lock budget
    /// (`Coordinator::run_again`).
    pub async fn commit_writes(
        &self,
        writes: Vec<(Key, Option<Value>)>,
    ) -> Result<Outcome, StatementError> {
        if writes.is_empty() {
            return Err(StatementError::Invalid(
                "a commit without a transaction handle needs at least one write".into(),
            ));
        }
        // Every run's locks wait within the first run's budget, as one END's would.
        let locks_until = Instant::now() + Timing::ms(self.timing().lock_wait_ms);
        let run = || self.commit_writes_once(writes.clone(), locks_until);
        self.one_statement(locks_until, run, |outcome| match outcome {
            Ok(Outcome::Aborted { reason, .. }) => Some(*reason),
            _ => None,
        })
        .await
    }

    /// One run of [`Coordinator::commit_writes`], as a transaction of its own.
    async fn commit_writes_once(
        &self,
        writes: Vec<(Key, Option<Value>)>,
        locks_until: Instant,
    ) -> Result<Outcome, StatementError> {
        let txn = match self.begin(false) {
            Ok(txn) => txn,
            // Nothing happened: a definite, retryable answer (not an unknown outcome).
            Err(StatementError::Unavailable(why)) => {
                return Ok(Outcome::Aborted { reason: AbortReason::Unavailable, detail: why });
            }
            Err(error) => return Err(error),
        };
        if let Ok(entry) = self.entry(&txn) {
            entry.state.lock().await.locks_until = Some(locks_until);
        }
        let outcome = self.commit_with(txn, writes).await;
        if outcome.is_err() {
            let _ = self.abort(txn).await;
        }
        self.forget(txn);
        outcome
    }

    async fn end(&self, txn: TxnId, state: &mut TxnState) -> Outcome {
        match &state.status {
            Status::Ended(outcome) => return outcome.clone(),
            Status::Aborted { reason, detail } => {
                let outcome = Outcome::Aborted { reason: *reason, detail: detail.clone() };
                state.status = Status::Ended(outcome.clone());
                return outcome;
            }
            Status::Active => {}
        }
        let outcome = self.run_commit(txn, state).await;
        match &outcome {
            Outcome::Committed { .. } => Counters::bump(&self.ctx.counters.committed),
            Outcome::Aborted { .. } => Counters::bump(&self.ctx.counters.aborted),
            Outcome::Unknown(_) => {}
        }
        state.status = Status::Ended(outcome.clone());
        state.drop_writes();
        self.ctx.registry.end(txn);
        outcome
    }

    async fn run_commit(&self, txn: TxnId, state: &mut TxnState) -> Outcome {
        let writers = state.participants(true);
        let readers = state.participants(false);
        // Every lock END takes (writes sent with it) waits within one budget, so that the
        // prepares' waits and then home's cannot add up past the client's request deadline.
        let locks_until = state
            .locks_until
            .unwrap_or_else(|| Instant::now() + Timing::ms(self.timing().lock_wait_ms));
        // Before anything is proposed, so that ABORTED is exact: nothing can have committed.
        // Checked again before the commit itself is proposed, and END's lock waits end when
        // the transaction becomes too old, so that only the commit's own round is left for
        // the other half of the window.
        let locks_until = if writers.is_empty() {
            locks_until
        } else if let Some(detail) = self.too_old(txn) {
            return self.abort_after_votes(txn, state, &[], AbortReason::TooOld, detail);
        } else {
            let too_old_at = self.too_old_at(txn);
            state.waits_end_too_old = too_old_at < locks_until;
            locks_until.min(too_old_at)
        };
        if state.acquire_first()
            && !canary::is(Canary::ReleaseSharedBeforeEndLocks)
            && let Err((reason, detail)) = self.acquire_all(txn, state, locks_until).await
        {
            return self.abort_after_votes(txn, state, &[], reason, detail);
        }
        if writers.is_empty() {
            return match self.prepare_all(txn, state, &readers, locks_until).await {
                Ok(_) => Outcome::Committed { commit_ts: Timestamp::ZERO },
                Err((reason, detail)) => self.abort_after_votes(txn, state, &[], reason, detail),
            };
        }
        let home = state.home.expect("a transaction that wrote has a home");
        assert!(writers.contains(&home), "the home shard {home} is one of the writers {writers:?}");
        if writers.len() == 1 {
            if let Err((reason, detail)) = self.prepare_all(txn, state, &readers, locks_until).await
            {
                return self.abort_after_votes(txn, state, &[], reason, detail);
            }
            if let Some(detail) = self.too_old(txn) {
                return self.abort_after_votes(txn, state, &[], AbortReason::TooOld, detail);
            }
            let outcome = self.commit_at_home(txn, state, home, None, locks_until).await;
            self.release_kept(txn, state, &outcome, &readers);
            return outcome;
        }
        // Every participant but home votes; then home commits with the decision in one entry.
        let others: Vec<ShardId> = state.parts.keys().copied().filter(|s| *s != home).collect();
        let other_writers: Vec<ShardId> = writers.into_iter().filter(|s| *s != home).collect();
        let prepare_ts = match self.prepare_all(txn, state, &others, locks_until).await {
            Ok(votes) => votes,
            Err((reason, detail)) => {
                return self.abort_after_votes(txn, state, &other_writers, reason, detail);
            }
        };
        let after = prepare_ts
            .values()
            .copied()
            .flatten()
            .max()
            .expect("the other write participants vote a timestamp");
        crate::failpoint::pause("before-decide").await;
        if let Some(detail) = self.too_old(txn) {
            let reason = AbortReason::TooOld;
            return self.abort_after_votes(txn, state, &other_writers, reason, detail);
        }
        let outcome = self.commit_at_home(txn, state, home, Some(after), locks_until).await;
        if let Outcome::Committed { commit_ts } = outcome {
            crate::failpoint::pause("after-decide").await;
            self.spawn_phase2(txn, home, other_writers, Decision::Committed { commit_ts });
        }
        self.release_kept(txn, state, &outcome, &readers);
        outcome
    }

    /// After a commit whose prepares took locks, releases the shared locks the read-only
    /// participants kept through their votes (`PrepareRequest::release_shared`). The write
    /// participants release theirs in phase 2; an abort released everything already.
    fn release_kept(&self, txn: TxnId, state: &TxnState, outcome: &Outcome, readers: &[ShardId]) {
        if !state.locks_pending() || !matches!(outcome, Outcome::Committed { .. }) {
            return;
        }
        self.release_at(txn, readers.iter().copied());
    }

    /// Takes every pending lock (writes sent with END) before any participant votes
    /// ([`TxnState::acquire_first`]), at all those participants in parallel, and records the
    /// grants: the prepares that follow take none, and check every lock after the last was
    /// taken. Any refusal or silence: why (nothing is prepared anywhere yet).
    async fn acquire_all(
        &self,
        txn: TxnId,
        state: &mut TxnState,
        locks_until: Instant,
    ) -> Result<(), (AbortReason, String)> {
        let home = state.home.unwrap_or(ShardId(0));
        let requests: Vec<(ShardId, PeerRequest)> = state
            .parts
            .iter()
            .filter(|(_, part)| !part.acquire.is_empty())
            .map(|(shard, _)| {
                let request = Self::prepare_request(txn, home, *shard, state, locks_until);
                (*shard, PeerRequest::Acquire(request))
            })
            .collect();
        let calls = requests.into_iter().map(|(shard, request)| async move {
            (shard, self.call_prepare(txn, shard, true, request, locks_until).await)
        });
        // As for votes (`prepare_all`): the first refusal ends the wait for the others.
        let mut calls: FuturesUnordered<_> = calls.collect();
        let mut refusal = None;
        while refusal.is_none()
            && let Some((shard, reply)) = calls.next().await
        {
            let why = match reply {
                Ok((_, PeerReply::Locked { term, .. })) => {
                    if state.granted_staged(shard, term) {
                        continue;
                    }
                    (
                        AbortReason::LeaderChanged,
                        format!("the leader of {shard} changed during the transaction"),
                    )
                }
                other => refusal_of(shard, "take the locks", other),
            };
            refusal.get_or_insert(why);
        }
        refusal.map_or(Ok(()), Err)
    }

    /// Sends Prepare (with each part's writes; none for read-only parts) to `shards` in
    /// parallel, their lock waits bounded by `locks_until`. All YES: the vote timestamps. Any
    /// NO or silence: why.
    async fn prepare_all(
        &self,
        txn: TxnId,
        state: &TxnState,
        shards: &[ShardId],
        locks_until: Instant,
    ) -> Result<BTreeMap<ShardId, Option<Timestamp>>, (AbortReason, String)> {
        let home = state.home.unwrap_or(ShardId(0));
        let calls = shards.iter().map(|shard| {
            let request = Self::prepare_request(txn, home, *shard, state, locks_until);
            let takes_locks = !request.acquire.is_empty();
            async move {
                let request = PeerRequest::Prepare(request);
                let reply = self.call_prepare(txn, *shard, takes_locks, request, locks_until);
                let reply = reply.await;
                let vote = match reply {
                    Ok((_, PeerReply::Voted { prepare_ts })) => Vote::Yes(prepare_ts),
                    other => {
                        let (reason, detail) = refusal_of(*shard, "prepare", other);
                        Vote::No(reason, detail)
                    }
                };
                (*shard, vote)
            }
        });
        // The first NO ends the wait for the other votes: the caller aborts at once, and its
        // abort reaches the prepares still waiting for locks (they are refused from then on).
        // Waiting for them kept a deadlock victim's locks elsewhere until its other waits
        // ended, up to `lock_wait_ms` (found by a review, 2026-12-05).
        let mut calls: FuturesUnordered<_> = calls.collect();
        let mut votes = BTreeMap::new();
        while let Some((shard, vote)) = calls.next().await {
            match vote {
                Vote::Yes(ts) => {
                    votes.insert(shard, ts);
                }
                Vote::No(reason, detail) => return Err((reason, detail)),
            }
        }
        Ok(votes)
    }

    /// The prepare (or commit at home) of the transaction's part at `shard`; its locks may
    /// wait until `locks_until`.
    fn prepare_request(
        txn: TxnId,
        home: ShardId,
        shard: ShardId,
        state: &TxnState,
        locks_until: Instant,
    ) -> PrepareRequest {
        let part = &state.parts[&shard];
        let wait = locks_until.saturating_duration_since(Instant::now());
        PrepareRequest {
            shard,
            txn,
            home,
            lock_term: part.term,
            acquire: part.acquire.iter().cloned().collect(),
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            writes: part.write_list(),
            locks: part.locks.iter().map(|(span, mode)| (span.clone(), *mode)).collect(),
            release_shared: !state.locks_pending()
                || canary::is(Canary::ReleaseSharedBeforeEndLocks),
        }
    }

    /// Sends a prepare (or a commit at home). One that takes locks may wait for them until
    /// `locks_until`: its deadline allows for the wait, and deadlock probes reaching this
    /// coordinator meanwhile are forwarded to its shard.
    async fn call_prepare(
        &self,
        txn: TxnId,
        shard: ShardId,
        takes_locks: bool,
        request: PeerRequest,
        locks_until: Instant,
    ) -> Result<(txn::types::NodeId, PeerReply), CallError> {
        if !takes_locks {
            return self.ctx.peers.call_shard(shard, request, self.rpc_deadline()).await;
        }
        let deadline = locks_until.saturating_duration_since(Instant::now()) + self.rpc_deadline();
        self.ctx.registry.set_waiting(txn, shard, true);
        let reply = self.ctx.peers.call_shard(shard, request, deadline).await;
        self.ctx.registry.set_waiting(txn, shard, false);
        reply
    }

    /// Aborts after a NO (or missing) vote: releases the locks of every participant; the
    /// `maybe_prepared` ones get a replicated Abort, since they may have prepared.
    fn abort_after_votes(
        &self,
        txn: TxnId,
        state: &TxnState,
        maybe_prepared: &[ShardId],
        reason: AbortReason,
        detail: String,
    ) -> Outcome {
        // END's lock waits end when the transaction becomes too old to commit (`too_old_at`):
        // a wait cut there says TOO_OLD, the reason it ended, not LOCK_TIMEOUT (left alone in
        // stop 43).
        let (reason, detail) = match reason {
            AbortReason::LockTimeout if state.waits_end_too_old => {
                let (age_ms, max_ms) = self.age_ms(txn);
                let why = format!(
                    "{detail}, until it began {age_ms} ms ago, as much as half of retention_ms \
                     allows ({max_ms} ms): its record could be collected before it commits"
                );
                (AbortReason::TooOld, why)
            }
            _ => (reason, detail),
        };
        let decision = Decision::Aborted { reason };
        for shard in state.parts.keys().copied() {
            let prepared = maybe_prepared.contains(&shard);
            let ctx = self.ctx.clone();
            let deadline = self.rpc_deadline();
            tokio::spawn(async move {
                let request = PeerRequest::Finalize { shard, txn, decision, prepared };
                let _ = ctx.peers.call_shard(shard, request, deadline).await;
            });
        }
        Outcome::Aborted { reason, detail }
    }

    /// The commit at the home shard: the whole commit when home is the only writer (`after`
    /// None), else the decision with home's writes once the others voted YES at or below
    /// `after`. A NO aborts the transaction everywhere (the others' prepares included).
    async fn commit_at_home(
        &self,
        txn: TxnId,
        state: &TxnState,
        home: ShardId,
        after: Option<Timestamp>,
        locks_until: Instant,
    ) -> Outcome {
        let request = Self::prepare_request(txn, home, home, state, locks_until);
        let takes_locks = !request.acquire.is_empty();
        let request = match after {
            None => PeerRequest::CommitOnePhase(request),
            Some(after) => PeerRequest::CommitAtHome { request, after },
        };
        let reply = self.call_prepare(txn, home, takes_locks, request, locks_until).await;
        // Only COMMITTED is trusted as it stands. A NO may answer a retry: the first attempt
        // timed out at a leader that was then deposed, its entry committed all the same, and
        // the retry at the new leader found the locks gone. So a NO, like silence, is settled
        // by the record: a compare-and-set to ABORTED at home, ordered after any commit entry
        // that can still commit, answers exactly.
        let (reason, detail) = match reply {
            Ok((_, PeerReply::Committed { commit_ts })) => return Outcome::Committed { commit_ts },
            // A one-phase retry after its record may have been collected: an ABORTED decision
            // could contradict an earlier attempt that committed (docs/transactions.md).
            Ok((_, PeerReply::TooOld(why))) => return self.forgotten(txn, state, why),
            Ok((_, PeerReply::Aborted { reason, detail })) => (reason, detail),
            Ok((_, other)) => (AbortReason::Unavailable, format!("{home} answered {other:?}")),
            Err(error) => (AbortReason::Unavailable, error.to_string()),
        };
        // Settled by the one-phase rule in both cases: with no record at or below the collected
        // watermark, the answer is "forgotten", never ABORTED. A commit at home's record is
        // kept while unfinished, but home finishes a COMMITTED one by itself once it is older
        // than the retention window (`Shard::finish_orphans`), and collection may then take
        // it while this coordinator, its answer lost, still settles (found by a review,
        // 2026-12-06): an ABORTED written then would contradict a commit every shard applied.
        match self.decide(txn, home, Decision::Aborted { reason }, true).await {
            Ok(Decision::Committed { commit_ts }) => {
                tracing::debug!(%txn, %detail, "a commit at home answered NO had committed");
                // Home's leader may not have heard its commit apply (its answer was lost or
                // unknown): it then keeps the transaction in doubt, with its write locks, until
                // its resolver asks the record, a second or more. Phase 2 at home (a commit
                // that applies as a no-op there) ends that now (a review found it,
                // 2026-12-06).
                let (ctx, deadline) = (self.ctx.clone(), self.rpc_deadline());
                let decision = Decision::Committed { commit_ts };
                tokio::spawn(async move {
                    let request =
                        PeerRequest::Finalize { shard: home, txn, decision, prepared: true };
                    let _ = ctx.peers.call_shard(home, request, deadline).await;
                });
                Outcome::Committed { commit_ts }
            }
            Ok(Decision::Aborted { reason }) => {
                // Every writer may have prepared (home only in its leader's memory).
                let writers = state.participants(true);
                self.abort_after_votes(txn, state, &writers, reason, detail)
            }
            Err(Undecided::Forgotten(why)) => self.forgotten(txn, state, why),
            Err(Undecided::Unknown(why)) => Outcome::Unknown(why),
        }
    }

    /// Why the transaction `txn` may not commit any more, if so: it began more than half the
    /// retention window ago (`retention_ms / TXN_AGE_MAX_DIVISOR`). A commit's record is
    /// collected once older than the window; one begun near that age could have its record
    /// collected while it commits, and a retry of it would then answer "outcome unknown"
    /// although the transaction had never committed (found by a review, 2026-12-06). Aborted
    /// before anything is proposed, the answer is exact.
    pub(crate) fn too_old(&self, txn: TxnId) -> Option<String> {
        let (age_ms, max_ms) = self.age_ms(txn);
        (age_ms > max_ms).then(|| {
            format!(
                "it began {age_ms} ms ago, more than half of retention_ms allows ({max_ms} ms): \
                 its record could be collected before it commits"
            )
        })
    }

    /// When the transaction `txn` becomes too old to commit ([`Coordinator::too_old`]).
    fn too_old_at(&self, txn: TxnId) -> Instant {
        let (age_ms, max_ms) = self.age_ms(txn);
        Instant::now() + Timing::ms(max_ms.saturating_sub(age_ms))
    }

    /// The age of `txn` by this node's physical clock, and the most it may commit at.
    fn age_ms(&self, txn: TxnId) -> (u64, u64) {
        let max_ms = self.timing().retention_ms / TXN_AGE_MAX_DIVISOR;
        (self.ctx.clock.physical_ms().saturating_sub(txn.start_ts.physical_ms()), max_ms)
    }

    /// A commit whose record may have been collected: its outcome is unknown, but none of its
    /// commits can apply any more (below the watermark every one is refused), so the locks its
    /// participants keep protect nothing and go now. (Prepared participants are left to their
    /// resolvers: a commit at home's record is collected only once every shard applied it.)
    fn forgotten(&self, txn: TxnId, state: &TxnState, why: String) -> Outcome {
        self.release_at(txn, state.parts.keys().copied());
        Outcome::Unknown(why)
    }

    /// Compare-and-set of the record at home; retried (it is idempotent) until the deadline.
    /// `one_phase`: see [`PeerRequest::Decide`].
    pub(crate) async fn decide(
        &self,
        txn: TxnId,
        home: ShardId,
        decision: Decision,
        one_phase: bool,
    ) -> Result<Decision, Undecided> {
        let request = PeerRequest::Decide { shard: home, txn, decision, one_phase };
        match self.ctx.peers.call_shard(home, request, self.rpc_deadline() * 2).await {
            Ok((_, PeerReply::Decided(decision))) => Ok(decision),
            Ok((_, PeerReply::TooOld(why))) => Err(Undecided::Forgotten(why)),
            Ok((_, other)) => {
                Err(Undecided::Unknown(format!("the home shard {home} answered {other:?}")))
            }
            Err(error) => Err(Undecided::Unknown(format!(
                "the decision could not be recorded at {home}: {error}"
            ))),
        }
    }

    /// Phase 2 in the background: Finalize at `writers` (the write participants other than
    /// home, which committed with the decision), then Finish at home.
    fn spawn_phase2(&self, txn: TxnId, home: ShardId, writers: Vec<ShardId>, decision: Decision) {
        let ctx = self.ctx.clone();
        let deadline = self.rpc_deadline();
        tokio::spawn(async move {
            let calls = writers.iter().map(|shard| {
                let ctx = ctx.clone();
                let shard = *shard;
                async move {
                    for _ in 0..PHASE2_ATTEMPTS_MAX {
                        let request =
                            PeerRequest::Finalize { shard, txn, decision, prepared: true };
                        if let Ok((_, PeerReply::Done)) =
                            ctx.peers.call_shard(shard, request, deadline).await
                        {
                            return true;
                        }
                    }
                    false
                }
            });
            let done = join_all(calls).await;
            if matches!(decision, Decision::Committed { .. }) && done.iter().all(|ok| *ok) {
                let _ = ctx
                    .peers
                    .call_shard(home, PeerRequest::Finish { shard: home, txn }, deadline)
                    .await;
            }
        });
    }

    /// TxnStatus: the exact outcome of a transaction; an undecided one is decided ABORTED.
    pub async fn txn_status(
        &self,
        txn: TxnId,
        home: Option<ShardId>,
    ) -> Result<Outcome, StatementError> {
        let mut home = home;
        if self.ctx.is_mine(&txn)
            && let Some((outcome, known_home)) = self.local_outcome(txn).await
        {
            // Unknown here (its END could not learn the decision): the record says, at the
            // home this coordinator knows if the caller gave none (writes sent with END made
            // it, and the caller may not know it; a review found ABORTED answered then for a
            // transaction that had committed, 2026-12-06).
            if !matches!(outcome, Outcome::Unknown(_)) || home.or(known_home).is_none() {
                return Ok(outcome);
            }
            // A home other than the one this coordinator knows is refused: asked there, the
            // record (none) would be decided ABORTED at the wrong shard while the home's may
            // say COMMITTED (a review found it taken, 2026-12-07).
            if let (Some(given), Some(known)) = (home, known_home)
                && given != known
            {
                return Err(StatementError::Invalid(format!(
                    "{txn}'s home shard is {known}, not {given}"
                )));
            }
            home = home.or(known_home);
        }
        let Some(home) = home else {
            // It wrote nothing (no home): nothing of it can be committed.
            return Ok(Outcome::Aborted {
                reason: AbortReason::CoordinatorLost,
                detail: "the transaction wrote nothing and its coordinator does not know it".into(),
            });
        };
        if !self.ctx.topology.has(home) {
            return Err(StatementError::Invalid(format!("no shard {home}")));
        }
        let request = PeerRequest::Status { shard: home, txn, resolve: true, prepared_here: false };
        let decided = match self.ctx.peers.call_shard(home, request, self.rpc_deadline() * 2).await
        {
            Ok((_, PeerReply::Decided(Decision::Committed { commit_ts }))) => {
                Outcome::Committed { commit_ts }
            }
            Ok((_, PeerReply::Decided(Decision::Aborted { reason }))) => {
                Outcome::Aborted { reason, detail: "recorded as aborted".into() }
            }
            Ok((_, PeerReply::TooOld(why))) => return Err(StatementError::TooOld(why)),
            Ok((_, other)) => {
                let why = format!("the home shard answered {other:?}");
                return Err(StatementError::Unavailable(why));
            }
            Err(error) => return Err(StatementError::Unavailable(error.to_string())),
        };
        // One of this node's transactions whose END left the outcome unknown: a retried END
        // now answers the record's decision too (it answered "unknown, ask TxnStatus" for as
        // long as the transaction was remembered; a review, 2026-12-07).
        if self.ctx.is_mine(&txn)
            && let Ok(entry) = self.entry(&txn)
        {
            let mut state = self.state_of(&entry).await;
            if let Status::Ended(Outcome::Unknown(_)) = state.status {
                state.status = Status::Ended(decided.clone());
            }
        }
        Ok(decided)
    }
}

/// Why a participant asked to `doing` (take the locks, prepare) did not: its NO, or what
/// came instead of an answer (nothing it did is trusted: the caller aborts everywhere).
fn refusal_of(
    shard: ShardId,
    doing: &str,
    reply: Result<(txn::types::NodeId, PeerReply), CallError>,
) -> (AbortReason, String) {
    match reply {
        Ok((_, PeerReply::Aborted { reason, detail })) => (reason, detail),
        Ok((_, other)) => {
            (AbortReason::Unavailable, format!("{shard} could not {doing}: {other:?}"))
        }
        Err(CallError::Timeout(after)) => {
            (AbortReason::Unavailable, format!("{shard} did not {doing} within {after:?}"))
        }
        Err(error) => (AbortReason::Unavailable, error.to_string()),
    }
}
