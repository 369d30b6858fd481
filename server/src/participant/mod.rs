//! The participant side of transactions: what a shard's leader does (locks, prepare, phase 2,
//! records, deadlock probes, resolution of transactions whose coordinator is gone).
//!
//! - [`leader`]: the per-term leader state (lock table, waiters, prepared set).
//! - [`close_demand`]: whether closed timestamps are wanted fresh (closes on demand).
//! - [`proposer`]: group commit of a leader's proposals (one entry for what arrives meanwhile).
//! - [`rejoin`]: opening a replica's vote gate after a fresh start, once it is safe.
//! - [`shard`]: one shard replica and its request handlers and background loops.

pub mod close_demand;
pub mod leader;
pub mod proposer;
pub mod rejoin;
pub mod shard;

pub use shard::PrepareKind;
pub use shard::Shard;
