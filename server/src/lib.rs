//! `kvd`: a node of the replicated, sharded, transactional key-value store.
//!
//! Layers, bottom up (docs/architecture.md tells the whole story):
//!
//! - [`config`], [`topology`], [`clock`]: what a node is told, the shard map, time.
//! - [`context`]: what every part of a node shares.
//! - [`peer`]: node-to-node messages and the `peer.v1.Peer` service.
//! - [`participant`]: a shard leader's side of transactions (locks, prepare, phase 2, records,
//!   deadlock probes, resolution).
//! - [`coordinator`]: the side of the node a client talks to (statements, commit protocol).
//! - [`api`]: the public `kv.v1.Kv` service.
//! - [`node`]: start-up, wiring, serving.
//! - [`cli`], [`demo`]: `kvd start` and `kvd demo`.

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub mod coordinator;
pub mod demo;
pub mod failpoint;
pub mod node;
pub mod participant;
pub mod peer;
pub mod topology;
