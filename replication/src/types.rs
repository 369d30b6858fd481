//! openraft's type configuration for this project, and short aliases for its generic types.
//!
//! openraft 0.10 is an alpha whose APIs break between releases; the rest of the workspace names
//! openraft types only through this module, so that an upgrade touches this crate alone.

use openraft::BasicNode;

pub use txn::command::Applied;
pub use txn::command::Command;

/// The runtime: tokio, with openraft's randomness (election timeouts) drawn from a seeded
/// task-local generator, so that a simulated cluster replays exactly from its seed. Every Raft
/// instance must be created inside [`with_seed`].
pub type Runtime = openraft::rt::deterministic_rng::DeterministicRng<openraft::TokioRuntime>;

openraft::declare_raft_types!(
    /// The type configuration of every shard's Raft group.
    pub TypeConfig:
        D = Command,
        R = Applied,
        Node = BasicNode,
        AsyncRuntime = Runtime,
);

/// A shard's Raft handle.
pub type Raft = openraft::Raft<TypeConfig, crate::store::StateMachine>;
/// A log entry.
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
/// A log id (leader id + index).
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
/// A vote.
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
/// A membership with its log id.
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
/// A snapshot: its meta and the shard's tables, exported when sent.
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, crate::store::SnapshotData>;
/// Raft metrics of one group.
pub type RaftMetrics = openraft::RaftMetrics<TypeConfig>;

/// Runs `future` with openraft's deterministic random generator seeded by `seed`.
pub fn with_seed<F: std::future::Future>(
    seed: u64,
    future: F,
) -> impl std::future::Future<Output = F::Output> {
    Runtime::scope(seed, future)
}

/// The Raft term of a log id.
pub fn term_of(log_id: &LogId) -> u64 {
    log_id.leader_id.term
}
