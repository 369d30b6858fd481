//! Sending [`PeerRequest`]s: to a node, or to whichever node leads a shard.
//!
//! A call to this node itself skips gRPC and serialization (the client library sends
//! one-statement requests to the shard leader, which then coordinates them locally). Every call
//! has a deadline. [`Peers::call_shard`] follows leader hints (`NotLeader`), retries other
//! replicas when a node is unreachable or has no leader yet, and backs off between rounds, until
//! the deadline.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use client::connector::Connector;
use client::connector::MESSAGE_BYTES_MAX;
use proto::peer::Kind;
use proto::peer::peer_client::PeerClient;
use replication::codec;
use replication::handshake::Handshake;
use replication::handshake::PeerChannel;
use replication::mux::MuxError;
use replication::mux::PeerMux;
use tokio::time::Instant;
use tonic::transport::Channel;
use txn::types::NodeId;
use txn::types::ShardId;

use crate::clock::NodeClock;
use crate::peer::message::Envelope;
use crate::peer::message::PeerReply;
use crate::peer::message::PeerRequest;
use crate::topology::Topology;

/// The first pause between rounds of retries in [`Peers::call_shard`]; doubles each round.
pub const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// The longest pause between rounds.
pub const RETRY_BACKOFF_MAX: Duration = Duration::from_millis(200);
/// Election timeouts without any leader answering after which a shard call gives up.
pub const NO_LEADER_ELECTIONS: u32 = 3;

/// Simulation only (the chaos harness sets it; nothing else does): every this-many-th call
/// that `call_shard` sends to another node is delivered twice: first a copy whose answer is
/// dropped, then the call itself, as when a call is resent after its stream broke while the
/// first delivery still runs. 0: never. Process-wide, like `replication::canary`.
static DUPLICATE_EVERY: AtomicU64 = AtomicU64::new(0);
/// When not 0, the copy is delivered late instead: 1 to this many milliseconds after the call
/// was sent (as a first delivery whose handler ran late would be), often after the call's
/// whole transaction ended.
static DUPLICATE_LATE_MS: AtomicU64 = AtomicU64::new(0);
/// Calls counted towards [`DUPLICATE_EVERY`].
static RESENDABLE_CALLS: AtomicU64 = AtomicU64::new(0);

/// Delivers every `every`-th resendable call twice from now on (0: none), counting afresh;
/// the copy at once, or up to `late_ms` milliseconds late (0: at once).
pub fn duplicate_calls(every: u64, late_ms: u64) {
    DUPLICATE_EVERY.store(every, Ordering::SeqCst);
    DUPLICATE_LATE_MS.store(late_ms, Ordering::SeqCst);
    RESENDABLE_CALLS.store(0, Ordering::SeqCst);
}

/// Whether to duplicate this call, and if so how late to deliver the copy (zero: at once).
fn duplicate_now() -> Option<Duration> {
    let every = DUPLICATE_EVERY.load(Ordering::Relaxed);
    if every == 0 {
        return None;
    }
    let count = RESENDABLE_CALLS.fetch_add(1, Ordering::Relaxed);
    if count % every != every - 1 {
        return None;
    }
    let late_ms = DUPLICATE_LATE_MS.load(Ordering::Relaxed);
    // Spread over the range by the call's count (a multiplicative hash): deterministic.
    let late = if late_ms == 0 { 0 } else { 1 + count.wrapping_mul(0x9e37_79b9) % late_ms };
    Some(Duration::from_millis(late))
}

/// Why a call got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No answer before the deadline (the request may or may not have taken effect).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The node could not be reached, or answered with a transport error.
    #[error("node {node} unreachable: {why}")]
    Unreachable {
        /// The node.
        node: NodeId,
        /// Why.
        why: String,
    },
}

/// Handles a request addressed to this node (set once the node is built).
pub type LocalHandler =
    Arc<dyn Fn(PeerRequest) -> Pin<Box<dyn Future<Output = PeerReply> + Send>> + Send + Sync>;

/// Where a shard's leader is believed to be (this node's own replicas know best).
pub trait LeaderHints: Send + Sync {
    /// The leader of `shard` as this node sees it, if it replicates the shard.
    fn local_view(&self, shard: ShardId) -> Option<NodeId>;
}

/// This node's view of the other nodes.
pub struct Peers {
    me: NodeId,
    topology: Arc<Topology>,
    /// The cluster's shape as [`Handshake`] names it.
    shape: String,
    connector: Arc<dyn Connector>,
    clock: NodeClock,
    channels: Mutex<BTreeMap<NodeId, Channel>>,
    muxes: Mutex<BTreeMap<NodeId, Arc<PeerMux>>>,
    hints: Mutex<BTreeMap<ShardId, NodeId>>,
    local: OnceLock<LocalHandler>,
    leaders: OnceLock<Arc<dyn LeaderHints>>,
    election_timeout: Duration,
}

impl Peers {
    /// Peers of node `me` in a cluster of `shape` ([`Topology::handshake_shape`]);
    /// `election_timeout` bounds how long a shard call looks for a leader.
    pub fn new(
        me: NodeId,
        topology: Arc<Topology>,
        shape: String,
        connector: Arc<dyn Connector>,
        clock: NodeClock,
        election_timeout: Duration,
    ) -> Peers {
        Peers {
            me,
            shape,
            topology,
            connector,
            clock,
            channels: Mutex::new(BTreeMap::new()),
            muxes: Mutex::new(BTreeMap::new()),
            hints: Mutex::new(BTreeMap::new()),
            local: OnceLock::new(),
            leaders: OnceLock::new(),
            election_timeout,
        }
    }

    /// Installs the handler for requests to this node and the local leader view.
    pub fn bind(&self, local: LocalHandler, leaders: Arc<dyn LeaderHints>) {
        assert!(self.local.set(local).is_ok(), "peers bound twice");
        assert!(self.leaders.set(leaders).is_ok(), "peers bound twice");
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// The shard map.
    pub fn topology(&self) -> &Arc<Topology> {
        &self.topology
    }

    /// A gRPC client for `node`'s Peer service; its requests carry this node's [`Handshake`].
    pub fn client(&self, node: NodeId) -> Option<PeerClient<PeerChannel>> {
        let addr = self.topology.addr(node)?;
        let mut channels = self.channels.lock().expect("channels lock");
        let channel = channels.entry(node).or_insert_with(|| self.connector.channel(addr)).clone();
        let handshake = Handshake::new(self.me, node, &self.shape);
        Some(
            PeerClient::with_interceptor(channel, handshake)
                .max_decoding_message_size(MESSAGE_BYTES_MAX)
                .max_encoding_message_size(MESSAGE_BYTES_MAX),
        )
    }

    /// The message stream to `node` (Raft and transaction messages), shared by all callers.
    pub fn mux(&self, node: NodeId) -> Option<Arc<PeerMux>> {
        let mut muxes = self.muxes.lock().expect("muxes lock");
        if let Some(mux) = muxes.get(&node) {
            return Some(mux.clone());
        }
        let mux = Arc::new(PeerMux::new(self.client(node)?));
        muxes.insert(node, mux.clone());
        Some(mux)
    }

    /// Sends `request` to `node` and waits for the answer until `deadline` elapses.
    pub async fn call(
        &self,
        node: NodeId,
        request: PeerRequest,
        deadline: Duration,
    ) -> Result<PeerReply, CallError> {
        self.send(node, request, deadline, false).await
    }

    /// [`Peers::call`]; `resendable`: a call that [`Peers::call_shard`] would resend after its
    /// stream broke, which the simulation may deliver twice ([`duplicate_calls`]).
    async fn send(
        &self,
        node: NodeId,
        request: PeerRequest,
        deadline: Duration,
        resendable: bool,
    ) -> Result<PeerReply, CallError> {
        if node == self.me {
            let local = self.local.get().expect("peers bound before use").clone();
            return tokio::time::timeout(deadline, local(request))
                .await
                .map_err(|_| CallError::Timeout(deadline));
        }
        let mux = self
            .mux(node)
            .ok_or_else(|| CallError::Unreachable { node, why: "unknown node".into() })?;
        let payload = codec::encode(&Envelope { clock: self.clock.now(), body: request });
        if let Some(late) = duplicate_now().filter(|_| resendable) {
            let (mux, payload) = (mux.clone(), bytes::Bytes::from(payload.clone()));
            tokio::spawn(async move {
                if !late.is_zero() {
                    tokio::time::sleep(late).await;
                }
                mux.call(Kind::Call, 0, payload, deadline).await
            });
            // The copy whose answer is dropped goes first, as the lost first delivery would
            // (unless it is late).
            tokio::task::yield_now().await;
        }
        let response = match mux.call(Kind::Call, 0, payload.into(), deadline).await {
            Err(MuxError::Timeout(_)) => return Err(CallError::Timeout(deadline)),
            Err(MuxError::Unreachable(why)) => return Err(CallError::Unreachable { node, why }),
            Ok(response) => response,
        };
        let reply: Envelope<PeerReply> = codec::decode(&response)
            .map_err(|e| CallError::Unreachable { node, why: format!("malformed reply: {e}") })?;
        self.clock.observe_peer(reply.clock).map_err(|why| CallError::Unreachable { node, why })?;
        Ok(reply.body)
    }

    /// The node to try first for `shard` (`None` if the cluster has no such shard).
    pub fn leader_guess(&self, shard: ShardId) -> Option<NodeId> {
        self.known_leader(shard).or_else(|| self.topology.replicas(shard).first().copied())
    }

    /// The leader of `shard` as far as this node knows: its own replica's view, else the node
    /// that last answered a call to the shard as its leader.
    pub fn known_leader(&self, shard: ShardId) -> Option<NodeId> {
        if let Some(leader) = self.leaders.get().and_then(|view| view.local_view(shard)) {
            return Some(leader);
        }
        self.hints.lock().expect("hints lock").get(&shard).copied()
    }

    fn remember(&self, shard: ShardId, leader: NodeId) {
        self.hints.lock().expect("hints lock").insert(shard, leader);
    }

    /// How long [`Peers::call_shard`] keeps trying when no node answers as the shard's leader:
    /// a few election timeouts (an election takes one), after which this node is probably cut
    /// off from the shard and its caller should hear so rather than wait out its deadline.
    pub fn no_leader_limit(&self) -> Duration {
        NO_LEADER_ELECTIONS * self.election_timeout
    }

    /// Sends `request` to the leader of `shard`, following hints and retrying until `deadline`.
    /// Returns the answering node and its reply; `NotLeader` and `Unavailable` never come back
    /// (they are retried), except as the last answer seen when the deadline passes.
    pub async fn call_shard(
        &self,
        shard: ShardId,
        request: PeerRequest,
        deadline: Duration,
    ) -> Result<(NodeId, PeerReply), CallError> {
        let until = Instant::now() + deadline;
        let replicas = self.topology.replicas(shard).to_vec();
        let Some(mut target) = self.leader_guess(shard) else {
            let why = format!("the cluster has no {shard}");
            return Err(CallError::Unreachable { node: self.me, why });
        };
        let mut backoff = RETRY_BACKOFF_MIN;
        let mut round = 0usize;
        // The nodes asked since the last pause: a hint naming one of them again (two nodes
        // naming each other during an election) waits for the next round instead of sending
        // at once (found by a review, 2026-12-07: calls went back and forth without a pause
        // for up to `no_leader_limit`).
        let mut asked = BTreeSet::new();
        let mut leaderless_until = Instant::now() + self.no_leader_limit();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(CallError::Timeout(deadline));
            }
            if Instant::now() >= leaderless_until {
                return Err(CallError::Unreachable {
                    node: target,
                    why: format!(
                        "no leader of {shard} answered within {:?}",
                        self.no_leader_limit()
                    ),
                });
            }
            let started = Instant::now();
            asked.insert(target);
            let outcome = self.send(target, request.clone(), left, true).await;
            if started.elapsed() >= self.no_leader_limit() {
                // A call served that long (a lock wait at a live leader) is no sign of a
                // missing leader, whatever ended it (a broken stream, a superseded wait):
                // counted, it left no time to send the call again (a review found it,
                // 2026-12-06).
                leaderless_until = Instant::now() + self.no_leader_limit();
            }
            let next = match outcome {
                Ok(PeerReply::NotLeader { leader: Some(leader) }) if leader != target => {
                    self.remember(shard, leader);
                    (!asked.contains(&leader)).then_some(leader)
                }
                Ok(PeerReply::NotLeader { .. })
                | Ok(PeerReply::Unavailable(_))
                | Err(CallError::Unreachable { .. }) => None,
                Ok(reply) => {
                    self.remember(shard, target);
                    return Ok((target, reply));
                }
                Err(timeout @ CallError::Timeout(_)) => return Err(timeout),
            };
            target = match next {
                Some(leader) => leader,
                None => {
                    round += 1;
                    asked.clear();
                    let pause = backoff.min(until.saturating_duration_since(Instant::now()));
                    tokio::time::sleep(pause).await;
                    backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
                    match self.leader_guess(shard) {
                        Some(guess) if guess != target => guess,
                        _ => replicas[round % replicas.len()],
                    }
                }
            };
        }
    }
}
