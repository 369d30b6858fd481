//! `kv.v1.Kv`: one method per RPC, each a thin mapping onto the coordinator.
//!
//! Every request's causal token is observed by the node's clock first, so anything the
//! request causes gets a later timestamp than anything its session saw; every answer carries the
//! session's new token (the largest commit timestamp it saw or made).

use std::fmt::Write as _;
use std::sync::Arc;

use openraft::async_runtime::WatchReceiver;

use proto::kv::AbortInfo;
use proto::kv::AbortRequest;
use proto::kv::AbortResponse;
use proto::kv::BeginRequest;
use proto::kv::BeginResponse;
use proto::kv::CommitRequest;
use proto::kv::CommitResponse;
use proto::kv::KeyValue;
use proto::kv::ReadRequest;
use proto::kv::ReadResponse;
use proto::kv::ScanRequest;
use proto::kv::ScanResponse;
use proto::kv::SessionRequest;
use proto::kv::SessionResponse;
use proto::kv::StatusRequest;
use proto::kv::StatusResponse;
use proto::kv::TopologyRequest;
use proto::kv::TopologyResponse;
use proto::kv::TxnHandle;
use proto::kv::TxnStatusRequest;
use proto::kv::TxnStatusResponse;
use proto::kv::WriteRequest;
use proto::kv::WriteResponse;
use proto::kv::kv_server::Kv;
use proto::mux;
use proto::mux::Replies;
use replication::canary;
use replication::canary::Canary;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::Streaming;
use txn::types::ShardId;
use txn::types::Timestamp;
use txn::types::TxnId;
use txn::types::Value;
use txn::types::display_key;

use crate::api::session;
use crate::api::session_txns::SessionTxns;
use crate::api::status::reason_to_proto;
use crate::api::status::to_status;
use crate::context::Counters;
use crate::coordinator::Outcome;
use crate::coordinator::StatementError;
use crate::node::Node;

/// The public API of a node.
pub struct KvService {
    node: Arc<Node>,
}

impl KvService {
    /// The API of `node`.
    pub fn new(node: Arc<Node>) -> KvService {
        KvService { node }
    }

    /// True when a request asks for a causal read (or falls back to a causal default).
    /// A value that names no consistency is refused (it was taken as the node's default
    /// until a review, 2026-12-06).
    fn causal(&self, consistency: i32) -> Result<bool, Status> {
        match proto::kv::Consistency::try_from(consistency) {
            Ok(proto::kv::Consistency::Causal) => Ok(true),
            Ok(proto::kv::Consistency::Sequential) => Ok(false),
            Ok(proto::kv::Consistency::Unspecified) => {
                Ok(self.node.context().config.consistency == crate::config::Consistency::Causal)
            }
            Err(_) => Err(Status::invalid_argument(format!(
                "consistency {consistency} is none of UNSPECIFIED (0), SEQUENTIAL, CAUSAL"
            ))),
        }
    }

    /// Moves the node's clock past a client's causal token, unless the token is further ahead
    /// of the node's physical clock than any node of the cluster could have made it
    /// ([`proto::kv::CAUSAL_TOKEN_AHEAD_MAX_MS`]): adopting it would move every node's clock
    /// ahead with it (it travels on every message), and from a token near the end of time the
    /// clock could not advance at all. Measured against the physical clock alone, not the
    /// hybrid one: that one has adopted earlier tokens, so a ladder of tokens, each accepted
    /// and each a little further ahead than the last, would move it without limit. A token
    /// at or below the hybrid clock moves nothing and is always taken: it may come from a
    /// node whose clock a token moved near the limit, and refused here (a node whose physical
    /// clock is behind that one's) it locked out sessions that had only read what the
    /// cluster wrote (a review found it, 2026-12-07).
    fn observe(&self, token: u64) -> Result<Timestamp, Status> {
        const _: () = assert!(proto::kv::CAUSAL_TOKEN_LOGICAL_BITS == Timestamp::LOGICAL_BITS);
        self.not_from_the_future(token, &format!("causal token {token}"), "made")?;
        let token = Timestamp(token);
        self.node.clock().observe(token);
        Ok(token)
    }

    /// Refuses a timestamp (`what`, which a node `did`) further ahead of the node's physical
    /// clock than any node of the cluster could have made it
    /// ([`proto::kv::CAUSAL_TOKEN_AHEAD_MAX_MS`]), unless the node's hybrid clock is already
    /// past it.
    fn not_from_the_future(&self, ts: u64, what: &str, did: &str) -> Result<(), Status> {
        if Timestamp(ts) <= self.node.clock().latest() {
            return Ok(());
        }
        let physical_ms = self.node.clock().physical_ms();
        match proto::kv::causal_token_too_far_ahead(ts, physical_ms) {
            None => Ok(()),
            Some(ahead) => Err(Status::invalid_argument(format!(
                "{what} is {} s ahead of this node's clock (at most {} s): no node of this \
                 cluster {did} it",
                ahead / 1000,
                proto::kv::CAUSAL_TOKEN_AHEAD_MAX_MS / 1000
            ))),
        }
    }

    fn txn_id(&self, handle: &TxnHandle) -> Result<TxnId, Status> {
        let me = self.node.context().me;
        if handle.coordinator != me {
            return Err(Status::not_found(format!(
                "transaction t{}.{}.{} was begun on node {}: send its statements there",
                handle.coordinator, handle.incarnation, handle.seq, handle.coordinator
            )));
        }
        Ok(txn_id_of(handle))
    }

    /// A READ that carries its transaction's BEGIN (`ReadRequest.begin`): begins a read-write
    /// transaction here and reads in it. If the read fails, the transaction is aborted and
    /// forgotten before the error is answered, so nothing of it remains.
    async fn begin_and_read(
        &self,
        request: ReadRequest,
        token: Timestamp,
    ) -> Result<Response<ReadResponse>, Status> {
        if request.txn.is_some() {
            return Err(Status::invalid_argument(
                "a READ with begin starts a transaction: it cannot name one too",
            ));
        }
        let coordinator = self.node.coordinator();
        // A bad key is refused before anything begins (it began, aborted and counted a
        // transaction, and at the node's limit answered UNAVAILABLE; found by a review).
        coordinator.check_key(&request.key).map_err(to_status)?;
        let txn = coordinator.begin(false).map_err(to_status)?;
        // Cancelled before its answer, the transaction goes: its client never learned its id.
        let read = coordinator.read(txn, request.key.to_vec(), request.for_update);
        match coordinator.answering(txn, true, read).await {
            Ok((value, seen, _)) => {
                let leader = self.leader_hint(&request.key);
                Ok(read_response(value, token.max(seen), Timestamp::ZERO, Some(txn), leader))
            }
            Err(error) => {
                let _ = coordinator.abort(txn).await;
                coordinator.forget(txn);
                Err(to_status(error))
            }
        }
    }

    /// The leader of `key`'s shard as this node sees it, when that is another node: the
    /// `leader` of a response to a request that names no transaction, so that the client sends
    /// the next one about the shard there (this node forwarded it, or coordinates a
    /// transaction whose home shard it does not lead).
    fn leader_hint(&self, key: &[u8]) -> Option<u64> {
        let ctx = self.node.context();
        ctx.peers.known_leader(ctx.topology.shard_of(key)).filter(|leader| *leader != ctx.me)
    }
}

fn handle_of(txn: TxnId) -> TxnHandle {
    TxnHandle {
        coordinator: txn.coordinator,
        incarnation: txn.incarnation,
        seq: txn.seq,
        start_ts: txn.start_ts.0,
    }
}

/// What a READ answers: the value if any, the session's token after it, the snapshot of a
/// causal read, the transaction it began (`ReadRequest.begin`), and the leader hint.
fn read_response(
    value: Option<Value>,
    token: Timestamp,
    snapshot: Timestamp,
    begun: Option<TxnId>,
    leader: Option<u64>,
) -> Response<ReadResponse> {
    Response::new(ReadResponse {
        found: value.is_some(),
        value: value.unwrap_or_default().into(),
        causal_token: token.0,
        snapshot_ts: snapshot.0,
        txn: begun.map(handle_of),
        leader,
    })
}

fn optional_to(to: &[u8]) -> Option<Vec<u8>> {
    if to.is_empty() { None } else { Some(to.to_vec()) }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn begin(
        &self,
        request: Request<BeginRequest>,
    ) -> Result<Response<BeginResponse>, Status> {
        let request = request.into_inner();
        let causal = self.causal(request.consistency)?;
        let token = self.observe(request.causal_token)?;
        let coordinator = self.node.coordinator();
        let txn = if causal && request.read_only {
            coordinator.begin_snapshot(token)
        } else {
            coordinator.begin(request.read_only)
        }
        .map_err(to_status)?;
        Ok(Response::new(BeginResponse { txn: Some(handle_of(txn)) }))
    }

    async fn read(&self, request: Request<ReadRequest>) -> Result<Response<ReadResponse>, Status> {
        let request = request.into_inner();
        let causal = self.causal(request.consistency)? && request.txn.is_none();
        let token = self.observe(request.causal_token)?;
        if request.begin {
            return self.begin_and_read(request, token).await;
        }
        let coordinator = self.node.coordinator();
        let (value, seen, snapshot) = match &request.txn {
            Some(handle) => {
                let txn = self.txn_id(handle)?;
                let read = coordinator.read(txn, request.key.to_vec(), request.for_update);
                // A causal READ ONLY transaction's read is a causal read: it names its
                // snapshot (it answered 0 until 2026-12-07; found by a review).
                coordinator.answering(txn, false, read).await
            }
            None if causal => coordinator.causal_read(request.key.to_vec(), token).await,
            None => coordinator
                .single_read(request.key.to_vec())
                .await
                .map(|(value, seen)| (value, seen, Timestamp::ZERO)),
        }
        .map_err(to_status)?;
        // A causal read is served by whichever replica was nearest: no hint, no routing.
        let routed = request.txn.is_none() && !causal;
        let leader = if routed { self.leader_hint(&request.key) } else { None };
        Ok(read_response(value, token.max(seen), snapshot, None, leader))
    }

    async fn write(
        &self,
        request: Request<WriteRequest>,
    ) -> Result<Response<WriteResponse>, Status> {
        let request = request.into_inner();
        // A one-statement write commits above the session's token (monotonic writes).
        let token = self.observe(request.causal_token)?;
        let value = if request.delete { None } else { Some(request.value.to_vec()) };
        let coordinator = self.node.coordinator();
        match &request.txn {
            Some(handle) => {
                let txn = self.txn_id(handle)?;
                let written = coordinator.write(txn, request.key.to_vec(), value);
                let home = coordinator.answering(txn, false, written).await.map_err(to_status)?;
                Ok(Response::new(WriteResponse {
                    causal_token: token.0,
                    home_shard: Some(home.0),
                    leader: None,
                }))
            }
            None => {
                let shard = self.node.context().topology.shard_of(&request.key);
                let commit_ts = coordinator
                    .single_write(request.key.to_vec(), value)
                    .await
                    .map_err(to_status)?;
                // Canary: the session's token stays where it was.
                let forget = canary::is(Canary::WriteForgetsItsToken);
                Ok(Response::new(WriteResponse {
                    causal_token: if forget { request.causal_token } else { commit_ts.0 },
                    home_shard: Some(shard.0),
                    leader: self.leader_hint(&request.key),
                }))
            }
        }
    }

    async fn scan(&self, request: Request<ScanRequest>) -> Result<Response<ScanResponse>, Status> {
        let request = request.into_inner();
        let causal = self.causal(request.consistency)? && request.txn.is_none();
        let token = self.observe(request.causal_token)?;
        let to = optional_to(&request.to);
        let limit = request.limit.map(|limit| limit as usize);
        // Capped silently, a larger LIMIT would answer fewer rows than asked while the range
        // goes on, which a client paging through it would read as its end.
        let rows_max = self.node.context().config.limits.scan_rows_max;
        if let Some(limit) = limit
            && limit > rows_max
        {
            return Err(Status::invalid_argument(format!(
                "LIMIT {limit} is over this node's scan_rows_max ({rows_max}): ask for at most \
                 that many rows and go on from the last key"
            )));
        }
        let coordinator = self.node.coordinator();
        let (rows, seen, snapshot) = match &request.txn {
            Some(handle) => {
                let txn = self.txn_id(handle)?;
                let scanned = coordinator.scan(txn, request.from.to_vec(), to, limit);
                coordinator.answering(txn, false, scanned).await
            }
            None if causal => {
                coordinator.causal_scan(request.from.to_vec(), to, limit, token).await
            }
            // In a task of its own: over several shards it runs as a transaction of this
            // node's, which must end even if the client goes away meanwhile (dropped, it stayed
            // registered and kept its range locks until the idle timeout; found by a review,
            // 2026-12-05).
            None => {
                let coordinator = coordinator.clone();
                let from = request.from.to_vec();
                tokio::spawn(async move { coordinator.single_scan(from, to, limit).await })
                    .await
                    .unwrap_or_else(|error| {
                        Err(StatementError::Unavailable(format!("the scan failed: {error}")))
                    })
                    .map(|(rows, seen)| (rows, seen, Timestamp::ZERO))
            }
        }
        .map_err(to_status)?;
        let rows = rows
            .into_iter()
            .map(|(key, value)| KeyValue { key: key.into(), value: value.into() })
            .collect();
        Ok(Response::new(ScanResponse {
            rows,
            causal_token: token.max(seen).0,
            snapshot_ts: snapshot.0,
            leader: if request.txn.is_none() && !causal {
                self.leader_hint(&request.from)
            } else {
                None
            },
        }))
    }

    async fn commit(
        &self,
        request: Request<CommitRequest>,
    ) -> Result<Response<CommitResponse>, Status> {
        // Counted as received by the Session stream's reader already, or now (a unary call).
        let counted = request.extensions().get::<EndCounted>().is_some();
        let request = request.into_inner();
        // The commit timestamp goes above the session's token: as if Begin carried it, for a
        // commit without a handle; with one, above what the session saw since its Begin
        // (writes-follow-reads). With a handle a token too far ahead is ignored, not refused
        // (kv.proto): the END of a transaction that may already be deciding is never refused
        // over a token.
        match request.txn {
            None => {
                self.observe(request.causal_token)?;
            }
            Some(_) => {
                let _ = self.observe(request.causal_token);
            }
        }
        let writes: Vec<_> = request
            .writes
            .into_iter()
            .map(|w| (w.key.to_vec(), if w.delete { None } else { Some(w.value.to_vec()) }))
            .collect();
        let first_key = match (&request.txn, writes.first()) {
            (None, Some((key, _))) => Some(key.clone()),
            _ => None,
        };
        let coordinator = self.node.coordinator().clone();
        // The commit protocol runs to its end even if the client goes away meanwhile (the
        // client then learns the outcome from TxnStatus).
        let outcome = match request.txn {
            Some(handle) => {
                let txn = self.txn_id(&handle)?;
                let entry = coordinator.entry(&txn).map_err(to_status)?;
                if !counted {
                    entry.ending.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                // Refused as bad input, the transaction stays open and END is not running: the
                // count goes down in the task, which runs to its end even when this handler is
                // dropped (a unary END whose client gave up; in the handler, the count stayed up
                // for good, and the transaction's stream closing no longer aborted it; found by a
                // review, 2026-12-07).
                tokio::spawn(async move {
                    let outcome = coordinator.commit_with(txn, writes).await;
                    if let Err(StatementError::Invalid(_) | StatementError::NotAllowed(_)) =
                        &outcome
                    {
                        entry.ending.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    outcome
                })
                .await
            }
            None => tokio::spawn(async move { coordinator.commit_writes(writes).await }).await,
        };
        let outcome = outcome
            .unwrap_or_else(|error| {
                Ok(Outcome::Unknown(format!("the commit task failed: {error}")))
            })
            .map_err(to_status)?;
        match outcome {
            // Nobody holds its id, so TxnStatus cannot settle it (kv.proto, CommitRequest.txn).
            Outcome::Unknown(why) if request.txn.is_none() => {
                Err(to_status(StatementError::Unavailable(format!(
                    "the outcome of the commit is unknown ({why}); a commit without a \
                     transaction handle cannot be asked about: read its keys to learn it"
                ))))
            }
            outcome => outcome_response(outcome).map(|mut response| {
                response.get_mut().leader = first_key.and_then(|key| self.leader_hint(&key));
                response
            }),
        }
    }

    async fn abort(
        &self,
        request: Request<AbortRequest>,
    ) -> Result<Response<AbortResponse>, Status> {
        let request = request.into_inner();
        let handle = request
            .txn
            .ok_or_else(|| Status::invalid_argument("ABORT needs a transaction handle"))?;
        let txn = self.txn_id(&handle)?;
        // Runs to its end even if the client goes away meanwhile, as END does: dropped with
        // its handler while it waited for the transaction's state (a statement still on its
        // way), the abort was lost and the locks stayed until the idle limit (a review,
        // 2026-12-07).
        let coordinator = self.node.coordinator().clone();
        tokio::spawn(async move { coordinator.abort(txn).await })
            .await
            .map_err(|error| Status::internal(format!("the abort task failed: {error}")))?
            .map_err(to_status)?;
        Ok(Response::new(AbortResponse {}))
    }

    async fn txn_status(
        &self,
        request: Request<TxnStatusRequest>,
    ) -> Result<Response<TxnStatusResponse>, Status> {
        let request = request.into_inner();
        let handle = request
            .txn
            .ok_or_else(|| Status::invalid_argument("TxnStatus needs a transaction handle"))?;
        // A made-up handle far in the future would be decided ABORTED at its home, in a record
        // that no collection reaches (records go once older than the retention window): one
        // Raft entry and one row for ever per call (found by a review, 2026-12-06).
        self.not_from_the_future(handle.start_ts, "the transaction's start timestamp", "began")?;
        let txn = TxnId {
            start_ts: Timestamp(handle.start_ts),
            coordinator: handle.coordinator,
            incarnation: handle.incarnation,
            seq: handle.seq,
        };
        let home = request.home_shard.map(ShardId);
        let outcome = self.node.coordinator().txn_status(txn, home).await.map_err(to_status)?;
        let response = outcome_response(outcome)?.into_inner();
        Ok(Response::new(TxnStatusResponse {
            outcome: response.outcome,
            abort: response.abort,
            commit_ts: response.commit_ts,
        }))
    }

    async fn topology(
        &self,
        _request: Request<TopologyRequest>,
    ) -> Result<Response<TopologyResponse>, Status> {
        let ctx = self.node.context();
        let topology = &ctx.topology;
        let nodes = topology
            .nodes()
            .iter()
            .map(|(id, addr)| proto::kv::Node { id: *id, addr: addr.clone() })
            .collect();
        let shards = topology
            .shards()
            .map(|shard| {
                let (from, to) = topology.range(shard);
                let leader = match self.node.shard(shard) {
                    Some(replica) => replica.current_leader(),
                    None => ctx.peers.leader_guess(shard),
                };
                proto::kv::Shard {
                    id: shard.0,
                    from: from.to_vec().into(),
                    to: to.map(<[u8]>::to_vec).unwrap_or_default().into(),
                    replicas: topology.replicas(shard).to_vec(),
                    leader,
                }
            })
            .collect();
        Ok(Response::new(TopologyResponse { nodes, shards }))
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(StatusResponse { text: status_text(&self.node).await }))
    }

    type SessionStream = Replies<SessionResponse>;

    async fn session(
        &self,
        request: Request<Streaming<SessionRequest>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let node = self.node.clone();
        // Owned by the handler, so dropped (and its transactions abandoned) when the stream
        // stops reading; each request holds a `Weak` (session_txns).
        let txns = SessionTxns::new(self.node.coordinator().clone());
        let handler = move |request: SessionRequest| {
            if let Some(txn) = session::ends_txn(&request) {
                txns.ending(&txn);
            }
            // An END counts as received as the reader reads it, before any later request of
            // the stream can run ([`TxnEntry::ending`]).
            if let Some(txn) = session::commits_txn(&request) {
                node.coordinator().count_end(&txn);
            }
            session::handle(node.clone(), Arc::downgrade(&txns), request)
        };
        let stopping = self.node.stopping();
        // Bounds what a client that sends and never reads can make the node hold (kv.proto).
        let in_flight = Some(self.node.context().config.limits.session_requests_max);
        // Once the node is stopping, it says which requests it never read (kv.proto,
        // SessionClosing): the client sends those to another node.
        let closing: mux::Closing<SessionResponse> = Arc::new(session::closing);
        let stream = request.into_inner();
        Ok(Response::new(mux::serve_bounded(stream, handler, stopping, in_flight, Some(closing))))
    }
}

/// Marks a Commit request whose END the Session stream's reader counted as received
/// ([`Coordinator::count_end`]), so that the handler does not count it again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EndCounted;

/// The transaction a handle names (whichever node began it).
pub(crate) fn txn_id_of(handle: &TxnHandle) -> TxnId {
    TxnId {
        start_ts: Timestamp(handle.start_ts),
        coordinator: handle.coordinator,
        incarnation: handle.incarnation,
        seq: handle.seq,
    }
}

fn outcome_response(outcome: Outcome) -> Result<Response<CommitResponse>, Status> {
    match outcome {
        Outcome::Committed { commit_ts } => Ok(Response::new(CommitResponse {
            outcome: proto::kv::Outcome::Committed as i32,
            abort: None,
            commit_ts: commit_ts.0,
            causal_token: commit_ts.0,
            leader: None,
        })),
        Outcome::Aborted { reason, detail } => Ok(Response::new(CommitResponse {
            outcome: proto::kv::Outcome::Aborted as i32,
            abort: Some(AbortInfo {
                reason: reason_to_proto(reason) as i32,
                message: detail,
                retryable: reason.is_retryable(),
            }),
            commit_ts: 0,
            causal_token: 0,
            leader: None,
        })),
        Outcome::Unknown(why) => Err(to_status(StatementError::Unavailable(format!(
            "the outcome of the commit is unknown ({why}); ask TxnStatus"
        )))),
    }
}

/// The STATUS block: this node, its shards, waits and counters.
pub async fn status_text(node: &Node) -> String {
    let ctx = node.context();
    let counters = &ctx.counters;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "node {} (incarnation {}), {} shards",
        ctx.me,
        ctx.incarnation,
        ctx.topology.shard_count()
    );
    for shard in node.shards() {
        let metrics = shard.raft.metrics().borrow_watched().clone();
        let role = format!("{:?}", metrics.state).to_lowercase();
        let applied = metrics.last_applied.map(|id| id.index).unwrap_or(0);
        let mut locks = match shard.lock_summary() {
            Some((holders, prepared)) => format!(", {holders} lock holders, {prepared} prepared"),
            None => String::new(),
        };
        if !shard.gate.is_open() {
            // A fresh data directory: no vote until caught up (participant::rejoin).
            locks.push_str(", votes withheld until caught up");
        }
        let _ = writeln!(
            text,
            "  {} {:<9} term {:<3} leader {:<4} applied {}{}",
            shard.id,
            role,
            metrics.current_term,
            metrics.current_leader.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
            applied,
            locks
        );
    }
    let waits: Vec<_> = node.shards().flat_map(|s| s.waits()).collect();
    let _ = writeln!(text, "lock waits: {}", waits.len());
    for wait in waits {
        let blockers: Vec<String> = wait.blockers.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            text,
            "  {} waits {} ms for {:?} on {} at {}, behind {}",
            wait.txn,
            wait.waited_ms,
            wait.mode,
            span_text(&wait.span),
            wait.shard,
            blockers.join(", ")
        );
    }
    let _ = writeln!(
        text,
        "transactions: {} running here, {} remembered; {} committed, {} aborted",
        ctx.registry.len(),
        node.coordinator().remembered(),
        Counters::get(&counters.committed),
        Counters::get(&counters.aborted)
    );
    let (entries, commands) = node
        .shards()
        .map(|s| s.proposals_written())
        .fold((0, 0), |(e, c), (de, dc)| (e + de, c + dc));
    let _ =
        writeln!(text, "batching: {entries} entries proposed here carrying {commands} commands");
    let _ = writeln!(
        text,
        "reads: leadership confirmed {} times by lease, {} by ReadIndex",
        Counters::get(&counters.lease_reads),
        Counters::get(&counters.read_index_reads)
    );
    let [log, state] = node.store().summary();
    let _ = writeln!(text, "storage: log {log}");
    let _ = writeln!(text, "storage: state {state}");
    let _ = write!(
        text,
        "deadlocks: {} probes sent, {} cycles found, {} victims; {} evictions, {} resolved; \
         {} one-statement victims run again",
        Counters::get(&counters.probes_sent),
        Counters::get(&counters.deadlocks_found),
        Counters::get(&counters.victims),
        Counters::get(&counters.evictions),
        Counters::get(&counters.resolved),
        Counters::get(&counters.runs_again)
    );
    text
}

fn span_text(span: &txn::lock::LockSpan) -> String {
    match span {
        txn::lock::LockSpan::Key(key) => display_key(key),
        txn::lock::LockSpan::Range { from, to } => {
            format!(
                "[{}, {})",
                display_key(from),
                to.as_deref().map(display_key).unwrap_or_else(|| "end".into())
            )
        }
    }
}
