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
use replication::network::SNAPSHOTS_RECEIVED_MAX;
use replication::network::SnapshotHeader;
use tokio::sync::Semaphore;
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
/// The most a snapshot stream's buffer reserves before its data arrives: the announced length
/// is the sender's word, and reserved whole it let one chunk's header claim 8 GiB at once (a
/// review found it).
pub const SNAPSHOT_RESERVE_MAX: usize = 64 << 20;

/// The Peer service of a node.
pub struct PeerService {
    node: Arc<Node>,
    /// Permits to take in a snapshot ([`network::SNAPSHOTS_RECEIVED_MAX`]).
    receiving: Arc<Semaphore>,
}

impl PeerService {
    /// The service for `node`.
    pub fn new(node: Arc<Node>) -> PeerService {
        PeerService { node, receiving: network::snapshot_permits(network::SNAPSHOTS_RECEIVED_MAX) }
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
        let reply = |payload: Vec<u8>| Ok(Response::new(RaftResponse { payload: payload.into() }));
        let mut chunks = request.into_inner();
        let first = chunks
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))??;
        // Everything the first chunk says is checked before the rest is taken in: the shard,
        // and the header's length and log id (`SnapshotHeader::announced`).
        let shard = first.shard;
        let Some(group) = self.node.shard(ShardId(shard)) else {
            return reply(network::reply_no_group(shard));
        };
        let header = match SnapshotHeader::announced(&first.header, SNAPSHOT_BYTES_MAX as u64) {
            Ok(header) => header,
            Err(why) => return reply(network::refuse_snapshot(ShardId(shard), why)),
        };
        if let Some(answer) =
            network::answer_from_header(&group.raft, &group.log, &group.gate, &header)
        {
            return reply(answer);
        }
        // Held until the snapshot is installed: its data, buffered then decoded, lives that
        // long. None free: refused at once, and the sender's replication backs off and sends
        // it again. A stream left waiting unread would hold the HTTP/2 connection's receive
        // window, which the peer's Mux stream (every Raft and transaction message from it)
        // shares: its chunks in flight fill it (the session's diff review, 2026-12-07).
        let Ok(_permit) = self.receiving.clone().try_acquire_owned() else {
            let why = format!("{} snapshots are being installed here", SNAPSHOTS_RECEIVED_MAX);
            return reply(network::refuse_snapshot(ShardId(shard), why));
        };
        let announced = header.bytes as usize;
        let mut data = Vec::with_capacity(announced.min(SNAPSHOT_RESERVE_MAX));
        let mut next = Some(first);
        while let Some(chunk) = next {
            if chunk.shard != shard {
                let why = format!("a chunk of shard {} in a snapshot of {shard}", chunk.shard);
                return reply(network::refuse_snapshot(ShardId(shard), why));
            }
            if data.len() + chunk.data.len() > announced {
                let why = format!("more data than the {announced} bytes the snapshot announced");
                return reply(network::refuse_snapshot(ShardId(shard), why));
            }
            data.extend_from_slice(&chunk.data);
            next = chunks.next().await.transpose()?;
        }
        reply(network::serve_snapshot(&group.raft, &group.log, &group.gate, header, data).await)
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
