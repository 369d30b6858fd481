//! Seeds that once found bugs, kept as regression tests: every CI run replays them (beyond the
//! `--seeds` range it already covers).
//!
//! The plan derived from a seed changed as the harness grew (fsync latency, causal sessions),
//! so a seed no longer replays the exact schedule that found its bug; it still replays a
//! schedule rich in the same kind of fault, and must pass.

/// (seed, nodes, what it found).
pub const REGRESSION_SEEDS: &[(u64, u64, &str)] = &[
    (
        3,
        3,
        "a retried lock request broke the one-wait-per-transaction invariant (lock table panic)",
    ),
    (
        8,
        3,
        "a retried one-phase commit answered NO (locks gone) although the first attempt committed",
    ),
    (
        10,
        3,
        "lost acknowledged writes after power loss: openraft leader restore with unflushed applies",
    ),
    (
        9,
        3,
        "a causal read spun at a replica whose Raft group had stopped on a failed disk (run hung)",
    ),
    (13, 3, "a one-statement operation whose caller gave up held its lock forever"),
    (14, 3, "lost acknowledged writes after power loss (leader restore)"),
    (19, 3, "versions written below the newest after a forward-skewed node crashed"),
    (30, 3, "a restored leader rebuilt its lock table without a prepared transaction"),
    (39, 3, "lost acknowledged writes after power loss (leader restore)"),
    (48, 3, "a dropped prepare handler held the closed timestamp back; causal reads stalled"),
    (
        6,
        5,
        "lost update: a READ's lock released by a commit at home that was not proposed, re-taken by its retry",
    ),
    (
        90,
        3,
        "a commit at home after a resolver's ABORTED record was collected (forward skew) committed",
    ),
    (
        104,
        3,
        "write skew: a read-only vote's shared lock, lost to a leadership transfer before home took its lock",
    ),
    (
        98,
        3,
        "a replica never caught up: a replication stream re-read purged entries as heartbeats in a loop (after a replaced disk's log went back)",
    ),
    (
        342,
        3,
        "lost acknowledged appends: a commit retry that was not proposed released the locks of an earlier attempt that then applied",
    ),
];
