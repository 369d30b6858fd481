//! Deterministic simulation of the whole cluster (turmoil), a nemesis, workloads, histories and
//! their checks. See docs/testing.md.
//!
//! - [`sim`]: the simulated cluster (the same node code as `kvd`).
//! - [`plan`]: what a run does, derived from its seed.
//! - [`nemesis`]: faults on a seeded schedule.
//! - [`world`]: state shared by the simulated clients and the driver.
//! - [`workload`]: list-append and bank clients, recording the history.
//! - [`final_checks`]: the checker host (final reads, TxnStatus, convergence, leaks).
//! - [`run`]: one run, from seed to verdict.
//! - [`inspect`]: asking nodes about their replicas.
//! - [`resolver`]: the resolver host (TxnStatus of unknown outcomes during the run).
//! - [`regressions`]: seeds that once found bugs.

pub mod final_checks;
pub mod inspect;
pub mod nemesis;
pub mod plan;
pub mod regressions;
pub mod resolver;
pub mod run;
pub mod sim;
pub mod workload;
pub mod world;
