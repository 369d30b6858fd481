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

use std::collections::BTreeMap;
use std::collections::BTreeSet;

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
    /// Its locks there (deduplicated).
    pub locks: Vec<(LockSpan, LockMode)>,
    /// Its buffered writes there (`None` deletes).
    pub writes: BTreeMap<Key, Option<Value>>,
}

impl Part {
    /// Records a granted lock.
    pub fn add_lock(&mut self, span: LockSpan, mode: LockMode) {
        if let Some(existing) = self.locks.iter_mut().find(|(s, _)| *s == span) {
            if mode == LockMode::Exclusive {
                existing.1 = LockMode::Exclusive;
            }
        } else {
            self.locks.push((span, mode));
        }
    }

    /// Buffers a write sent with END: its lock is taken by the prepare unless already held.
    pub fn stage(&mut self, key: Key, value: Option<Value>) {
        if !self.locks.contains(&(LockSpan::Key(key.clone()), LockMode::Exclusive)) {
            self.acquire.insert(key.clone());
        }
        self.writes.insert(key, value);
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
    /// Bytes written so far (keys plus values).
    pub write_bytes: usize,
    /// The largest commit timestamp it has seen (the session's causal token rises to it).
    pub seen_ts: Timestamp,
    /// For a causal read-only transaction, the snapshot all its reads are served at (from any
    /// replica, without locks).
    pub snapshot: Option<Timestamp>,
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
            seen_ts: Timestamp::ZERO,
            snapshot: None,
        }
    }

    /// The buffered write of `key` at `shard`, if any: `Some(None)` is a buffered delete.
    pub fn buffered(&self, shard: ShardId, key: &[u8]) -> Option<&Option<Value>> {
        self.parts.get(&shard).and_then(|part| part.writes.get(key))
    }

    /// True when some participant must still take locks (writes sent with END): until they
    /// are taken, no participant may release any (two-phase locking).
    pub fn locks_pending(&self) -> bool {
        self.parts.values().any(|part| !part.acquire.is_empty())
    }

    /// The participants that wrote (`true`) or only read (`false`).
    pub fn participants(&self, wrote: bool) -> Vec<ShardId> {
        let parts = self.parts.iter();
        parts.filter(|(_, part)| part.writes.is_empty() != wrote).map(|(s, _)| *s).collect()
    }

    /// Records a grant at `shard` in `term`. False if the shard's term changed (its earlier
    /// locks are gone): the transaction must abort.
    pub fn granted(&mut self, shard: ShardId, term: u64, span: LockSpan, mode: LockMode) -> bool {
        let part = self.parts.entry(shard).or_default();
        if *part.term.get_or_insert(term) != term {
            return false;
        }
        part.add_lock(span, mode);
        true
    }
}
