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

    /// The physical part of a causal token (milliseconds since the Unix epoch).
    pub fn causal_token_ms(token: u64) -> u64 {
        token >> 16
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
