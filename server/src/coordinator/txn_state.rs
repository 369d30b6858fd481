//! What a coordinator remembers of one transaction while it runs (and a while after it ends).
//!
//! ```text
//!            statement ok                     END: all votes YES, record COMMITTED
//!   BEGIN ──► Active ──────────────────────────────────────────────► Ended(Committed)
//!               │  server abort (deadlock, lock timeout,            ▲
//!               │  leader change, idle, unreachable)                │ END/ABORT
//!               ├──────────────────────► Aborted ───────────────────┤
//!               │  ABORT, or END with a NO vote                     │
//!               └───────────────────────────────────────────────► Ended(Aborted)
//! ```
//!
//! Invariants:
//! 1. Every lock the transaction holds at a shard was granted in `Part::term` of that shard
//!    (the first grant fixes it; a later grant in another term aborts the transaction).
//! 2. A write is buffered in the part of its key's shard, which holds an exclusive lock on it,
//!    or lists the key in `Part::acquire` (a write sent with END: the prepare takes the lock).
//! 3. `home` is the shard of the first written key and never changes once set.
//! 4. While active, `lock_bytes` is the [`lock_cost`] of every span in the parts' `locks` and
//!    `acquire` (a staged key later granted is not charged again; an S lock upgraded at a
//!    prepare counts once), so the coordinator's memory of a transaction, and its prepares,
//!    stay within the budget `txn_lock_bytes_max` checked before each new lock.
//! 5. While active, `write_bytes` is the [`write_cost`] of every buffered write: a key written
//!    again counts once, at its last value, as only that one is kept and prepared.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use tokio::time::Instant;
use txn::command::AbortReason;
use txn::command::Write;
use txn::lock::LockMode;
use txn::lock::LockSpan;
use txn::types::Key;
use txn::types::ShardId;
use txn::types::Timestamp;
use txn::types::Value;

/// How a finished transaction ended, as END answers it (again and again: END is idempotent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Committed at this timestamp (zero for a read-only transaction).
    Committed {
        /// The commit timestamp.
        commit_ts: Timestamp,
    },
    /// Aborted; none of its writes is visible.
    Aborted {
        /// Why.
        reason: AbortReason,
        /// For people.
        detail: String,
    },
    /// The decision could not be learned in time; `TxnStatus` will tell.
    Unknown(String),
}

/// Where a transaction is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Running statements.
    Active,
    /// The server aborted it; statements fail until the client ends it.
    Aborted {
        /// Why.
        reason: AbortReason,
        /// For people.
        detail: String,
    },
    /// Ended by END or ABORT.
    Ended(Outcome),
}

/// What the transaction did at one shard.
#[derive(Clone, Debug, Default)]
pub struct Part {
    /// The leader term of its locks there; `None` before the first grant.
    pub term: Option<u64>,
    /// Keys written with END whose exclusive locks the prepare there must take first.
    pub acquire: BTreeSet<Key>,
    /// Its locks there, by span (a map: a bulk transaction's statements look them up one by
    /// one, which a list made quadratic; found by a review, 2026-12-06).
    pub locks: BTreeMap<LockSpan, LockMode>,
    /// Its buffered writes there (`None` deletes).
    pub writes: BTreeMap<Key, Option<Value>>,
}

impl Part {
    /// Records a granted lock; true if its span is new here (not an upgrade or a repeat).
    pub fn add_lock(&mut self, span: LockSpan, mode: LockMode) -> bool {
        match self.locks.get_mut(&span) {
            Some(held) => {
                if mode == LockMode::Exclusive {
                    *held = LockMode::Exclusive;
                }
                false
            }
            None => {
                self.locks.insert(span, mode);
                true
            }
        }
    }

    /// Whether `span` is locked here in any mode, or staged to be (a key in `acquire`).
    pub fn covers(&self, span: &LockSpan) -> bool {
        self.locks.contains_key(span)
            || matches!(span, LockSpan::Key(key) if self.acquire.contains(key))
    }

    /// Buffers a write sent with END: its lock is taken by the prepare unless already held.
    pub fn stage(&mut self, key: Key, value: Option<Value>) {
        if self.locks.get(&LockSpan::Key(key.clone())) != Some(&LockMode::Exclusive) {
            self.acquire.insert(key.clone());
        }
        self.writes.insert(key, value);
    }

    /// Whether it holds a lock that its prepare will not replicate: a key read and not
    /// written (shared, or exclusive by READ FOR UPDATE), or a range. A prepare replicates
    /// the written keys only, and a new leader restores their locks only, so such a lock
    /// lives in the leader's memory alone, even after the prepare, and a leader change loses
    /// it. (Until 2026-12-05 only shared locks counted; a review found that READ FOR UPDATE of
    /// a key the transaction then did not write is lost the same way.)
    pub fn holds_volatile_lock(&self) -> bool {
        self.locks.iter().any(|(span, _)| match span {
            LockSpan::Key(key) => !self.writes.contains_key(key),
            LockSpan::Range { .. } => true,
        })
    }

    /// The buffered writes as replicated commands carry them.
    pub fn write_list(&self) -> Vec<Write> {
        self.writes
            .iter()
            .map(|(key, value)| Write { key: key.clone(), value: value.clone() })
            .collect()
    }
}

/// One transaction at its coordinator.
#[derive(Clone, Debug)]
pub struct TxnState {
    /// Where it is.
    pub status: Status,
    /// Rejects writes.
    pub read_only: bool,
    /// The shard of its record.
    pub home: Option<ShardId>,
    /// Per participant shard.
    pub parts: BTreeMap<ShardId, Part>,
    /// The [`write_cost`] of every buffered write (invariant 5).
    pub write_bytes: usize,
    /// The [`lock_cost`] of every span locked or staged (invariant 4).
    pub lock_bytes: usize,
    /// The largest commit timestamp it has seen (the session's causal token rises to it).
    pub seen_ts: Timestamp,
    /// For a causal read-only transaction, the snapshot all its reads are served at (from any
    /// replica, without locks).
    pub snapshot: Option<Timestamp>,
    /// When END's lock waits give up, if set before END (a one-statement commit run again
    /// after a deadlock keeps its first run's budget); otherwise `lock_wait_ms` from END.
    pub locks_until: Option<Instant>,
    /// Set by END when its lock waits end where the transaction becomes too old to commit
    /// (before `locks_until`): a wait cut there is TOO_OLD, not LOCK_TIMEOUT.
    pub waits_end_too_old: bool,
}

impl TxnState {
    /// A new, active transaction.
    pub fn new(read_only: bool) -> TxnState {
        TxnState {
            status: Status::Active,
            read_only,
            home: None,
            parts: BTreeMap::new(),
            write_bytes: 0,
            lock_bytes: 0,
            seen_ts: Timestamp::ZERO,
            snapshot: None,
            locks_until: None,
            waits_end_too_old: false,
        }
    }

    /// The buffered write of `key` at `shard`, if any: `Some(None)` is a buffered delete.
    pub fn buffered(&self, shard: ShardId, key: &[u8]) -> Option<&Option<Value>> {
        self.parts.get(&shard).and_then(|part| part.writes.get(key))
    }

    /// What `write_bytes` becomes once `writes` (shard, key, [`write_cost`]) are buffered too
    /// (invariant 5): a key's new write replaces its buffered one, and of several writes of
    /// one key in `writes` the last counts.
    pub fn write_bytes_after<'a>(
        &self,
        writes: impl IntoIterator<Item = (ShardId, &'a [u8], usize)>,
    ) -> usize {
        let last: BTreeMap<&[u8], (ShardId, usize)> =
            writes.into_iter().map(|(shard, key, cost)| (key, (shard, cost))).collect();
        last.into_iter().fold(self.write_bytes, |total, (key, (shard, cost))| {
            let replaced = self.buffered(shard, key).map_or(0, |old| write_cost(key, old.as_ref()));
            assert!(replaced <= total, "a buffered write's cost is in write_bytes (invariant 5)");
            total - replaced + cost
        })
    }

    /// True when some participant must still take locks (writes sent with END): until they
    /// are taken, no participant may release any (two-phase locking).
    pub fn locks_pending(&self) -> bool {
        self.parts.values().any(|part| !part.acquire.is_empty())
    }

    /// Whether END must take the pending locks (writes sent with END) in a round of its own
    /// before any participant votes. A vote checks that its participant still holds the
    /// transaction's locks, in their term; but a lock on a key read and not written (shared,
    /// or for update) or on a range is not replicated, and a leader change after the vote
    /// loses it ([`Part::holds_volatile_lock`]). Should
    /// another participant take a lock after that vote, the transaction's lock point (where
    /// it serializes) comes after a moment its read was no longer protected: another
    /// transaction can write the key in between, a write skew (chaos seed 104, 2026-12-04).
    /// So when a participant other than home holds such a lock and another participant has
    /// locks to take, the locks are taken first. Home checks its own in the commit itself,
    /// after every other lock was taken; a participant's own pending locks are taken by its
    /// prepare before it checks.
    pub fn acquire_first(&self) -> bool {
        self.parts.iter().any(|(shard, part)| {
            Some(*shard) != self.home
                && part.holds_volatile_lock()
                && self.parts.iter().any(|(other, o)| other != shard && !o.acquire.is_empty())
        })
    }

    /// The participants that wrote (`true`) or only read (`false`).
    pub fn participants(&self, wrote: bool) -> Vec<ShardId> {
        let parts = self.parts.iter();
        parts.filter(|(_, part)| part.writes.is_empty() != wrote).map(|(s, _)| *s).collect()
    }

    /// Drops the buffered writes of a transaction that has ended or aborted: nothing reads
    /// them any more, and an entry stays remembered for `ENDED_MEMORY` (two minutes) after its
    /// end. Kept, a client could hold up to `txn_write_bytes_max` per aborted transaction for
    /// that long (found by a review, 2026-12-05). Its locks go too (releases name the parts'
    /// shards only): a read set kept for two minutes per ended transaction was as large as the
    /// writes (found by a review, 2026-12-06). The parts stay, empty.
    pub fn drop_writes(&mut self) {
        assert!(self.status != Status::Active, "the writes of an active transaction");
        for part in self.parts.values_mut() {
            part.writes = BTreeMap::new();
            part.acquire = BTreeSet::new();
            part.locks = BTreeMap::new();
        }
    }

    /// What locking `span` at `shard` would add to `lock_bytes`: nothing when the part
    /// already holds or stages it ([`Part::covers`]), else its [`lock_cost`].
    pub fn new_lock_cost(&self, shard: ShardId, span: &LockSpan) -> usize {
        let covered = self.parts.get(&shard).is_some_and(|part| part.covers(span));
        if covered { 0 } else { lock_cost(span) }
    }

    /// Records a grant at `shard` in `term`. False if the shard's term changed (its earlier
    /// locks are gone): the transaction must abort.
    pub fn granted(&mut self, shard: ShardId, term: u64, span: LockSpan, mode: LockMode) -> bool {
        let part = self.parts.entry(shard).or_default();
        if *part.term.get_or_insert(term) != term {
            return false;
        }
        let cost = lock_cost(&span);
        if part.add_lock(span, mode) {
            self.lock_bytes += cost;
        }
        true
    }

    /// Records that `shard` granted, in `term`, the exclusive locks of every key staged there
    /// (END's writes, already charged when staged). False if the shard's term changed.
    pub fn granted_staged(&mut self, shard: ShardId, term: u64) -> bool {
        let part = self.parts.get_mut(&shard).expect("a participant asked to lock");
        if *part.term.get_or_insert(term) != term {
            return false;
        }
        for key in std::mem::take(&mut part.acquire) {
            part.add_lock(LockSpan::Key(key), LockMode::Exclusive);
        }
        true
    }
}

/// What a write costs a transaction's write budget (`txn_write_bytes_max`): its key and value
/// plus [`ENTRY_OVERHEAD_BYTES`].
pub fn write_cost(key: &[u8], value: Option<&Value>) -> usize {
    key.len() + value.map_or(0, Vec::len) + ENTRY_OVERHEAD_BYTES
}

/// What a lock costs a transaction's lock budget (`txn_lock_bytes_max`): its keys plus
/// [`ENTRY_OVERHEAD_BYTES`].
pub fn lock_cost(span: &LockSpan) -> usize {
    let keys = match span {
        LockSpan::Key(key) => key.len(),
        LockSpan::Range { from, to } => from.len() + to.as_ref().map_or(0, Vec::len),
    };
    keys + ENTRY_OVERHEAD_BYTES
}

/// What each write or lock costs a transaction's budgets beyond its bytes: about what the
/// node keeps for it (map entries, the lock table's records) and more than its encoding's
/// framing in a prepare. Without it, a budget of 32 MiB allowed millions of one-byte writes,
/// gigabytes of the node's memory, and prepares several times the budget (found by a review,
/// 2026-12-06).
pub const ENTRY_OVERHEAD_BYTES: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Key {
        text.as_bytes().to_vec()
    }

    /// Invariant 4: each span is charged once, when it is first locked or staged.
    #[test]
    fn the_lock_budget_charges_each_span_once() {
        let s = ShardId(0);
        let mut state = TxnState::new(false);
        let a = LockSpan::Key(key("a"));
        assert!(state.granted(s, 1, a.clone(), LockMode::Shared));
        assert_eq!(state.lock_bytes, 1 + ENTRY_OVERHEAD_BYTES);
        assert!(state.granted(s, 1, a.clone(), LockMode::Exclusive), "an upgrade");
        assert!(state.granted(s, 1, a.clone(), LockMode::Shared), "a repeat");
        assert_eq!(state.lock_bytes, 1 + ENTRY_OVERHEAD_BYTES, "neither is a new lock");
        let range = LockSpan::range("b", Some("cc"));
        assert!(state.granted(s, 1, range.clone(), LockMode::Shared));
        assert_eq!(state.lock_bytes, 1 + 3 + 2 * ENTRY_OVERHEAD_BYTES);
        assert_eq!(lock_cost(&range), 3 + ENTRY_OVERHEAD_BYTES);

        // Staged keys are charged by the caller (END), so their grant charges nothing.
        let part = state.parts.get_mut(&s).expect("part");
        part.stage(key("d"), None);
        assert!(part.covers(&LockSpan::Key(key("d"))), "a staged key is covered");
        let before = state.lock_bytes;
        assert!(state.granted_staged(s, 1));
        assert_eq!(state.lock_bytes, before);
        assert_eq!(state.parts[&s].locks.get(&LockSpan::Key(key("d"))), Some(&LockMode::Exclusive));
        assert!(!state.granted_staged(s, 2), "another term");
    }

    /// Invariant 5: a key's buffered write is charged once, at its last value.
    #[test]
    fn the_write_budget_charges_each_key_at_its_last_write() {
        let s = ShardId(0);
        let mut state = TxnState::new(false);
        let cost = |k: &str, v: &str| write_cost(k.as_bytes(), Some(&v.as_bytes().to_vec()));
        let after = state.write_bytes_after([(s, &b"a"[..], cost("a", "1234"))]);
        assert_eq!(after, 5 + ENTRY_OVERHEAD_BYTES);
        state.write_bytes = after;
        state.parts.entry(s).or_default().writes.insert(key("a"), Some(b"1234".to_vec()));

        let shorter = state.write_bytes_after([(s, &b"a"[..], cost("a", "1"))]);
        assert_eq!(shorter, 2 + ENTRY_OVERHEAD_BYTES, "a rewrite replaces the buffered write");
        let deleted = state.write_bytes_after([(s, &b"a"[..], write_cost(b"a", None))]);
        assert_eq!(deleted, 1 + ENTRY_OVERHEAD_BYTES);
        let batch = [
            (s, &b"b"[..], cost("b", "123456789")),
            (s, &b"a"[..], cost("a", "12")),
            (s, &b"b"[..], cost("b", "1")),
        ];
        assert_eq!(
            state.write_bytes_after(batch),
            3 + 2 + 2 * ENTRY_OVERHEAD_BYTES,
            "of several writes of one key in a batch the last counts"
        );
    }

    #[test]
    fn writes_sent_with_end_are_locked_by_the_prepare_unless_already_held_exclusively() {
        let mut state = TxnState::new(false);
        let (s0, s1) = (ShardId(0), ShardId(1));
        // A WRITE statement's X lock at s0, a READ's S lock at s1, both in term 3.
        assert!(state.granted(s0, 3, LockSpan::Key(key("a")), LockMode::Exclusive));
        assert!(state.granted(s1, 3, LockSpan::Key(key("b")), LockMode::Shared));
        assert!(!state.locks_pending(), "statements took every lock");

        let part = state.parts.get_mut(&s0).expect("part");
        part.stage(key("a"), Some(b"1".to_vec()));
        assert!(part.acquire.is_empty(), "a is held exclusively: nothing to take");
        assert!(!state.locks_pending());

        // b is only read (S): the prepare must take X (an upgrade); c is new.
        let part = state.parts.get_mut(&s1).expect("part");
        part.stage(key("b"), None);
        part.stage(key("c"), Some(b"3".to_vec()));
        part.stage(key("c"), Some(b"4".to_vec()));
        assert_eq!(part.acquire.iter().cloned().collect::<Vec<_>>(), vec![key("b"), key("c")]);
        assert_eq!(part.writes.get(&key("c")), Some(&Some(b"4".to_vec())), "the last write wins");
        assert_eq!(part.write_list().len(), 2);
        assert!(state.locks_pending(), "until the prepares take them, no lock may be released");

        // A part that only staged writes has no term until its prepare's grant.
        let part = state.parts.entry(ShardId(2)).or_default();
        part.stage(key("x"), Some(Vec::new()));
        assert_eq!(part.term, None);
        assert_eq!(state.participants(true), vec![s0, s1, ShardId(2)]);
    }

    #[test]
    fn locks_are_taken_first_only_when_a_vote_would_check_a_read_before_another_lock() {
        let (home, other) = (ShardId(0), ShardId(1));
        let staged = |reads: &[(ShardId, &str)], writes: &[(ShardId, &str)]| {
            let mut state = TxnState::new(false);
            for (shard, k) in reads {
                assert!(state.granted(*shard, 1, LockSpan::Key(key(k)), LockMode::Shared));
            }
            for (shard, k) in writes {
                state.home.get_or_insert(*shard);
                state.parts.entry(*shard).or_default().stage(key(k), Some(Vec::new()));
            }
            state
        };
        // A read elsewhere, a write sent with END at home: home's lock comes after the vote.
        assert!(staged(&[(other, "r")], &[(home, "h")]).acquire_first());
        // So does a READ FOR UPDATE elsewhere of a key not written: its exclusive lock is not
        // replicated either.
        let mut state = staged(&[], &[(home, "h")]);
        assert!(state.granted(other, 1, LockSpan::Key(key("u")), LockMode::Exclusive));
        assert!(state.acquire_first());
        // A range counts as a read that the prepare does not turn into a write lock.
        let mut state = staged(&[], &[(home, "h")]);
        let range = LockSpan::Range { from: key("a"), to: Some(key("b")) };
        assert!(state.granted(other, 1, range, LockMode::Shared));
        assert!(state.acquire_first());
        // Read-modify-write of keys on two shards: each read becomes the prepare's X lock.
        assert!(
            !staged(&[(home, "h"), (other, "r")], &[(home, "h"), (other, "r")]).acquire_first()
        );
        // Only home reads: it checks its reads in the commit, after every other lock.
        assert!(!staged(&[(home, "x")], &[(home, "h"), (other, "o")]).acquire_first());
        // Writes as statements took every lock already.
        let mut state = staged(&[(other, "r")], &[]);
        assert!(state.granted(home, 1, LockSpan::Key(key("h")), LockMode::Exclusive));
        state.home = Some(home);
        state.parts.get_mut(&home).expect("part").stage(key("h"), Some(Vec::new()));
        assert!(!state.acquire_first());
        // ... but for one sent with END by the reader's own shard: its prepare takes that lock
        // before it checks its reads, and no other lock is left to take.
        state.parts.get_mut(&other).expect("part").stage(key("o"), Some(Vec::new()));
        assert!(!state.acquire_first());
    }

    #[test]
    fn a_grant_in_another_term_than_the_first_is_refused() {
        let mut state = TxnState::new(false);
        let s = ShardId(1);
        assert!(state.granted(s, 4, LockSpan::Key(key("a")), LockMode::Shared));
        assert!(!state.granted(s, 5, LockSpan::Key(key("b")), LockMode::Shared));
        assert_eq!(state.parts[&s].term, Some(4));
        assert_eq!(state.parts[&s].locks.len(), 1);
    }
}
