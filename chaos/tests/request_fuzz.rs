//! Random requests straight at the public API (no client library in between), in the
//! simulation, checked against a model of the store: END without BEGIN, END twice, statements
//! after END, handles never issued or sent to another node than their coordinator, empty and
//! oversized keys and values, scans with `from` after `to`, `LIMIT 0` or a limit over the node's,
//! consistency values that do not exist, causal tokens from the future, writes in READ ONLY
//! transactions, `Commit` with bad writes, `TxnStatus` of anything. One client sends them one
//! at a time, so the model knows every answer's data (TESTING.md, "handler fuzzing").
//!
//! Checked:
//! - every answer is a success or a status the contract lists (`kv.proto`, "Errors"), never
//!   INTERNAL or UNKNOWN, and no node panics (a panic fails the simulation);
//! - bad input changes nothing: every read, in or out of a transaction, and the final scan of
//!   the whole key space answer exactly what the acknowledged writes and COMMITTED
//!   transactions made, and nothing of an ABORTED or refused one;
//! - `TxnStatus` and a repeated `Commit` of an ended transaction answer its outcome;
//! - once the client stops, the transactions it left open end by the idle limit, and no shard
//!   is left with a lock holder or an undecided prepared transaction.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use chaos::sim::cluster::ClusterSpec;
use chaos::sim::cluster::SimCluster;
use chaos::sim::cluster::node_addr;
use chaos::sim::net::SimConnector;
use client::connector::Connector;
use proto::kv::AbortRequest;
use proto::kv::BeginRequest;
use proto::kv::CommitRequest;
use proto::kv::Mutation;
use proto::kv::Outcome;
use proto::kv::ReadRequest;
use proto::kv::ScanRequest;
use proto::kv::TxnHandle;
use proto::kv::TxnStatusRequest;
use proto::kv::WriteRequest;
use proto::kv::kv_client::KvClient;
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tonic::Code;
use tonic::transport::Channel;
use txn::types::ShardId;

/// Requests sent.
const REQUESTS: usize = 1_500;
/// Transactions the client keeps open at most (each open one may hold locks that make the
/// next statement on its keys wait for the lock wait limit).
const OPEN_MAX: usize = 3;
/// How long the client waits for any answer: above the simulation's lock wait limit (4 s).
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// The simulation's idle limit (8 s) and the resolution of what it leaves, with room.
const SETTLE: Duration = Duration::from_secs(20);

/// The model: the committed value of every key (absent: none), and keys whose last write's
/// outcome is unknown (not compared).
#[derive(Default)]
struct Model {
    data: BTreeMap<Vec<u8>, Vec<u8>>,
    unknown: BTreeSet<Vec<u8>>,
}

impl Model {
    fn apply(&mut self, key: &[u8], value: Option<&[u8]>) {
        match value {
            Some(value) => self.data.insert(key.to_vec(), value.to_vec()),
            None => self.data.remove(key),
        };
    }
}

/// A transaction the client began and has not seen end.
#[derive(Clone, Debug)]
struct Open {
    handle: TxnHandle,
    /// The node it was begun at (its coordinator).
    node: u64,
    read_only: bool,
    /// Its acknowledged writes, in order of the keys (the last write of a key wins).
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    home: Option<u32>,
}

/// How a transaction the client saw end ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    Committed(u64),
    Aborted,
}

/// The keys the requests use: three per shard of the default map, one of them binary.
fn good_keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for prefix in ["A", "G", "W", "k"] {
        for i in 0..3 {
            keys.push(format!("{prefix}{i}").into_bytes());
        }
    }
    keys.push(vec![0xff, 0x00, 0xfe]);
    keys
}

/// The client: its random choices, its connections, and what it knows.
struct Fuzz {
    rng: SmallRng,
    /// A raw client per node id.
    kv: BTreeMap<u64, KvClient<Channel>>,
    /// The well-formed keys (bad ones are made on the spot).
    keys: Vec<Vec<u8>>,
    model: Model,
    /// Transactions begun and not seen to end.
    open: Vec<Open>,
    /// Transactions seen to end: handle, coordinator, home shard, outcome.
    ended: Vec<(TxnHandle, u64, Option<u32>, Ended)>,
    /// Answers by status code, for the summary and the check that the run did something.
    codes: BTreeMap<String, usize>,
}

/// The shard of a good key in the default 4-shard map (what a `home_shard` would be).
fn shard_of(key: &[u8]) -> u32 {
    match key.first() {
        Some(b'A') => 0,
        Some(b'G') => 1,
        Some(b'W') => 2,
        _ => 3,
    }
}

fn check_code(what: &str, status: &tonic::Status) {
    let allowed = [
        Code::InvalidArgument,
        Code::FailedPrecondition,
        Code::NotFound,
        Code::Aborted,
        Code::Unavailable,
        Code::DeadlineExceeded,
        Code::OutOfRange,
        Code::ResourceExhausted,
    ];
    assert!(
        allowed.contains(&status.code()),
        "{what} answered {:?}: {}, which the contract does not list",
        status.code(),
        status.message()
    );
}

impl Fuzz {
    fn node(&mut self) -> u64 {
        self.rng.random_range(1..=3)
    }

    fn count(&mut self, result: &str) {
        *self.codes.entry(result.to_string()).or_default() += 1;
    }

    /// A `call` answered with an error status: one the contract lists, counted as `label`.
    fn refused(&mut self, call: &str, label: &str, status: &tonic::Status) {
        check_code(call, status);
        self.count(&format!("{label} {:?}", status.code()));
    }

    fn key(&mut self) -> Vec<u8> {
        match self.rng.random_range(0..100) {
            0..=3 => Vec::new(),
            4..=5 => vec![b'A'; 4097],
            _ => self.keys[self.rng.random_range(0..self.keys.len())].clone(),
        }
    }

    fn value(&mut self) -> Vec<u8> {
        match self.rng.random_range(0..200) {
            0 => vec![7; (1 << 20) + 1],
            1..=5 => Vec::new(),
            n => format!("v{n}-{}", self.rng.random::<u16>()).into_bytes(),
        }
    }

    fn consistency(&mut self) -> i32 {
        [0, 1, 1, 1, 2, 7][self.rng.random_range(0..6)]
    }

    fn token(&mut self) -> u64 {
        match self.rng.random_range(0..10) {
            0 => u64::MAX - 1,
            1 => self.rng.random::<u64>(),
            _ => 0,
        }
    }

    /// A handle to send a statement with: an open one (and its index), an ended one, one
    /// never issued, or none.
    fn handle(&mut self) -> (Option<TxnHandle>, Option<usize>) {
        match self.rng.random_range(0..100) {
            0..=54 if !self.open.is_empty() => {
                let i = self.rng.random_range(0..self.open.len());
                (Some(self.open[i].handle), Some(i))
            }
            55..=64 if !self.ended.is_empty() => {
                let i = self.rng.random_range(0..self.ended.len());
                (Some(self.ended[i].0), None)
            }
            65..=69 => {
                let handle = TxnHandle {
                    coordinator: self.rng.random_range(0..5),
                    incarnation: self.rng.random_range(0..3),
                    seq: self.rng.random_range(0..1000),
                    start_ts: self.rng.random(),
                };
                (Some(handle), None)
            }
            _ => (None, None),
        }
    }

    /// The node to send a statement of `open` to: its coordinator, now and then another.
    fn node_for(&mut self, open: Option<usize>) -> u64 {
        match open {
            Some(i) if self.rng.random_range(0..10) > 0 => self.open[i].node,
            _ => self.node(),
        }
    }

    fn client(&self, node: u64) -> KvClient<Channel> {
        self.kv[&node].clone()
    }

    /// An open transaction the server says is gone or aborted: it ended without effect.
    fn end_open(&mut self, i: usize, how: Ended) {
        let open = self.open.remove(i);
        self.ended.push((open.handle, open.node, open.home, how));
    }

    async fn begin(&mut self) {
        let node = self.node();
        let read_only = self.rng.random_range(0..5) == 0;
        let request =
            BeginRequest { read_only, consistency: self.consistency(), causal_token: self.token() };
        let answer = within(self.client(node).begin(request)).await;
        match answer {
            Ok(response) => {
                let handle = response.into_inner().txn.expect("Begin answers a handle");
                self.count("begin ok");
                self.open.push(Open {
                    handle,
                    node,
                    read_only,
                    writes: BTreeMap::new(),
                    home: None,
                });
            }
            Err(status) => {
                self.refused("Begin", "begin", &status);
            }
        }
    }

    async fn read(&mut self) {
        let (txn, open) = self.handle();
        let node = self.node_for(open);
        let key = self.key();
        let consistency = self.consistency();
        let request = ReadRequest {
            txn,
            key: key.clone().into(),
            consistency,
            causal_token: self.token(),
            for_update: self.rng.random_range(0..4) == 0,
            begin: self.rng.random_range(0..20) == 0,
        };
        let began = request.begin && txn.is_none();
        let answer = within(self.client(node).read(request)).await;
        match answer {
            Ok(response) => {
                let response = response.into_inner();
                self.count("read ok");
                let got = response.found.then_some(response.value);
                if let Some(handle) = response.txn {
                    assert!(began, "a READ without `begin` answered a handle");
                    let writes = BTreeMap::new();
                    self.open.push(Open { handle, node, read_only: false, writes, home: None });
                }
                // What the model can tell: reads through the leaders. A read-write
                // transaction reads its own writes, else the committed value under its lock; a
                // one-statement read with sequential consistency (or the node's, sequential)
                // the committed value. A causal read, or a READ ONLY transaction's (causal if
                // begun so), may be served from an older snapshot; an unknown consistency
                // value means what the node decides.
                let expected: Option<Option<Vec<u8>>> = match open {
                    Some(i) if !self.open[i].read_only => match self.open[i].writes.get(&key) {
                        Some(own) => Some(own.clone()),
                        None => Some(self.model.data.get(&key).cloned()),
                    },
                    Some(_) => None,
                    None if txn.is_none() && (consistency == 1 || consistency == 0) => {
                        Some(self.model.data.get(&key).cloned())
                    }
                    None if txn.is_none() => None,
                    None => panic!("a READ with a handle the client never had open went through"),
                };
                if let Some(expected) = expected
                    && !self.model.unknown.contains(&key)
                {
                    assert_eq!(
                        got.as_deref(),
                        expected.as_deref(),
                        "READ {} (transaction {:?}) answered what the model does not hold",
                        String::from_utf8_lossy(&key),
                        open.map(|i| self.open[i].handle)
                    );
                }
            }
            Err(status) => {
                self.refused("Read", "read", &status);
                self.after_statement_error(open, node, &status);
            }
        }
    }

    /// A statement of open transaction `open` failed: ABORTED ends it (its later statements
    /// answer ABORTED until it is ended, which the model treats alike), NOT_FOUND at its own
    /// coordinator means it is gone. Bad input leaves it open.
    fn after_statement_error(&mut self, open: Option<usize>, node: u64, status: &tonic::Status) {
        let Some(i) = open else { return };
        let gone = status.code() == Code::Aborted
            || (status.code() == Code::NotFound && node == self.open[i].node)
            || matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded);
        if gone {
            // Its writes will never apply.
            self.end_open(i, Ended::Aborted);
        }
    }

    async fn write(&mut self) {
        let (txn, open) = self.handle();
        let node = self.node_for(open);
        let key = self.key();
        let delete = self.rng.random_range(0..5) == 0;
        let value = self.value();
        let request = WriteRequest {
            txn,
            key: key.clone().into(),
            value: value.clone().into(),
            delete,
            causal_token: self.token(),
        };
        let answer = within(self.client(node).write(request)).await;
        let written = (!delete).then_some(value);
        match answer {
            Ok(response) => {
                let response = response.into_inner();
                self.count("write ok");
                match open {
                    Some(i) => {
                        assert!(!self.open[i].read_only, "a READ ONLY transaction took a write");
                        let o = &mut self.open[i];
                        o.writes.insert(key, written);
                        o.home = o.home.or(response.home_shard);
                    }
                    None if txn.is_none() => self.model.apply(&key, written.as_deref()),
                    None => panic!("a write with a handle the client never had open went through"),
                }
            }
            Err(status) => {
                self.refused("Write", "write", &status);
                if txn.is_none()
                    && matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded)
                {
                    self.model.unknown.insert(key);
                }
                self.after_statement_error(open, node, &status);
            }
        }
    }

    async fn scan(&mut self) {
        let mut ends = [self.key(), self.key()];
        if self.rng.random_range(0..4) > 0 {
            ends.sort();
        }
        let [from, to] = ends;
        let to = if self.rng.random_range(0..5) == 0 { Vec::new() } else { to };
        let limit = match self.rng.random_range(0..10) {
            0 => Some(0),
            1 => Some(100_000),
            2..=4 => Some(self.rng.random_range(1..5)),
            _ => None,
        };
        let consistency = self.consistency();
        let request = ScanRequest {
            txn: None,
            from: from.clone().into(),
            to: to.clone().into(),
            limit,
            consistency,
            causal_token: self.token(),
        };
        let node = self.node();
        match within(self.client(node).scan(request)).await {
            Ok(response) => {
                self.count("scan ok");
                let rows: Vec<(Vec<u8>, Vec<u8>)> = response
                    .into_inner()
                    .rows
                    .into_iter()
                    .map(|r| (r.key.to_vec(), r.value.to_vec()))
                    .collect();
                if consistency != 2 {
                    let expected: Vec<(Vec<u8>, Vec<u8>)> = self
                        .model
                        .data
                        .iter()
                        .filter(|(k, _)| **k >= from && (to.is_empty() || **k < to))
                        .take(limit.map_or(usize::MAX, |l| l as usize))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    if self.model.unknown.is_empty() {
                        assert_eq!(rows, expected, "SCAN answered what the model does not hold");
                    }
                }
            }
            Err(status) => {
                self.refused("Scan", "scan", &status);
            }
        }
    }

    async fn commit(&mut self) {
        let (txn, open) = self.handle();
        let node = self.node_for(open);
        let writes: Vec<Mutation> = (0..self.rng.random_range(0..3))
            .map(|_| Mutation {
                key: self.key().into(),
                value: self.value().into(),
                delete: self.rng.random_range(0..5) == 0,
            })
            .collect();
        let request = CommitRequest { txn, writes: writes.clone(), causal_token: self.token() };
        let answer = within(self.client(node).commit(request)).await;
        let apply = |model: &mut Model, own: &BTreeMap<Vec<u8>, Option<Vec<u8>>>| {
            let mut all = own.clone();
            for w in &writes {
                all.insert(w.key.to_vec(), (!w.delete).then(|| w.value.to_vec()));
            }
            for (key, value) in &all {
                model.apply(key, value.as_deref());
            }
        };
        match answer {
            Ok(response) => {
                let response = response.into_inner();
                let outcome = Outcome::try_from(response.outcome).expect("an outcome");
                self.count(&format!("commit {outcome:?}"));
                let how = match outcome {
                    Outcome::Committed => Ended::Committed(response.commit_ts),
                    _ => Ended::Aborted,
                };
                match (txn, open) {
                    (None, _) => {
                        if how != Ended::Aborted {
                            apply(&mut self.model, &BTreeMap::new());
                        }
                    }
                    (Some(_), Some(i)) => {
                        if how != Ended::Aborted {
                            let own = self.open[i].writes.clone();
                            apply(&mut self.model, &own);
                        }
                        let first = writes.first().map(|w| shard_of(&w.key));
                        self.open[i].home = self.open[i].home.or(first);
                        self.end_open(i, how);
                    }
                    (Some(handle), None) => {
                        // An ended transaction's outcome again, its writes ignored.
                        if let Some(known) = self.outcome_of(&handle) {
                            assert_eq!(how, known, "a repeated Commit of {handle:?}");
                        } else {
                            panic!("Commit of a handle never issued answered {outcome:?}");
                        }
                    }
                }
            }
            Err(status) => {
                self.refused("Commit", "commit", &status);
                let unknown = matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded);
                match open {
                    Some(i) if unknown => {
                        // Outcome unknown: ask, as the contract says.
                        let (handle, home) = (self.open[i].handle, self.open[i].home);
                        let home = home.or(writes.first().map(|w| shard_of(&w.key)));
                        let how = self.status(node, handle, home).await;
                        if let Some(Ended::Committed(_)) = how {
                            let own = self.open[i].writes.clone();
                            apply(&mut self.model, &own);
                        }
                        self.end_open(i, how.unwrap_or(Ended::Aborted));
                    }
                    Some(i) => {
                        let ended = status.code() == Code::Aborted
                            || (status.code() == Code::NotFound && node == self.open[i].node);
                        if ended {
                            self.end_open(i, Ended::Aborted);
                        }
                    }
                    None if txn.is_none() && unknown => {
                        for w in &writes {
                            self.model.unknown.insert(w.key.to_vec());
                        }
                    }
                    None => {}
                }
            }
        }
    }

    async fn abort(&mut self) {
        let (txn, open) = self.handle();
        let node = self.node_for(open);
        match within(self.client(node).abort(AbortRequest { txn })).await {
            Ok(_) => {
                // An OK says nothing of it took effect (until 2026-12-06 it was said of
                // committed transactions too).
                assert!(
                    !matches!(
                        txn.as_ref().and_then(|h| self.outcome_of(h)),
                        Some(Ended::Committed(_))
                    ),
                    "Abort answered OK for committed {txn:?}"
                );
                self.count("abort ok");
                if let Some(i) = open
                    && node == self.open[i].node
                {
                    self.end_open(i, Ended::Aborted);
                }
            }
            Err(status) => {
                self.refused("Abort", "abort", &status);
                if let Some(i) = open
                    && node == self.open[i].node
                    && status.code() == Code::NotFound
                {
                    self.end_open(i, Ended::Aborted);
                }
            }
        }
    }

    /// What the client knows of an ended transaction's outcome.
    fn outcome_of(&self, handle: &TxnHandle) -> Option<Ended> {
        self.ended.iter().rev().find(|(h, ..)| h == handle).map(|(.., how)| *how)
    }

    /// `TxnStatus` of `handle` at `node`: its outcome, or None if the node no longer knows.
    async fn status(&mut self, node: u64, handle: TxnHandle, home: Option<u32>) -> Option<Ended> {
        let request = TxnStatusRequest { txn: Some(handle), home_shard: home };
        match within(self.client(node).txn_status(request)).await {
            Ok(response) => {
                let response = response.into_inner();
                match Outcome::try_from(response.outcome).expect("an outcome") {
                    Outcome::Committed => Some(Ended::Committed(response.commit_ts)),
                    Outcome::Aborted => Some(Ended::Aborted),
                    Outcome::Unspecified => panic!("TxnStatus of {handle:?} answered no outcome"),
                }
            }
            Err(status) => {
                check_code("TxnStatus", &status);
                None
            }
        }
    }

    async fn txn_status(&mut self) {
        let node = self.node();
        if !self.ended.is_empty() && self.rng.random_range(0..2) == 0 {
            // An ended transaction: its known outcome (or "no longer known").
            let i = self.rng.random_range(0..self.ended.len());
            let (handle, _, home, known) = self.ended[i];
            let home = home.or(Some(self.rng.random_range(0..4)));
            if let Some(how) = self.status(node, handle, home).await {
                self.count("status known");
                // A transaction that committed nothing (commit timestamp 0) has no record:
                // "nothing to commit", and either answer means no effect (`kv.proto`).
                if let Ended::Committed(ts) = known
                    && ts > 0
                {
                    assert_eq!(how, known, "TxnStatus of committed {handle:?}");
                }
                if known == Ended::Aborted {
                    assert_eq!(how, Ended::Aborted, "TxnStatus of aborted {handle:?}");
                }
            }
            return;
        }
        let (txn, _) = self.handle();
        let home = match self.rng.random_range(0..6) {
            0 => None,
            1 => Some(99),
            _ => Some(self.rng.random_range(0..4)),
        };
        let request = TxnStatusRequest { txn, home_shard: home };
        match within(self.client(node).txn_status(request)).await {
            Ok(response) => {
                // An open transaction asked about may be decided ABORTED here (its client
                // seems to have given up): its next statement or Commit says so.
                let outcome = Outcome::try_from(response.into_inner().outcome);
                assert!(outcome.is_ok(), "TxnStatus answered an outcome that does not exist");
                self.count("status ok");
            }
            Err(status) => {
                self.refused("TxnStatus", "status", &status);
            }
        }
    }

    async fn one(&mut self) {
        let roll = self.rng.random_range(0..100);
        match roll {
            0..=14 if self.open.len() < OPEN_MAX => self.begin().await,
            0..=14 => self.abort().await,
            15..=34 => self.read().await,
            35..=54 => self.write().await,
            55..=64 => self.scan().await,
            65..=79 => self.commit().await,
            80..=89 => self.abort().await,
            _ => self.txn_status().await,
        }
    }
}

/// A call with the client's deadline; no answer in time counts as DEADLINE_EXCEEDED.
async fn within<T>(
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<tonic::Response<T>, tonic::Status> {
    match tokio::time::timeout(ANSWER_WITHIN, call).await {
        Ok(answer) => answer,
        Err(_) => Err(tonic::Status::deadline_exceeded("no answer within the client's deadline")),
    }
}

/// The seed CI runs; `REQUEST_FUZZ_SEED=N` runs another (to explore).
const SEED: u64 = 31;

#[test]
fn random_requests_get_contract_statuses_and_change_nothing_they_should_not() {
    let seed = std::env::var("REQUEST_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SEED);
    let mut cluster = SimCluster::new(ClusterSpec::new(seed, 3));
    let done = Rc::new(RefCell::new(None));
    let client_done = done.clone();
    cluster.client("fuzz", async move {
        let kv = (1..=3)
            .map(|id| (id, KvClient::new(SimConnector.channel(&node_addr(id)))))
            .collect::<BTreeMap<_, _>>();
        chaos::inspect::wait_settled(3, chaos::sim::cluster::SHARDS).await?;
        let mut fuzz = Fuzz {
            rng: SmallRng::seed_from_u64(seed),
            kv,
            keys: good_keys(),
            model: Model::default(),
            open: Vec::new(),
            ended: Vec::new(),
            codes: BTreeMap::new(),
        };
        for _ in 0..REQUESTS {
            fuzz.one().await;
        }
        // The client walks away from what it left open: the idle limit ends it.
        tokio::time::sleep(SETTLE).await;
        for shard in 0..4 {
            for node in 1..=3 {
                let state = chaos::inspect::inspect(&node_addr(node), ShardId(shard)).await?;
                assert_eq!(state.lock_holders, 0, "lock holders left on n{node} s{shard}");
                assert_eq!(state.prepared, 0, "prepared transactions left on n{node} s{shard}");
            }
        }
        // Everything, through the leaders: exactly the model.
        let request = ScanRequest { limit: Some(10_000), consistency: 1, ..Default::default() };
        let rows = fuzz.client(1).scan(request).await?.into_inner().rows;
        let rows: BTreeMap<Vec<u8>, Vec<u8>> =
            rows.into_iter().map(|r| (r.key.to_vec(), r.value.to_vec())).collect();
        let mut expected = fuzz.model.data.clone();
        for key in &fuzz.model.unknown {
            expected.remove(key);
        }
        let rows: BTreeMap<_, _> =
            rows.into_iter().filter(|(k, _)| !fuzz.model.unknown.contains(k)).collect();
        assert_eq!(rows, expected, "the final state is what the acknowledged writes made");
        *client_done.borrow_mut() = Some(fuzz.codes);
        Ok(())
    });
    cluster.run_until(|| done.borrow().is_some());
    let codes = done.borrow().clone().expect("the client finished");
    eprintln!("answers: {codes:?}");
    for wanted in ["begin ok", "write ok", "read ok", "scan ok", "commit Committed"] {
        assert!(codes.get(wanted).copied().unwrap_or(0) >= 20, "few `{wanted}`: {codes:?}");
    }
    for wanted in ["write InvalidArgument", "read NotFound", "commit NotFound"] {
        assert!(codes.contains_key(wanted), "no `{wanted}`: {codes:?}");
    }
}
