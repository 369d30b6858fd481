//! The `peer.v1.Peer` gRPC service: Raft messages for this node's groups, and transaction
//! messages for its participants and coordinator, both on the `Mux` stream each other node
//! keeps open to this one (`replication::mux`); snapshots on streams of their own.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use proto::peer::Frame;
use proto::peer::Kind;
use proto::peer::RaftResponse;
use proto::peer::SnapshotChunk;
use proto::peer::peer_server::Peer;
use replication::codec;
use replication::mux;
use replication::mux::Replies;
use replication::network;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::Streaming;
use txn::types::ShardId;

use crate::node::Node;
use crate::peer::message::Envelope;
use crate::peer::message::PeerReply;
use crate::peer::message::PeerRequest;

/// The largest snapshot a node accepts.
pub const SNAPSHOT_BYTES_MAX: usize = 8 << 30;

/// The Peer service of a node.
pub struct PeerService {
    node: Arc<Node>,
}

impl PeerService {
    /// The service for `node`.
    pub fn new(node: Arc<Node>) -> PeerService {
        PeerService { node }
    }
}

#[tonic::async_trait]
impl Peer for PeerService {
    type MuxStream = Replies<Frame>;

    async fn mux(
        &self,
        request: Request<Streaming<Frame>>,
    ) -> Result<Response<Self::MuxStream>, Status> {
        let node = self.node.clone();
        let handler = move |kind, shard, payload: Bytes| {
            let node = node.clone();
            async move { serve_frame(&node, kind, shard, &payload).await }
        };
        Ok(Response::new(mux::serve(request.into_inner(), handler, self.node.stopping())))
    }

    async fn snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftResponse>, Status> {
        let mut chunks = request.into_inner();
        let mut shard = None;
        let mut header = Vec::new();
        let mut data = Vec::new();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            if shard.is_none() {
                shard = Some(chunk.shard);
                header = chunk.header.to_vec();
            }
            if data.len() + chunk.data.len() > SNAPSHOT_BYTES_MAX {
                return Err(Status::resource_exhausted("snapshot too large"));
            }
            data.extend_from_slice(&chunk.data);
        }
        let shard = shard.ok_or_else(|| Status::invalid_argument("empty snapshot stream"))?;
        let payload = match self.node.shard(ShardId(shard)) {
            Some(group) => network::serve_snapshot(&group.raft, &group.log, &header, data).await,
            None => network::reply_no_group(shard),
        };
        Ok(Response::new(RaftResponse { payload: payload.into() }))
    }
}

/// Handles one request frame of a `Mux` stream: a Raft message for a local group, or a
/// transaction message (whose envelope carries the sender's clock, observed first).
async fn serve_frame(node: &Node, kind: Kind, shard: u32, payload: &[u8]) -> Result<Bytes, String> {
    match kind {
        Kind::Raft => Ok(match node.shard(ShardId(shard)) {
            Some(group) => network::serve_raft(&group.raft, &group.gate, payload).await,
            None => network::reply_no_group(shard),
        }
        .into()),
        Kind::Call => {
            let request: Envelope<PeerRequest> =
                codec::decode(payload).map_err(|e| format!("malformed peer request: {e}"))?;
            node.clock().observe_peer(request.clock)?;
            let reply: PeerReply = node.handle(request.body).await;
            Ok(codec::encode(&Envelope { clock: node.clock().now(), body: reply }).into())
        }
        Kind::Unspecified | Kind::Reply => Err(format!("not a request: {kind:?}")),
    }
}
