//! The participant side of transactions: what a shard's leader does (locks, prepare, phase 2,
//! records, deadlock probes, resolution of transactions whose coordinator is gone).
//!
//! - [`leader`]: the per-term leader state (lock table, waiters, prepared set).
//! - [`shard`]: one shard replica and its request handlers and background loops.

pub mod leader;
pub mod shard;

pub use shard::PrepareKind;
pub use shard::Shard;
