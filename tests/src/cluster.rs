//! A cluster of real `kvd` processes on loopback.
//!
//! ```text
//!   tempdir/
//!     node-1/            --data of node 1 (kept across kill -9 and restart)
//!     node-1.log         node 1's standard output and error, appended across restarts
//!     node-2/  node-2.log  ...
//! ```
//!
//! Ports are drawn at random below the kernel's range of outgoing connections' source ports and
//! checked free by binding them on 127.0.0.1 (all of them held at once, so they differ); they
//! are kept for the life of the cluster: a restarted node listens where it did, as
//! its peers expect. Nodes are killed with SIGKILL (`Child::kill` on Unix), never asked to stop,
//! so every restart is a crash recovery.
//!
//! Invariants the harness enforces for every test:
//! - no process outlives the cluster: `Drop` kills every node (also when the test panics);
//! - a node never exits by itself: [`Cluster::wait_ready`] and [`Cluster::check_alive`] fail
//!   the test with the node's log when one did, unless the test expects it and reaps it with
//!   [`Cluster::wait_exit`] (a node whose storage failed, `node_file_size_limit`);
//! - no node panics: `Drop` fails the test if a node's log contains `panicked at`.
//!
//! When the test is panicking, `Drop` prints the tail of every node's log and keeps the
//! directory (its path is printed) for a post-mortem.
//!
//! Debugging knobs (environment of the test process): `E2E_KEEP=1` keeps the directory of
//! passing tests too; `E2E_RUST_LOG=...` sets the nodes' `RUST_LOG` (default: kvd's own).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::path::PathBuf;
use std::process::Child;
use std::process::Command;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use client::Client;
use tempfile::TempDir;

use crate::binaries;
use crate::keys::SHARDS;
use crate::poll::eventually;
use crate::status::NodeStatus;
use crate::status::split_status_all;

/// How long a cluster may take to elect a leader for every shard.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`Cluster::wait_ready`] waits for leaders to move to their preferred replicas.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Lines of each node's log printed when a test fails.
pub const LOG_TAIL_LINES: usize = 60;
/// Keys read to prove that every shard serves requests, one per shard of the default map.
/// Tests never lock them, so a readiness check never waits behind a test's transaction.
pub const PROBE_KEYS: [&str; 4] = ["E~probe", "U~probe", "j~probe", "z~probe"];
/// Deadline of one probe read (the client's own retry loop is much longer).
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// A raw gRPC client's connection to a running node must be made within this
/// ([`Cluster::kv_client`]).
const CONNECT_WITHIN: Duration = Duration::from_secs(10);
/// Where nodes' ports are drawn from: below Linux's default range of source ports for outgoing
/// connections (`/proc/sys/net/ipv4/ip_local_port_range`, 32768-60999), so that no connection
/// takes a node's port while the node is down.
const PORTS: std::ops::Range<u16> = 20_000..32_000;
/// Draws of a port that is in use before [`free_ports`] gives up.
const PORT_ATTEMPTS_MAX: u64 = 1_000;
/// Every port [`free_ports`] has handed out in this process (tests in one process may run
/// clusters side by side under `cargo test`).
static HANDED_OUT: Mutex<std::collections::BTreeSet<u16>> =
    Mutex::new(std::collections::BTreeSet::new());

/// One node of the cluster.
struct NodeProcess {
    id: u64,
    addr: String,
    data: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    /// Extra arguments of `kvd start` ([`Cluster::set_node_args`]).
    args: Vec<String>,
    /// The largest file the process may write (RLIMIT_FSIZE, set through `prlimit`).
    file_bytes_max: Option<u64>,
    child: Option<Child>,
}

/// How to start a cluster.
#[derive(Clone, Debug)]
pub struct ClusterBuilder {
    nodes: usize,
    env: BTreeMap<u64, Vec<(String, String)>>,
    file_bytes_max: BTreeMap<u64, u64>,
    config: Option<String>,
    held: Vec<u64>,
}

impl Default for ClusterBuilder {
    fn default() -> ClusterBuilder {
        ClusterBuilder {
            nodes: 3,
            env: BTreeMap::new(),
            file_bytes_max: BTreeMap::new(),
            config: None,
            held: Vec::new(),
        }
    }
}

impl ClusterBuilder {
    /// The number of nodes (3 by default).
    pub fn nodes(mut self, nodes: usize) -> ClusterBuilder {
        self.nodes = nodes;
        self
    }

    /// Sets an environment variable of node `id` (for example `KVD_PAUSE`). It stays set across
    /// restarts.
    pub fn node_env(mut self, id: u64, key: &str, value: &str) -> ClusterBuilder {
        self.env.entry(id).or_default().push((key.to_string(), value.to_string()));
        self
    }

    /// Limits the size of every file node `id` writes to `bytes` (RLIMIT_FSIZE, through
    /// util-linux's `prlimit`): a write past it fails with EFBIG, a real I/O error of a real
    /// process. It stays set across restarts until [`Cluster::lift_file_size_limit`].
    pub fn node_file_size_limit(mut self, id: u64, bytes: u64) -> ClusterBuilder {
        self.file_bytes_max.insert(id, bytes);
        self
    }

    /// A configuration file (TOML, docs/configuration.md) every node starts with.
    pub fn config(mut self, toml: &str) -> ClusterBuilder {
        self.config = Some(toml.to_string());
        self
    }

    /// Node `id` is not started with the others: [`Cluster::launch_held`] starts it later (its
    /// data directory is then as fresh as theirs was).
    pub fn held(mut self, id: u64) -> ClusterBuilder {
        self.held.push(id);
        self
    }

    /// Starts the processes (but the held ones) without waiting for them to elect leaders.
    pub fn spawn(self) -> Cluster {
        assert!(self.nodes >= 1, "a cluster has nodes");
        let dir = tempfile::Builder::new().prefix("kv-e2e-").tempdir().expect("a temp dir");
        let ports = free_ports(self.nodes);
        let mut nodes = BTreeMap::new();
        for (index, port) in ports.into_iter().enumerate() {
            let id = index as u64 + 1;
            let node = NodeProcess {
                id,
                addr: format!("127.0.0.1:{port}"),
                data: dir.path().join(format!("node-{id}")),
                log: dir.path().join(format!("node-{id}.log")),
                env: self.env.get(&id).cloned().unwrap_or_default(),
                args: Vec::new(),
                file_bytes_max: self.file_bytes_max.get(&id).copied(),
                child: None,
            };
            nodes.insert(id, node);
        }
        let config = self.config.map(|toml| {
            let path = dir.path().join("node.toml");
            std::fs::write(&path, toml).expect("write the configuration file");
            path
        });
        let mut cluster = Cluster {
            dir: Some(dir),
            nodes,
            config,
            admin: Mutex::new(None),
            panics_expected: Vec::new(),
        };
        let ids: Vec<u64> = cluster.nodes.keys().copied().collect();
        for id in ids.into_iter().filter(|id| !self.held.contains(id)) {
            cluster.launch(id);
        }
        cluster
    }

    /// Starts the processes and waits until every shard has a leader that serves reads.
    pub async fn start(self) -> Cluster {
        let cluster = self.spawn();
        cluster.wait_ready().await;
        cluster
    }
}

/// Free loopback ports, distinct (all listeners are held until every port is chosen), drawn
/// at random from [`PORTS`], below the kernel's range for outgoing connections' source ports.
/// Port 0 chose from that range, so a port could be taken by any test's outgoing connection
/// between its choice and its node's bind, or while its node was down between a kill and a
/// restart: the node then exited "address in use", and the test failed for nothing.
fn free_ports(count: usize) -> Vec<u16> {
    use std::hash::BuildHasher as _;
    let random = std::collections::hash_map::RandomState::new();
    let mut listeners: Vec<TcpListener> = Vec::with_capacity(count);
    for attempt in 0u64.. {
        if listeners.len() == count {
            break;
        }
        assert!(attempt < PORT_ATTEMPTS_MAX, "no free loopback port in {PORTS:?}");
        let offset = random.hash_one((std::process::id(), attempt)) % PORTS.len() as u64;
        let port = PORTS.start + offset as u16;
        // Never one this process handed out already: its node may be down (killed, or held
        // back by `ClusterBuilder::held`) with the port unbound, yet it is still that node's.
        if HANDED_OUT.lock().expect("ports lock").contains(&port) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            listeners.push(listener);
        }
    }
    let ports: Vec<u16> =
        listeners.iter().map(|l| l.local_addr().expect("a bound address").port()).collect();
    HANDED_OUT.lock().expect("ports lock").extend(&ports);
    ports
}

/// A running cluster. See the module docs.
pub struct Cluster {
    dir: Option<TempDir>,
    nodes: BTreeMap<u64, NodeProcess>,
    /// The configuration file every node starts with, if any.
    config: Option<PathBuf>,
    /// A client connected to every node, for status queries and readiness probes.
    admin: Mutex<Option<Client>>,
    /// Nodes whose log may say `panicked at` once (a test that makes them panic on purpose).
    panics_expected: Vec<u64>,
}

impl Cluster {
    /// A builder (3 nodes by default).
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// A 3-node cluster, ready.
    pub async fn start() -> Cluster {
        Cluster::builder().start().await
    }

    /// The temporary directory holding the data directories and logs.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("the cluster's directory").path()
    }

    /// Every node id.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    fn node(&self, id: u64) -> &NodeProcess {
        self.nodes.get(&id).unwrap_or_else(|| panic!("no node {id} in this cluster"))
    }

    fn node_mut(&mut self, id: u64) -> &mut NodeProcess {
        self.nodes.get_mut(&id).unwrap_or_else(|| panic!("no node {id} in this cluster"))
    }

    /// Node `id`'s address, HOST:PORT.
    pub fn addr(&self, id: u64) -> String {
        self.node(id).addr.clone()
    }

    /// Every node's address, in id order.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.values().map(|n| n.addr.clone()).collect()
    }

    /// The addresses of the given nodes.
    pub fn addrs_of(&self, ids: &[u64]) -> Vec<String> {
        ids.iter().map(|id| self.addr(*id)).collect()
    }

    /// The node id listening at `addr`.
    pub fn id_of(&self, addr: &str) -> Option<u64> {
        self.nodes.values().find(|n| n.addr == addr).map(|n| n.id)
    }

    /// The `--peers` argument.
    pub fn peers_arg(&self) -> String {
        self.nodes.values().map(|n| format!("{}={}", n.id, n.addr)).collect::<Vec<_>>().join(",")
    }

    /// Node `id`'s data directory.
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.node(id).data.clone()
    }

    /// Node `id`'s log file.
    pub fn log_path(&self, id: u64) -> PathBuf {
        self.node(id).log.clone()
    }

    /// True while node `id`'s process runs (as far as the harness knows).
    pub fn is_running(&self, id: u64) -> bool {
        self.node(id).child.is_some()
    }

    /// Node `id`'s process id, while it runs.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.node(id).child.as_ref().map(Child::id)
    }

    /// The nodes whose processes run.
    pub fn running(&self) -> Vec<u64> {
        self.nodes.values().filter(|n| n.child.is_some()).map(|n| n.id).collect()
    }

    /// Starts node `id`'s process (its log is appended to).
    fn launch(&mut self, id: u64) {
        let mut peers = vec!["--peers".to_string(), self.peers_arg()];
        if self.node(id).args.iter().any(|arg| arg == "--peers") {
            peers.clear();
        }
        let config: Vec<std::ffi::OsString> = match &self.config {
            Some(path) => vec!["--config".into(), path.into()],
            None => Vec::new(),
        };
        let node = self.node_mut(id);
        assert!(node.child.is_none(), "node {id} is already running");
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("open the node's log file");
        let _ = writeln!(log, "===== e2e: starting node {id} on {} =====", node.addr);
        let stdout = log.try_clone().expect("clone the log file handle");
        let mut command = match node.file_bytes_max {
            Some(bytes) => {
                let mut prlimit = Command::new("prlimit");
                prlimit.arg(format!("--fsize={bytes}")).arg("--").arg(binaries::kvd());
                prlimit
            }
            None => Command::new(binaries::kvd()),
        };
        let child = command
            .arg("start")
            .args(["--id", &id.to_string(), "--listen", &node.addr])
            .args(&peers)
            .args(&node.args)
            .arg("--data")
            .arg(&node.data)
            .args(&config)
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .envs(std::env::var("E2E_RUST_LOG").ok().map(|filter| ("RUST_LOG", filter)))
            .envs(node.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start kvd for node {id}: {e}"));
        node.child = Some(child);
    }

    fn append_to_log(&self, id: u64, line: &str) {
        if let Ok(mut file) = OpenOptions::new().append(true).open(&self.node(id).log) {
            let _ = writeln!(file, "===== e2e: {line} =====");
        }
    }

    /// Kills node `id` with SIGKILL (`kill -9`) and reaps it.
    pub fn kill9(&mut self, id: u64) {
        let node = self.node_mut(id);
        let mut child = node.child.take().unwrap_or_else(|| panic!("node {id} is not running"));
        if let Ok(Some(status)) = child.try_wait() {
            panic!("node {id} had already exited by itself ({status}) before kill -9");
        }
        child.kill().expect("SIGKILL the node");
        let _ = child.wait();
        self.append_to_log(id, &format!("node {id} killed with SIGKILL"));
    }

    /// Stops node `id` with SIGTERM (a clean shutdown) and waits until it has exited, at most
    /// `within`; returns its exit status, or `None` if it was still running then (it is then
    /// killed with SIGKILL, so that the test can go on).
    pub async fn terminate(
        &mut self,
        id: u64,
        within: Duration,
    ) -> Option<std::process::ExitStatus> {
        self.signal(id, "TERM");
        self.append_to_log(id, &format!("node {id} sent SIGTERM"));
        let exited = self.reap_within(id, within).await;
        if exited.is_none()
            && let Some(mut child) = self.node_mut(id).child.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        exited
    }

    /// Waits until node `id`'s process has exited, at most `within`, and reaps it (the harness
    /// then treats it as stopped, to be restarted); `None` if it still runs then.
    async fn reap_within(&mut self, id: u64, within: Duration) -> Option<std::process::ExitStatus> {
        let until = tokio::time::Instant::now() + within;
        loop {
            let node = self.node_mut(id);
            let child = node.child.as_mut().unwrap_or_else(|| panic!("node {id} is not running"));
            if let Ok(Some(status)) = child.try_wait() {
                node.child = None;
                return Some(status);
            }
            if tokio::time::Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until node `id` exits by itself, at most `within`, and reaps it (the harness then
    /// treats it as stopped, to be restarted); `None` if it still runs then.
    pub async fn wait_exit(
        &mut self,
        id: u64,
        within: Duration,
    ) -> Option<std::process::ExitStatus> {
        let status = self.reap_within(id, within).await?;
        self.append_to_log(id, &format!("node {id} exited by itself ({status})"));
        Some(status)
    }

    /// Whether node `id`'s process has exited by itself (without reaping it).
    pub fn has_exited(&mut self, id: u64) -> bool {
        let child = self.node_mut(id).child.as_mut();
        child.is_some_and(|child| matches!(child.try_wait(), Ok(Some(_))))
    }

    /// Unsets the environment variable `key` of node `id` from its next start on.
    pub fn remove_env(&mut self, id: u64, key: &str) {
        self.node_mut(id).env.retain(|(k, _)| k != key);
    }

    /// Lets node `id` write files of any size from its next start on.
    pub fn lift_file_size_limit(&mut self, id: u64) {
        self.node_mut(id).file_bytes_max = None;
    }

    /// Freezes node `id` with SIGSTOP: it keeps its sockets but answers nothing (a stalled
    /// process, or a partition that drops every packet).
    pub fn freeze(&mut self, id: u64) {
        self.signal(id, "STOP");
        self.append_to_log(id, &format!("node {id} frozen with SIGSTOP"));
    }

    /// Resumes a frozen node with SIGCONT.
    pub fn thaw(&mut self, id: u64) {
        self.signal(id, "CONT");
        self.append_to_log(id, &format!("node {id} resumed with SIGCONT"));
    }

    fn signal(&self, id: u64, signal: &str) {
        let child =
            self.node(id).child.as_ref().unwrap_or_else(|| panic!("node {id} is not running"));
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} node {id}");
    }

    /// Restarts a killed node `id` on its data directory and address.
    pub fn restart(&mut self, id: u64) {
        self.launch(id);
    }

    /// Extra arguments for node `id`'s later starts (a misconfiguration, say); `--peers` among
    /// them replaces the cluster's. An empty list goes back to the cluster's arguments.
    pub fn set_node_args(&mut self, id: u64, args: &[&str]) {
        self.node_mut(id).args = args.iter().map(|arg| arg.to_string()).collect();
    }

    /// Starts node `id`, held back when the cluster was spawned ([`ClusterBuilder::held`]).
    pub fn launch_held(&mut self, id: u64) {
        self.launch(id);
    }

    /// Kills every running node with SIGKILL.
    pub fn stop_all(&mut self) {
        for id in self.running() {
            self.kill9(id);
        }
    }

    /// Fails the test (with the node's log) if a node the harness started has exited by itself.
    pub fn check_alive(&mut self) {
        let mut dead = Vec::new();
        for node in self.nodes.values_mut() {
            if let Some(child) = &mut node.child
                && let Ok(Some(status)) = child.try_wait()
            {
                dead.push((node.id, status));
                node.child = None;
            }
        }
        if let Some((id, status)) = dead.first() {
            panic!("node {id} exited by itself ({status}); its log:\n{}", self.log_tail(*id, 200));
        }
    }

    /// Same as [`Cluster::check_alive`], through a shared reference (no reaping).
    fn check_alive_shared(&self) -> Result<(), String> {
        for node in self.nodes.values() {
            // `try_wait` needs `&mut`; a process that exited is visible in /proc as a zombie.
            if let Some(child) = &node.child {
                let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id()));
                let zombie = match stat {
                    Ok(text) => text.rsplit(')').next().is_some_and(|s| s.trim().starts_with('Z')),
                    Err(_) => true,
                };
                if zombie {
                    return Err(format!(
                        "node {} exited by itself; its log:\n{}",
                        node.id,
                        self.log_tail(node.id, 200)
                    ));
                }
            }
        }
        Ok(())
    }

    /// A client connected to every node.
    pub async fn client(&self) -> Client {
        Client::connect(&self.addrs()).await.expect("a client")
    }

    /// A client whose seed list is `ids` (its first transaction is begun on `ids[0]`; it still
    /// learns the other nodes from the shard map).
    pub async fn client_via(&self, ids: &[u64]) -> Client {
        Client::connect(&self.addrs_of(ids)).await.expect("a client")
    }

    async fn admin(&self) -> Client {
        if let Some(client) = self.admin.lock().expect("admin lock").clone() {
            return client;
        }
        let client = self.client().await;
        *self.admin.lock().expect("admin lock") = Some(client.clone());
        client
    }

    /// A raw gRPC client of node `id`'s public API (for requests the client library never
    /// sends).
    pub async fn kv_client(
        &self,
        id: u64,
    ) -> proto::kv::kv_client::KvClient<tonic::transport::Channel> {
        let addr = format!("http://{}", self.addr(id));
        let connect = proto::kv::kv_client::KvClient::connect(addr);
        tokio::time::timeout(CONNECT_WITHIN, connect)
            .await
            .unwrap_or_else(|_| panic!("no connection to node {id} within {CONNECT_WITHIN:?}"))
            .unwrap_or_else(|e| panic!("connect to node {id}: {e}"))
    }

    /// Every node's parsed STATUS, or why it could not be had.
    pub async fn statuses(&self) -> BTreeMap<u64, Result<NodeStatus, String>> {
        let text = self.admin().await.status_all().await;
        let blocks = split_status_all(&text);
        self.nodes
            .values()
            .map(|node| {
                let status = match blocks.get(&node.addr) {
                    Some(Ok(block)) => NodeStatus::parse(block),
                    Some(Err(why)) => Err(why.clone()),
                    None => Err("no STATUS block".to_string()),
                };
                (node.id, status)
            })
            .collect()
    }

    /// The leader of every shard, if the running nodes agree on one: the running node that says
    /// it leads at the highest term, and every running node names it as the leader.
    pub async fn leaders(&self) -> Result<BTreeMap<u32, u64>, String> {
        let statuses = self.statuses().await;
        let mut running = BTreeMap::new();
        for id in self.running() {
            match &statuses[&id] {
                Ok(status) => running.insert(id, status.clone()),
                Err(why) => return Err(format!("node {id} has no status: {why}")),
            };
        }
        let mut leaders = BTreeMap::new();
        for shard in 0..SHARDS {
            let mut claims: Vec<(u64, u64)> = running
                .values()
                .filter_map(|s| s.shards.get(&shard).map(|r| (r, s.id)))
                .filter(|(r, _)| r.role == "leader")
                .map(|(r, id)| (r.term, id))
                .collect();
            claims.sort();
            let Some(&(term, leader)) = claims.last() else {
                return Err(format!(
                    "shard s{shard} has no leader among nodes {:?}",
                    self.running()
                ));
            };
            for status in running.values() {
                let replica = status.shards.get(&shard);
                if replica.and_then(|r| r.leader) != Some(leader)
                    || replica.is_some_and(|r| r.term != term)
                {
                    return Err(format!(
                        "node {} does not yet follow leader {leader} of s{shard} at term {term}: \
                         {replica:?}",
                        status.id
                    ));
                }
            }
            leaders.insert(shard, leader);
        }
        Ok(leaders)
    }

    /// Waits until the running nodes agree on the leader of `shard`, and returns it.
    pub async fn leader_of(&self, shard: u32) -> u64 {
        let leaders = eventually("agreed leaders", READY_TIMEOUT, || self.leaders()).await;
        leaders[&shard]
    }

    /// The preferred leader of `shard`: the first of its replicas, which are the nodes at
    /// positions `shard, shard + 1, ...` of the sorted node list (server/src/topology.rs).
    pub fn preferred_leader(&self, shard: u32) -> u64 {
        let ids = self.ids();
        ids[shard as usize % ids.len()]
    }

    /// Waits until every shard has a leader among the running nodes, agreed by all of them,
    /// and a read of a probe key in every shard succeeds. Then, when every node runs, waits
    /// (at most [`SETTLE_TIMEOUT`], with a warning if they do not) for the leaders to move to
    /// their preferred replicas: a leader hands its shard over 3 s after taking it
    /// (server/src/participant/shard.rs, `hand_over`), and a handover in the middle of a test
    /// aborts its open transactions with LEADER_CHANGED.
    pub async fn wait_ready(&self) {
        self.wait_ready_within(READY_TIMEOUT).await;
        if self.running().len() == self.nodes.len() {
            self.wait_settled(SETTLE_TIMEOUT).await;
        }
    }

    /// Waits until every shard is led by its preferred replica; returns false (after a
    /// warning) if that does not happen within `within`.
    pub async fn wait_settled(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        let mut last = String::new();
        while tokio::time::Instant::now() < deadline {
            match self.leaders().await {
                Ok(leaders) => {
                    let misplaced: Vec<String> = leaders
                        .iter()
                        .filter(|(shard, leader)| **leader != self.preferred_leader(**shard))
                        .map(|(shard, leader)| format!("s{shard} on node {leader}"))
                        .collect();
                    if misplaced.is_empty() {
                        return true;
                    }
                    last = format!("not on their preferred replicas: {misplaced:?}");
                }
                Err(why) => last = why,
            }
            tokio::time::sleep(crate::poll::POLL_PERIOD).await;
        }
        eprintln!("warning: the leaders did not settle within {within:?}: {last}");
        false
    }

    /// Waits (within `within`) until every shard has a leader among the running nodes, agreed
    /// by all of them, and a read of a probe key in every shard succeeds.
    pub async fn wait_ready_within(&self, within: Duration) {
        let client = self.admin().await;
        eventually("every shard to have a leader that serves reads", within, || async {
            if let Err(dead) = self.check_alive_shared() {
                panic!("{dead}");
            }
            self.leaders().await?;
            for key in PROBE_KEYS {
                match tokio::time::timeout(PROBE_TIMEOUT, client.get(key)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return Err(format!("reading {key}: {error}")),
                    Err(_) => return Err(format!("reading {key} took over {PROBE_TIMEOUT:?}")),
                }
            }
            Ok(())
        })
        .await;
    }

    /// Node `id`'s whole log.
    pub fn log_text(&self, id: u64) -> String {
        std::fs::read(&self.node(id).log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of node `id`'s log.
    pub fn log_tail(&self, id: u64, lines: usize) -> String {
        let text = self.log_text(id);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The lock waits that the nodes answering STATUS report, summed.
    pub async fn lock_waits(&self) -> usize {
        self.statuses().await.values().flatten().map(|status| status.lock_waits).sum()
    }

    /// Waits until [`Cluster::lock_waits`] passes `check`.
    pub async fn until_lock_waits(
        &self,
        what: &str,
        within: Duration,
        check: impl Fn(usize) -> bool,
    ) {
        eventually(what, within, || async {
            let waits = self.lock_waits().await;
            if check(waits) { Ok(()) } else { Err(format!("{waits} lock waits")) }
        })
        .await;
    }

    /// Waits until node `id`'s log contains `needle` at least `count` times.
    pub async fn wait_for_log(&self, id: u64, needle: &str, count: usize, within: Duration) {
        let what = format!("{count} x {needle:?} in node {id}'s log");
        eventually(&what, within, || async {
            let seen = self.log_text(id).matches(needle).count();
            if seen >= count { Ok(()) } else { Err(format!("seen {seen} times")) }
        })
        .await;
    }

    /// Prints the tail of every node's log to standard error.
    pub fn dump_logs(&self) {
        for node in self.nodes.values() {
            eprintln!(
                "---------- node {} ({}) log tail: {} ----------\n{}",
                node.id,
                node.addr,
                node.log.display(),
                self.log_tail(node.id, LOG_TAIL_LINES)
            );
        }
    }

    /// Node `id` is made to panic on purpose, once: its log may say `panicked at` once (a
    /// second panic still fails the test).
    pub fn expect_panic(&mut self, id: u64) {
        self.panics_expected.push(id);
    }

    fn panics_in_logs(&self) -> Vec<(u64, String)> {
        let mut found = Vec::new();
        for node in self.nodes.values() {
            let text = self.log_text(node.id);
            let excused = usize::from(self.panics_expected.contains(&node.id));
            let mut panics = text.lines().filter(|line| line.contains("panicked at"));
            if let Some(line) = panics.nth(excused) {
                found.push((node.id, line.to_string()));
            }
        }
        found
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let panics = self.panics_in_logs();
        let failing = std::thread::panicking() || !panics.is_empty();
        if failing || std::env::var_os("E2E_KEEP").is_some() {
            if failing {
                self.dump_logs();
            }
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!("---------- cluster directory kept at {} ----------", kept.display());
            }
        }
        if !panics.is_empty() && !std::thread::panicking() {
            panic!("a kvd node panicked: {panics:?}");
        }
    }
}
