//! The public client API (`kv.v1.Kv`): request validation, mapping onto the coordinator, and
//! the mapping of errors to gRPC statuses (documented in `proto/kv/v1/kv.proto`).
//!
//! - [`kv_service`]: one method per RPC.
//! - [`session`]: the same calls on one long-lived stream (`Kv/Session`).
//! - [`session_txns`]: the transactions begun on a stream, aborted when it closes.
//! - [`status`]: errors to `tonic::Status`, with the abort reason in metadata.

pub mod kv_service;
pub mod session;
pub mod session_txns;
pub mod status;
