//! The client: a session with a cluster.
//!
//! It connects to any list of nodes, learns the shard map (`Topology`), and sends each
//! one-statement request to the leader of its key's shard (saving a hop; any node would do).
//! When a node cannot be reached it tries the others, and refreshes the shard map when a
//! leader moved. Transactions run on one node, their coordinator ([`crate::Transaction`]).
//!
//! Retries are safe by construction: a request is re-sent only if it certainly had no effect
//! (it never reached a server), or if it is a read. A write or commit whose answer was lost is
//! reported as [`Error::Unknown`] after asking `TxnStatus`, never re-run blindly.
//!
//! The session carries a causal token (the largest commit timestamp it has seen), sent with
//! every request; it can be exported and imported so that causality travelling outside the
//! store (one client telling another) is kept.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::time::Duration;

use proto::kv::BeginRequest;
use proto::kv::CommitRequest;
use proto::kv::Consistency as ProtoConsistency;
use proto::kv::ReadRequest;
use proto::kv::ScanRequest;
use proto::kv::StatusRequest;
use proto::kv::TopologyRequest;
use proto::kv::TopologyResponse;
use proto::kv::TxnHandle;
use proto::kv::TxnStatusRequest;
use proto::kv::WriteRequest;
use proto::kv::kv_client::KvClient;
use tonic::transport::Channel;

use crate::connector::Connector;
use crate::connector::MESSAGE_BYTES_MAX;
use crate::connector::TcpConnector;
use crate::error::Error;
use crate::link::KvLink;
use crate::mutation::Mutation;
use crate::transaction::CommitInfo;
use crate::transaction::Said;
use crate::transaction::Transaction;
use crate::transaction::aborted_error;
use crate::transaction::outcome_said;
use crate::transaction::reason_name;

/// Deadline of one request (longer than the server's lock wait limit, 10 s by default).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest deadline of one request that [`Client::connect_options`] takes: a day. Every
/// request has a deadline; a longer one (`Duration::MAX` for "none") overflowed the clock.
pub const REQUEST_TIMEOUT_MAX: Duration = Duration::from_secs(24 * 60 * 60);
/// Deadline of one node's Topology answer while the client learns the cluster's layout (short:
/// an unreachable node is skipped for the next).
pub const TOPOLOGY_TIMEOUT: Duration = Duration::from_secs(2);
/// Deadline of one node's STATUS answer (a node that does not answer within it is reported as
/// such, and the next is asked).
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts of [`Client::transaction`] before giving up on retryable aborts.
pub const TRANSACTION_ATTEMPTS_MAX: usize = 12;
/// First pause between attempts; doubles up to [`RETRY_PAUSE_MAX`], with jitter.
pub const RETRY_PAUSE_MIN: Duration = Duration::from_millis(5);
/// Longest pause between attempts.
pub const RETRY_PAUSE_MAX: Duration = Duration::from_millis(500);
/// Rounds over all nodes for a request that found no node reachable (within its deadline).
pub const UNREACHABLE_ROUNDS_MAX: usize = 20;
/// A request with effect is sent to another node only while at least this share (1/N) of its
/// deadline is left: sent with almost nothing left, it would time out and end `Unknown` where
/// giving up before sending ends with the last error, which says nothing happened.
pub const EFFECT_RESEND_LEFT_DIVISOR: u32 = 4;
/// [`Client::txn_status`] gives up after this many request deadlines in all (an END whose
/// outcome it could not learn then answers "unknown"; asking again later may learn it).
pub const TXN_STATUS_TIMEOUTS: u32 = 2;
/// Home shards remembered for transactions whose END outcome was left unknown, at most (the
/// oldest are forgotten first): [`Client::txn_status`] asked without a home uses them.
pub const UNKNOWN_HOMES_MAX: usize = 1024;

/// Per-session consistency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Consistency {
    /// The server's configured default.
    #[default]
    Default,
    /// Reads through leaders under locks: strictly serializable.
    Sequential,
    /// Read-only work at a causally safe snapshot on any replica.
    Causal,
}

impl Consistency {
    pub(crate) fn to_proto(self) -> i32 {
        match self {
            Consistency::Default => ProtoConsistency::Unspecified as i32,
            Consistency::Sequential => ProtoConsistency::Sequential as i32,
            Consistency::Causal => ProtoConsistency::Causal as i32,
        }
    }
}

/// Where a session sends a request about a key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Routing {
    /// To the leader of the key's shard first, as far as the shard map knows it (one hop).
    #[default]
    Leaders,
    /// To the nodes in turn, whatever the key: the node that receives a request forwards its
    /// work to the shard leaders, as for a client through the `.proto` that keeps no shard map.
    /// Costs a hop between nodes per statement; the simulation uses it to exercise forwarding.
    AnyNode,
}

/// The outcome of [`Client::txn_status`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Committed at this timestamp.
    Committed(u64),
    /// Aborted.
    Aborted {
        /// The reason's name.
        reason: String,
        /// For people.
        message: String,
        /// Whether running the transaction again may succeed, as the node says (as
        /// [`Error::Aborted`]'s).
        retryable: bool,
    },
}

/// The shard map as last learned.
#[derive(Clone, Debug, Default)]
struct ShardMap {
    nodes: BTreeMap<u64, String>,
    /// (first key, shard id, leader) per shard, in key order.
    shards: Vec<(Vec<u8>, u32, Option<u64>)>,
}

impl ShardMap {
    fn from_response(response: TopologyResponse) -> ShardMap {
        let nodes = response.nodes.into_iter().map(|n| (n.id, n.addr)).collect();
        let mut shards: Vec<(Vec<u8>, u32, Option<u64>)> =
            response.shards.into_iter().map(|s| (s.from.to_vec(), s.id, s.leader)).collect();
        shards.sort();
        ShardMap { nodes, shards }
    }

    /// The index in `shards` of the shard holding `key`.
    fn index_of(&self, key: &[u8]) -> Option<usize> {
        let index = self.shards.partition_point(|(from, _, _)| from.as_slice() <= key);
        index.checked_sub(1)
    }

    fn leader_addr(&self, key: &[u8]) -> Option<String> {
        let leader = self.shards[self.index_of(key)?].2?;
        self.nodes.get(&leader).cloned()
    }

    /// Takes `leader` (a response's `leader` hint) as the leader of `key`'s shard, if it is a
    /// node of the map.
    fn learn_leader(&mut self, key: &[u8], leader: u64) {
        if !self.nodes.contains_key(&leader) {
            return;
        }
        if let Some(index) = self.index_of(key) {
            self.shards[index].2 = Some(leader);
        }
    }
}

/// What the sessions made from one [`Client::connect`] share: the connections to the nodes
/// (one HTTP/2 connection per node, multiplexing every session's requests) and the shard map.
struct Pool {
    connector: Arc<dyn Connector>,
    seeds: Vec<String>,
    clients: Mutex<BTreeMap<String, KvClient<Channel>>>,
    links: Mutex<BTreeMap<String, Arc<KvLink>>>,
    map: Mutex<ShardMap>,
    /// The home shards of transactions whose END outcome was left unknown, oldest first, by
    /// (coordinator, incarnation, seq): a transaction whose writes all went with END has no
    /// home the program could have kept ([`crate::Transaction::home_shard`] answers None
    /// before END), yet its record is where its outcome is.
    unknown_homes: Mutex<VecDeque<(HandleId, UnknownHome)>>,
}

pub(crate) struct Inner {
    pool: Arc<Pool>,
    token: AtomicU64,
    next: AtomicUsize,
    pub(crate) consistency: Mutex<Consistency>,
    routing: Mutex<Routing>,
    pub(crate) timeout: Duration,
    /// The state of the retry-jitter generator (splitmix64; seeded, so the simulation replays).
    jitter: AtomicU64,
}

/// A session with a cluster. Cheap to clone; clones share the session (and its token).
/// [`Client::session`] makes another session over the same connections.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

/// What a retried transaction body returns.
pub type BodyFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

impl Client {
    /// A session with the cluster reachable at `addrs` (HOST:PORT each), over TCP.
    pub async fn connect<S: AsRef<str>>(addrs: &[S]) -> Result<Client, Error> {
        Client::connect_with(addrs, Arc::new(TcpConnector)).await
    }

    /// A session over a given connector.
    pub async fn connect_with<S: AsRef<str>>(
        addrs: &[S],
        connector: Arc<dyn Connector>,
    ) -> Result<Client, Error> {
        Client::connect_seeded(addrs, connector, rand::random()).await
    }

    /// A session over a given connector whose retry jitter is drawn from `seed` (the
    /// simulation's, so that a run replays exactly).
    pub async fn connect_seeded<S: AsRef<str>>(
        addrs: &[S],
        connector: Arc<dyn Connector>,
        seed: u64,
    ) -> Result<Client, Error> {
        Client::connect_options(addrs, connector, seed, REQUEST_TIMEOUT).await
    }

    /// A session with every option: connector, jitter seed, and the deadline of one request
    /// (it must exceed the servers' lock wait limit, or lock waits look like failures).
    pub async fn connect_options<S: AsRef<str>>(
        addrs: &[S],
        connector: Arc<dyn Connector>,
        seed: u64,
        timeout: Duration,
    ) -> Result<Client, Error> {
        let seeds: Vec<String> =
            addrs.iter().map(|a| a.as_ref().trim().to_string()).filter(|a| !a.is_empty()).collect();
        if seeds.is_empty() {
            return Err(Error::Invalid("no node address given".into()));
        }
        if timeout.is_zero() || timeout > REQUEST_TIMEOUT_MAX {
            return Err(Error::Invalid(format!(
                "a request's deadline must be above zero and at most {REQUEST_TIMEOUT_MAX:?}, \
                 got {timeout:?}"
            )));
        }
        for seed in &seeds {
            crate::connector::check_host_port(seed).map_err(Error::Invalid)?;
        }
        let pool = Pool {
            connector,
            seeds,
            clients: Mutex::new(BTreeMap::new()),
            links: Mutex::new(BTreeMap::new()),
            map: Mutex::new(ShardMap::default()),
            unknown_homes: Mutex::new(VecDeque::new()),
        };
        let client = Client {
            inner: Arc::new(Inner {
                pool: Arc::new(pool),
                token: AtomicU64::new(0),
                next: AtomicUsize::new(0),
                consistency: Mutex::new(Consistency::Default),
                routing: Mutex::new(Routing::Leaders),
                timeout,
                jitter: AtomicU64::new(seed),
            }),
        };
        // Learning the shard map is an optimization; a cluster still starting is fine.
        let _ = client.refresh_map().await;
        Ok(client)
    }

    /// A new session over this one's connections and shard map: its own causal token (zero),
    /// consistency (the default) and retry jitter. Many concurrent sessions in one process
    /// should be made this way rather than by [`Client::connect`] each: their requests then
    /// share one connection per node, which costs the nodes less CPU per request than a
    /// connection per session (about 40% less per read; docs/benchmarks.md, "Connections").
    pub fn session(&self) -> Client {
        let next = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let jitter = self.inner.jitter.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        Client {
            inner: Arc::new(Inner {
                pool: self.inner.pool.clone(),
                token: AtomicU64::new(0),
                next: AtomicUsize::new(next),
                consistency: Mutex::new(Consistency::Default),
                routing: Mutex::new(Routing::Leaders),
                timeout: self.inner.timeout,
                jitter: AtomicU64::new(splitmix(jitter)),
            }),
        }
    }

    /// The session's causal token (the largest commit timestamp it has seen).
    pub fn token(&self) -> u64 {
        self.inner.token.load(Ordering::SeqCst)
    }

    /// Raises the session's causal token to `token`, unchecked: for tokens this cluster gave.
    /// A token from elsewhere goes through [`Client::import_token`], since the session keeps
    /// the largest token it was given and nodes refuse one from the far future.
    pub fn observe_token(&self, token: u64) {
        self.inner.token.fetch_max(token, Ordering::SeqCst);
    }

    /// Adopts a token another session exported ([`Client::token`]): the session's causal reads
    /// then see at least what that session saw. A token more than
    /// [`proto::kv::CAUSAL_TOKEN_AHEAD_MAX_MS`] ahead of this machine's clock is refused and
    /// changes nothing: the nodes would refuse every later request of the session, and the
    /// session could not take it back. (This machine's clock: not for the simulation.)
    pub fn import_token(&self, token: u64) -> Result<(), Error> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        if let Some(ahead_ms) = proto::kv::causal_token_too_far_ahead(token, now_ms) {
            return Err(Error::Invalid(format!(
                "token {token} is {} s ahead of this machine's clock (nodes refuse tokens more \
                 than {} s ahead): not a token of this cluster",
                ahead_ms / 1000,
                proto::kv::CAUSAL_TOKEN_AHEAD_MAX_MS / 1000
            )));
        }
        self.observe_token(token);
        Ok(())
    }

    /// The session's consistency.
    pub fn consistency(&self) -> Consistency {
        *self.inner.consistency.lock().expect("consistency lock")
    }

    /// Sets the session's consistency.
    pub fn set_consistency(&self, consistency: Consistency) {
        *self.inner.consistency.lock().expect("consistency lock") = consistency;
    }

    /// The session's routing.
    pub fn routing(&self) -> Routing {
        *self.inner.routing.lock().expect("routing lock")
    }

    /// Sets the session's routing.
    pub fn set_routing(&self, routing: Routing) {
        *self.inner.routing.lock().expect("routing lock") = routing;
    }

    /// The session stream to `addr`, which carries every statement (`Kv/Session`).
    pub(crate) fn kv(&self, addr: &str) -> Arc<KvLink> {
        let mut links = self.inner.pool.links.lock().expect("links lock");
        if let Some(link) = links.get(addr) {
            return link.clone();
        }
        let link = Arc::new(KvLink::new(self.unary(addr), self.inner.timeout));
        links.insert(addr.to_string(), link.clone());
        link
    }

    /// The unary client of `addr` (topology and status).
    pub(crate) fn unary(&self, addr: &str) -> KvClient<Channel> {
        let mut clients = self.inner.pool.clients.lock().expect("clients lock");
        clients
            .entry(addr.to_string())
            .or_insert_with(|| {
                KvClient::new(self.inner.pool.connector.channel(addr))
                    .max_decoding_message_size(MESSAGE_BYTES_MAX)
                    .max_encoding_message_size(MESSAGE_BYTES_MAX)
            })
            .clone()
    }

    /// Every node address known, the seeds first.
    fn addrs(&self) -> Vec<String> {
        let mut addrs = self.inner.pool.seeds.clone();
        for addr in self.inner.pool.map.lock().expect("map lock").nodes.values() {
            if !addrs.contains(addr) {
                addrs.push(addr.clone());
            }
        }
        addrs
    }

    /// Refreshes the shard map from any node.
    pub async fn refresh_map(&self) -> Result<(), Error> {
        let mut last = Error::Unavailable("no node answered".into());
        for addr in self.addrs() {
            let mut kv = self.unary(&addr);
            match tokio::time::timeout(TOPOLOGY_TIMEOUT, kv.topology(TopologyRequest {})).await {
                Ok(Ok(response)) => {
                    *self.inner.pool.map.lock().expect("map lock") =
                        ShardMap::from_response(response.into_inner());
                    return Ok(());
                }
                Ok(Err(status)) => last = Error::from_status(status, false),
                Err(_) => last = Error::Unavailable(format!("{addr} did not answer")),
            }
        }
        Err(last)
    }

    /// The nodes this session was given, rotating (to spread load), then the other nodes it
    /// learned from the shard map: the nearest nodes first.
    fn nearest(&self) -> Vec<String> {
        let next = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let mut seeds = self.inner.pool.seeds.clone();
        let count = seeds.len();
        seeds.rotate_left(next % count);
        for addr in self.addrs() {
            if !seeds.contains(&addr) {
                seeds.push(addr);
            }
        }
        seeds
    }

    /// The node this client believes leads `key`'s shard (where it sends a request about the
    /// key first), from the shard map: learned from Topology, then from responses that name
    /// the leader (a node that forwarded a request says where it went).
    pub fn leader_of(&self, key: impl AsRef<[u8]>) -> Option<u64> {
        let map = self.inner.pool.map.lock().expect("map lock");
        map.index_of(key.as_ref()).and_then(|index| map.shards[index].2)
    }

    /// Applies a response's `leader` hint about `key`'s shard to the shard map.
    pub(crate) fn learn_leader(&self, key: &[u8], leader: Option<u64>) {
        if let Some(leader) = leader {
            self.inner.pool.map.lock().expect("map lock").learn_leader(key, leader);
        }
    }

    /// Nodes to try for a request about `key`: its shard's leader first, then the others (all
    /// in turn under [`Routing::AnyNode`]). A causal read goes to the nearest node instead (any
    /// replica serves it).
    fn route(&self, key: &[u8], leader_first: bool) -> Vec<String> {
        if !leader_first {
            return self.nearest();
        }
        let mut addrs = self.addrs();
        let next = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let count = addrs.len();
        addrs.rotate_left(next % count);
        if self.routing() == Routing::AnyNode {
            return addrs;
        }
        if let Some(leader) = self.inner.pool.map.lock().expect("map lock").leader_addr(key) {
            addrs.retain(|a| *a != leader);
            addrs.insert(0, leader);
        }
        addrs
    }

    /// Sends a request for `key` to the best node, moving on to other nodes while they cannot
    /// be reached (or, for a request without effect, while they do not answer in time).
    async fn routed<T, F, Fut>(&self, key: &[u8], effect: bool, send: F) -> Result<T, Error>
    where
        F: Fn(Arc<KvLink>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.routed_to(key, effect, true, send).await
    }

    /// [`Client::routed`], choosing whether the key's shard leader is tried first.
    async fn routed_to<T, F, Fut>(
        &self,
        key: &[u8],
        effect: bool,
        leader_first: bool,
        send: F,
    ) -> Result<T, Error>
    where
        F: Fn(Arc<KvLink>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        // One deadline for the whole request, however many nodes it tries.
        let deadline = tokio::time::Instant::now() + self.inner.timeout;
        let resend_left_min = self.inner.timeout / EFFECT_RESEND_LEFT_DIVISOR;
        let mut last = Error::Unavailable("no node reachable".into());
        let mut tried = false;
        for round in 0..UNREACHABLE_ROUNDS_MAX {
            for addr in self.route(key, leader_first) {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                // `last` says nothing happened (the request was not sent, or was refused
                // before it took effect): a write tried again with little time left would
                // more likely end unknown (a review of the client, 2026-12-08).
                if left.is_zero() || (effect && tried && left < resend_left_min) {
                    return Err(last);
                }
                tried = true;
                match tokio::time::timeout(left, send(self.kv(&addr))).await {
                    Ok(Ok(response)) => return Ok(response.into_inner()),
                    Ok(Err(status)) => {
                        let error = Error::from_status(status, effect);
                        match error {
                            // Nothing happened: try another node (the shard's leader moved).
                            Error::Unavailable(_) => last = error,
                            Error::Aborted { ref reason, .. } if reason == "LEADER_CHANGED" => {
                                last = error
                            }
                            Error::Unknown(_) => {
                                let _ = tokio::time::timeout_at(deadline, self.refresh_map()).await;
                                return Err(error);
                            }
                            other => return Err(other),
                        }
                    }
                    Err(_) if effect => {
                        let _ = tokio::time::timeout_at(deadline, self.refresh_map()).await;
                        return Err(Error::Unknown(format!("{addr} did not answer in time")));
                    }
                    Err(_) => last = Error::Unavailable(format!("{addr} did not answer in time")),
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(last);
            }
            let _ = tokio::time::timeout_at(deadline, self.refresh_map()).await;
            // Not past the deadline: the refresh may have taken what was left of it.
            let pause = self
                .pause(round)
                .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            tokio::time::sleep(pause).await;
        }
        Err(last)
    }

    /// READ outside a transaction (linearizable in sequential mode; a causally safe snapshot
    /// from any replica in causal mode).
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.get_with_snapshot(key).await?.0)
    }

    /// Like [`Client::get`], with the snapshot timestamp a causal read was served at (0 for a
    /// locking read): how stale the read was, compared with the clock.
    pub async fn get_with_snapshot(
        &self,
        key: impl AsRef<[u8]>,
    ) -> Result<(Option<Vec<u8>>, u64), Error> {
        let key = key.as_ref();
        let consistency = self.consistency().to_proto();
        let response = self
            .routed_to(key, false, consistency != Consistency::Causal.to_proto(), |kv| {
                let request = ReadRequest {
                    txn: None,
                    key: key.to_vec().into(),
                    consistency,
                    causal_token: self.token(),
                    for_update: false,
                    begin: false,
                };
                async move { kv.read(request).await }
            })
            .await?;
        self.learn_leader(key, response.leader);
        self.observe_token(response.causal_token);
        Ok((response.found.then(|| response.value.to_vec()), response.snapshot_ts))
    }

    /// WRITE outside a transaction: committed when it returns. On [`Error::Unknown`] the write
    /// may or may not have applied.
    pub async fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), Error> {
        self.write(key.as_ref(), Some(value.as_ref())).await
    }

    /// DELETE outside a transaction.
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> Result<(), Error> {
        self.write(key.as_ref(), None).await
    }

    async fn write(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), Error> {
        let response = self
            .routed(key, true, |kv| {
                let request = WriteRequest {
                    txn: None,
                    key: key.to_vec().into(),
                    value: value.unwrap_or_default().to_vec().into(),
                    delete: value.is_none(),
                    causal_token: self.token(),
                };
                async move { kv.write(request).await }
            })
            .await?;
        self.learn_leader(key, response.leader);
        self.observe_token(response.causal_token);
        Ok(())
    }

    /// Applies `writes` atomically as a transaction of their own, in one round trip (etcd's
    /// `Txn` of puts): a Commit without a handle, sent to the leader of the first write's
    /// shard, which coordinates it. The answer is COMMITTED (`Ok`) or ABORTED with a reason
    /// (nothing applied; run it again if retryable). As for [`Client::put`], a lost answer
    /// is [`Error::Unknown`] and the writes are not resent: the client never learned the
    /// transaction's id, so use [`Client::begin`] and [`Transaction::commit_with`] when the
    /// outcome must always be learnable through `TxnStatus`.
    pub async fn commit_writes(&self, writes: Vec<Mutation>) -> Result<CommitInfo, Error> {
        let Some(first) = writes.first().map(|write| write.key.clone()) else {
            return Err(Error::Invalid("commit_writes needs at least one write".into()));
        };
        let writes: Vec<_> = writes.iter().map(Mutation::to_proto).collect();
        let response = self
            .routed(&first, true, |kv| {
                let request =
                    CommitRequest { txn: None, writes: writes.clone(), causal_token: self.token() };
                async move { kv.commit(request).await }
            })
            .await?;
        self.learn_leader(&first, response.leader);
        match outcome_said(response.outcome) {
            Said::Committed => {
                self.observe_token(response.causal_token);
                Ok(CommitInfo { commit_ts: response.commit_ts })
            }
            Said::Aborted => Err(aborted_error(response.abort)),
            Said::Nothing => Err(Error::Unknown(format!(
                "the node answered an outcome this client does not know ({})",
                response.outcome
            ))),
        }
    }

    /// SCAN `[from, to)` outside a transaction (`to` empty: to the end), at most `limit` rows.
    pub async fn scan(
        &self,
        from: impl AsRef<[u8]>,
        to: impl AsRef<[u8]>,
        limit: Option<u32>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, Error> {
        let (from, to) = (from.as_ref(), to.as_ref());
        let consistency = self.consistency().to_proto();
        let response = self
            .routed_to(from, false, consistency != Consistency::Causal.to_proto(), |kv| {
                let request = ScanRequest {
                    txn: None,
                    from: from.to_vec().into(),
                    to: to.to_vec().into(),
                    limit,
                    consistency,
                    causal_token: self.token(),
                };
                async move { kv.scan(request).await }
            })
            .await?;
        self.learn_leader(from, response.leader);
        self.observe_token(response.causal_token);
        Ok(response.rows.into_iter().map(|row| (row.key.to_vec(), row.value.to_vec())).collect())
    }

    /// The pause before retry `attempt`: exponential, with jitter in [base/2, base].
    pub(crate) fn pause(&self, attempt: usize) -> Duration {
        let state = self.inner.jitter.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        let random = splitmix(state);
        let base = base_pause(attempt);
        let jitter = random % (base.as_millis() as u64 + 1);
        base / 2 + Duration::from_millis(jitter / 2)
    }

    /// Starts an interactive transaction.
    pub async fn begin(&self) -> Result<Transaction, Error> {
        self.begin_with(false).await
    }

    /// Starts a READ ONLY transaction.
    pub async fn begin_read_only(&self) -> Result<Transaction, Error> {
        self.begin_with(true).await
    }

    async fn begin_with(&self, read_only: bool) -> Result<Transaction, Error> {
        self.begin_as(read_only, self.consistency()).await
    }

    /// Starts a transaction with its own consistency, whatever the session's: a READ ONLY
    /// transaction with [`Consistency::Causal`] reads one snapshot from any replica without
    /// locks; otherwise it locks through the leaders.
    pub async fn begin_as(
        &self,
        read_only: bool,
        consistency: Consistency,
    ) -> Result<Transaction, Error> {
        self.begin_via(read_only, consistency, None).await
    }

    /// Starts an interactive read-write transaction coordinated by the leader of `key`'s
    /// shard (as far as this client knows it), for a transaction that will work there first:
    /// its statements on that shard, and its commit there if `key` is its first write (the
    /// home shard), then need no hop between nodes.
    ///
    /// Nothing is sent yet: the first statement begins the transaction, and a first READ
    /// carries the BEGIN with it (one round trip for both). So the handle is known only after
    /// the first statement; while the chosen node cannot be reached at all, that statement
    /// goes to the next one (docs/transactions.md, "BEGIN with the first READ").
    pub async fn begin_near(&self, key: impl AsRef<[u8]>) -> Result<Transaction, Error> {
        let order = self.route(key.as_ref(), true);
        if order.is_empty() {
            return Err(Error::Unavailable("no node to begin at".into()));
        }
        Ok(Transaction::deferred(self.clone(), order))
    }

    async fn begin_via(
        &self,
        read_only: bool,
        consistency: Consistency,
        near: Option<&[u8]>,
    ) -> Result<Transaction, Error> {
        let mut last = Error::Unavailable("no node reachable".into());
        let attempts = self.addrs().len() * 3;
        // One deadline for the whole BEGIN, as for any other request (each attempt had the
        // whole timeout: with slow nodes a BEGIN could take minutes; found by a review).
        let until = tokio::time::Instant::now() + self.inner.timeout;
        // The nodes in one order for the whole BEGIN: each call of `nearest` rotates it one
        // step, so taking attempt k from a fresh rotation moved two places per attempt, and
        // with two or four seeds half of them were never tried (found by a review).
        let nodes = self.nearest();
        for round in 0..attempts {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let addr = match near {
                Some(key) => {
                    let order = self.route(key, true);
                    order[round % order.len()].clone()
                }
                None => nodes[round % nodes.len()].clone(),
            };
            let request = BeginRequest {
                read_only,
                consistency: consistency.to_proto(),
                causal_token: self.token(),
            };
            let kv = self.kv(&addr);
            match tokio::time::timeout(left, kv.begin(request)).await {
                Ok(Ok(response)) => {
                    let handle = response.into_inner().txn.ok_or_else(|| {
                        Error::Unavailable("BEGIN answered without a handle".into())
                    })?;
                    // A causal READ ONLY transaction reads a snapshot and holds nothing (with
                    // the server's default consistency this client cannot tell, and takes it
                    // as one that locks).
                    let snapshot = read_only && consistency == Consistency::Causal;
                    let txn = Transaction::new(self.clone(), addr, handle, read_only, snapshot);
                    return Ok(txn);
                }
                Ok(Err(status)) => match Error::from_status(status, false) {
                    error @ Error::Unavailable(_) => last = error,
                    other => return Err(other),
                },
                Err(_) => last = Error::Unavailable(format!("{addr} did not answer")),
            }
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            tokio::time::sleep(self.pause(round).min(left)).await;
        }
        Err(last)
    }

    /// Runs `body` in a transaction and commits it, running it again (with backoff) while it
    /// aborts for a retryable reason. A commit whose outcome was lost is settled through
    /// `TxnStatus` before anything is re-run, so the body is never applied twice.
    pub async fn transaction<T, F>(&self, mut body: F) -> Result<T, Error>
    where
        F: for<'a> FnMut(&'a mut Transaction) -> BodyFuture<'a, T>,
    {
        let mut last = Error::Unavailable("no attempt made".into());
        for attempt in 0..TRANSACTION_ATTEMPTS_MAX {
            let mut txn = match self.begin().await {
                Ok(txn) => txn,
                Err(error) if error.is_retryable() => {
                    last = error;
                    tokio::time::sleep(self.pause(attempt)).await;
                    continue;
                }
                Err(error) => return Err(error),
            };
            let result = body(&mut txn).await;
            let outcome = match result {
                Ok(value) => txn.commit().await.map(|_: CommitInfo| value),
                Err(error) => {
                    let _ = txn.abort().await;
                    Err(error)
                }
            };
            match outcome {
                Ok(value) => return Ok(value),
                Err(error) if error.is_retryable() => {
                    last = error;
                    tokio::time::sleep(self.pause(attempt)).await;
                }
                Err(error) => return Err(error),
            }
        }
        Err(last)
    }

    /// The id of the shard that holds `key`, from the shard map (learned first if this client
    /// has none yet; shard ranges are fixed when the cluster is created).
    pub async fn shard_of(&self, key: impl AsRef<[u8]>) -> Result<u32, Error> {
        let known = |client: &Client| {
            let map = client.inner.pool.map.lock().expect("map lock");
            map.index_of(key.as_ref()).map(|index| map.shards[index].1)
        };
        if let Some(shard) = known(self) {
            return Ok(shard);
        }
        self.refresh_map().await?;
        known(self).ok_or_else(|| Error::Unavailable("the cluster sent an empty shard map".into()))
    }

    /// The exact outcome of a transaction (deciding an undecided one ABORTED). A transaction
    /// whose record was collected (it began before the retention window) answers
    /// [`Error::Unknown`]: its outcome is no longer known.
    ///
    /// `home_shard` is [`crate::Transaction::home_shard`]; None tells the cluster that the
    /// transaction wrote nothing, unless this client (any session of its connections) left
    /// the transaction's END unknown: it remembers where that END's writes made the record
    /// (the last [`UNKNOWN_HOMES_MAX`] such transactions) and asks there.
    ///
    /// A program that keeps handles to ask about later, from another client or after a
    /// restart, must keep the home with them: for a transaction whose writes all went with
    /// END ([`crate::Transaction::commit_with`]), `home_shard()` is None and the home is the
    /// shard of the first of those writes ([`Client::shard_of`]). Asked with None, a node that
    /// does not know the transaction takes it as one that wrote nothing and answers ABORTED,
    /// which for such a transaction may be wrong.
    pub async fn txn_status(
        &self,
        handle: &TxnHandle,
        home_shard: Option<u32>,
    ) -> Result<TxnOutcome, Error> {
        let home_shard = match (home_shard, self.unknown_home(handle)) {
            (Some(home), _) => Some(home),
            (None, None) => None,
            (None, Some(UnknownHome::Shard(home))) => Some(home),
            // Never asked with no home instead: that would say "it wrote nothing".
            (None, Some(UnknownHome::ShardOf(key))) => {
                Some(self.shard_of(&key).await.map_err(|error| {
                    Error::Unavailable(format!("the transaction's home shard: {error}"))
                })?)
            }
        };
        let coordinator =
            self.inner.pool.map.lock().expect("map lock").nodes.get(&handle.coordinator).cloned();
        let mut addrs = self.addrs();
        if let Some(addr) = coordinator {
            addrs.retain(|a| *a != addr);
            addrs.insert(0, addr);
        }
        // One deadline for the whole search, as for any other request (each call has its own
        // too): without it, rounds over unreachable nodes added up to minutes.
        let whole = self.inner.timeout * TXN_STATUS_TIMEOUTS;
        let search = self.txn_status_rounds(handle, home_shard, &addrs);
        match tokio::time::timeout(whole, search).await {
            Ok(result) => result,
            Err(_) => Err(Error::Unavailable(format!(
                "the transaction's outcome could not be learned within {whole:?}"
            ))),
        }
    }

    /// Remembers `home` as the home shard of `handle`, a transaction whose END outcome is
    /// unknown to its caller.
    pub(crate) fn remember_unknown_home(&self, handle: &TxnHandle, home: UnknownHome) {
        let mut homes = self.inner.pool.unknown_homes.lock().expect("unknown homes lock");
        let id = handle_id(handle);
        homes.retain(|(known, _)| *known != id);
        if homes.len() == UNKNOWN_HOMES_MAX {
            homes.pop_front();
        }
        homes.push_back((id, home));
    }

    /// The home shard remembered for `handle`, if any.
    fn unknown_home(&self, handle: &TxnHandle) -> Option<UnknownHome> {
        let homes = self.inner.pool.unknown_homes.lock().expect("unknown homes lock");
        let id = handle_id(handle);
        homes.iter().find(|(known, _)| *known == id).map(|(_, home)| home.clone())
    }

    async fn txn_status_rounds(
        &self,
        handle: &TxnHandle,
        home_shard: Option<u32>,
        addrs: &[String],
    ) -> Result<TxnOutcome, Error> {
        let mut last = Error::Unavailable("no node reachable".into());
        for round in 0..UNREACHABLE_ROUNDS_MAX {
            for addr in addrs {
                let request = TxnStatusRequest { txn: Some(*handle), home_shard };
                let kv = self.kv(addr);
                match tokio::time::timeout(self.inner.timeout, kv.txn_status(request)).await {
                    Ok(Ok(response)) => {
                        let response = response.into_inner();
                        return match outcome_said(response.outcome) {
                            Said::Committed => {
                                // The session now knows of the commit: its causal reads must
                                // see it (read your writes after an unknown END).
                                self.observe_token(response.commit_ts);
                                Ok(TxnOutcome::Committed(response.commit_ts))
                            }
                            Said::Aborted => {
                                let abort = response.abort.unwrap_or_default();
                                Ok(TxnOutcome::Aborted {
                                    reason: reason_name(abort.reason).to_string(),
                                    message: abort.message,
                                    retryable: abort.retryable,
                                })
                            }
                            Said::Nothing => Err(Error::Unknown(format!(
                                "{addr} answered an outcome this client does not know ({})",
                                response.outcome
                            ))),
                        };
                    }
                    // The record was collected (the transaction began before the retention
                    // window): its outcome is no longer known, which is not a bad request.
                    Ok(Err(status)) if status.code() == tonic::Code::OutOfRange => {
                        return Err(Error::Unknown(status.message().to_string()));
                    }
                    Ok(Err(status)) => match Error::from_status(status, false) {
                        error @ Error::Unavailable(_) => last = error,
                        other => return Err(other),
                    },
                    Err(_) => last = Error::Unavailable(format!("{addr} did not answer")),
                }
            }
            tokio::time::sleep(self.pause(round)).await;
        }
        Err(last)
    }

    /// The STATUS block of a node (the first reachable).
    pub async fn status(&self) -> Result<String, Error> {
        let mut last = Error::Unavailable("no node reachable".into());
        for addr in self.addrs() {
            let mut kv = self.unary(&addr);
            match tokio::time::timeout(STATUS_TIMEOUT, kv.status(StatusRequest {})).await {
                Ok(Ok(response)) => return Ok(format!("[{addr}]\n{}", response.into_inner().text)),
                Ok(Err(status)) => last = Error::from_status(status, false),
                Err(_) => last = Error::Unavailable(format!("{addr} did not answer")),
            }
        }
        Err(last)
    }

    /// The STATUS blocks of every known node.
    pub async fn status_all(&self) -> String {
        self.status_all_answered().await.0
    }

    /// The STATUS blocks of every known node, and how many nodes answered.
    pub async fn status_all_answered(&self) -> (String, usize) {
        let mut out = String::new();
        let mut answered = 0;
        for addr in self.addrs() {
            let mut kv = self.unary(&addr);
            match tokio::time::timeout(STATUS_TIMEOUT, kv.status(StatusRequest {})).await {
                Ok(Ok(response)) => {
                    answered += 1;
                    out.push_str(&format!("[{addr}]\n{}\n", response.into_inner().text))
                }
                Ok(Err(status)) => {
                    out.push_str(&format!("[{addr}] unavailable: {}\n", status.message()))
                }
                Err(_) => out.push_str(&format!("[{addr}] did not answer\n")),
            }
        }
        (out.trim_end().to_string(), answered)
    }
}

/// One step of splitmix64: a well-mixed 64-bit value from a counter state.
fn splitmix(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The base pause before retry `attempt`: exponential, capped.
fn base_pause(attempt: usize) -> Duration {
    RETRY_PAUSE_MIN.saturating_mul(1 << attempt.min(10)).min(RETRY_PAUSE_MAX)
}

/// The home shard of a transaction whose END outcome was left unknown, as remembered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum UnknownHome {
    /// The shard.
    Shard(u32),
    /// The shard of this key (its first write's), when the shard map was not at hand.
    ShardOf(Vec<u8>),
}

/// What identifies a transaction among its handle's fields: coordinator, incarnation, seq.
type HandleId = (u64, u64, u64);

/// The [`HandleId`] of `handle` (`start_ts` does not identify).
fn handle_id(handle: &TxnHandle) -> HandleId {
    (handle.coordinator, handle.incarnation, handle.seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session over nothing: no node listens at the address, and none is needed to make
    /// sessions (the shard map is learned lazily).
    async fn unreachable() -> Client {
        Client::connect_options(&["127.0.0.1:1"], Arc::new(TcpConnector), 7, REQUEST_TIMEOUT)
            .await
            .expect("a client needs no reachable node to exist")
    }

    #[test]
    fn a_leader_hint_moves_one_shard_to_a_known_node() {
        let shard = |from: &str, id: u32, leader: u64| proto::kv::Shard {
            id,
            from: from.as_bytes().to_vec().into(),
            to: Default::default(),
            replicas: vec![1, 2, 3],
            leader: Some(leader),
        };
        let node = |id: u64| proto::kv::Node { id, addr: format!("n{id}:1") };
        let mut map = ShardMap::from_response(TopologyResponse {
            nodes: vec![node(1), node(2), node(3)],
            shards: vec![shard("", 0, 1), shard("k", 1, 2)],
        });
        assert_eq!(map.leader_addr(b"a").as_deref(), Some("n1:1"));
        map.learn_leader(b"b", 3);
        assert_eq!(map.leader_addr(b"a").as_deref(), Some("n3:1"), "the key's shard moved");
        assert_eq!(map.leader_addr(b"z").as_deref(), Some("n2:1"), "the other shard did not");
        map.learn_leader(b"b", 9);
        assert_eq!(map.leader_addr(b"a").as_deref(), Some("n3:1"), "an unknown node is ignored");
    }

    #[tokio::test]
    async fn unknown_homes_are_remembered_across_sessions_and_bounded() {
        let client = unreachable().await;
        let handle = |seq| TxnHandle { coordinator: 1, incarnation: 2, seq, start_ts: 0 };
        let shard = UnknownHome::Shard;
        client.remember_unknown_home(&handle(0), shard(3));
        let other_session = client.session();
        assert_eq!(other_session.unknown_home(&handle(0)), Some(shard(3)));
        assert_eq!(client.unknown_home(&TxnHandle { start_ts: 9, ..handle(0) }), Some(shard(3)));
        assert_eq!(client.unknown_home(&handle(1)), None);
        for seq in 1..=UNKNOWN_HOMES_MAX as u64 {
            client.remember_unknown_home(&handle(seq), shard(1));
        }
        assert_eq!(client.unknown_home(&handle(0)), None, "the oldest is forgotten");
        assert_eq!(client.unknown_home(&handle(1)), Some(shard(1)));
        // A home remembered as a key's shard, with no shard map to tell it: TxnStatus fails
        // rather than asking with no home (which would answer "it wrote nothing").
        client.remember_unknown_home(&handle(0), UnknownHome::ShardOf(b"k".to_vec()));
        let status = client.txn_status(&handle(0), None).await;
        assert!(matches!(status, Err(Error::Unavailable(_))), "{status:?}");
        assert_eq!(client.inner.pool.unknown_homes.lock().unwrap().len(), UNKNOWN_HOMES_MAX);
    }

    #[tokio::test]
    async fn sessions_share_connections_but_not_causality() {
        let parent = unreachable().await;
        parent.set_consistency(Consistency::Causal);
        let a = parent.session();
        let b = parent.session();
        assert!(Arc::ptr_eq(&a.inner.pool, &parent.inner.pool), "one connection pool");
        assert!(Arc::ptr_eq(&b.inner.pool, &parent.inner.pool), "one connection pool");
        a.observe_token(42);
        assert_eq!((a.token(), b.token(), parent.token()), (42, 0, 0), "tokens are per session");
        assert_eq!(a.consistency(), Consistency::Default, "a session starts at the default");
        // Their first nodes differ, so that many sessions spread over the nodes.
        let first = |client: &Client| client.inner.next.load(Ordering::Relaxed);
        assert_ne!(first(&a), first(&b));
        // A clone, unlike a session, is the same session.
        let clone = a.clone();
        clone.observe_token(50);
        assert_eq!(a.token(), 50);
    }
}
