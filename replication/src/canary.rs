//! Canaries: deliberately broken variants of the protocol, for the chaos harness to prove that
//! its checkers notice (a canary that stops failing means the harness went blind).
//!
//! Reachable only through [`set`], a Rust function the `chaos` crate calls: no command-line
//! flag, environment variable or configuration key turns one on. The state is process-wide
//! (all simulated nodes share the process); the harness sets it for one run and resets it.

use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering;

/// One broken variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Canary {
    /// The protocol as designed.
    None = 0,
    /// The Raft log acknowledges appends before they are durable.
    AckBeforeFsync = 1,
    /// A participant releases every lock, exclusive ones included, when it prepares.
    ReleaseLocksAtPrepare = 2,
    /// A one-statement sequential READ is served by whatever replica receives it, unlocked.
    FollowerSequentialRead = 3,
    /// A causal snapshot read does not wait for the replica's safe time.
    SkipSafeTimeWait = 4,
    /// A participant that voted YES aborts on its own when the decision is slow to come.
    YesVoterAbortsAlone = 5,
    /// Participants release shared locks when they vote even while writes sent with END still
    /// have locks to take elsewhere (two-phase locking broken: a lock released before another
    /// is taken).
    ReleaseSharedBeforeEndLocks = 6,
    /// A one-statement operation is a new transaction at each delivery (its id is no longer
    /// the sender's, minted once per operation): a resent or duplicated WRITE commits twice.
    SingleIdPerDelivery = 7,
    /// A transaction's SCAN reads its range before its range lock is granted (a writer holding
    /// a key in the range may commit in between: the scan's rows are stale under its lock).
    ScanReadsBeforeItsLock = 8,
    /// A one-statement WRITE answers the session's old causal token instead of its commit
    /// timestamp: the session's next causal read may miss its own write.
    WriteForgetsItsToken = 9,
    /// A READ whose key's newest version is a delete answers the version before it, as if a
    /// delete were no version of its own (the tombstone skipped).
    ReadSkipsTombstones = 10,
    /// A transaction's READ of a key it wrote with a WRITE statement answers the committed
    /// value, not its own buffered write (read-your-writes inside a transaction broken).
    ReadSkipsOwnWrite = 11,
    /// A leader's closed timestamp keeps only its clock reading's milliseconds (the code before
    /// 2026-12-06): while the clock runs ahead of physical time no close passes a commit, and
    /// causal reads at a session's own writes wait until physical time catches up.
    CloseToTheMillisecond = 12,
    /// A causal read-only transaction reads each key at a snapshot of its own (a fresh one per
    /// statement) instead of the one it was begun at: its reads are no consistent cut.
    FracturedSnapshot = 13,
    /// Shards start no deadlock probes: deadlocks last until a lock wait times out.
    NoDeadlockProbes = 14,
}

impl Canary {
    /// Every canary, with its command-line name.
    pub const ALL: [(Canary, &'static str); 14] = [
        (Canary::AckBeforeFsync, "ack-before-fsync"),
        (Canary::ReleaseLocksAtPrepare, "release-locks-at-prepare"),
        (Canary::FollowerSequentialRead, "follower-sequential-read"),
        (Canary::SkipSafeTimeWait, "skip-safe-time-wait"),
        (Canary::YesVoterAbortsAlone, "yes-voter-aborts-alone"),
        (Canary::ReleaseSharedBeforeEndLocks, "release-shared-before-end-locks"),
        (Canary::SingleIdPerDelivery, "single-id-per-delivery"),
        (Canary::ScanReadsBeforeItsLock, "scan-reads-before-its-lock"),
        (Canary::WriteForgetsItsToken, "write-forgets-its-token"),
        (Canary::ReadSkipsTombstones, "read-skips-tombstones"),
        (Canary::ReadSkipsOwnWrite, "read-skips-own-write"),
        (Canary::CloseToTheMillisecond, "close-to-the-millisecond"),
        (Canary::FracturedSnapshot, "fractured-snapshot"),
        (Canary::NoDeadlockProbes, "no-deadlock-probes"),
    ];

    /// The canary with this name.
    pub fn from_name(name: &str) -> Option<Canary> {
        Canary::ALL.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        Canary::ALL.iter().find(|(c, _)| *c == self).map(|(_, n)| *n).unwrap_or("none")
    }
}

static ACTIVE: AtomicU8 = AtomicU8::new(Canary::None as u8);

/// Turns a canary on (or all off with [`Canary::None`]).
pub fn set(canary: Canary) {
    ACTIVE.store(canary as u8, Ordering::SeqCst);
}

/// True when `canary` is on.
pub fn is(canary: Canary) -> bool {
    ACTIVE.load(Ordering::Relaxed) == canary as u8
}
