//! The transaction coordinator: one per node, for the transactions begun on that node.
//!
//! - [`txn_state`]: what it remembers of one transaction, and its states.
//! - [`coordinator`]: statements, aborts, one-statement operations, probes, idle sweeping.
//! - [`commit`]: END (one-phase and two-phase commit) and TxnStatus.
//! - [`finalizer`]: phase 2 messages, one in flight per participant shard, the rest batched.
//! - [`snapshot`]: causal snapshot reads on any replica.

pub mod commit;
#[allow(clippy::module_inception)]
pub mod coordinator;
pub mod finalizer;
pub mod snapshot;
pub mod txn_state;

pub use coordinator::Coordinator;
pub use coordinator::StatementError;
pub use txn_state::Outcome;
