//! Deterministic simulation of the whole cluster (turmoil), a nemesis, workloads, histories and
//! their checks. See docs/testing.md.
//!
//! - [`sim`]: the simulated cluster (same node code as `kvd`).
//! - [`inspect`]: asking nodes about their replicas (convergence and leak checks).

pub mod inspect;
pub mod sim;
