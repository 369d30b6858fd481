//! Seeds that once found bugs, kept as regression tests: every CI run replays them.
//!
//! Each entry names the bug it found; the run must pass.

/// (seed, nodes, what it found).
pub const REGRESSION_SEEDS: &[(u64, u64, &str)] = &[];
