//! The real cluster in a turmoil simulation: every node is a turmoil host running the same node
//! code as `kvd` (`server::node::Node`), over simulated TCP, a simulated disk and a simulated
//! clock; everything derives from one seed.
//!
//! The driver (the test or the runner) owns the [`SimCluster`] and steps the simulation. It
//! crashes and restarts nodes (flipping each node's disk kill switch first), fails disks under
//! running nodes, loses or damages a stopped node's data (and replaces the disk of a node that
//! refused to start on it, as its operator would), partitions links, and skews clocks. Clients are turmoil client hosts that use
//! the ordinary client library over [`SimConnector`].

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicI64;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::SystemTime;

use replication::store::Databases;
use replication::store::Executor;
use replication::store::NODE_FILE;
use replication::store::STATE_FILE;
use server::cli::SHUTDOWN_DRAIN_MAX;
use server::config::Consistency;
use server::config::Limits;
use server::config::NodeConfig;
use server::config::Timing;
use server::node::Node;
use server::node::StartOptions;
use turmoil::Sim;
use txn::types::NodeId;
use txn::types::ShardId;

use crate::sim::clock::SimClock;
use crate::sim::disk::DATA_DIR;
use crate::sim::disk::DiskSwitch;
use crate::sim::disk::SECTOR_BYTES;
use crate::sim::disk::SimFileBackend;
use crate::sim::disk::SimLogDir;
use crate::sim::disk::rot_a_log_bit;
use crate::sim::net::NODE_PORT;
use crate::sim::net::SimConnector;
use crate::sim::net::incoming;

/// The simulated wall clock starts here (so that timestamps replay exactly).
pub const SIM_EPOCH_SECS: u64 = 1_790_000_000;
/// The longest a simulation may run in simulated time.
pub const SIM_DURATION_MAX: Duration = Duration::from_secs(3600);
/// How often a simulated node looks for leadership transfers the driver asked of it.
pub const TRANSFER_POLL: Duration = Duration::from_millis(10);
/// WAL segments in the simulation: small, so that runs rotate and delete segments, and the WAL
/// compaction loop has work (and turmoil's in-memory disk does not hold 64 MiB of reserved space
/// per node).
pub const SIM_WAL_SEGMENT_BYTES: u64 = 16 << 10;
/// The byte budget of one AppendEntries in the simulation (8 MiB in production): a few entries,
/// so that a follower catching up after a crash or a partition gets its backlog in many
/// messages (openraft sends the rest of its range in the next ones).
pub const SIM_APPEND_BYTES_MAX: usize = 1 << 10;

/// Leadership transfers the driver asks of a node: (shard, new leader). The node takes them
/// on its next [`TRANSFER_POLL`]; a crashed node's requests wait for its restart.
pub type TransferRequests = Arc<Mutex<Vec<(ShardId, NodeId)>>>;

/// The shards of a [`ClusterSpec::new`] cluster.
pub const SHARDS: u32 = 4;

/// What to build.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// Everything derives from this.
    pub seed: u64,
    /// Number of nodes (3 or 5).
    pub nodes: u64,
    /// Number of shards.
    pub shards: u32,
    /// Node timing.
    pub timing: Timing,
    /// Simulated network latency range.
    pub latency: (Duration, Duration),
    /// How long a durable commit (an fsync) takes on the simulated disks.
    pub fsync: Duration,
}

impl ClusterSpec {
    /// A spec with the simulation's usual settings.
    pub fn new(seed: u64, nodes: u64) -> ClusterSpec {
        ClusterSpec {
            seed,
            nodes,
            shards: SHARDS,
            timing: sim_timing(),
            latency: (Duration::from_millis(1), Duration::from_millis(5)),
            fsync: Duration::from_millis(1),
        }
    }
}

/// Timing for simulated nodes: the defaults, with shorter give-up limits so that a run of tens
/// of simulated seconds sees recoveries happen, and a retention window short enough that
/// garbage collection runs (in passes, every quarter of it) under the nemesis.
pub fn sim_timing() -> Timing {
    Timing {
        lock_wait_ms: 4_000,
        idle_ms: 8_000,
        rpc_ms: 1_500,
        prepared_resolve_ms: 1_000,
        coordinator_lost_ms: 1_500,
        retention_ms: 6_000,
        ..Timing::default()
    }
}

/// Limits for simulated nodes: the defaults, with snapshots every 200 entries for even seeds,
/// so that runs snapshot, purge the log, delete WAL segments and install snapshots on lagging
/// replicas; odd seeds never snapshot by entry count, so only the node's WAL compaction loop
/// (`server::node::WAL_SEGMENTS_KEPT`) makes shards snapshot and purge.
pub fn sim_limits(seed: u64) -> Limits {
    let never = server::config::COUNT_LIMIT;
    let snapshot_every_entries = if seed.is_multiple_of(2) { 200 } else { never };
    Limits {
        snapshot_every_entries,
        log_kept_behind_snapshot: 50,
        // Small tables: passes this short split the versions of one key too.
        collect_pass_rows: 8,
        ..Limits::default()
    }
}

/// The turmoil host name of a node.
pub fn host_name(id: NodeId) -> String {
    format!("n{id}")
}

/// The address of a node.
pub fn node_addr(id: NodeId) -> String {
    format!("{}:{NODE_PORT}", host_name(id))
}

/// One simulated node, as the driver sees it.
#[derive(Clone, Debug)]
pub struct SimNode {
    /// Its id.
    pub id: NodeId,
    /// Its host name.
    pub name: String,
    /// Its disk: dead while crashed, or once it failed under the node.
    pub disk: Arc<DiskSwitch>,
    /// Its clock skew in milliseconds.
    pub skew_ms: Arc<AtomicI64>,
    /// Leadership transfers asked of it.
    pub transfers: TransferRequests,
    /// Set to make it stop cleanly, as `kvd` does on SIGTERM ([`SimCluster::terminate`]).
    pub terminate: Arc<AtomicBool>,
    /// False while crashed.
    pub running: bool,
    /// True once it stopped by itself on its failed disk, or finished a clean stop, and its
    /// links were cut ([`SimCluster::cut_stopped_nodes`]), until its restart.
    pub stopped: bool,
    /// True from [`SimCluster::terminate`] to its restart: down for the nemesis, but while its
    /// host still runs (handing over, answering, draining) its links are those of a live node.
    pub terminated: bool,
}

impl SimNode {
    /// Whether its links must stay cut: it crashed, or its process has exited.
    fn is_silent(&self) -> bool {
        (!self.running && !self.terminated) || self.stopped
    }
}

/// A simulated cluster and its simulation.
pub struct SimCluster<'a> {
    /// The simulation.
    pub sim: Sim<'a>,
    /// The nodes.
    pub nodes: Vec<SimNode>,
    /// What was built.
    pub spec: ClusterSpec,
    /// Client host names (cut off from a node while it is crashed).
    clients: Vec<String>,
    /// Links between nodes that a partition holds cut (host names, ordered pairs).
    cut: BTreeSet<(String, String)>,
}

impl<'a> SimCluster<'a> {
    /// Builds the simulation and its node hosts (not yet stepped).
    pub fn new(spec: ClusterSpec) -> SimCluster<'a> {
        let mut builder = turmoil::Builder::new();
        builder
            .rng_seed(spec.seed)
            .simulation_duration(SIM_DURATION_MAX)
            .tick_duration(Duration::from_millis(1))
            .min_message_latency(spec.latency.0)
            .max_message_latency(spec.latency.1)
            .tcp_capacity(1 << 20)
            .epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(SIM_EPOCH_SECS))
            .enable_random_order();
        // Writes not synced at a crash survive in part, as on a disk that loses power
        // mid-write: the disk layer writes sector by sector (`disk::SECTOR_BYTES`), and each
        // sector's write survives whole or not at all (they were lost whole, so nothing the
        // stores wrote unsynced ever came back torn; a review of the harness, 2026-12-07).
        builder.fs().sync_probability(0.0).block_size(SECTOR_BYTES);
        let mut sim = builder.build();
        let peers: BTreeMap<NodeId, String> =
            (1..=spec.nodes).map(|id| (id, node_addr(id))).collect();
        let mut nodes = Vec::new();
        for id in 1..=spec.nodes {
            let node = SimNode {
                id,
                name: host_name(id),
                disk: Arc::new(DiskSwitch::default()),
                skew_ms: Arc::new(AtomicI64::new(0)),
                transfers: Arc::new(Mutex::new(Vec::new())),
                terminate: Arc::default(),
                running: true,
                stopped: false,
                terminated: false,
            };
            let config = NodeConfig {
                id,
                listen: node_addr(id),
                peers: peers.clone(),
                data: "/data".into(),
                shards: spec.shards,
                consistency: Consistency::Sequential,
                limits: sim_limits(spec.seed),
                timing: spec.timing.clone(),
            };
            let disk = node.disk.clone();
            let skew = node.skew_ms.clone();
            let transfers = node.transfers.clone();
            let terminate = node.terminate.clone();
            let fsync = spec.fsync;
            let seed = spec.seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            sim.host(node.name.as_str(), move || {
                let (config, disk, skew) = (config.clone(), disk.clone(), skew.clone());
                let (transfers, terminate) = (transfers.clone(), terminate.clone());
                replication::types::with_seed(seed, async move {
                    run_node(config, disk, skew, transfers, terminate, fsync).await
                })
            });
            nodes.push(node);
        }
        SimCluster { sim, nodes, spec, clients: Vec::new(), cut: BTreeSet::new() }
    }

    /// Adds a client host running `client` (the library over simulated TCP, usually).
    pub fn client<F>(&mut self, name: &str, client: F)
    where
        F: std::future::Future<Output = turmoil::Result> + 'static,
    {
        self.clients.push(name.to_string());
        self.sim.client(name, client);
    }

    fn other_hosts(&self, name: &str) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| n.name.clone())
            .chain(self.clients.iter().cloned())
            .filter(|h| h != name)
            .collect()
    }

    /// Every node's address.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| node_addr(n.id)).collect()
    }

    fn node_mut(&mut self, id: NodeId) -> &mut SimNode {
        self.nodes.iter_mut().find(|n| n.id == id).unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Crashes a node: its unsynced writes are lost, its memory is gone.
    pub fn crash(&mut self, id: NodeId) {
        let node = self.node_mut(id);
        if !node.running {
            return;
        }
        node.disk.kill();
        node.running = false;
        let name = node.name.clone();
        // A crashed host's sockets are dropped, and turmoil then sends FIN/RST segments in the
        // order tokio drops tasks, which depends on process-wide task ids: nothing a seed
        // controls. A power cut sends nothing, so the host's links are cut first: its last
        // segments are lost, and peers learn of the crash by keep-alive timeouts, as in life.
        self.cut_links_of(&name);
        self.sim.crash(name.as_str());
    }

    /// Kills node `id` as `kill -9` does and restarts it at once, as a supervisor does: its
    /// memory is gone, but what it wrote without syncing stays (in the page cache: turmoil's
    /// bounce keeps the writes a crash discards). False if it is not running.
    pub fn kill(&mut self, id: NodeId) -> bool {
        let node = self.node_mut(id);
        if !node.running || node.stopped {
            return false;
        }
        let name = node.name.clone();
        // The old incarnation's destructors write nothing (a killed process runs none): the
        // disk is dead while `bounce` drops it, alive again for the new one, which turmoil
        // polls from the next step. Its links are cut meanwhile, so that its sockets' last
        // segments (sent in task-id order, which no seed controls) are lost, as in `crash`.
        node.disk.kill();
        self.cut_links_of(&name);
        self.sim.bounce(name.as_str());
        self.node_mut(id).disk.revive();
        self.repair_links_of(&name);
        true
    }

    /// Repairs the links of host `name` but those a partition cuts and those to a node that is
    /// down (crashed, or stopped on its failed disk: its leftover tasks must stay silent;
    /// found by the session's diff review, 2026-12-07).
    fn repair_links_of(&mut self, name: &str) {
        let down: BTreeSet<String> =
            self.nodes.iter().filter(|n| n.is_silent()).map(|n| n.name.clone()).collect();
        for other in self.other_hosts(name) {
            if !self.cut.contains(&ordered(name, &other)) && !down.contains(&other) {
                self.sim.repair(name, other.as_str());
            }
        }
    }

    /// Cuts every link of host `name` (both ways); [`SimCluster::restart`] repairs them.
    fn cut_links_of(&mut self, name: &str) {
        for other in self.other_hosts(name) {
            self.sim.partition(name, other.as_str());
        }
    }

    /// Asks node `leader` to hand its leadership of `shard` to `to` (ignored if it no longer
    /// leads).
    pub fn transfer_leader(&mut self, leader: NodeId, shard: ShardId, to: NodeId) {
        self.node_mut(leader).transfers.lock().expect("transfers lock").push((shard, to));
    }

    /// Crashes node `id` and loses its data directory (a replaced disk): its next start finds
    /// it empty ([`DiskSwitch::lose_all`]).
    pub fn lose_disk(&mut self, id: NodeId) {
        self.crash(id);
        self.node_mut(id).disk.lose_all();
    }

    /// Makes node `id`'s disk fail under it: its next fsync reports an I/O error, and every
    /// I/O after it fails ([`DiskSwitch`]). The node must stop by itself (fail-stop); the
    /// driver later restarts it with [`SimCluster::replace_failed_disk`].
    pub fn fail_disk(&mut self, id: NodeId) {
        self.node_mut(id).disk.fail_next_sync();
    }

    /// Ends a [`SimCluster::fail_disk`]: if the disk failed, the node (stopped by then, or
    /// about to) is crashed and restarted, as a supervisor restarts a process that exited on
    /// an I/O error (its unsynced writes are lost); if no fsync met the failure, it is
    /// withdrawn. True if the disk had failed.
    pub fn replace_failed_disk(&mut self, id: NodeId) -> bool {
        let node = self.node_mut(id);
        if !node.running || !node.disk.is_dead() {
            node.disk.cancel_failure();
            return false;
        }
        self.crash(id);
        self.restart(id);
        true
    }

    /// Cuts the links of every node that stopped by itself on its failed disk, or finished a
    /// clean stop ([`SimCluster::terminate`]) (its software returned), as soon as the driver
    /// sees it: a process that exited sends nothing more and refuses connections, but
    /// turmoil keeps the tasks of a host whose software returned, and they would go on talking
    /// (a coordinator driving its commits, say) until the node's restart. Called after every
    /// step.
    pub fn cut_stopped_nodes(&mut self) {
        let mut stopped = Vec::new();
        for node in &mut self.nodes {
            let exited = (node.running && node.disk.is_dead()) || node.terminated;
            if exited && !node.stopped && !self.sim.is_host_running(node.name.as_str()) {
                node.stopped = true;
                stopped.push(node.name.clone());
            }
        }
        for name in stopped {
            self.cut_links_of(&name);
        }
    }

    /// Crashes node `id` and flips one bit of its Raft log, picked by `choice`, before its
    /// next start ([`DiskSwitch::rot`]): it must refuse to start
    /// ([`SimCluster::replace_refused_disks`] then replaces its disk).
    pub fn rot_log(&mut self, id: NodeId, choice: u64) {
        self.crash(id);
        self.node_mut(id).disk.rot(choice);
    }

    /// Replaces the disk of every node that refused to start on its damaged log, as its
    /// operator would (the message tells them to): the node starts again on an empty data
    /// directory, under its id, and catches up before it votes. Returns them. Called after
    /// every step.
    pub fn replace_refused_disks(&mut self) -> Vec<NodeId> {
        let refused: Vec<NodeId> =
            self.nodes.iter().filter(|n| n.disk.take_refused()).map(|n| n.id).collect();
        for &id in &refused {
            self.lose_disk(id);
            self.restart(id);
        }
        refused
    }

    /// Stops node `id` cleanly, as `kvd` does on SIGTERM (it hands the shards it leads over,
    /// says to each client stream which requests it never read, and stops serving), and counts
    /// it as down until [`SimCluster::restart`], which restarts it as an operator's rolling
    /// restart does (if it is still draining connections by then, what is left of it goes, as
    /// `kvd`'s own drain limit would have it). False if it is not running.
    pub fn terminate(&mut self, id: NodeId) -> bool {
        let node = self.node_mut(id);
        if !node.running || node.stopped {
            return false;
        }
        node.terminate.store(true, Ordering::SeqCst);
        node.running = false;
        node.terminated = true;
        true
    }

    /// Restarts a crashed or terminated node from its disk.
    pub fn restart(&mut self, id: NodeId) {
        let node = self.node_mut(id);
        if node.running {
            return;
        }
        node.terminate.store(false, Ordering::SeqCst);
        node.terminated = false;
        // What is left of the old incarnation goes as in a kill: its disk dead while `bounce`
        // drops it, so its destructors write nothing, as a process that exited writes nothing.
        // Left: a terminated node still draining, and the tasks of a node that stopped by
        // itself on its failed disk (turmoil's crash cancels a host's tasks only while its
        // software runs). Until 2026-12-07 the disk was revived before this bounce for any
        // node not terminated, and those tasks' handles of the state database, dropped there,
        // could close it as a clean stop does (redb's close makes pending volatile commits
        // durable and writes its shutdown header), which a process that exited on an I/O
        // error never does (the change altered the traces of the disk-failure seeds 6, 8, 9
        // and 104 when first tried, not understood then).
        node.disk.kill();
        node.running = true;
        node.stopped = false;
        let name = node.name.clone();
        // The new incarnation starts before the links come back. `bounce` drops what is left
        // of the old one: nothing after a crash (turmoil dropped its tasks then), but a node
        // that stopped by itself on a failed disk still has tasks, and their sockets' last
        // segments go out in process-wide task-id order, which no seed controls: a second run
        // of a seed in the same process diverged (`--check-determinism`, 5 nodes: three seeds
        // of 1-24 with disk failures). Sent while the links are cut, they are lost, as a
        // crash's are. A terminated node's links are still up (it answered during its stop):
        // cut here too.
        self.cut_links_of(&name);
        self.sim.bounce(name.as_str());
        self.node_mut(id).disk.revive();
        self.repair_links_of(&name);
    }

    /// Holds every link of node `id` (to the other nodes and the clients), both ways: what is
    /// in flight and what is sent from now on waits, lost by nothing but a crash, until
    /// [`SimCluster::release`]. No partition may be active meanwhile (the nemesis keeps
    /// partitions and pauses apart): turmoil's repair of a held link makes it healthy but
    /// leaves what it held waiting for the next release. A restart of the node or of a peer
    /// repairs their link, which ends the pause on it early.
    pub fn hold(&mut self, id: NodeId) {
        assert!(self.cut.is_empty(), "a pause while a partition is active");
        let name = host_name(id);
        for other in self.other_hosts(&name) {
            self.sim.hold(name.as_str(), other.as_str());
        }
    }

    /// Ends [`SimCluster::hold`]: everything held on the node's links is delivered at once,
    /// except on links to a node that crashed meanwhile, which stay cut until its restart.
    pub fn release(&mut self, id: NodeId) {
        let name = host_name(id);
        let down: BTreeSet<String> =
            self.nodes.iter().filter(|n| n.is_silent()).map(|n| n.name.clone()).collect();
        for other in self.other_hosts(&name) {
            self.sim.release(name.as_str(), other.as_str());
            if down.contains(&name) || down.contains(&other) {
                self.sim.partition(name.as_str(), other.as_str());
            }
        }
    }

    /// Cuts the links between two groups of nodes (both ways).
    pub fn partition(&mut self, left: &[NodeId], right: &[NodeId]) {
        for a in left {
            for b in right {
                let (a, b) = (host_name(*a), host_name(*b));
                self.sim.partition(a.as_str(), b.as_str());
                self.cut.insert(ordered(&a, &b));
            }
        }
    }

    /// Cuts the links from one node to every other node, in that direction only.
    pub fn partition_oneway(&mut self, from: NodeId) {
        let from = host_name(from);
        for other in
            self.nodes.iter().map(|n| n.name.clone()).filter(|n| *n != from).collect::<Vec<_>>()
        {
            self.sim.partition_oneway(from.as_str(), other.as_str());
            self.cut.insert(ordered(&from, &other));
        }
    }

    /// Restores every link between running nodes (a crashed node's links come back when it
    /// restarts), but a node that stopped on its failed disk: a process that exited stays
    /// silent (healed, its leftover tasks talked to the others again until its restart; found
    /// by a review of the harness, 2026-12-07).
    pub fn heal(&mut self) {
        self.cut.clear();
        let running: Vec<String> =
            self.nodes.iter().filter(|n| !n.is_silent()).map(|n| n.name.clone()).collect();
        for a in &running {
            for b in &running {
                if a < b {
                    self.sim.repair(a.as_str(), b.as_str());
                }
            }
        }
    }

    /// Sets a node's clock skew.
    pub fn skew(&self, id: NodeId, skew_ms: i64) {
        if let Some(node) = self.nodes.iter().find(|n| n.id == id) {
            node.skew_ms.store(skew_ms, Ordering::SeqCst);
        }
    }

    /// Steps the simulation until `done()` says so or every client host finished; a test's
    /// driver (panics if the simulation fails).
    pub fn run_until(&mut self, done: impl Fn() -> bool) {
        while !done() && !self.step() {}
    }

    /// One step of the simulation, for a test's driver that acts between steps: true once
    /// every client host finished (panics if the simulation fails).
    pub fn step(&mut self) -> bool {
        match self.sim.step() {
            Ok(finished) => finished,
            Err(error) => panic!("simulation failed: {error}"),
        }
    }

    /// Flips every kill switch, so that dropping the simulation writes nothing.
    pub fn finish(&mut self) {
        for node in &self.nodes {
            node.disk.kill();
        }
    }
}

impl Drop for SimCluster<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

fn ordered(a: &str, b: &str) -> (String, String) {
    if a <= b { (a.to_string(), b.to_string()) } else { (b.to_string(), a.to_string()) }
}

/// A node host's life: open the disk, start the node, serve until crashed, or until its disk
/// fails. As `kvd start` does, a node stops serving when its storage fails, and a node whose
/// disk fails while it opens or starts exits with the error (server::cli::serve); the host then
/// ends with Ok (a process that exits is no simulation failure), and the driver restarts it
/// ([`SimCluster::replace_failed_disk`]). A node that stops by itself with its disk healthy
/// (one of its Raft groups stopped: `Node::failure`) ends the host with an error, which fails
/// the seed.
async fn run_node(
    config: NodeConfig,
    disk: Arc<DiskSwitch>,
    skew: Arc<AtomicI64>,
    transfers: TransferRequests,
    terminate: Arc<AtomicBool>,
    fsync: Duration,
) -> turmoil::Result {
    match run_node_until_stopped(config, disk.clone(), skew, transfers, terminate, fsync).await {
        Err(_) if disk.is_dead() => Ok(()),
        result => result,
    }
}

async fn run_node_until_stopped(
    config: NodeConfig,
    disk: Arc<DiskSwitch>,
    skew: Arc<AtomicI64>,
    transfers: TransferRequests,
    terminate: Arc<AtomicBool>,
    fsync: Duration,
) -> turmoil::Result {
    if disk.take_lost() {
        match turmoil::fs::shim::std::fs::remove_dir_all(DATA_DIR) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
            _ => {}
        }
    }
    let open = |name: &str| -> turmoil::Result<redb::Database> {
        let backend = SimFileBackend::open(name, disk.clone())?;
        Ok(redb::Database::builder().create_with_backend(backend)?)
    };
    let databases = Databases {
        node: open(NODE_FILE)?,
        state: open(STATE_FILE)?,
        wal: Arc::new(SimLogDir::new(disk.clone())),
        wal_segment_bytes: SIM_WAL_SEGMENT_BYTES,
        append_bytes_max: SIM_APPEND_BYTES_MAX,
        presence: None,
        // Node::start replaces it with the node's (simulated) clock reading.
        first_incarnation: 1,
    };
    let options = StartOptions {
        connector: Arc::new(SimConnector),
        physical: Arc::new(SimClock::new(skew)),
        executor: Executor::Task { sync_delay: fsync },
        database: Some(databases),
    };
    if let Some(choice) = disk.take_rot()
        && let Some(at) = rot_a_log_bit(&disk, choice)?
    {
        tracing::info!(at, "flipped a bit of the Raft log");
    }
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", NODE_PORT)).await?;
    let started = Node::start(config, options).await;
    let rotted = disk.take_rotted();
    let node = match started {
        Ok(node) => node,
        // As `kvd start` does, it exits with the error; its operator replaces the disk.
        Err(error) if rotted.is_some() && error.is_damaged_log() => {
            tracing::warn!(%error, "refused to start on a damaged Raft log");
            disk.refuse();
            return Ok(());
        }
        Err(error) => return Err(error.to_string().into()),
    };
    if let Some(at) = rotted {
        return Err(format!("a bit flipped in the Raft log ({at}) went unnoticed").into());
    }
    let weak = Arc::downgrade(&node);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TRANSFER_POLL).await;
            let Some(node) = weak.upgrade() else { return };
            let asked = std::mem::take(&mut *transfers.lock().expect("transfers lock"));
            for (shard, to) in asked {
                if let Some(replica) = node.shard(shard) {
                    replica.transfer_leadership(to).await;
                }
            }
        }
    });
    // As `kvd` does (server::cli::serve): it stops on a storage failure or when terminated,
    // and waits at most SHUTDOWN_DRAIN_MAX for its clients' connections to close.
    let stopping = Arc::new(tokio::sync::Notify::new());
    let stop = {
        let (node, stopping) = (node.clone(), stopping.clone());
        async move {
            let terminated = async {
                while !terminate.swap(false, Ordering::SeqCst) {
                    tokio::time::sleep(TRANSFER_POLL).await;
                }
            };
            tokio::select! {
                biased;
                () = node.storage_failure() => {}
                () = terminated => tracing::info!("terminated; stopping"),
            }
            node.begin_stop().await;
            stopping.notify_one();
        }
    };
    let served = node.router().serve_with_incoming_shutdown(incoming(listener), stop);
    let drained_or_not = async {
        stopping.notified().await;
        tokio::time::sleep(SHUTDOWN_DRAIN_MAX).await;
    };
    tokio::select! {
        biased;
        served = served => served?,
        () = drained_or_not => tracing::warn!("connections still open after the stop; closing them"),
    }
    // Why it stopped by itself, asked before shutdown stops every group (as `kvd` does).
    let failure = node.failure();
    node.shutdown().await;
    // A node stops by itself on a failed disk (the driver restarts it). On a healthy one the
    // stop is a bug (a Raft group stopped on an error of our code), and the seed fails with
    // its reason instead of running on with one node silently down.
    match failure {
        Some(why) if !disk.is_dead() => {
            Err(format!("node stopped by itself on a healthy disk: {why}").into())
        }
        _ => Ok(()),
    }
}
