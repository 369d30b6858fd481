//! `kvbench`: a closed-loop load generator for kvd.
//!
//! N workers, each with its own session (its own [`client::Client`], so its own connections
//! and causal token), run one operation at a time for a fixed window and count what finished
//! inside it. The workloads mirror the etcd peer tool (`shared/peers/kvbench`) so that numbers
//! compare: same key space (`--keys`, default 10000; read workloads preload and draw from at
//! most 2000 keys), same value size (`--value-size`, default 100), same summary line; plus the
//! workloads only a transactional store has (`bank`, `deadlock`).
//!
//! - [`keys`]: key names, spreading over shards, the shard map.
//! - [`workload`]: what one worker does; what counts as an operation.
//! - [`stats`]: tallies, histograms, the summary line and the JSON report.
//! - [`progress`]: the progress bar on a terminal.
//! - [`run`]: the command line and a whole run.

pub mod keys;
pub mod progress;
pub mod run;
pub mod stats;
pub mod workload;

pub use run::Args;
pub use run::run;
pub use stats::Report;
