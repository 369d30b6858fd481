//! Generated gRPC code for the two APIs of a node.
//!
//! - [`kv`] (`proto/kv/v1/kv.proto`): the public client API. It is a contract: clients in other
//!   languages are generated from the `.proto` file, which documents every message and error.
//! - [`peer`] (`proto/peer/v1/peer.proto`): the internal node-to-node API. Its payloads are
//!   postcard-encoded Rust types (Raft messages and transaction messages), carried as bytes, so
//!   that openraft's types need no hand-written protobuf mapping. It is not a public contract.
//! - [`mux`]: many calls on one long-lived stream, the framing of `Peer/Mux` and `Kv/Session`.

pub mod mux;

/// The public client API, package `kv.v1`.
pub mod kv {
    tonic::include_proto!("kv.v1");

    /// How far ahead of a node's clock a causal token may be (milliseconds): a node refuses a
    /// request whose token is further ahead (kv.proto, "Causal tokens"). Far beyond the clock
    /// offsets between the nodes of a cluster, including the simulation's skews of up to a
    /// minute either way.
    pub const CAUSAL_TOKEN_AHEAD_MAX_MS: u64 = 300_000;

    /// The bits of a causal token below its physical part (its logical counter); the server
    /// asserts that they are its timestamps' (`txn::types::Timestamp::LOGICAL_BITS`).
    pub const CAUSAL_TOKEN_LOGICAL_BITS: u32 = 16;

    /// How far `token` is ahead of `now_ms` (milliseconds since the Unix epoch) if that is more
    /// than [`CAUSAL_TOKEN_AHEAD_MAX_MS`]: a token to refuse. The one rule for the node, which
    /// measures against its clock, and for a shell, which measures against its machine's.
    pub fn causal_token_too_far_ahead(token: u64, now_ms: u64) -> Option<u64> {
        let ahead = (token >> CAUSAL_TOKEN_LOGICAL_BITS).saturating_sub(now_ms);
        (ahead > CAUSAL_TOKEN_AHEAD_MAX_MS).then_some(ahead)
    }
}

/// The internal node-to-node API, package `peer.v1`.
pub mod peer {
    tonic::include_proto!("peer.v1");
}

impl mux::Numbered for peer::Frame {
    fn id(&self) -> u64 {
        self.id
    }
    fn set_id(&mut self, id: u64) {
        self.id = id;
    }
}

impl mux::Numbered for kv::SessionRequest {
    fn id(&self) -> u64 {
        self.id
    }
    fn set_id(&mut self, id: u64) {
        self.id = id;
    }
}

impl mux::Numbered for kv::SessionResponse {
    fn id(&self) -> u64 {
        self.id
    }
    fn set_id(&mut self, id: u64) {
        self.id = id;
    }
}

/// The encoded `FileDescriptorSet` of both packages, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));
