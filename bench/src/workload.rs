//! The workloads: what one worker does in a closed loop until the window closes.
//!
//! | workload   | one operation                                                         |
//! |------------|-----------------------------------------------------------------------|
//! | `put`      | `WRITE k v` of a random key, outside a transaction                    |
//! | `get`      | `READ k` of a random preloaded key, outside a transaction             |
//! | `txn2`     | `BEGIN; WRITE a v; WRITE b v; END`, `a` and `b` in different shards    |
//! | `rmw`      | `BEGIN; READ a; READ b; WRITE a v; WRITE b v; END`, `a != b`           |
//! | `bank`     | `BEGIN; READ a; READ b; WRITE a (a-1); WRITE b (b+1); END`            |
//! | `deadlock` | a round: two sessions lock two keys in opposite orders (see below)    |
//!
//! By default (`--writes one-shot`) `txn2`'s two writes are one Commit without a handle
//! (`Client::commit_writes`: no BEGIN, one round trip, as etcd's `Txn` of two puts), and the
//! writes of `rmw` and `bank` travel with END (`Transaction::commit_with`). `--writes
//! with-end` sends `txn2` as BEGIN then END with the writes; `--writes statements` sends each
//! write as a WRITE statement of its own. `rmw` and `bank` read the keys they will write under
//! exclusive locks (`Transaction::get_for_update`, SQL's SELECT ... FOR UPDATE); `--reads
//! shared` reads them under shared locks, upgraded when written. Transactions begin at the
//! leader of their first key's shard (`Client::begin_near`); `--begin any` begins them at any
//! node in turn.
//!
//! # Counting
//!
//! An operation counts if it finishes inside the window. For the transaction workloads an
//! operation is one *attempt*: it ends COMMITTED or ABORTED, and both are operations (as the
//! peer tool counts a failed compare-and-swap as an operation); `goodput` counts the commits.
//! An attempt that aborts for a retryable reason (`DEADLOCK`, `LOCK_TIMEOUT`, ...) is run again
//! on the same keys after a short random backoff, until it commits or the window closes; the
//! commit latency (`commit_p50_us`) runs from the first attempt's BEGIN to the COMMITTED.
//! Anything else that fails (no answer, an unknown outcome) is an error: counted, not an
//! operation, and the worker moves on to new keys after [`ERROR_PAUSE`].
//!
//! # Deadlock rounds
//!
//! A pair of sessions S0 and S1 owns two keys `a` and `b` in different shards, and repeats:
//!
//! ```text
//!   S0: BEGIN; WRITE a      S1: BEGIN; WRITE b          (in parallel: T0 holds a, T1 holds b)
//!   S0: WRITE b   -> blocks behind T1
//!   (CLOSE_GAP later)
//!   S1: WRITE a   -> closes the cycle T0 -> T1 -> T0    <- "close" instant
//!   the victim's blocked WRITE answers ABORTED: DEADLOCK <- "detect" instant
//!   the survivor's WRITE is granted, it commits; the victim is ended
//! ```
//!
//! The detect latency is the time from the close instant to the victim's answer, whichever of
//! the two is the victim (the youngest, for the servers' rule). For `deadlock` an operation is
//! a round (from the two BEGINs to the survivor's COMMITTED), goodput counts the survivors'
//! commits, `aborts` counts the victims (and lock-wait timeouts, when no victim was chosen),
//! and a round that ends in anything but exactly one `DEADLOCK` victim and one commit is
//! named in `anomalies`.

use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use client::Client;
use client::Error;
use client::Mutation;
use client::Transaction;
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::keys;
use crate::keys::Splits;
use crate::run::WritesArg;
use crate::stats::Live;
use crate::stats::Tally;

/// Pause after an error before the next operation (so a dead cluster is not spun on).
pub const ERROR_PAUSE: Duration = Duration::from_millis(10);
/// Deadlock rounds: from the first blocked statement to the statement that closes the cycle,
/// time for the first to reach its shard and queue there.
pub const CLOSE_GAP: Duration = Duration::from_millis(5);
/// Longest backoff before retrying an aborted transaction.
pub const BACKOFF_MAX: Duration = Duration::from_millis(64);
/// The balance every `bank` account starts with.
pub const INITIAL_BALANCE: i64 = 1000;

/// A workload's name, as on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Single-key put of a random key.
    Put,
    /// Single-key get of a random preloaded key.
    Get,
    /// One transaction writing two keys in different shards.
    Txn2,
    /// Read two keys, write both, in one transaction; aborts retried.
    Rmw,
    /// Transfers between accounts, with the total checked at the end.
    Bank,
    /// Deadlock cycles made on purpose, two sessions per cycle.
    Deadlock,
}

impl Workload {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Get => "get",
            Workload::Txn2 => "txn2",
            Workload::Rmw => "rmw",
            Workload::Bank => "bank",
            Workload::Deadlock => "deadlock",
        }
    }
}

/// What every worker of a run shares.
#[derive(Debug)]
pub struct Shared {
    /// The workload.
    pub workload: Workload,
    /// Keys (or accounts) are drawn from `0..keys`.
    pub keys: u64,
    /// This run's id: `bank` names its accounts with it ([`keys::account`]).
    pub run: u32,
    /// The value written.
    pub value: Vec<u8>,
    /// How transactions send their writes.
    pub writes: WritesArg,
    /// Transactions begin at the leader of their first key's shard (else at any node).
    pub begin_near: bool,
    /// `rmw` and `bank` read under exclusive locks (else shared ones).
    pub reads_for_update: bool,
    /// The shard map.
    pub splits: Splits,
    /// The window closes here: nothing that finishes later is counted.
    pub deadline: Instant,
    /// Live counters for the progress bar.
    pub live: Arc<Live>,
}

/// A worker's random generator: seeded by its number, so runs draw the same keys.
pub fn worker_rng(worker: usize) -> SmallRng {
    SmallRng::seed_from_u64(0x6b76_6265_6e63_6800 ^ worker as u64)
}

/// The backoff before retry number `retry` (1, 2, ...): uniform in `[b/2, b]` with `b` doubling
/// from 1 ms up to [`BACKOFF_MAX`].
pub fn backoff<R: Rng>(rng: &mut R, retry: u32) -> Duration {
    let base = Duration::from_millis(1 << retry.saturating_sub(1).min(16)).min(BACKOFF_MAX);
    let half = base / 2;
    half + half.mul_f64(rng.random::<f64>())
}

/// `put` and `get`: one single-key operation at a time until the window closes.
pub async fn single_key_worker(client: Client, worker: usize, shared: Arc<Shared>) -> Tally {
    let mut tally = Tally::default();
    let mut rng = worker_rng(worker);
    let live = &shared.live;
    while Instant::now() < shared.deadline {
        let key = keys::key(rng.random_range(0..shared.keys));
        let start = Instant::now();
        let result = match shared.workload {
            Workload::Get => {
                client.get_with_snapshot(&key).await.map(|(_, snapshot)| tally.snapshot(snapshot))
            }
            _ => client.put(&key, &shared.value).await,
        };
        let done = Instant::now();
        if done > shared.deadline {
            tally.late += 1;
            break;
        }
        match result {
            Ok(()) => {
                tally.op(done - start, live);
                tally.commit(done - start, live);
            }
            Err(error) => {
                tally.error(&error, live);
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
    tally
}

/// The statements of one transaction attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// WRITE a; WRITE b.
    Txn2(String, String),
    /// READ a; READ b; WRITE a; WRITE b.
    Rmw(String, String),
    /// READ from; READ to; WRITE from (from-1); WRITE to (to+1).
    Transfer(String, String),
}

impl Body {
    /// The key the transaction works on first.
    pub fn first_key(&self) -> &str {
        match self {
            Body::Txn2(a, _) | Body::Rmw(a, _) | Body::Transfer(a, _) => a,
        }
    }

    /// The next transaction of `workload` (a transaction workload), keys from `rng`.
    pub fn draw<R: Rng>(workload: Workload, rng: &mut R, shared: &Shared) -> Body {
        match workload {
            Workload::Txn2 => {
                let (a, b) = keys::pick_cross_shard(rng, shared.keys, &shared.splits);
                Body::Txn2(keys::key(a), keys::key(b))
            }
            Workload::Bank => {
                let (a, b) = keys::pick_distinct(rng, shared.keys);
                Body::Transfer(keys::account(shared.run, a), keys::account(shared.run, b))
            }
            _ => {
                let (a, b) = keys::pick_distinct(rng, shared.keys);
                Body::Rmw(keys::key(a), keys::key(b))
            }
        }
    }

    /// Runs the reads; returns the writes.
    async fn run(&self, txn: &mut Transaction, shared: &Shared) -> Result<Vec<Mutation>, Error> {
        let value = &shared.value;
        let for_update = shared.reads_for_update;
        Ok(match self {
            Body::Txn2(a, b) => vec![Mutation::put(a, value), Mutation::put(b, value)],
            Body::Rmw(a, b) => {
                read(txn, a, for_update).await?;
                read(txn, b, for_update).await?;
                vec![Mutation::put(a, value), Mutation::put(b, value)]
            }
            Body::Transfer(from, to) => {
                let from_balance = balance(from, read(txn, from, for_update).await?)?;
                let to_balance = balance(to, read(txn, to, for_update).await?)?;
                vec![
                    Mutation::put(from, (from_balance - 1).to_string()),
                    Mutation::put(to, (to_balance + 1).to_string()),
                ]
            }
        })
    }
}

/// READ of a key the transaction will write.
async fn read(
    txn: &mut Transaction,
    key: &str,
    for_update: bool,
) -> Result<Option<Vec<u8>>, Error> {
    if for_update { txn.get_for_update(key).await } else { txn.get(key).await }
}

/// An account's balance from its stored value.
pub fn balance(account: &str, value: Option<Vec<u8>>) -> Result<i64, Error> {
    let value = value.ok_or_else(|| Error::Invalid(format!("account {account} is missing")))?;
    String::from_utf8_lossy(&value)
        .parse()
        .map_err(|_| Error::Invalid(format!("account {account} holds a non-number")))
}

/// One attempt: BEGIN, the body, END (or ABORT when the body failed); a body that reads
/// nothing goes without BEGIN under `--writes one-shot`.
async fn attempt(client: &Client, body: &Body, shared: &Shared) -> Result<(), Error> {
    if let (WritesArg::OneShot, Body::Txn2(a, b)) = (shared.writes, body) {
        let writes = vec![Mutation::put(a, &shared.value), Mutation::put(b, &shared.value)];
        return client.commit_writes(writes).await.map(drop);
    }
    let mut txn = if shared.begin_near {
        client.begin_near(body.first_key()).await?
    } else {
        client.begin().await?
    };
    let body = async {
        let writes = body.run(&mut txn, shared).await?;
        if shared.writes != WritesArg::Statements {
            return Ok(writes);
        }
        for write in writes {
            match &write.value {
                Some(value) => txn.put(&write.key, value).await?,
                None => txn.delete(&write.key).await?,
            }
        }
        Ok(Vec::new())
    };
    match body.await {
        Ok(writes) => txn.commit_with(writes).await.map(drop),
        Err(error) => {
            let _ = txn.abort().await;
            Err(error)
        }
    }
}

/// The abort reasons that contention causes. An attempt that ends in one counts as an operation,
/// as etcd's compare-and-swap that finds its keys changed does in the peer tool's `rmw`; an
/// attempt that aborts for another reason (a leader change, a shard unreachable: the cluster's
/// availability, not the workload's contention) counts in the aborts only, so that it cannot
/// raise `ops`. Goodput counts commits alone either way.
pub const CONFLICT_ABORTS: [&str; 2] = ["DEADLOCK", "LOCK_TIMEOUT"];

/// `txn2`, `rmw`, `bank`: one transaction at a time, aborted attempts retried.
pub async fn txn_worker(client: Client, worker: usize, shared: Arc<Shared>) -> Tally {
    let mut tally = Tally::default();
    let mut rng = worker_rng(worker);
    let live = &shared.live;
    'transactions: while Instant::now() < shared.deadline {
        let body = Body::draw(shared.workload, &mut rng, &shared);
        let first = Instant::now();
        let mut retry = 0;
        loop {
            let start = Instant::now();
            let result = attempt(&client, &body, &shared).await;
            let done = Instant::now();
            if done > shared.deadline {
                tally.late += 1;
                break 'transactions;
            }
            match result {
                Ok(()) => {
                    tally.op(done - start, live);
                    tally.commit(done - first, live);
                    break;
                }
                Err(Error::Aborted { reason, retryable, .. }) => {
                    if CONFLICT_ABORTS.contains(&reason.as_str()) {
                        tally.op(done - start, live);
                    }
                    tally.abort(&reason, live);
                    if !retryable {
                        break;
                    }
                    retry += 1;
                    tally.retries += 1;
                    tokio::time::sleep(backoff(&mut rng, retry)).await;
                    if Instant::now() >= shared.deadline {
                        break 'transactions;
                    }
                }
                Err(error) => {
                    tally.error(&error, live);
                    tokio::time::sleep(ERROR_PAUSE).await;
                    break;
                }
            }
        }
    }
    tally
}

/// Writes `value` under keys `0..count` with `parallel` requests in flight. Each key and value
/// is made when its write is sent (a large `--value-size` times thousands of keys does not fit
/// in memory at once).
pub async fn preload<N, V>(
    client: &Client,
    count: u64,
    parallel: u64,
    name: N,
    value: V,
) -> Result<(), Error>
where
    N: Fn(u64) -> String + Clone + Send + 'static,
    V: Fn(u64) -> Vec<u8> + Clone + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..parallel.min(count) {
        let client = client.clone();
        let (name, value) = (name.clone(), value.clone());
        tasks.spawn(async move {
            for i in (lane..count).step_by(parallel as usize) {
                let (key, value) = (name(i), value(i));
                let mut tries = 0;
                loop {
                    match client.put(&key, &value).await {
                        Ok(()) => break,
                        Err(_) if tries < 3 => tries += 1,
                        Err(error) => return Err(error),
                    }
                }
            }
            Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("a preload task panicked")?;
    }
    Ok(())
}

/// `bank`: the sum of all balances, read in one transaction (retried on aborts).
pub async fn bank_total(client: &Client, run: u32, accounts: u64) -> Result<i64, Error> {
    let names: Vec<String> = (0..accounts).map(|i| keys::account(run, i)).collect();
    client
        .transaction(|txn| {
            let names = names.clone();
            Box::pin(async move {
                let mut total = 0;
                for name in &names {
                    total += balance(name, txn.get(name).await?)?;
                }
                Ok(total)
            })
        })
        .await
}

/// How one deadlock round ended.
struct Round {
    /// The blocked WRITE of each session: its result and when it answered.
    writes: [(Result<(), Error>, Instant); 2],
    /// When the closing WRITE was sent.
    close: Instant,
}

/// `deadlock`: one pair of sessions making cycles on keys `a` and `b` until the window closes.
pub async fn deadlock_pair(
    sessions: [Client; 2],
    a: String,
    b: String,
    shared: Arc<Shared>,
) -> Tally {
    let mut tally = Tally::default();
    while Instant::now() < shared.deadline {
        let start = Instant::now();
        let mut round = Tally::default();
        let completed = deadlock_round(&sessions, &a, &b, &shared, &mut round).await;
        let done = Instant::now();
        if done > shared.deadline {
            tally.late += 1;
            break;
        }
        if completed {
            round.op(done - start, &shared.live);
        } else {
            tokio::time::sleep(ERROR_PAUSE).await;
        }
        tally.merge(round);
    }
    tally
}

/// One round (see the module's header); false when it failed before the cycle was made.
async fn deadlock_round(
    sessions: &[Client; 2],
    a: &str,
    b: &str,
    shared: &Shared,
    tally: &mut Tally,
) -> bool {
    let live = &shared.live;
    let start = Instant::now();
    let (t0, t1) = tokio::join!(sessions[0].begin(), sessions[1].begin());
    let (mut t0, mut t1) = match (t0, t1) {
        (Ok(t0), Ok(t1)) => (t0, t1),
        (Ok(t), Err(error)) | (Err(error), Ok(t)) => {
            let _ = t.abort().await;
            failed(tally, &error, live);
            return false;
        }
        (Err(error), Err(_)) => {
            failed(tally, &error, live);
            return false;
        }
    };
    let (first0, first1) = tokio::join!(t0.put(a, &shared.value), t1.put(b, &shared.value));
    if let Err(error) = first0.and(first1) {
        let _ = tokio::join!(t0.abort(), t1.abort());
        failed(tally, &error, live);
        return false;
    }
    // T0 asks for b (held by T1) and queues; then T1 asks for a (held by T0): a cycle.
    let (key, value) = (b.to_string(), shared.value.clone());
    let blocked = tokio::spawn(async move {
        let result = t0.put(&key, &value).await;
        (t0, result, Instant::now())
    });
    tokio::time::sleep(CLOSE_GAP).await;
    let close = Instant::now();
    let closing = t1.put(a, &shared.value).await;
    let closed = Instant::now();
    let (t0, blocked, blocked_at) = blocked.await.expect("a deadlock session task panicked");
    let round = Round { writes: [(blocked, blocked_at), (closing, closed)], close };
    let survivors = settle_round(tally, round, live);
    // End both: commit a survivor, end a victim (the server already aborted it).
    for (txn, survived) in [(t0, survivors[0]), (t1, survivors[1])] {
        if survived {
            match txn.commit().await {
                Ok(_) => tally.commit(Instant::now() - start, live),
                Err(Error::Aborted { reason, .. }) => tally.abort(&reason, live),
                Err(error) => tally.error(&error, live),
            }
        } else {
            let _ = txn.abort().await;
        }
    }
    true
}

/// Counts a failure of a round's set-up.
fn failed(tally: &mut Tally, error: &Error, live: &Live) {
    match error {
        Error::Aborted { reason, .. } => tally.abort(reason, live),
        other => tally.error(other, live),
    }
}

/// Classifies a round's two blocked writes; returns which transactions may commit.
fn settle_round(tally: &mut Tally, round: Round, live: &Live) -> [bool; 2] {
    let mut survivors = [true; 2];
    let mut detected: Option<Instant> = None;
    for (i, (result, at)) in round.writes.iter().enumerate() {
        if let Err(error) = result {
            survivors[i] = false;
            match error {
                Error::Aborted { reason, .. } => {
                    tally.abort(reason, live);
                    if reason == "DEADLOCK" {
                        detected = Some(detected.map_or(*at, |d| d.min(*at)));
                    }
                }
                other => tally.error(other, live),
            }
        }
    }
    match detected {
        Some(at) => {
            if at < round.close {
                tally.anomaly("victim_aborted_before_cycle_closed");
            }
            tally.deadlock(at.saturating_duration_since(round.close));
        }
        None => tally.rounds_without_deadlock += 1,
    }
    match survivors {
        // One cycle needs one victim; a second abort (a second victim, or a lock-wait timeout
        // of the survivor too) cost a transaction for nothing.
        [false, false] => tally.anomaly("both_aborted"),
        [true, true] => tally.anomaly("cycle_not_broken_both_granted"),
        _ => {}
    }
    survivors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut rng = worker_rng(0);
        for retry in 1..40 {
            let pause = backoff(&mut rng, retry);
            let base = Duration::from_millis(1 << (retry - 1).min(16)).min(BACKOFF_MAX);
            assert!(pause >= base / 2 && pause <= base, "retry {retry}: {pause:?}");
        }
    }

    #[test]
    fn balances_parse() {
        assert_eq!(balance("a", Some(b"-12".to_vec())), Ok(-12));
        assert!(balance("a", None).is_err());
        assert!(balance("a", Some(b"x".to_vec())).is_err());
    }

    fn shared(workload: Workload, keys: u64) -> Shared {
        Shared {
            workload,
            keys,
            run: 7,
            value: vec![b'x'; 8],
            writes: WritesArg::WithEnd,
            begin_near: true,
            reads_for_update: true,
            splits: Splits::even(4),
            deadline: Instant::now(),
            live: Arc::new(Live::default()),
        }
    }

    #[test]
    fn drawn_transactions_follow_their_workload() {
        let mut rng = worker_rng(1);
        let splits = Splits::even(4);
        for _ in 0..500 {
            match Body::draw(Workload::Txn2, &mut rng, &shared(Workload::Txn2, 2000)) {
                Body::Txn2(a, b) => {
                    assert_ne!(splits.shard_of(a.as_bytes()), splits.shard_of(b.as_bytes()))
                }
                other => panic!("txn2 drew {other:?}"),
            }
            match Body::draw(Workload::Bank, &mut rng, &shared(Workload::Bank, 8)) {
                Body::Transfer(a, b) => {
                    assert_ne!(a, b);
                    assert!(a.contains("acct") && b.contains("acct"));
                }
                other => panic!("bank drew {other:?}"),
            }
            match Body::draw(Workload::Rmw, &mut rng, &shared(Workload::Rmw, 2)) {
                Body::Rmw(a, b) => assert_ne!(a, b),
                other => panic!("rmw drew {other:?}"),
            }
        }
    }

    fn aborted(reason: &str) -> Result<(), Error> {
        Err(Error::Aborted { reason: reason.into(), message: String::new(), retryable: true })
    }

    #[test]
    fn rounds_are_classified() {
        let live = Live::default();
        let close = Instant::now();
        let later = close + Duration::from_millis(15);
        let mut tally = Tally::default();
        let survivors = settle_round(
            &mut tally,
            Round { writes: [(aborted("DEADLOCK"), later), (Ok(()), later)], close },
            &live,
        );
        assert_eq!(survivors, [false, true]);
        assert_eq!(tally.deadlocks, 1);
        assert_eq!(tally.detect.max() / 1000, 15);
        assert!(tally.anomalies.is_empty());

        let survivors = settle_round(
            &mut tally,
            Round { writes: [(Ok(()), later), (aborted("LOCK_TIMEOUT"), later)], close },
            &live,
        );
        assert_eq!(survivors, [true, false]);
        assert_eq!(tally.deadlocks, 1);
        assert_eq!(tally.rounds_without_deadlock, 1);
        assert_eq!(tally.aborts.get("LOCK_TIMEOUT"), Some(&1));

        let survivors = settle_round(
            &mut tally,
            Round { writes: [(aborted("DEADLOCK"), later), (aborted("DEADLOCK"), later)], close },
            &live,
        );
        assert_eq!(survivors, [false, false]);
        assert_eq!(tally.anomalies.get("both_aborted"), Some(&1));
    }
}
