//! The lock table of one shard leader: strict two-phase locking (DESIGN.md section 4).
//!
//! LOCKS
//!
//! `READ` takes a shared (S) lock on its key, `WRITE` and `DELETE` an exclusive (X) lock, and
//! `SCAN` S locks on the keys it returns plus an S lock on the half-open range `[from, to)` it
//! read, so that no other transaction can insert into the range behind it (phantoms). Locks are
//! released only when the transaction ends (strict 2PL), except that a participant releases its
//! S locks and ranges when it prepares ([`LockTable::release_shared`]): a prepared transaction
//! reads nothing more, and its X locks keep its writes safe until the decision; and that a SCAN
//! stopped by its LIMIT narrows its range to what it read ([`LockTable::narrow_range`]): it
//! read nothing past its last row, so the rest was never its to protect. Each granted range
//! request holds the range once more (a count per range and transaction), and a narrowing gives
//! up only its own request's hold.
//!
//! ```text
//!   held by another txn ->  | key k, S | key k, X | range [f, t), S
//!   requested               |          |          |
//!   ------------------------+----------+----------+-----------------
//!   key k, S                |    ok    |   wait   |       ok
//!   key k, X                |   wait   |   wait   | wait if f <= k < t
//!   range [f, t), S         |    ok    | wait if  |       ok
//!                           |          | f<=k<t   |
//! ```
//!
//! A transaction never conflicts with itself. It is granted at once what it already holds or
//! something weaker: S on a key it holds X, a key (S) or a range inside a range it holds. A
//! range is then recorded as one more hold, and a key held only through ranges as an S lock of
//! its own, since a narrowing may shrink those ranges.
//!
//! FAIRNESS: ONE FIFO QUEUE
//!
//! Each table has one wait queue in arrival order. A new request is granted at once only if it
//! conflicts with no lock held by another transaction *and* with no request of another
//! transaction already queued. The second condition is what keeps a stream of readers from
//! starving a writer queued behind the first of them:
//!
//! ```text
//!   t1 holds S(a); t2 queues X(a); t3 asks S(a): compatible with t1, but t2 is queued
//!   ahead and conflicts, so t3 queues behind t2 instead of overtaking it.
//! ```
//!
//! After every release or cancel the queue is walked in order and every request is granted that
//! conflicts neither with the locks now held by others nor with an earlier, still waiting
//! request of another transaction. Requests for different keys do not block each other, so
//! the one queue behaves like one FIFO queue per key (and per range) with a shared order.
//!
//! One exception: a queued request that itself waits for a lock held by T does not hold up a
//! later request of T. It cannot be granted before T releases that lock anyway, so queueing T
//! behind it would turn two transactions that do not conflict into a deadlock:
//!
//! ```text
//!   t1 holds S(b); t2 queues X(b), waiting for t1; t1 asks S([a, c)) (a SCAN after a READ):
//!   the range conflicts with t2's queued X(b), but t2 waits for t1, so t1 is granted.
//! ```
//!
//! Nothing is starved by it: only the transactions a request already waits for can overtake it.
//! It covers the direct case only: a chain through a third transaction's request (t1 holds
//! X(b); t2 queues S([a, z)); t3 queues X(m) behind it; t1 asks X(m)) still closes a cycle,
//! and the detector picks a victim.
//!
//! UPGRADES (S -> X)
//!
//! A transaction that holds S on a key (directly or through a range) and asks for X is
//! upgrading. If no other transaction holds a conflicting lock, the upgrade is granted at once,
//! even past queued requests: they wait for the upgrader's S lock anyway, so making it wait
//! behind them would deadlock it against its own queue. Otherwise it queues ahead of every
//! request that is not an upgrade (FIFO among upgrades). Two readers of one key that both
//! upgrade wait for each other's S lock: a true deadlock, left to the detector.
//!
//! WAIT-FOR EDGES
//!
//! The blockers of a waiting request R of txn T are every other transaction holding a
//! conflicting lock, plus every other transaction with a conflicting request queued ahead of R
//! that does not itself wait for T;
//! one edge per transaction (the first span found: holders before queued requests). These are
//! the edges [`crate::deadlock`] chases. A [`RequestId`] is handed out only to requests that
//! wait, strictly increasing per table, and doubles as the wait *epoch*: an edge naming R is
//! valid only while R waits.
//!
//! TERMS
//!
//! A table belongs to one leader term ([`LockTable::term`]). A new leader starts a new table:
//! the locks of unprepared transactions are lost (they vote NO at prepare, which checks that the
//! locks are held in this table), and the X locks of transactions prepared in the log are
//! rebuilt with [`LockTable::restore_exclusive`] before the leader serves.
//!
//! INVARIANTS (asserted where the state changes; [`LockTable::check_invariants`] checks all)
//!
//! 1. No two transactions hold conflicting locks.
//! 2. A transaction holds one mode per key: its strongest.
//! 3. Every waiting request has at least one blocker: a request that could be granted has been
//!    (no lost wake-up).
//! 4. No transaction waits on itself, nor for a lock it already holds.
//! 5. A transaction has at most one waiting request per table (the coordinator issues one
//!    statement at a time per shard).
//! 6. Request ids strictly increase; the queue is the upgrades, then the other requests, each
//!    part in id (arrival) order.
//! 7. The per-transaction index matches the held locks and the queue exactly.
//!
//! COST
//!
//! Key locks live in `BTreeMap`s by key (S holders and X holder apart, so a range request walks
//! only the X-locked keys inside it), ranges in a `BTreeMap` by first key, and an index by
//! transaction makes releasing proportional to what the transaction holds. The queue (tens of
//! waiters) is scanned. Nothing iterates a `HashMap`, so every answer is deterministic.

mod lock_table;
mod request;
mod span;
mod wait_info;

#[cfg(test)]
pub(crate) mod lock_table_test;
#[cfg(test)]
mod model_test;

pub use lock_table::LockTable;
pub use request::Acquired;
pub use request::Grant;
pub use request::RequestId;
pub use span::LockMode;
pub use span::LockSpan;
pub use wait_info::Blocker;
pub use wait_info::WaitInfo;
