//! The `peer.v1.Peer` gRPC service: Raft messages for this node's groups, and transaction
//! messages for its participants and coordinator.

use std::sync::Arc;

use futures::StreamExt;
use proto::peer::CallRequest;
use proto::peer::CallResponse;
use proto::peer::RaftRequest;
use proto::peer::RaftResponse;
use proto::peer::SnapshotChunk;
use proto::peer::peer_server::Peer;
use replication::codec;
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
    async fn raft(&self, request: Request<RaftRequest>) -> Result<Response<RaftResponse>, Status> {
        let request = request.into_inner();
        let payload = match self.node.shard(ShardId(request.shard)) {
            Some(shard) => network::serve_raft(&shard.raft, &request.payload).await,
            None => network::reply_no_group(request.shard),
        };
        Ok(Response::new(RaftResponse { payload: payload.into() }))
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

    async fn call(&self, request: Request<CallRequest>) -> Result<Response<CallResponse>, Status> {
        let request: Envelope<PeerRequest> = codec::decode(&request.into_inner().payload)
            .map_err(|e| Status::invalid_argument(format!("malformed peer request: {e}")))?;
        self.node.clock().observe(request.clock);
        let reply: PeerReply = self.node.handle(request.body).await;
        let payload = codec::encode(&Envelope { clock: self.node.clock().now(), body: reply });
        Ok(Response::new(CallResponse { payload: payload.into() }))
    }
}
