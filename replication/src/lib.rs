//! openraft glue: every shard is a Raft group whose replicas apply `txn` commands to redb.
//!
//! - [`types`]: openraft's type configuration (the only place openraft's generics are named).
//! - [`canary`]: deliberately broken variants, for the chaos harness only.
//! - [`codec`]: versioned postcard encoding of everything stored or sent.
//! - [`store`]: the node's redb database: logs, votes, state machines, snapshots, one writer.
//! - [`network`]: the Raft transport: one gRPC service per node carries every group's messages.
//! - [`handshake`]: the headers that name a request's sender, target and cluster shape, and the
//!   receiver's check of them (a misconfigured node is refused, not counted).
//! - [`mux`]: one long-lived stream per pair of nodes, on which those messages (and the
//!   transaction layer's) travel as numbered frames.
//! - [`vote_gate`]: whether a replica may vote (closed on a fresh data directory until it is
//!   safe: a node whose disk was lost must not vote with an empty log).

pub mod canary;
pub mod codec;
pub mod handshake;
pub mod mux;
pub mod network;
pub mod paced;
pub mod store;
pub mod types;
pub mod vote_gate;
