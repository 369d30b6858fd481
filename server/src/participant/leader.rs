//! What a shard's leader holds in memory for one Raft term: the lock table, the waiting lock
//! requests, the transactions prepared here, and the transactions evicted here.
//!
//! A `LeaderState` lives exactly as long as this node leads the shard in one term. It is created
//! when the node becomes leader and becomes *ready* once the leader has applied its own first
//! entry of the term: by then every entry of earlier terms that will ever apply has applied, so
//! the prepared transactions in the state machine are complete, and their exclusive locks are
//! restored into the fresh lock table. Locks of unprepared transactions from earlier terms are
//! gone ("a leader change voids unprepared locks"): those transactions vote NO at prepare,
//! because their lock term no longer matches. One thing outlives the term: the memory of the
//! transactions that ended at this replica ([`EndedTxns`]), which the shard keeps while the
//! node does not lead and hands to its next term, so that a late copy of a request is refused
//! whichever term it arrives in.
//!
//! Invariants:
//! 1. Every waiter in `waiters` has a waiting request in `locks`, and vice versa (a request's
//!    waiter is woken exactly once: granted, aborted, or dropped with the state).
//! 2. A prepared transaction (`prepared`) holds exclusive locks on its writes and is never
//!    evicted; only its record can decide it.
//! 3. An evicted transaction holds no lock and gets none (`evicted` is checked first). A
//!    transaction whose abort this leader proposes is marked the same way before the proposal,
//!    so that no prepare of it can follow the abort into the log.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::collections::VecDeque;

use tokio::sync::oneshot;
use tokio::time::Instant;
use txn::command::AbortReason;
use txn::deadlock::Pins;
use txn::lock::Grant;
use txn::lock::LockTable;
use txn::lock::RequestId;
use txn::types::ShardId;
use txn::types::Timestamp;
use txn::types::TxnId;

/// How long a deadlock confirmation pins a wait edge: longer than a confirmation takes to go
/// around a cycle (a message per change of shard, milliseconds each), and short, because a pin
/// outlives its victim's abort and holds back the overlapping cycles it refused until then.
pub const PIN_LIFETIME: std::time::Duration = std::time::Duration::from_millis(300);
/// Transactions a replica remembers as ended here (released, their phase 2 applied, or a
/// one-statement operation answered ABORTED), the newest this many: a late delivery of one of
/// their lock requests or prepares is refused rather than taking locks nothing would release
/// until a holder check, or committing a write its client heard aborted (a few seconds at 64
/// clients' commit rates; resends come within milliseconds).
pub const ENDED_REMEMBERED: usize = 4096;

/// How a lock wait ended.
#[derive(Debug)]
pub enum WaitEnd {
    /// The lock was granted.
    Granted,
    /// The waiting transaction must abort.
    Aborted {
        /// Why.
        reason: AbortReason,
        /// For people.
        detail: String,
    },
    /// Another delivery of the same request took the wait over (a resend, or a copy whose
    /// handler ran late). Not an abort: the other delivery goes on and may commit, so the
    /// answer to this one must leave the outcome open (its caller retries, and its retry
    /// takes the wait over in turn or finds the outcome).
    Superseded,
}

/// A lock request that is waiting.
#[derive(Debug)]
pub struct Waiter {
    /// The waiting transaction.
    pub txn: TxnId,
    /// When it started waiting.
    pub since: Instant,
    /// Wakes the request's handler.
    pub wake: oneshot::Sender<WaitEnd>,
}

/// A transaction prepared here (or whose one-phase commit is in doubt).
#[derive(Clone, Copy, Debug)]
pub struct PreparedInfo {
    /// Its home shard (where its record is).
    pub home: ShardId,
    /// Since when this leader has known it prepared.
    pub since: Instant,
    /// Deliveries of its prepare (or commit at home) that reached the proposal here: more than
    /// one means another attempt may still apply, whatever this one's fate.
    pub attempts: u32,
}

/// The leader's state for one term.
#[derive(Debug)]
pub struct LeaderState {
    /// The term.
    pub term: u64,
    /// True once the prepared transactions' locks are restored (requests are served).
    pub ready: bool,
    /// The lock table of this term.
    pub locks: LockTable,
    /// Waiting requests.
    pub waiters: BTreeMap<RequestId, Waiter>,
    /// Prepared (or in-doubt) transactions.
    pub prepared: BTreeMap<TxnId, PreparedInfo>,
    /// Transactions whose locks were evicted (their coordinator was gone), and when.
    pub evicted: BTreeMap<TxnId, Instant>,
    /// Prepared transactions whose phase 2 commit this leader has proposed and not yet seen
    /// applied, with the number of such proposals whose outcome is not known: they cannot
    /// prepare again meanwhile ([`LeaderState::committing`]).
    pub commits_proposed: BTreeMap<TxnId, u32>,
    /// The transactions that ended here ([`LeaderState::ended`]). Unlike the rest, the memory
    /// outlives the term: the shard keeps it while this node does not lead, and hands it to
    /// its next term's state ([`LeaderState::new`]).
    pub ended: EndedTxns,
    /// Read-only transactions that voted YES here this term and released their shared locks
    /// with the vote (the newest [`ENDED_REMEMBERED`], in the same bounded memory as `ended`):
    /// another delivery of the vote's prepare finds no lock, and answers this vote again
    /// (`Shard::vote_again`) instead of NO.
    pub voted_read_only: EndedTxns,
    /// Lock holders whose coordinator did not answer, since when.
    pub unanswered: BTreeMap<TxnId, Instant>,
    /// The highest timestamp this leader promised to close (no prepare or commit at or below).
    pub closed_promised: Timestamp,
    /// Wait edges pinned by deadlock confirmations in progress.
    pub pins: Pins,
    /// Timestamps handed to proposals still in flight (closed timestamps stay below them).
    pub pending_ts: BTreeMap<Timestamp, usize>,
    /// When this leader became ready.
    pub ready_at: Instant,
    /// True once this leader asked to hand leadership to the shard's preferred replica.
    pub handed_over: bool,
    /// The origin of the pins' millisecond clock.
    pub epoch: Instant,
    /// Records to mark finished, carried by the next entry of the close loop.
    pub finishing: Vec<TxnId>,
}

impl LeaderState {
    /// A leader state for a new term, not ready yet, with the memory of the transactions that
    /// ended at this replica before it.
    pub fn new(term: u64, ended: EndedTxns) -> LeaderState {
        LeaderState {
            term,
            ready: false,
            locks: LockTable::new(term),
            waiters: BTreeMap::new(),
            prepared: BTreeMap::new(),
            evicted: BTreeMap::new(),
            commits_proposed: BTreeMap::new(),
            ended,
            voted_read_only: EndedTxns::default(),
            unanswered: BTreeMap::new(),
            closed_promised: Timestamp::ZERO,
            pins: Pins::new(PIN_LIFETIME.as_millis() as u64),
            pending_ts: BTreeMap::new(),
            ready_at: Instant::now(),
            handed_over: false,
            epoch: Instant::now(),
            finishing: Vec::new(),
        }
    }

    /// Wakes the handlers of granted requests.
    pub fn wake(&mut self, grants: Vec<Grant>) {
        for grant in grants {
            let waiter = self.waiters.remove(&grant.request);
            let waiter = waiter
                .unwrap_or_else(|| panic!("granted request {:?} has no waiter", grant.request));
            assert_eq!(waiter.txn, grant.txn, "grant for another transaction's waiter");
            // The handler may have given up already (deadline); the lock is then released by
            // the coordinator's abort.
            let _ = waiter.wake.send(WaitEnd::Granted);
        }
    }

    /// Releases every lock and wait of `txn`, waking its waiter (if any) with `end`.
    pub fn drop_txn(&mut self, txn: TxnId, end: Option<(AbortReason, String)>) {
        if let Some(request) = self.locks.waiting(txn)
            && let Some(waiter) = self.waiters.remove(&request)
        {
            let (reason, detail) = end.clone().unwrap_or((AbortReason::User, "released".into()));
            let _ = waiter.wake.send(WaitEnd::Aborted { reason, detail });
        }
        let grants = self.locks.release_all(txn);
        self.wake(grants);
        self.unanswered.remove(&txn);
        debug_assert!(self.waiters.values().all(|w| w.txn != txn), "{txn} still has a waiter");
    }

    /// Cancels one waiting request (timeout, superseded), waking its waiter with `end`. False
    /// if that request is no longer waiting.
    pub fn cancel(&mut self, request: RequestId, end: WaitEnd) -> bool {
        assert!(!matches!(end, WaitEnd::Granted), "a cancelled wait is not granted");
        match self.locks.cancel(request) {
            None => false,
            Some((_, grants)) => {
                if let Some(waiter) = self.waiters.remove(&request) {
                    let _ = waiter.wake.send(end);
                }
                self.wake(grants);
                true
            }
        }
    }

    /// Evicts an unprepared transaction whose coordinator is gone. False if it is prepared here
    /// (then only its record may decide it).
    pub fn evict(&mut self, txn: TxnId, now: Instant) -> bool {
        if self.prepared.contains_key(&txn) {
            return false;
        }
        self.evicted.insert(txn, now);
        self.drop_txn(txn, Some((AbortReason::CoordinatorLost, "its coordinator is gone".into())));
        true
    }

    /// Marks a transaction whose abort this leader is about to propose: from now on it gets no
    /// lock and cannot prepare here (`evicted` is checked first). Its locks go when the abort
    /// has applied. Without the mark, a prepare that passed its lock check after the abort was
    /// proposed would follow the abort in the log and leave a prepared write that nothing will
    /// ever end, whose lock the abort had already released (chaos seed 6 with client streams).
    /// The mark and the abort's proposal are made under one hold of the state lock, as are a
    /// prepare's check and its proposal, so every prepare is either in the log before the
    /// abort or refused.
    pub fn aborting(&mut self, txn: TxnId, now: Instant) {
        self.evicted.insert(txn, now);
    }

    /// Marks a transaction whose phase 2 commit this leader is about to propose, as
    /// [`LeaderState::aborting`] does for an abort, until the commit has applied
    /// ([`LeaderState::committed`]): a second delivery of its prepare that passed its lock check
    /// before the commit applied (its locks are held until then) would otherwise follow the
    /// commit into the log and prepare the transaction again, with no lock and unknown to this
    /// leader, so that nothing would ever end it and another transaction could lock and
    /// prepare the same key (chaos `--duplicate-late-ms`, 2026-12-04). After the commit
    /// applied, the transaction is remembered as ended ([`LeaderState::ended`]); past that
    /// memory, such a delivery finds its statements' locks gone, and one with no statement
    /// locks here takes its locks afresh and prepares as a transaction this leader knows,
    /// which its resolver ends (`txn::state` then applies the repeated commit as a no-op).
    pub fn committing(&mut self, txn: TxnId) {
        *self.commits_proposed.entry(txn).or_default() += 1;
    }

    /// The commit marked by [`LeaderState::committing`] applied: every mark of it goes.
    pub fn committed(&mut self, txn: TxnId) {
        self.commits_proposed.remove(&txn);
    }

    /// One proposal of the commit marked by [`LeaderState::committing`] was refused before it
    /// was appended (it will never apply): its mark goes, and the marks of other deliveries
    /// whose proposals may still apply stay.
    pub fn commit_not_proposed(&mut self, txn: TxnId) {
        if let Some(count) = self.commits_proposed.get_mut(&txn) {
            *count -= 1;
            if *count == 0 {
                self.commits_proposed.remove(&txn);
            }
        }
    }

    /// Remembers that `txn` ended here (its locks released at its end, or its phase 2
    /// applied), among the newest [`ENDED_REMEMBERED`].
    pub fn ended(&mut self, txn: TxnId) {
        self.ended.insert(txn);
    }

    /// Whether `txn` may no longer take locks or prepare here: evicted, aborting,
    /// committing, or remembered as ended.
    pub fn ending(&self, txn: &TxnId) -> bool {
        self.evicted.contains_key(txn)
            || self.commits_proposed.contains_key(txn)
            || self.ended.contains(txn)
    }

    /// Records a timestamp handed to a proposal in flight.
    pub fn hold_ts(&mut self, ts: Timestamp) {
        *self.pending_ts.entry(ts).or_default() += 1;
    }

    /// Forgets a timestamp whose proposal finished (applied, refused or lost).
    pub fn release_ts(&mut self, ts: Timestamp) {
        if let Some(count) = self.pending_ts.get_mut(&ts) {
            *count -= 1;
            if *count == 0 {
                self.pending_ts.remove(&ts);
            }
        }
    }

    /// The next closed timestamp to promise, if it advances: `candidate` capped below every
    /// timestamp still in flight. Records the promise.
    pub fn next_closed(&mut self, candidate: Timestamp) -> Option<Timestamp> {
        let capped = match self.pending_ts.keys().next() {
            Some(oldest) => candidate.min(oldest.prev()),
            None => candidate,
        };
        if capped <= self.closed_promised {
            return None;
        }
        self.closed_promised = capped;
        Some(capped)
    }

    /// Milliseconds since this state was created (the pins' clock).
    pub fn now_ms(&self) -> u64 {
        Instant::now().duration_since(self.epoch).as_millis() as u64
    }

    /// Fails every waiter (the term is over).
    pub fn fail_all(&mut self, reason: AbortReason, detail: &str) {
        for (_, waiter) in std::mem::take(&mut self.waiters) {
            let _ = waiter.wake.send(WaitEnd::Aborted { reason, detail: detail.to_string() });
        }
    }
}

/// The newest [`ENDED_REMEMBERED`] transactions that ended at one replica of a shard.
#[derive(Debug, Default)]
pub struct EndedTxns {
    /// Oldest first.
    order: VecDeque<TxnId>,
    /// The same, as a set.
    set: BTreeSet<TxnId>,
}

impl EndedTxns {
    /// Remembers `txn`, forgetting the oldest beyond [`ENDED_REMEMBERED`].
    pub fn insert(&mut self, txn: TxnId) {
        if !self.set.insert(txn) {
            return;
        }
        self.order.push_back(txn);
        if self.order.len() > ENDED_REMEMBERED {
            let oldest = self.order.pop_front().expect("more than the limit");
            self.set.remove(&oldest);
        }
        debug_assert_eq!(self.set.len(), self.order.len());
    }

    /// Whether `txn` is remembered.
    pub fn contains(&self, txn: &TxnId) -> bool {
        self.set.contains(txn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(seq: u64) -> TxnId {
        TxnId { start_ts: Timestamp(seq), coordinator: 1, incarnation: 1, seq }
    }

    #[test]
    fn a_commit_stays_marked_while_any_of_its_proposals_may_apply() {
        let mut state = LeaderState::new(1, EndedTxns::default());
        let (a, b) = (txn(1), txn(2));
        state.committing(a);
        state.committing(a);
        state.committing(b);
        // One delivery's commit was refused before the log: the other's may still apply.
        state.commit_not_proposed(a);
        assert!(state.ending(&a), "another proposal of its commit is in flight");
        state.commit_not_proposed(a);
        assert!(!state.ending(&a), "no proposal of its commit is left");
        // An applied commit ends every mark at once.
        state.committing(b);
        state.committed(b);
        assert!(!state.ending(&b));
        state.commit_not_proposed(b);
        assert!(!state.ending(&b), "a late refusal changes nothing");
    }
}
