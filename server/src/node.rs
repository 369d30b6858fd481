//! A node: storage, one Raft group per shard it replicates, the coordinator, and the two gRPC
//! services (public `kv.v1.Kv`, internal `peer.v1.Peer`).
//!
//! The same code runs in production and in the simulation; what differs is chosen at start
//! through [`StartOptions`]: how peers are reached (real or simulated TCP), where time comes
//! from (system clock or simulated clock with skew), how the database is opened (a file, or a
//! simulated disk) and where its writer runs (a thread, or a task).
//!
//! Start-up order: open the database and claim its identity (refusing a data directory of
//! another node), start each shard's Raft group (initializing it on the very first start, with
//! its vote gate closed and its elections off until `participant::rejoin` opens it), start the
//! participants' background loops and the coordinator's sweeper, then serve.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Weak;
use std::time::Duration;

use client::connector::Connector;
use client::connector::MESSAGE_BYTES_MAX;
use openraft::BasicNode;
use openraft::SnapshotPolicy;
use openraft::async_runtime::WatchReceiver;
use openraft::error::InitializeError;
use openraft::error::RaftError;
use proto::peer::peer_client::PeerClient;
use replication::handshake::Admission;
use replication::handshake::PeerChannel;
use replication::mux::PeerMux;
use replication::network;
use replication::network::PeerConnector;
use replication::network::ShardNetworkFactory;
use replication::store::Databases;
use replication::store::Executor;
use replication::store::IdentityError;
use replication::store::Store;
use replication::types::Raft;
use replication::vote_gate::VoteGate;
use tonic::service::interceptor::InterceptedService;
use txn::types::NodeId;
use txn::types::ShardId;

use crate::api::kv_service::KvService;
use crate::clock::NodeClock;
use crate::clock::PhysicalClock;
use crate::config::NodeConfig;
use crate::context::NodeContext;
use crate::coordinator::Coordinator;
use crate::participant::PrepareKind;
use crate::participant::Shard;
use crate::participant::rejoin;
use crate::peer::caller::LeaderHints;
use crate::peer::caller::LocalHandler;
use crate::peer::caller::Peers;
use crate::peer::message::PeerReply;
use crate::peer::message::PeerRequest;
use crate::peer::service::PeerService;
use crate::topology::Topology;

/// How often a node checks that its storage still works ([`Node::storage_failure`]).
pub const STORAGE_CHECK_PERIOD: Duration = Duration::from_millis(500);
/// How long a clean stop waits for the shards it leads to move to other replicas.
pub const HAND_OFF_MAX: Duration = Duration::from_secs(2);
/// How often a node checks how much its WAL holds.
pub const WAL_CHECK_EVERY: Duration = Duration::from_secs(5);
/// WAL segments a node keeps before it makes the shards that keep the oldest one snapshot and
/// purge (a shard that appends little snapshots rarely by entry count, and keeps every segment
/// since its oldest unpurged entry).
pub const WAL_SEGMENTS_KEPT: usize = 4;
/// Entries per AppendEntries message at most.
pub const APPEND_ENTRIES_MAX: u64 = 256;
/// The fewest calls in flight at once a connection to this node may have (HTTP/2
/// `max_concurrent_streams`, otherwise `session_requests_max`): room for what a connection
/// carries besides a client's own calls (see [`Node::router`]).
pub const CONNECTION_STREAMS_MIN: usize = 64;

/// What differs between production and the simulation.
pub struct StartOptions {
    /// How peers are reached.
    pub connector: Arc<dyn Connector>,
    /// Where physical time comes from.
    pub physical: Arc<dyn PhysicalClock>,
    /// Where the database writer runs.
    pub executor: Executor,
    /// Already opened databases (the simulation's disk); `None` opens them in `config.data`.
    pub database: Option<replication::store::Databases>,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory cannot be used.
    #[error("{0}")]
    Identity(#[from] IdentityError),
    /// The data directory could not be created, or is not a directory.
    #[error("cannot use the data directory {path}: {error}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// Storage or Raft failed to start.
    #[error("{0}")]
    Start(String),
}

impl StartError {
    /// True if the node's Raft log is damaged (its data must be replaced, not retried).
    pub fn is_damaged_log(&self) -> bool {
        matches!(self, StartError::Identity(IdentityError::DamagedLog(_)))
    }
}

/// A running node.
pub struct Node {
    ctx: Arc<NodeContext>,
    shards: BTreeMap<ShardId, Arc<Shard>>,
    coordinator: Arc<Coordinator>,
    store: Store,
    /// Set when the node stops serving. It ends the message streams that other nodes keep
    /// open to this one, which a graceful shutdown of the gRPC server would wait for forever.
    stopping: tokio::sync::watch::Sender<bool>,
}

/// The Raft settings of every group, from the node's timing configuration.
fn raft_config(config: &NodeConfig) -> Result<Arc<openraft::Config>, StartError> {
    let timing = &config.timing;
    let raft = openraft::Config {
        cluster_name: "kvd".into(),
        heartbeat_interval: timing.heartbeat_ms,
        election_timeout_min: timing.election_min_ms,
        election_timeout_max: timing.election_max_ms,
        enable_pre_vote: Some(true),
        // A restarted leader must win an election again: its state machine may be behind what
        // it had applied before the crash (applies are not flushed), and serving or granting
        // locks from it would lose acknowledged writes (openraft documents this hazard).
        enable_leader_restore: Some(false),
        // A replica whose data directory was lost comes back with an empty log under its old
        // id. A leader that saw its old log matched would resend from there and be refused
        // forever; with this it replicates to it afresh. Its votes are what could lose
        // committed entries, and they stay withheld until it caught up
        // (`replication::vote_gate`, `participant::rejoin`).
        allow_log_reversion: Some(true),
        // Off from the start: a group campaigns only once its vote gate allows it
        // (`Shard::campaign_if_allowed`). Turned off after `Raft::new`, it left a window in
        // which a slow start could campaign, a vote for itself (a review, 2026-12-07).
        enable_elect: false,
        max_payload_entries: APPEND_ENTRIES_MAX,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(config.limits.snapshot_every_entries),
        max_in_snapshot_log_to_keep: config.limits.log_kept_behind_snapshot,
        install_snapshot_timeout: timing.rpc_ms.max(10_000),
        ..openraft::Config::default()
    };
    raft.validate().map(Arc::new).map_err(|e| StartError::Start(format!("raft config: {e}")))
}

/// Reaches other nodes' Peer services for the Raft transport.
struct RaftConnector(Arc<Peers>);

impl PeerConnector for RaftConnector {
    fn peer(&self, target: NodeId) -> Option<PeerClient<PeerChannel>> {
        self.0.client(target)
    }

    fn mux(&self, target: NodeId) -> Option<Arc<PeerMux>> {
        self.0.mux(target)
    }
}

/// The safe times of this node's replicas, for the coordinator's snapshot choice.
struct LocalSafeTimes(Weak<Node>);

impl crate::coordinator::snapshot::LocalReplicas for LocalSafeTimes {
    fn safe_time(&self, shard: ShardId) -> Option<txn::types::Timestamp> {
        self.0.upgrade()?.shard(shard)?.safe_time().ok().map(|(safe, _)| safe)
    }

    fn note_causal_reader(&self, shard: ShardId) {
        if let Some(node) = self.0.upgrade()
            && let Some(replica) = node.shard(shard)
        {
            replica.note_causal_reader();
        }
    }
}

/// Runs a handler in a task of its own, so that it completes even if its caller goes away.
async fn detached<F>(handler: F) -> PeerReply
where
    F: std::future::Future<Output = PeerReply> + Send + 'static,
{
    tokio::spawn(handler)
        .await
        .unwrap_or_else(|error| PeerReply::Unavailable(format!("the handler failed: {error}")))
}

/// Every `WAL_CHECK_EVERY`: if the WAL holds more than `WAL_SEGMENTS_KEPT` segments, the local
/// replicas of the shards that keep its oldest one snapshot and purge, so that it can go; and
/// a state database that committed only volatilely since the last round is made durable
/// (`Store::checkpoint_state_if_idle`).
async fn wal_compaction_loop(node: Weak<Node>) {
    loop {
        tokio::time::sleep(WAL_CHECK_EVERY).await;
        let Some(node) = node.upgrade() else { return };
        // A failure stops the writer, and the node with it (`Node::storage_failure`).
        let _ = node.store.checkpoint_state_if_idle().await;
        let pressure = node.store.wal_pressure();
        if pressure.segments <= WAL_SEGMENTS_KEPT {
            continue;
        }
        for shard in pressure.pinning {
            if let Some(replica) = node.shard(shard) {
                replica.compact_log().await;
            }
        }
    }
}

/// The leader of a shard as this node's own replica sees it.
struct LocalLeaders(Weak<Node>);

impl LeaderHints for LocalLeaders {
    fn local_view(&self, shard: ShardId) -> Option<NodeId> {
        self.0.upgrade()?.shard(shard)?.current_leader()
    }
}

/// Initializes `shard`'s group with its replicas as members, unless its storage holds anything
/// at all (a log entry, a purged prefix or a vote): openraft refuses then, and that refusal is
/// the usual answer on every start but the first. Asking on every start, instead of on the
/// first (the identity's `fresh`), also covers a first start that saved the identity and then
/// died before its groups were initialized: on restart it would otherwise never initialize, and
/// a shard whose replicas all did that would never elect a leader (a review found it,
/// 2026-12-06). Every replica initializes with the same membership (openraft documents this as
/// safe); whoever is elected first leads.
async fn initialize(raft: &Raft, shard: ShardId, topology: &Topology) {
    let members: BTreeMap<NodeId, BasicNode> = topology
        .replicas(shard)
        .iter()
        .map(|id| (*id, BasicNode::new(topology.addr(*id).unwrap_or_default())))
        .collect();
    crate::failpoint::panic_at("initialize", || ());
    match raft.initialize(members).await {
        Ok(()) => tracing::info!(%shard, "initialized the group"),
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
        Err(error) => tracing::warn!(%shard, %error, "could not initialize the group"),
    }
}

impl Node {
    /// Starts a node. Must run inside `replication::types::with_seed` (openraft's timers draw
    /// from its seeded generator).
    pub async fn start(config: NodeConfig, options: StartOptions) -> Result<Arc<Node>, StartError> {
        let config = Arc::new(config);
        let topology = Arc::new(Topology::new(config.peers.clone(), config.shards));
        let members: Vec<NodeId> = config.peers.keys().copied().collect();
        let databases = match options.database {
            Some(db) => db,
            None => {
                let data_dir = |error| StartError::DataDir { path: config.data.clone(), error };
                if config.data.exists() && !config.data.is_dir() {
                    let kind = std::io::ErrorKind::NotADirectory;
                    return Err(data_dir(std::io::Error::new(kind, "it is not a directory")));
                }
                replication::store::disk::create_dir_durably(&config.data).map_err(data_dir)?;
                Databases::open_dir(&config.data)?
            }
        };
        // A fresh data directory (a new node, or one that lost its disk) counts its
        // incarnations from the clock, never again from 1 (`identity::claim`).
        let databases = Databases { first_incarnation: options.physical.now_ms(), ..databases };
        let store = Store::open(databases, options.executor, config.id, config.shards, &members)?;
        let identity = store.identity();
        let clock = NodeClock::new(options.physical);
        let peers = Arc::new(Peers::new(
            config.id,
            topology.clone(),
            topology.handshake_shape(&config.timing),
            options.connector,
            clock.clone(),
            Duration::from_millis(config.timing.election_max_ms),
        ));
        let ctx = Arc::new(NodeContext::new(
            identity.incarnation,
            config.clone(),
            topology.clone(),
            clock,
            peers.clone(),
        ));
        let raft_config = raft_config(&config)?;
        let raft_connector: Arc<dyn PeerConnector> = Arc::new(RaftConnector(peers.clone()));
        let sending = network::snapshot_permits(network::SNAPSHOTS_SENT_MAX);
        let mut shards = BTreeMap::new();
        for shard in topology.shards_of(config.id) {
            let (log, state_machine) = store
                .open_shard(shard)
                .await
                .map_err(|e| StartError::Start(format!("{shard}: {e}")))?;
            let network = ShardNetworkFactory::new(
                shard,
                raft_connector.clone(),
                log.clone(),
                sending.clone(),
            );
            let meta_only = state_machine.meta_only_snapshots();
            let raft =
                Raft::new(config.id, raft_config.clone(), network, log.clone(), state_machine)
                    .await
                    .map_err(|e| StartError::Start(format!("{shard}: {e}")))?;
            drop(meta_only);
            initialize(&raft, shard, &topology).await;
            let gate = store
                .vote_gate(shard)
                .map_err(|e| StartError::Start(format!("{shard}: vote gate: {e}")))?;
            let quiet = Duration::from_millis(config.timing.election_max_ms);
            let gate = Arc::new(VoteGate::new(gate, quiet));
            let reader = store.reader(shard);
            // The clock starts past what the replica closed before the restart: started at a
            // physical clock that runs behind (more than the retention window in the worst
            // case), its transactions began below the collected watermark, and their commits
            // were refused until a message from a peer moved the clock (a review found it,
            // 2026-12-07; no test of its own).
            if let Ok((closed, _, _)) = reader.safe_time_parts() {
                ctx.clock.observe(closed);
            }
            shards.insert(shard, Shard::new(shard, raft, log, reader, gate, ctx.clone()));
        }
        let coordinator = Coordinator::new(ctx.clone());
        let node = Arc::new(Node {
            ctx,
            shards,
            coordinator: coordinator.clone(),
            store,
            stopping: tokio::sync::watch::Sender::new(false),
        });
        let weak = Arc::downgrade(&node);
        let local: LocalHandler = Arc::new(move |request| {
            let weak = weak.clone();
            Box::pin(async move {
                match weak.upgrade() {
                    Some(node) => node.handle(request).await,
                    None => PeerReply::Unavailable("the node is stopping".into()),
                }
            })
        });
        peers.bind(local, Arc::new(LocalLeaders(Arc::downgrade(&node))));
        coordinator.bind_replicas(Arc::new(LocalSafeTimes(Arc::downgrade(&node))));
        for shard in node.shards.values() {
            shard.start();
            if !shard.gate.is_open() {
                let opened = node.store.vote_gate_opener(shard.id);
                tokio::spawn(rejoin::open_votes(shard.clone(), opened));
            }
        }
        tokio::spawn(coordinator.sweep_loop());
        tokio::spawn(wal_compaction_loop(Arc::downgrade(&node)));
        tracing::info!(
            node = config.id,
            incarnation = identity.incarnation,
            fresh = identity.fresh,
            "node started"
        );
        Ok(node)
    }

    /// Refuses a request whose body carries a timestamp that this node's clock would adopt, or
    /// write as a version, further ahead than a peer's clock may be
    /// ([`NodeClock::check_peer`]): the largest vote of a commit at home, and a phase 2's
    /// commit timestamp (a `Decide` of COMMITTED is refused whole by [`well_formed`]).
    fn body_timestamps_in_bounds(&self, request: &PeerRequest) -> Result<(), String> {
        let committed = |decision: &txn::command::Decision| match decision {
            txn::command::Decision::Committed { commit_ts } => Some(*commit_ts),
            txn::command::Decision::Aborted { .. } => None,
        };
        let carried = match request {
            PeerRequest::CommitAtHome { after, .. } => {
                Some(("the votes' largest timestamp", *after))
            }
            PeerRequest::Finalize { decision, .. } => {
                committed(decision).map(|ts| ("the commit timestamp", ts))
            }
            _ => None,
        };
        match carried {
            Some((what, ts)) => self.ctx.clock.check_peer(ts, what),
            None => Ok(()),
        }
    }

    /// The node's context.
    pub fn context(&self) -> &Arc<NodeContext> {
        &self.ctx
    }

    /// The node's clock.
    pub fn clock(&self) -> &NodeClock {
        &self.ctx.clock
    }

    /// The coordinator.
    pub fn coordinator(&self) -> &Arc<Coordinator> {
        &self.coordinator
    }

    /// The local replica of a shard.
    pub fn shard(&self, shard: ShardId) -> Option<&Arc<Shard>> {
        self.shards.get(&shard)
    }

    /// Every local replica.
    pub fn shards(&self) -> impl Iterator<Item = &Arc<Shard>> {
        self.shards.values()
    }

    /// The storage (its writer fails the node when a commit fails).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Handles a request from another node (or from this one).
    pub async fn handle(&self, request: PeerRequest) -> PeerReply {
        let no_such_shard = |shard: ShardId| {
            PeerReply::Invalid(format!(
                "the cluster has no {shard} ({})",
                self.ctx.topology.shape()
            ))
        };
        let shard_of = |shard: ShardId| match self.shards.get(&shard) {
            Some(replica) => Ok(replica.clone()),
            None if !self.ctx.topology.has(shard) => Err(no_such_shard(shard)),
            None => Err(PeerReply::NotLeader {
                leader: self.ctx.peers.leader_guess(shard).filter(|l| *l != self.ctx.me),
            }),
        };
        macro_rules! on_shard {
            ($shard:expr, |$replica:ident| $body:expr) => {
                match shard_of($shard) {
                    Ok($replica) => $body,
                    Err(reply) => reply,
                }
            };
        }
        // A prepare names the shard of the transaction's record, which its participant
        // replicates and resolves through later: one the cluster lacks could never resolve.
        if let PeerRequest::Prepare(prepare)
        | PeerRequest::CommitOnePhase(prepare)
        | PeerRequest::CommitAtHome { request: prepare, .. } = &request
            && !self.ctx.topology.has(prepare.home)
        {
            return no_such_shard(prepare.home);
        }
        if let Err(why) =
            well_formed(&request).and_then(|()| self.body_timestamps_in_bounds(&request))
        {
            return PeerReply::Invalid(why);
        }
        match request {
            PeerRequest::Lock(request) => {
                on_shard!(request.shard, |s| s.handle_lock(request).await)
            }
            // Handlers that change state after a proposal must finish even when their caller
            // gives up (a dropped handler would leave locks, or a timestamp that holds the
            // closed timestamp back, behind): they run in tasks of their own.
            PeerRequest::Prepare(request) => {
                on_shard!(request.shard, |s| detached(async move {
                    s.handle_prepare(request, PrepareKind::Vote).await
                })
                .await)
            }
            PeerRequest::CommitOnePhase(request) => {
                on_shard!(request.shard, |s| detached(async move {
                    s.handle_prepare(request, PrepareKind::OnePhase).await
                })
                .await)
            }
            PeerRequest::CommitAtHome { request, after } => {
                on_shard!(request.shard, |s| detached(async move {
                    s.handle_prepare(request, PrepareKind::AtHome { after }).await
                })
                .await)
            }
            PeerRequest::Finalize { shard, txn, decision, prepared } => {
                on_shard!(shard, |s| detached(async move {
                    s.handle_finalize(txn, decision, prepared).await
                })
                .await)
            }
            PeerRequest::Release { shard, txn } => on_shard!(shard, |s| s.handle_release(txn)),
            PeerRequest::Decide { shard, txn, decision, one_phase } => {
                on_shard!(shard, |s| detached(async move {
                    s.handle_decide(txn, decision, one_phase).await
                })
                .await)
            }
            PeerRequest::Finish { shard, txn } => {
                on_shard!(shard, |s| detached(async move { s.handle_finish(txn).await }).await)
            }
            PeerRequest::Status { shard, txn, resolve, prepared_here } => {
                on_shard!(shard, |s| detached(async move {
                    s.handle_status(txn, resolve, prepared_here).await
                })
                .await)
            }
            PeerRequest::Single { shard, txn, op } => {
                on_shard!(shard, |s| s.handle_single(txn, op).await)
            }
            PeerRequest::ProbeShard { shard, probe } => on_shard!(shard, |s| s.handle_probe(probe)),
            PeerRequest::Confirm { shard, confirmation } => {
                on_shard!(shard, |s| s.confirm(confirmation))
            }
            PeerRequest::ProbeTxn { probe } => self.coordinator.handle_probe(probe),
            PeerRequest::Alive { txns } => PeerReply::Alive(
                txns.iter()
                    .map(|txn| self.ctx.is_mine(txn) && self.ctx.registry.is_live(txn))
                    .collect(),
            ),
            PeerRequest::Waits => {
                PeerReply::Waits(self.shards.values().flat_map(|s| s.waits()).collect())
            }
            PeerRequest::Inspect { shard } => on_shard!(shard, |s| s.inspect()),
            PeerRequest::RaftState { shard } => on_shard!(shard, |s| s.raft_state()),
            PeerRequest::SnapshotRead { shard, at, op, wait_ms } => {
                on_shard!(shard, |s| s
                    .handle_snapshot_read(at, op, Duration::from_millis(wait_ms))
                    .await)
            }
            PeerRequest::WantCloses { shard } => on_shard!(shard, |s| s.handle_want_closes()),
            PeerRequest::Acquire(request) => {
                on_shard!(request.shard, |s| s.handle_acquire(request).await)
            }
        }
    }

    /// The gRPC services of this node, ready to serve.
    pub fn router(self: &Arc<Node>) -> tonic::transport::server::Router {
        let kv = proto::kv::kv_server::KvServer::new(KvService::new(self.clone()))
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX);
        let peer = proto::peer::peer_server::PeerServer::new(PeerService::new(self.clone()))
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX);
        // Requests from a node of another cluster shape, or meant for another node, are refused.
        let admission = Admission::new(
            self.ctx.config.id,
            &self.ctx.topology.handshake_shape(&self.ctx.config.timing),
        );
        let peer = InterceptedService::new(peer, admission);
        // A connection's calls in flight at once, as a Session stream's requests: HTTP/2
        // streams past it wait at the client (tonic's default is no limit, so a client's
        // unary calls could hold as many lock waits and unsent replies as it liked). At least
        // CONNECTION_STREAMS_MIN whatever `session_requests_max` says: a node's connection to
        // another carries its Mux stream (two for a moment after a break) and its snapshot
        // transfers, and a client's carries its Session stream and its Topology and STATUS calls.
        let limit = self.ctx.config.limits.session_requests_max.max(CONNECTION_STREAMS_MIN);
        let streams = u32::try_from(limit).unwrap_or(u32::MAX);
        tonic::transport::Server::builder()
            .max_concurrent_streams(Some(streams))
            .http2_keepalive_interval(Some(Duration::from_millis(500)))
            .http2_keepalive_timeout(Some(Duration::from_secs(1)))
            .tcp_nodelay(true)
            .add_service(kv)
            .add_service(peer)
    }

    /// Ends the message streams from other nodes (see [`Node::stopping`]); call before a
    /// graceful shutdown of the gRPC server.
    pub fn stop_serving(&self) {
        self.stopping.send_replace(true);
    }

    /// The first half of a stop (`kvd` on SIGTERM, Ctrl-C or a storage failure; the
    /// simulation's clean restarts): on a clean stop (not a storage failure) the shards led
    /// here move to other replicas first, within [`HAND_OFF_MAX`], so that their clients wait a
    /// round trip, not an election timeout; then the node stops serving
    /// ([`Node::stop_serving`]). What is left is the gRPC server's graceful shutdown and
    /// [`Node::shutdown`].
    pub async fn begin_stop(&self) {
        if self.failure().is_none() {
            self.hand_off_leaders(HAND_OFF_MAX).await;
        }
        self.stop_serving();
    }

    /// Hands every shard this node leads to another replica before a clean stop
    /// ([`Shard::hand_off_before_stop`]), all at once, within `within`.
    pub async fn hand_off_leaders(&self, within: Duration) {
        let shards = self.shards.values().map(|shard| shard.hand_off_before_stop(within));
        let _ = tokio::time::timeout(within, futures::future::join_all(shards)).await;
    }

    /// Becomes true when the node stops serving.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Resolves once the node's storage has failed (a failed commit stops its writer for
    /// good, fail-stop: retrying an fsync after an error is unsafe), once its data directory
    /// is no longer the one it opened (`replication::store::presence`), or once one of its Raft
    /// groups has stopped on a fatal error (openraft stops a group whose storage call fails,
    /// and a node that went on serving with it stopped would keep that shard's replica behind
    /// for good, serving stale causal reads from it). The node must then stop serving and
    /// exit; what it acknowledged is durable, and a restart recovers from the disk. Checked
    /// every [`STORAGE_CHECK_PERIOD`]. (A disk that stalls has a watchdog of its own,
    /// `replication::store::stall`, started by `cli::serve`.)
    pub async fn storage_failure(&self) {
        loop {
            if let Some(why) = self.failure() {
                tracing::error!("{why}; stopping");
                return;
            }
            tokio::time::sleep(STORAGE_CHECK_PERIOD).await;
        }
    }

    /// Why [`Node::storage_failure`] resolves, if it has cause to. Ask before
    /// [`Node::shutdown`], which stops every group.
    pub fn failure(&self) -> Option<String> {
        if let Some(why) = self.store.failure() {
            return Some(format!(
                "storage failed ({why}); fix the disk (free space if it is full) and start the \
                 node again: it recovers what it had synced"
            ));
        }
        if let Some(why) = self.store.directory_lost() {
            return Some(format!(
                "the data directory {} was deleted, moved or replaced while the node ran ({why}); \
                 nothing written from now on would be there at the next start, so the node \
                 stops. Start it again on the directory it should use: on an empty one it \
                 copies everything back from the other replicas before it votes",
                self.ctx.config.data.display()
            ));
        }
        self.shards.values().find_map(|shard| {
            let metrics = shard.raft.metrics();
            let fatal = metrics.borrow_watched().running_state.as_ref().err()?.to_string();
            Some(format!("the Raft group of {} stopped: {fatal}", shard.id))
        })
    }

    /// Stops the Raft groups (the database is closed when the node is dropped).
    pub async fn shutdown(&self) {
        for shard in self.shards.values() {
            let _ = shard.raft.shutdown().await;
        }
    }
}

/// Checks what a peer request carries that no correct node sends and that a replica would
/// apply as it came (a node of another build, a tool on the peer port): a prepare's writes
/// naming one key twice (the second version failed the apply's order assertion on every
/// replica, at every replay), a `Decide` of COMMITTED (only a commit at home records that,
/// with its writes), a lock wait longer than any period (its deadline overflowed), a deadlock
/// confirmation that is not a cycle (an assertion under the shard's state lock poisoned it), a
/// deadlock probe that is not a wait-for path (an empty one panicked at a coordinator, which
/// reads its last holder). Found by reviews, 2026-12-07.
fn well_formed(request: &PeerRequest) -> Result<(), String> {
    let too_long = |wait_ms: u64| {
        (wait_ms > crate::config::TIMING_MS_MAX)
            .then(|| format!("a wait of {wait_ms} ms is longer than any period"))
    };
    let why = match request {
        PeerRequest::Prepare(prepare)
        | PeerRequest::CommitOnePhase(prepare)
        | PeerRequest::CommitAtHome { request: prepare, .. }
        | PeerRequest::Acquire(prepare) => {
            let mut keys: Vec<&[u8]> = prepare.writes.iter().map(|w| w.key.as_slice()).collect();
            keys.sort_unstable();
            let repeated = keys.windows(2).any(|pair| pair[0] == pair[1]);
            if repeated {
                Some(format!("{}'s writes name a key twice", prepare.txn))
            } else {
                too_long(prepare.wait_ms)
            }
        }
        PeerRequest::SnapshotRead { wait_ms, .. } => too_long(*wait_ms),
        PeerRequest::Decide { txn, decision: txn::command::Decision::Committed { .. }, .. } => {
            Some(format!("{txn}: a Decide records ABORTED only"))
        }
        PeerRequest::Confirm { confirmation, .. } if !confirmation.is_well_formed() => {
            Some(format!("not a deadlock cycle: {}", confirmation.deadlock))
        }
        PeerRequest::ProbeTxn { probe } | PeerRequest::ProbeShard { probe, .. }
            if !probe.is_well_formed() =>
        {
            Some(format!("not a wait-for path: {} edges", probe.edges.len()))
        }
        _ => None,
    };
    why.map_or(Ok(()), Err)
}
