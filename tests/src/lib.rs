//! End-to-end tests against real `kvd` processes on loopback.
//!
//! The tests themselves live in `tests/*.rs`, one file per capability (durability, bad input,
//! transactions, deadlocks); this library is their harness:
//!
//! - [`acked`]: single-key writes and what each key may read back as after crashes.
//! - [`binaries`]: where `kvd` and `kvsh` are (built by `cargo build --workspace --bins`).
//! - [`cluster`]: a [`Cluster`] of `kvd` processes on free loopback ports, data directories in
//!   a temporary directory, each node's standard error captured to a log file. Nodes are killed
//!   with SIGKILL (`kill -9`) and restarted on the same data directory. Dropping the cluster
//!   kills every process, and when the test is panicking it prints the tail of every node's log
//!   and keeps the directory for a post-mortem.
//! - [`status`]: the parsed `STATUS` block of a node (who leads which shard, applied indexes).
//! - [`kvsh`]: `kvsh -c`/`-f` runs, and interactive sessions driven line by line through
//!   standard input, for interleaving several sessions.
//! - [`placement`]: beginning a transaction on a chosen coordinator node.
//! - [`poll`]: waiting for a condition with a deadline (never a bare sleep as synchronization),
//!   and a deadline for one answer of a raw gRPC stream ([`within`]).
//! - [`keys`]: keys that land in each shard of the default 4-shard map.
//!
//! Timing rules the tests follow: every wait for something to happen polls a condition under a
//! deadline; a fixed wait appears only to show that something does *not* happen (a blocked
//! reader stays blocked), and then it is short.

pub mod acked;
pub mod binaries;
pub mod cluster;
pub mod keys;
pub mod kvsh;
pub mod placement;
pub mod poll;
pub mod status;

pub use cluster::Cluster;
pub use cluster::ClusterBuilder;
pub use kvsh::KvshOutput;
pub use kvsh::KvshSession;
pub use poll::eventually;
pub use poll::within;

/// A stored value as text (the tests store UTF-8 text only).
pub fn text(value: Option<Vec<u8>>) -> Option<String> {
    value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}
