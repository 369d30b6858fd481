//! The transaction coordinator: one per node, for the transactions begun on that node.
//!
//! - [`txn_state`]: what it remembers of one transaction, and its states.
//! - [`coordinator`]: statements, aborts, one-statement operations, probes, idle sweeping.
//! - [`commit`]: END (one-phase and two-phase commit) and TxnStatus.
//! - [`snapshot`]: causal snapshot reads on any replica.

pub mod commit;
#[allow(clippy::module_inception)]
pub mod coordinator;
pub mod snapshot;
pub mod txn_state;

pub use coordinator::Coordinator;
pub use coordinator::StatementError;
pub use txn_state::Outcome;
