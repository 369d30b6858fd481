//! The Raft transport: every shard's Raft messages between two nodes travel over one gRPC
//! service (`peer.v1.Peer`), each tagged with its shard.
//!
//! ```text
//!   openraft (shard s, node a)                            openraft (shard s, node b)
//!     ShardPeer::append_entries ──► Peer.Mux Frame{RAFT, s, postcard(RaftRpc)} ──► serve_raft(group s)
//!     ShardPeer::full_snapshot  ──► Peer.Snapshot(stream of chunks) ──► serve_snapshot(group s)
//! ```
//!
//! How a node reaches another is the [`PeerConnector`] seam: tonic over real TCP in production,
//! over turmoil's simulated TCP in the simulation. Every call has a deadline (openraft's
//! `hard_ttl`), because a simulated TCP connection that lost a segment never recovers, and a
//! real one may hang just as long.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use openraft::StorageError;
use openraft::async_runtime::WatchReceiver;
use openraft::error::NetworkError;
use openraft::error::RPCError;
use openraft::error::ReplicationClosed;
use openraft::error::StreamingError;
use openraft::error::Unreachable;
use openraft::network::Backoff;
use openraft::network::RPCOption;
use openraft::network::RaftNetworkFactory;
use openraft::network::v2::RaftNetworkV2;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::SnapshotResponse;
use openraft::raft::TransferLeaderRequest;
use openraft::raft::TransferLeaderResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use openraft::type_config::TypeConfigExt;
use proto::peer::Kind;
use proto::peer::SnapshotChunk;
use proto::peer::peer_client::PeerClient;
use serde::Deserialize;
use serde::Serialize;
use txn::types::NodeId;
use txn::types::ShardId;

use crate::codec;
use crate::handshake::PeerChannel;
use crate::mux::MuxError;
use crate::mux::PeerMux;
use crate::paced::Paced;
use crate::store::LogStore;
use crate::store::SnapshotData;
use crate::types::LogId;
use crate::types::Raft;
use crate::types::Snapshot;
use crate::types::SnapshotMeta;
use crate::types::TypeConfig;
use crate::types::Vote;
use crate::vote_gate::VoteGate;
use openraft::BasicNode;

/// Bytes of snapshot data per streamed chunk.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// The slowest rate, in bytes per millisecond, at which a Raft message is expected to travel
/// and (for entries) be made durable at the receiver. openraft gives every AppendEntries one
/// heartbeat interval, which suits small messages; a message of a large transaction's entry or
/// of a catching-up follower's backlog (up to `store::log_store::APPEND_BYTES_MAX`, or one entry larger
/// than that) gets one more millisecond per this many bytes, or it would time out at every
/// retry and never arrive. About 16 MiB/s; messages under this size get nothing more.
pub const MESSAGE_BYTES_PER_MS_MIN: usize = 16 << 10;

/// The first pause before a group tries again to reach a follower it could not reach.
pub const UNREACHABLE_BACKOFF_FIRST: Duration = Duration::from_millis(200);
/// The longest such pause. openraft's default stops doubling at 1 s, and a leader whose
/// follower needs a snapshot exports the shard's whole state before every attempt: with the
/// follower down for long, a full export each second, on every shard it lags on (a helper saw
/// the 119th within minutes). But the same pause applies to log replication, and openraft
/// keeps it until a call gets through: a follower that comes back waits up to this long to be
/// reached again, and a rolling restart that takes the next node down meanwhile stalls the
/// shard's writes for that long (a review's scenario). 2 s halves the exports and bounds that
/// stall. The export runs in [`ShardPeer::full_snapshot`], not on the shard's apply task; what
/// would remove the exports is a stream opened before the export (not done: its header
/// carries the data's length and checksum).
pub const UNREACHABLE_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The pauses before the attempts to reach a follower that cannot be reached: doubling from
/// [`UNREACHABLE_BACKOFF_FIRST`] up to [`UNREACHABLE_BACKOFF_MAX`]. openraft drops it at the
/// first call that gets through.
pub fn unreachable_backoff() -> impl Iterator<Item = Duration> + Send + 'static {
    std::iter::successors(Some(UNREACHABLE_BACKOFF_FIRST), |pause| {
        Some((*pause * 2).min(UNREACHABLE_BACKOFF_MAX))
    })
}

/// The time a message of `bytes` gets beyond the deadline openraft gives it.
pub fn size_allowance(bytes: usize) -> Duration {
    Duration::from_millis((bytes / MESSAGE_BYTES_PER_MS_MIN) as u64)
}

/// How this node reaches the `Peer` service of other nodes (the transport seam).
pub trait PeerConnector: Send + Sync + 'static {
    /// A client for `target`'s `Peer` service (for snapshots), or `None` if the node is
    /// unknown. Cheap: the channel is shared and connects lazily.
    fn peer(&self, target: NodeId) -> Option<PeerClient<PeerChannel>>;
    /// The message stream to `target`, shared by every shard's group and the transactions, or
    /// `None` if the node is unknown.
    fn mux(&self, target: NodeId) -> Option<Arc<PeerMux>>;
}

/// One Raft message for one shard's group.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftRpc {
    /// AppendEntries (also heartbeats).
    Append(AppendEntriesRequest<TypeConfig>),
    /// RequestVote.
    Vote(VoteRequest<TypeConfig>),
    /// Pre-vote (does not disturb a healthy leader).
    PreVote(VoteRequest<TypeConfig>),
    /// Hand over leadership.
    TransferLeader(TransferLeaderRequest<TypeConfig>),
}

/// The answer to a [`RaftRpc`] or a snapshot.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftReply {
    /// To Append.
    Append(AppendEntriesResponse<TypeConfig>),
    /// To Vote or PreVote.
    Vote(VoteResponse<TypeConfig>),
    /// To TransferLeader.
    TransferLeader(TransferLeaderResponse<TypeConfig>),
    /// To a snapshot.
    Snapshot(SnapshotResponse<TypeConfig>),
    /// The receiver could not handle it (group not started, stopped, malformed).
    Failed(String),
}

/// Creates openraft's network clients for one shard.
#[derive(Clone)]
pub struct ShardNetworkFactory {
    shard: ShardId,
    connector: Arc<dyn PeerConnector>,
    log: LogStore,
    sending: Arc<Semaphore>,
}

impl ShardNetworkFactory {
    /// The factory for `shard`'s group, whose log is `log`; `sending` is the node's permits to
    /// send snapshots (one [`snapshot_permits`] for every group of the node).
    pub fn new(
        shard: ShardId,
        connector: Arc<dyn PeerConnector>,
        log: LogStore,
        sending: Arc<Semaphore>,
    ) -> Self {
        ShardNetworkFactory { shard, connector, log, sending }
    }
}

impl RaftNetworkFactory<TypeConfig> for ShardNetworkFactory {
    type Network = ShardPeer;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> ShardPeer {
        let (shard, connector, log) = (self.shard, self.connector.clone(), self.log.clone());
        ShardPeer { shard, target, connector, log, sending: self.sending.clone() }
    }
}

/// Snapshots a node exports and sends at once, over all its groups and followers; the others
/// wait their turn before they export. Each is a whole shard in memory (and its encoding), so
/// a node back from a long absence, which every group must send a snapshot, made its leaders
/// hold every shard at once (a review, 2026-12-07).
pub const SNAPSHOTS_SENT_MAX: usize = 2;
/// Snapshots a node takes in and installs at once; the others are refused (their senders back
/// off and send them again), never left waiting unread (which would hold the HTTP/2
/// connection's window that the peer's Raft messages share).
pub const SNAPSHOTS_RECEIVED_MAX: usize = 2;

/// A node's permits to send (or receive) snapshots: `max` at once.
pub fn snapshot_permits(max: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(max))
}

/// openraft's client to one peer, for one shard.
pub struct ShardPeer {
    shard: ShardId,
    target: NodeId,
    connector: Arc<dyn PeerConnector>,
    /// The shard's log here, for [`LogStore::take_purged_read`].
    log: LogStore,
    /// The node's permits to send snapshots ([`SNAPSHOTS_SENT_MAX`]).
    sending: Arc<Semaphore>,
}

fn unreachable<E: std::fmt::Display>(error: E) -> Unreachable<TypeConfig> {
    Unreachable::new(&io::Error::other(error.to_string()))
}

impl ShardPeer {
    fn client(&self) -> Result<PeerClient<PeerChannel>, Unreachable<TypeConfig>> {
        self.connector
            .peer(self.target)
            .ok_or_else(|| unreachable(format!("unknown node {}", self.target)))
    }

    async fn call(
        &self,
        rpc: RaftRpc,
        deadline: Duration,
    ) -> Result<RaftReply, RPCError<TypeConfig>> {
        let mux = self
            .connector
            .mux(self.target)
            .ok_or_else(|| unreachable(format!("unknown node {}", self.target)))?;
        let payload: bytes::Bytes = codec::encode(&rpc).into();
        let deadline = deadline + size_allowance(payload.len());
        let response = match mux.call(Kind::Raft, self.shard.0, payload, deadline).await {
            Err(MuxError::Timeout(_)) => {
                return Err(
                    NetworkError::from_string(format!("no answer within {deadline:?}")).into()
                );
            }
            Err(MuxError::Unreachable(why)) => return Err(unreachable(why).into()),
            Ok(response) => response,
        };
        match codec::decode::<RaftReply>(&response) {
            Ok(RaftReply::Failed(why)) => Err(unreachable(why).into()),
            Ok(reply) => Ok(reply),
            Err(error) => Err(unreachable(error).into()),
        }
    }
}

fn unexpected(reply: RaftReply) -> RPCError<TypeConfig> {
    unreachable(format!("unexpected reply {reply:?}")).into()
}

impl RaftNetworkV2<TypeConfig> for ShardPeer {
    type SnapshotData = SnapshotData;

    fn backoff(&self) -> Option<Backoff> {
        Some(Backoff::new(unreachable_backoff()))
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let after = rpc.prev_log_id.as_ref().map_or(0, |prev| prev.index + 1);
        if rpc.entries.is_empty() && self.log.take_purged_read(after) {
            let why =
                format!("the entries from {after} on are purged: the follower needs a snapshot");
            return Err(NetworkError::from_string(why).into());
        }
        match self.call(RaftRpc::Append(rpc), option.hard_ttl()).await? {
            RaftReply::Append(response) => Ok(response),
            other => Err(unexpected(other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(RaftRpc::Vote(rpc), option.hard_ttl()).await? {
            RaftReply::Vote(response) => Ok(response),
            other => Err(unexpected(other)),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(RaftRpc::PreVote(rpc), option.hard_ttl()).await? {
            RaftReply::Vote(response) => Ok(response),
            other => Err(unexpected(other)),
        }
    }

    async fn transfer_leader(
        &mut self,
        rpc: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(RaftRpc::TransferLeader(rpc), option.hard_ttl()).await? {
            RaftReply::TransferLeader(response) => Ok(response),
            other => Err(unexpected(other)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.client()?;
        let shard = self.shard.0;
        let sending = self.sending.clone();
        let send = async move {
            type Failed = StreamingError<TypeConfig>;
            // Held until the follower answered: the export and its encoding live that long
            // (and by the export itself until it ends, should this be cancelled meanwhile).
            let permit = sending.acquire_owned().await.map_err(|_| -> Failed {
                NetworkError::from_string("the node is stopping").into()
            })?;
            let permit = Arc::new(permit);
            // The export reads the whole shard (off the runtime's workers): here, not where
            // openraft read the snapshot, which is the task that applies the shard's entries.
            // A snapshot that cannot be read is a storage failure, fatal to the group (as it
            // was when openraft's read exported it), not a network error retried for ever.
            let signature = Some(snapshot.meta.signature());
            let data = snapshot.snapshot.encode_holding(permit.clone()).await.map_err(
                |error| -> Failed {
                    let source = TypeConfig::err_from_error(&error);
                    StorageError::read_snapshot(signature, source).into()
                },
            )?;
            let header = codec::encode(&SnapshotHeader::new(vote, snapshot.meta, &data));
            // The deadline follows the transfer's progress (`paced`): one fixed for the whole
            // of it (openraft's, 10 s) left a shard of a few GB unable ever to reach a follower
            // that fell behind the purged log (a review found it, 2026-12-05), and one derived
            // from the size did the same on a link slower than the rate it assumed. A chunk
            // must be taken within `hard_ttl` of the last; the receiver's decode and durable
            // import, after the last chunk, get that plus the size's allowance. "The last chunk
            // taken" is the transport's: up to about two chunks may still be in its buffers
            // and windows, so a link must carry about 2 MiB within `hard_ttl` (10 s), about
            // 200 KiB/s: the floor this deadline leaves.
            let idle = option.hard_ttl();
            let answer = idle + size_allowance(data.len());
            let (chunks, pace) = Paced::new(async_stream_chunks(shard, header, data));
            tokio::select! {
                biased;
                sent = client.snapshot(chunks) => match sent {
                    Err(status) => Err(unreachable(status.message()).into()),
                    Ok(response) => Ok(response.into_inner()),
                },
                // Unreachable, so that openraft backs off before it exports and sends again: a
                // network error is retried at once, ten times, each a new export of the whole
                // shard (a review, 2026-12-07).
                () = pace.stalled(idle, answer) => Err(Failed::from(unreachable(format!(
                    "snapshot transfer stalled: no chunk taken within {idle:?}, or no answer within {answer:?} of the last"
                )))),
            }
        };
        let response = tokio::select! {
            biased;
            closed = cancel => return Err(closed.into()),
            sent = send => sent?,
        };
        match codec::decode::<RaftReply>(&response.payload) {
            Ok(RaftReply::Snapshot(response)) => Ok(response),
            Ok(other) => Err(unreachable(format!("unexpected reply {other:?}")).into()),
            Err(error) => Err(unreachable(error).into()),
        }
    }
}

/// Splits a snapshot into chunks (views of `data`, not copies); the first carries the header.
fn async_stream_chunks(
    shard: u32,
    header: Vec<u8>,
    data: Vec<u8>,
) -> impl futures::Stream<Item = SnapshotChunk> + Send + Unpin + 'static {
    let data = bytes::Bytes::from(data);
    let mut chunks: Vec<SnapshotChunk> = (0..data.len())
        .step_by(SNAPSHOT_CHUNK_BYTES)
        .map(|start| SnapshotChunk {
            shard,
            header: Vec::new().into(),
            data: data.slice(start..data.len().min(start + SNAPSHOT_CHUNK_BYTES)),
        })
        .collect();
    if chunks.is_empty() {
        chunks.push(SnapshotChunk { shard, header: Vec::new().into(), data: Vec::new().into() });
    }
    chunks[0].header = header.into();
    futures::stream::iter(chunks)
}

/// Handles one Raft message for a local group (a `KIND_RAFT` frame of `Peer.Mux`). A vote or
/// pre-vote that the replica's `gate` does not allow (closed, at or below its floor, or quiet
/// after the start: [`VoteGate`]) is answered "not granted" with the
/// replica's own vote (the candidate adopts a higher one, as from any refusal; echoing its own
/// pre-vote back would raise its term at every round), unseen by openraft; a leadership
/// transfer to a replica whose gate is closed is refused (it would campaign, with a log that
/// may lack committed entries).
pub async fn serve_raft(raft: &Raft, gate: &VoteGate, payload: &[u8]) -> Vec<u8> {
    let reply = match codec::decode::<RaftRpc>(payload) {
        Err(error) => RaftReply::Failed(format!("malformed raft message: {error}")),
        Ok(RaftRpc::Vote(rpc) | RaftRpc::PreVote(rpc))
            if !gate.allows(rpc.vote.leader_id.term, rpc.leadership_transfer) =>
        {
            let own = raft.metrics().borrow_watched().vote;
            RaftReply::Vote(VoteResponse::new(own, None, false))
        }
        Ok(RaftRpc::TransferLeader(_)) if !gate.is_open() => {
            RaftReply::Failed("this replica withholds its votes until it has caught up".into())
        }
        Ok(RaftRpc::Append(rpc)) if !gate.takes_entries_from(rpc.vote.leader_id.term) => {
            RaftReply::Failed(format!(
                "this replica, on a fresh data directory, takes no entries from a leader of term \
                 {} until it knows it is current (replication::vote_gate)",
                rpc.vote.leader_id.term
            ))
        }
        Ok(RaftRpc::Append(rpc)) => match raft.append_entries(rpc).await {
            Ok(response) => RaftReply::Append(response),
            Err(error) => RaftReply::Failed(error.to_string()),
        },
        Ok(RaftRpc::Vote(rpc)) => match raft.vote(rpc).await {
            Ok(response) => RaftReply::Vote(response),
            Err(error) => RaftReply::Failed(error.to_string()),
        },
        Ok(RaftRpc::PreVote(rpc)) => match raft.pre_vote(rpc).await {
            Ok(response) => RaftReply::Vote(response),
            Err(error) => RaftReply::Failed(error.to_string()),
        },
        Ok(RaftRpc::TransferLeader(rpc)) => match raft.handle_transfer_leader(rpc).await {
            Ok(response) => RaftReply::TransferLeader(response),
            Err(error) => RaftReply::Failed(error.to_string()),
        },
    };
    codec::encode(&reply)
}

/// The first chunk's header of a streamed snapshot: whose it is, and what the whole data must
/// be. A stream can end early and still look finished to the receiver: tonic turns a sender's
/// cancelled request stream into a clean end of stream (a leader that stops replicating to
/// this follower mid-snapshot, when its leadership passes on). Installed, such a prefix fails
/// to decode inside openraft's state machine task, and a storage error there stops the
/// shard's Raft group for good. So the receiver checks the length and the checksum of what it
/// got against these before anything is installed. The checksum covers the header's own
/// fields too: a vote or meta changed on the way would otherwise install a snapshot under the
/// wrong log id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// The sender's vote.
    pub vote: Vote,
    /// The snapshot's meta.
    pub meta: SnapshotMeta,
    /// The data's length in bytes.
    pub bytes: u64,
    /// CRC-32 of the vote, the meta, the length and the data ([`SnapshotHeader::checksum`]).
    pub crc: u32,
}

impl SnapshotHeader {
    /// The header of `data`.
    pub fn new(vote: Vote, meta: SnapshotMeta, data: &[u8]) -> SnapshotHeader {
        let crc = Self::checksum(&vote, &meta, data);
        SnapshotHeader { vote, meta, bytes: data.len() as u64, crc }
    }

    /// CRC-32 of the header's fields and `data`.
    fn checksum(vote: &Vote, meta: &SnapshotMeta, data: &[u8]) -> u32 {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&codec::encode(&(vote, meta, data.len() as u64)));
        hasher.update(data);
        hasher.finalize()
    }

    /// The header of a snapshot stream, from its first chunk, checked before any data is
    /// taken in: a stream announcing more than `bytes_max`, or a snapshot whose last entry
    /// belongs to a leader after the one that sends it (no cluster that follows the protocol
    /// makes one; openraft asserts it, so installed it stopped the node), is refused at once.
    /// Until 2026-12-07 the receiver read the whole stream, up to `bytes_max` (8 GiB), before
    /// it looked at the header (found by a review).
    pub fn announced(encoded: &[u8], bytes_max: u64) -> Result<SnapshotHeader, String> {
        let header: SnapshotHeader = codec::decode(encoded)
            .map_err(|error| format!("malformed snapshot header: {error}"))?;
        if header.bytes == 0 {
            // Every export starts with the encoding's version byte; an empty one is the meta
            // of a start-up snapshot (`StateMachine::meta_only_snapshots`), which would fail
            // to decode inside openraft's state machine task and stop the group.
            return Err(format!("snapshot {} carries no data", header.meta));
        }
        if header.bytes > bytes_max {
            return Err(format!(
                "snapshot {} announces {} bytes, more than the {bytes_max} a node takes",
                header.meta, header.bytes
            ));
        }
        // Leader ids are partially ordered: one that is not comparable is refused too.
        let owned = |last: &LogId| {
            matches!(
                last.leader_id.partial_cmp(&header.vote.leader_id),
                Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
            )
        };
        if let Some(last) = &header.meta.last_log_id
            && !owned(last)
        {
            return Err(format!(
                "snapshot {} ends at an entry of a leader after its sender's vote {}",
                header.meta, header.vote
            ));
        }
        Ok(header)
    }

    /// Whether `data` is the whole snapshot this header announced.
    pub fn check(&self, data: &[u8]) -> Result<(), String> {
        if data.len() as u64 != self.bytes {
            return Err(format!(
                "incomplete snapshot {}: {} of {} bytes arrived (the sender stopped?)",
                self.meta,
                data.len(),
                self.bytes
            ));
        }
        if Self::checksum(&self.vote, &self.meta, data) != self.crc {
            return Err(format!("snapshot {} does not match its checksum", self.meta));
        }
        Ok(())
    }
}

/// Installs a streamed snapshot in a local group (the server side of `Peer.Snapshot`), given
/// the first chunk's header and all data concatenated. Data that is not the whole snapshot its
/// header announced is refused, not installed.
pub async fn serve_snapshot(
    raft: &Raft,
    log: &LogStore,
    gate: &VoteGate,
    header: SnapshotHeader,
    data: Vec<u8>,
) -> Vec<u8> {
    let checked = header.check(&data).and_then(|()| match data.first() {
        Some(&codec::FORMAT_VERSION) => Ok(header),
        _ => Err(format!("snapshot {} is not of this build's encoding", header.meta)),
    });
    let header = match checked {
        Err(why) => return refuse_snapshot(log.shard(), why),
        Ok(header) => header,
    };
    if let Some(answer) = answer_from_header(raft, log, gate, &header) {
        return answer;
    }
    let SnapshotHeader { vote, meta, .. } = header;
    let snapshot = Snapshot { meta, snapshot: SnapshotData::Encoded(data) };
    let reply = match raft.install_full_snapshot(vote, snapshot).await {
        Ok(response) => RaftReply::Snapshot(response),
        Err(error) => RaftReply::Failed(error.to_string()),
    };
    codec::encode(&reply)
}

/// The answer to a snapshot that its header alone settles, before any of its data is read
/// (the server calls it at the first chunk, and [`serve_snapshot`] again at the end): refused
/// while this replica's vote gate is closed to the sender's term (as appends are,
/// `serve_raft`: a closed gate takes a snapshot only from a current leader), or acknowledged
/// without an install when the log already holds its last entry ([`already_holds`]). Until
/// 2026-12-07 both were decided after the whole snapshot had been received: a replica on an
/// empty disk whose gate stayed closed took in (and buffered) every snapshot a leader sent it,
/// refusing each at its end, and the leader exported and sent it again every few seconds,
/// holding the node's snapshot permits meanwhile (found by a review).
pub fn answer_from_header(
    raft: &Raft,
    log: &LogStore,
    gate: &VoteGate,
    header: &SnapshotHeader,
) -> Option<Vec<u8>> {
    let SnapshotHeader { vote, meta, .. } = header;
    let term = vote.leader_id.term;
    if !gate.takes_entries_from(term) {
        let why = format!(
            "this replica, on a fresh data directory, takes no snapshot from a leader of term \
             {term} until it knows it is current"
        );
        return Some(refuse_snapshot(log.shard(), why));
    }
    if already_holds(raft, log, vote, meta) {
        tracing::info!(shard = %log.shard(), snapshot = %meta, "the log holds the snapshot's last entry: not installed");
        return Some(codec::encode(&RaftReply::Snapshot(SnapshotResponse::new(*vote))));
    }
    None
}

/// Whether a snapshot from the leader this replica already follows ends at an entry that its
/// log holds. Then it is not installed: the reply says it was, and the leader goes on with
/// AppendEntries after that entry, which the log has; by Log Matching the log agrees with the
/// leader's up to it, and the replica applies those entries from its log as the commit point
/// reaches it. A leader sends one when it has purged what it believes a follower lacks, which
/// a follower whose answers were lost or late may in fact hold.
///
/// It saves a whole-state durable import, and it steps around openraft 0.10.0-alpha.37 (still
/// in its main branch, 2026-12): installing a snapshot that ends below log entries already
/// submitted for append, under the same vote, moves the log I/O `submitted` cursor backwards,
/// which a debug assertion (`io_progress.rs:126`, on a cursor nothing reads) turns into a panic.
/// The simulation found it (3 nodes seed 8 with a change in deadlock probes; 5 nodes seed 6).
///
/// Claiming the entry is safe although it may not be durable yet: a snapshot covers applied,
/// hence committed, entries, so this answer cannot make anything newly committed; and the
/// vote is unchanged, so nothing about elections is claimed.
fn already_holds(raft: &Raft, log: &LogStore, vote: &Vote, meta: &SnapshotMeta) -> bool {
    let Some(last) = meta.last_log_id else { return false };
    vote.is_committed() && raft.metrics().borrow_watched().vote == *vote && log.holds(&last)
}

/// The encoded reply to a message for a group this node does not run (yet).
pub fn reply_no_group(shard: u32) -> Vec<u8> {
    codec::encode(&RaftReply::Failed(format!("shard {shard} is not running on this node")))
}

/// The encoded reply to a snapshot stream of `shard` refused before it was installed.
pub fn refuse_snapshot(shard: ShardId, why: String) -> Vec<u8> {
    tracing::warn!(%shard, "{why}: not installed");
    codec::encode(&RaftReply::Failed(why))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(data: &[u8]) -> SnapshotHeader {
        SnapshotHeader::new(Vote::new(3, 1), SnapshotMeta::default(), data)
    }

    #[test]
    fn the_pauses_before_reaching_an_unreachable_follower_double_up_to_the_cap() {
        let pauses: Vec<u64> =
            unreachable_backoff().take(7).map(|d| d.as_millis() as u64).collect();
        assert_eq!(pauses, [200, 400, 800, 1600, 2000, 2000, 2000]);
    }

    #[test]
    fn a_whole_snapshot_passes_its_header_check_after_the_round_trip() {
        let data: Vec<u8> = (0..3 * SNAPSHOT_CHUNK_BYTES as u32 / 2).map(|i| i as u8).collect();
        let header = header_of(&data);
        let decoded: SnapshotHeader = codec::decode(&codec::encode(&header)).expect("decodes");
        assert_eq!(decoded, header);
        assert_eq!(decoded.check(&data), Ok(()));
        assert_eq!(header_of(&[]).check(&[]), Ok(()), "the length and checksum of nothing");
    }

    #[test]
    fn a_snapshot_cut_short_or_changed_is_refused() {
        let data: Vec<u8> = (0..3 * SNAPSHOT_CHUNK_BYTES as u32 / 2).map(|i| i as u8).collect();
        let header = header_of(&data);
        // A stream cancelled after its first chunk ends cleanly at the receiver.
        let cut = header.check(&data[..SNAPSHOT_CHUNK_BYTES]).expect_err("a prefix");
        assert!(cut.contains("incomplete snapshot"), "{cut}");
        assert!(header.check(&[]).is_err(), "nothing but the header");
        let mut changed = data.clone();
        changed[SNAPSHOT_CHUNK_BYTES + 7] ^= 0x10;
        let changed = header.check(&changed).expect_err("a flipped bit");
        assert!(changed.contains("checksum"), "{changed}");
        let other_vote = SnapshotHeader { vote: Vote::new(4, 1), ..header.clone() };
        let changed = other_vote.check(&data).expect_err("a changed vote");
        assert!(changed.contains("checksum"), "{changed}");
    }

    #[test]
    fn a_header_announcing_too_much_or_an_entry_beyond_its_vote_is_refused_at_once() {
        let header = header_of(&[1, 2, 3]);
        let encoded = codec::encode(&header);
        assert_eq!(SnapshotHeader::announced(&encoded, 3), Ok(header.clone()));
        let big = SnapshotHeader::announced(&encoded, 2).expect_err("over the limit");
        assert!(big.contains("more than the 2 a node takes"), "{big}");
        let malformed = SnapshotHeader::announced(&encoded[..4], 3).expect_err("cut");
        assert!(malformed.contains("malformed snapshot header"), "{malformed}");
        let empty = SnapshotHeader::announced(&codec::encode(&header_of(&[])), 3);
        assert!(empty.expect_err("no data").contains("carries no data"));
        // Sent by the leader of term 3, ending at an entry of term 5.
        let last = openraft::testing::log_id::<crate::types::TypeConfig>(5, 1, 10);
        let meta = SnapshotMeta { last_log_id: Some(last), ..SnapshotMeta::default() };
        let beyond = SnapshotHeader::new(Vote::new(3, 1), meta.clone(), &[1]);
        let refused = SnapshotHeader::announced(&codec::encode(&beyond), 3).expect_err("beyond");
        assert!(refused.contains("after its sender's vote"), "{refused}");
        let within = SnapshotHeader::new(Vote::new(5, 1), meta, &[1]);
        assert!(SnapshotHeader::announced(&codec::encode(&within), 3).is_ok());
    }
}
