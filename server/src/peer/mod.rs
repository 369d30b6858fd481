//! Node-to-node communication for transactions (the Raft transport is in `replication`).
//!
//! - [`message`]: the requests and replies.
//! - [`caller`]: sending them, to a node or to a shard's leader.
//! - [`service`]: the `peer.v1.Peer` gRPC service that receives them (and Raft messages).

pub mod caller;
pub mod message;
pub mod service;
