//! Issue 3, recovery: the coordinator node of a cross-shard transaction is killed with SIGKILL
//! in the middle of its commit. The participants never block on it: they resolve the
//! transaction through its record within seconds, the keys become readable and writable again
//! within 10 s, the outcome is all-or-nothing, and `TxnStatus` tells it exactly.
//!
//! The exact moments (between the votes and the decision; after the decision) are reached with
//! the `KVD_PAUSE` failpoint (server/src/failpoint.rs): the coordinator node pauses there, the
//! test sees the pause in its log and kills it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::time::Duration;

use client::Client;
use client::CommitInfo;
use client::Error;
use client::Mutation;
use client::TxnOutcome;
use e2e::Cluster;
use e2e::eventually;
use e2e::keys::SHARD_KEYS;
use e2e::placement::begin_on;
use e2e::placement::try_begin_on;
use e2e::text;
use proto::kv::TxnHandle;
use tokio::time::Instant;

/// How soon after the coordinator's death its keys must be usable again.
const FREED_WITHIN: Duration = Duration::from_secs(10);
/// The log line of a failpoint pause.
const PAUSED: &str = "pausing at a test failpoint";

/// What became of a transaction whose coordinator was killed at a failpoint.
struct Aftermath {
    /// What `commit` told the client.
    commit: Result<CommitInfo, Error>,
    /// `TxnStatus` after the kill.
    status: TxnOutcome,
    /// `TxnStatus` again after the dead coordinator was restarted.
    status_after_restart: TxnOutcome,
    /// The transaction's keys as read after the kill.
    values: Vec<Option<String>>,
}

/// Reads (then writes) every key of `keys` through `client`, all by `deadline`.
async fn read_then_write(client: &Client, keys: &[&str], deadline: Instant) -> Vec<Option<String>> {
    let mut values = Vec::new();
    for key in keys {
        let read = tokio::time::timeout_at(deadline, client.get(key))
            .await
            .unwrap_or_else(|_| panic!("{key} was still locked {FREED_WITHIN:?} after the kill"))
            .unwrap_or_else(|e| panic!("reading {key} after the kill: {e}"));
        values.push(text(read));
    }
    for key in keys {
        tokio::time::timeout_at(deadline, client.put(key, "after"))
            .await
            .unwrap_or_else(|_| panic!("{key} was not writable {FREED_WITHIN:?} after the kill"))
            .unwrap_or_else(|e| panic!("writing {key} after the kill: {e}"));
    }
    values
}

/// A transaction writing every shard (over values "before"), committing through node 1, whose
/// node was killed when it paused at a failpoint.
struct KilledMidCommit {
    cluster: Cluster,
    /// A client of the surviving nodes.
    others: Client,
    handle: TxnHandle,
    home: Option<u32>,
    /// The client's commit, still running.
    commit: tokio::task::JoinHandle<Result<CommitInfo, Error>>,
    killed_at: Instant,
}

/// Starts a cluster (with `config`, if any), commits a transaction writing every shard through
/// node 1, and kills node 1 when it pauses at `point`.
async fn commit_and_kill_node1_at(point: &str, config: Option<&str>) -> KilledMidCommit {
    let pause = format!("{point}:5000");
    let mut builder = Cluster::builder().node_env(1, "KVD_PAUSE", &pause);
    if let Some(config) = config {
        builder = builder.config(config);
    }
    let mut cluster = builder.start().await;
    let others = cluster.client_via(&[2, 3]).await;
    for key in SHARD_KEYS {
        others.put(key, "before").await.expect("seed");
    }

    let via1 = cluster.client_via(&[1]).await;
    let mut txn = begin_on(&via1, &cluster.addr(1)).await;
    for key in SHARD_KEYS {
        txn.put(key, "txn").await.expect("WRITE");
    }
    let (handle, home) = (*txn.handle().expect("begun"), txn.home_shard());
    let commit = tokio::spawn(async move { txn.commit().await });
    wait_for_pause(&cluster, point).await;
    cluster.kill9(1);
    KilledMidCommit { cluster, others, handle, home, commit, killed_at: Instant::now() }
}

/// Waits until node 1's log says it paused at the failpoint `point`.
async fn wait_for_pause(cluster: &Cluster, point: &str) {
    let what = format!("node 1 to pause at {point} (is {} honoured?)", "KVD_PAUSE");
    eventually(&what, Duration::from_secs(10), || async {
        let log = cluster.log_text(1);
        let line = log.lines().find(|line| line.contains(PAUSED));
        match line {
            Some(line) if line.contains(point) => Ok(()),
            Some(line) => panic!("node 1 paused at another point: {line}"),
            None => Err("no pause in the log yet".to_string()),
        }
    })
    .await;
}

/// Commits a transaction writing every shard through node 1, kills node 1 when it pauses at
/// `point`, and collects what became of the transaction.
async fn kill_the_coordinator_at(point: &str) -> Aftermath {
    let KilledMidCommit { mut cluster, others, handle, home, commit, killed_at } =
        commit_and_kill_node1_at(point, None).await;
    let values = read_then_write(&others, &SHARD_KEYS, killed_at + FREED_WITHIN).await;
    eprintln!("the keys were read and written {:?} after the kill", killed_at.elapsed());
    let commit = tokio::time::timeout(Duration::from_secs(30), commit)
        .await
        .expect("the client's commit returns")
        .expect("the commit task");
    let status = others.txn_status(&handle, home).await.expect("TxnStatus after the kill");
    eprintln!("the client's commit answered {commit:?}; TxnStatus {status:?}");

    cluster.restart(1);
    cluster.wait_ready().await;
    let status_after_restart =
        others.txn_status(&handle, home).await.expect("TxnStatus after the restart");
    for key in SHARD_KEYS {
        let read = text(others.get(key).await.expect("read after the restart"));
        assert_eq!(read.as_deref(), Some("after"), "{key} after node 1 came back");
    }
    Aftermath { commit, status, status_after_restart, values }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_between_the_votes_and_the_decision_leaves_nothing_and_frees_its_keys()
{
    let after = kill_the_coordinator_at("before-decide").await;
    assert_eq!(after.values, vec![Some("before".to_string()); 4], "none of its writes applied");
    assert!(
        matches!(after.status, TxnOutcome::Aborted { .. }),
        "TxnStatus says ABORTED: {:?}",
        after.status
    );
    assert_eq!(after.status_after_restart, after.status, "the outcome never changes");
    match &after.commit {
        Err(Error::Aborted { .. }) | Err(Error::Unknown(_)) => {}
        other => panic!("the client was told {other:?} for a transaction that did not commit"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_after_the_decision_leaves_everything_and_frees_its_keys() {
    let after = kill_the_coordinator_at("after-decide").await;
    assert_eq!(after.values, vec![Some("txn".to_string()); 4], "all of its writes applied");
    let TxnOutcome::Committed(commit_ts) = after.status else {
        panic!("TxnStatus says COMMITTED: {:?}", after.status);
    };
    assert_eq!(after.status_after_restart, after.status, "the outcome never changes");
    match &after.commit {
        Ok(info) => assert_eq!(info.commit_ts, commit_ts, "the client learned the commit"),
        Err(Error::Unknown(_)) => {}
        Err(other) => panic!("the client was told {other:?} for a committed transaction"),
    }
}

/// Issue 3's rule for the retry helper: `Client::transaction` never runs a transaction again
/// when its commit's answer was lost, without asking `TxnStatus` first. The body adds one to a
/// counter and writes every shard; whichever node coordinates it pauses after the decision and
/// is killed there, so END's answer never comes. The helper must ask the record (through the
/// other nodes), learn COMMITTED and return: the body ran once and the counter is 1. A helper
/// that took the lost answer for a retryable failure would run the body again and commit it
/// twice (the counter at 2), the anomaly Jepsen found behind blind commit retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transaction_helper_asks_the_record_when_the_answer_to_its_commit_is_lost() {
    const COUNTER: &str = SHARD_KEYS[0];
    let mut builder = Cluster::builder();
    for id in 1..=3 {
        builder = builder.node_env(id, "KVD_PAUSE", "after-decide:5000");
    }
    let mut cluster = builder.start().await;
    let client = cluster.client().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let helper = {
        let (client, runs) = (client.clone(), runs.clone());
        tokio::spawn(async move {
            client
                .transaction(move |txn| {
                    let runs = runs.clone();
                    Box::pin(async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        let count: u64 = text(txn.get_for_update(COUNTER).await?)
                            .map_or(0, |count| count.parse().expect("a number"));
                        txn.put(COUNTER, (count + 1).to_string()).await?;
                        for key in &SHARD_KEYS[1..] {
                            txn.put(key, "txn").await?;
                        }
                        Ok(())
                    })
                })
                .await
        })
    };
    let coordinator = eventually("a node to pause after the decision", FREED_WITHIN, || async {
        let paused = cluster.ids().into_iter().find(|&id| cluster.log_text(id).contains(PAUSED));
        paused.ok_or_else(|| "no pause in the logs yet".to_string())
    })
    .await;
    cluster.kill9(coordinator);
    let outcome = tokio::time::timeout(Duration::from_secs(60), helper)
        .await
        .expect("the helper returns")
        .expect("the helper's task");
    assert!(outcome.is_ok(), "the helper learned the commit from the record: {outcome:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the body ran once");
    let survivors: Vec<u64> = cluster.running();
    let others = cluster.client_via(&survivors).await;
    assert_eq!(text(others.get(COUNTER).await.expect("READ")).as_deref(), Some("1"));
    for key in &SHARD_KEYS[1..] {
        assert_eq!(text(others.get(key).await.expect("READ")).as_deref(), Some("txn"), "{key}");
    }
}

/// A committed transaction whose coordinator died before phase 2 has a record nobody would
/// finish: the participants' resolvers commit through it but cannot tell whether the others
/// have. Its home finishes it once the retention window has passed (after sending the commit
/// to every other shard), and the record is collected like any other: `TxnStatus` then
/// answers "no longer known" (`Error::Unknown` in the library), where before it answered COMMITTED for ever (a record leaked
/// per coordinator crash).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_of_a_transaction_whose_coordinator_died_after_the_decision_is_collected() {
    let config = "[timing]\nretention_ms = 1000\n";
    let KilledMidCommit { cluster: _running, others, handle, home, commit, .. } =
        commit_and_kill_node1_at("after-decide", Some(config)).await;
    let _ = commit.await;

    let status = eventually("the record is collected", Duration::from_secs(30), || async {
        match others.txn_status(&handle, home).await {
            Ok(TxnOutcome::Committed(_)) => Err("the record is still there".to_string()),
            Ok(other) => panic!("a committed transaction's status changed to {other:?}"),
            Err(error) => Ok(error),
        }
    })
    .await;
    assert!(
        matches!(&status, Error::Unknown(message) if message.contains("no longer known")),
        "{status:?}"
    );
    for key in SHARD_KEYS {
        let read = text(others.get(key).await.expect("READ"));
        assert_eq!(read.as_deref(), Some("txn"), "{key}: every write of the transaction applied");
    }
}

/// The outcome of a transaction whose writes all went with END stays learnable when END's
/// answer and the library's own TxnStatus are both lost: such a transaction has no home the
/// program could keep (`home_shard()` is None before END: it wrote nothing with a statement),
/// so the client remembers the home its END used, and `txn_status(handle, None)` asks that
/// record. Before 2026-12-06 the answer then was ABORTED ("it wrote nothing") for a
/// transaction that had committed (a review found it). Here node 1 coordinates and pauses
/// after the decision; nodes 2 and 3 are frozen and node 1 killed, so that nothing answers
/// END or TxnStatus; then all come back and node 1 knows nothing of the transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outcome_of_writes_sent_with_end_stays_learnable_after_an_unknown_end() {
    let mut cluster =
        Cluster::builder().node_env(1, "KVD_PAUSE", "after-decide:5000").start().await;
    let addrs = cluster.addrs();
    let connector = Arc::new(client::connector::TcpConnector);
    let client = Client::connect_options(&addrs, connector, 1, Duration::from_secs(3))
        .await
        .expect("a client");
    let mut txn = begin_on(&client, &cluster.addr(1)).await;
    txn.get(SHARD_KEYS[1]).await.expect("READ");
    assert_eq!(txn.home_shard(), None, "no home before END");
    let handle = *txn.handle().expect("begun");
    let writes: Vec<Mutation> = SHARD_KEYS.iter().map(|key| Mutation::put(key, "txn")).collect();
    let commit = tokio::spawn(async move { txn.commit_with(writes).await });
    wait_for_pause(&cluster, "after-decide").await;
    cluster.freeze(2);
    cluster.freeze(3);
    cluster.kill9(1);
    let commit = tokio::time::timeout(Duration::from_secs(60), commit)
        .await
        .expect("the client's commit returns")
        .expect("the commit task");
    assert!(matches!(commit, Err(Error::Unknown(_))), "with no node answering: {commit:?}");
    cluster.thaw(2);
    cluster.thaw(3);
    cluster.restart(1);
    cluster.wait_ready().await;
    match client.txn_status(&handle, None).await.expect("TxnStatus") {
        TxnOutcome::Committed(_) => {}
        other => panic!("a committed transaction's TxnStatus: {other:?}"),
    }
    for key in SHARD_KEYS {
        let read = text(client.get(key).await.expect("READ"));
        assert_eq!(read.as_deref(), Some("txn"), "{key}: every write of the transaction applied");
    }
}

/// Prepared transactions of a coordinator that stops answering without closing its
/// connections (a frozen process; a dead host looks the same) are settled together: their
/// keys are writable again within seconds however many there are. Before 2026-12-06 a
/// participant's resolver asked the coordinator about each in turn, and each call to the
/// silent node took the whole RPC deadline (2 s): eight transactions took over 16 s, and their
/// keys' writers timed out meanwhile (a review found it). Here node 1 coordinates eight
/// transactions, each writing a key of s1 (home, led by node 2) and one of s2 (led by node
/// 3), and is frozen once all have voted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prepared_transactions_of_a_silent_coordinator_are_settled_together() {
    const TXNS: usize = 8;
    let mut cluster =
        Cluster::builder().node_env(1, "KVD_PAUSE", "before-decide:60000").start().await;
    let via1 = cluster.client_via(&[1]).await;
    let others = cluster.client_via(&[2, 3]).await;
    let keys: Vec<(String, String)> =
        (0..TXNS).map(|i| (format!("G-settle-{i}"), format!("W-settle-{i}"))).collect();
    let mut commits = Vec::new();
    for (home_key, other_key) in keys.clone() {
        let mut txn = begin_on(&via1, &cluster.addr(1)).await;
        txn.put(&home_key, "txn").await.expect("WRITE at home");
        txn.put(&other_key, "txn").await.expect("WRITE");
        commits.push(tokio::spawn(async move { txn.commit().await }));
    }
    eventually("every commit to pause before its decision", Duration::from_secs(20), || async {
        let paused = cluster.log_text(1).lines().filter(|line| line.contains(PAUSED)).count();
        if paused >= TXNS { Ok(()) } else { Err(format!("{paused} of {TXNS} paused")) }
    })
    .await;
    cluster.freeze(1);
    let frozen_at = Instant::now();
    for (home_key, other_key) in &keys {
        for key in [home_key, other_key] {
            tokio::time::timeout_at(frozen_at + FREED_WITHIN, others.put(key, "after"))
                .await
                .unwrap_or_else(|_| panic!("{key} was not writable {FREED_WITHIN:?} after"))
                .unwrap_or_else(|e| panic!("writing {key}: {e}"));
        }
    }
    eprintln!("every key was written {:?} after the freeze", frozen_at.elapsed());
    for commit in commits {
        commit.abort();
    }
}

/// A transaction whose coordinator restarted between two statements is gone, with nothing of
/// it applied: its next statement answers the abort COORDINATOR_LOST, retryable, and END the
/// same. Before 2026-12-06 both answered a bare NotFound naming the transaction, which
/// `Client::transaction` did not retry and the shell printed as an ERROR with the transaction
/// still open (found by a review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_whose_coordinator_restarted_is_aborted_and_retryable() {
    let mut cluster = Cluster::start().await;
    let via1 = cluster.client_via(&[1]).await;
    let mut txn = begin_on(&via1, &cluster.addr(1)).await;
    txn.put(SHARD_KEYS[0], "lost").await.expect("WRITE");
    cluster.kill9(1);
    cluster.restart(1);
    cluster.wait_ready().await;
    let refused = txn.put(SHARD_KEYS[1], "lost").await.expect_err("a statement after the restart");
    let Error::Aborted { reason, retryable, .. } = &refused else {
        panic!("an abort, not {refused:?}");
    };
    assert_eq!((reason.as_str(), *retryable), ("COORDINATOR_LOST", true), "{refused:?}");
    let ended = txn.commit().await.expect_err("END");
    assert!(matches!(ended, Error::Aborted { retryable: true, .. }), "{ended:?}");
    let others = cluster.client_via(&[2, 3]).await;
    for key in &SHARD_KEYS[..2] {
        assert_eq!(text(others.get(key).await.expect("READ")), None, "{key}: nothing applied");
    }
}

/// One transaction of a worker in the mid-commit test.
struct Attempt {
    seq: usize,
    handle: TxnHandle,
    home: Option<u32>,
    /// What commit answered (`None`: the transaction failed before END).
    commit: Option<Result<CommitInfo, Error>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_mid_commit_leaves_every_transaction_all_or_nothing() {
    // Workers commit transactions writing one key per shard through node 1, back to back, and
    // node 1 is killed while they run. Whatever each transaction's state at that moment, its
    // four writes are all visible or none is, TxnStatus agrees with what the client was told,
    // and the keys are free again within 10 s.
    const WORKERS: usize = 4;
    const COMMITS_BEFORE_KILL: usize = 5;
    let mut cluster = Cluster::start().await;
    let addr1 = cluster.addr(1);
    let others = cluster.client_via(&[2, 3]).await;
    let keys_of = |worker: usize| -> Vec<String> {
        SHARD_KEYS.iter().map(|key| format!("{key}-w{worker}")).collect()
    };
    for worker in 0..WORKERS {
        for key in keys_of(worker) {
            others.put(&key, "init").await.expect("seed");
        }
    }

    let committed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        let client = cluster.client_via(&[1]).await;
        let (keys, addr1, committed) = (keys_of(worker), addr1.clone(), committed.clone());
        tasks.push(tokio::spawn(async move {
            let mut attempts: Vec<Attempt> = Vec::new();
            for seq in 0.. {
                let begun =
                    tokio::time::timeout(Duration::from_secs(5), try_begin_on(&client, &addr1));
                let Ok(Ok(mut txn)) = begun.await else { break };
                let mut wrote = true;
                for key in &keys {
                    if txn.put(key, format!("w{worker}-{seq}")).await.is_err() {
                        wrote = false;
                        break;
                    }
                }
                let (handle, home) = (*txn.handle().expect("begun"), txn.home_shard());
                let commit = if wrote { Some(txn.commit().await) } else { None };
                let ok = matches!(commit, Some(Ok(_)));
                attempts.push(Attempt { seq, handle, home, commit });
                if !ok {
                    break;
                }
                committed.fetch_add(1, Ordering::SeqCst);
            }
            attempts
        }));
    }
    eventually("commits before the kill", Duration::from_secs(30), || async {
        let done = committed.load(Ordering::SeqCst);
        if done >= WORKERS * COMMITS_BEFORE_KILL { Ok(()) } else { Err(format!("{done}")) }
    })
    .await;
    cluster.kill9(1);
    let killed_at = Instant::now();
    let mut outcomes: BTreeMap<usize, Vec<Attempt>> = BTreeMap::new();
    for (worker, task) in tasks.into_iter().enumerate() {
        let attempts = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("a worker stops after node 1 died")
            .expect("a worker");
        outcomes.insert(worker, attempts);
    }

    let deadline = killed_at + FREED_WITHIN;
    for (worker, attempts) in &outcomes {
        let keys = keys_of(*worker);
        let last = attempts.last().expect("every worker attempted a transaction");
        let status = others.txn_status(&last.handle, last.home).await.expect("TxnStatus");
        match (&last.commit, &status) {
            (Some(Ok(info)), TxnOutcome::Committed(ts)) => assert_eq!(info.commit_ts, *ts),
            (Some(Ok(_)), _) => panic!("worker {worker}: told COMMITTED, status {status:?}"),
            (Some(Err(Error::Aborted { .. })), TxnOutcome::Aborted { .. }) => {}
            (Some(Err(Error::Aborted { .. })), _) => {
                panic!("worker {worker}: told ABORTED, status {status:?}")
            }
            (None, TxnOutcome::Committed(_)) => {
                panic!("worker {worker}: a transaction that never sent END committed")
            }
            _ => {}
        }
        // Every earlier transaction committed (a worker stops at its first failure), so the
        // keys hold the last committed one's values, all four of them.
        let newest = match status {
            TxnOutcome::Committed(_) => Some(last.seq),
            TxnOutcome::Aborted { .. } => last.seq.checked_sub(1),
        };
        let expected = newest.map_or("init".to_string(), |seq| format!("w{worker}-{seq}"));
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let values = read_then_write(&others, &key_refs, deadline).await;
        eprintln!(
            "worker {worker}: {} transactions, the last {:?} ({status:?}); keys {values:?}",
            attempts.len(),
            last.commit
                .as_ref()
                .map(|c| c.as_ref().map(|_| "COMMITTED").map_err(|e| e.to_string()))
        );
        assert_eq!(values, vec![Some(expected); 4], "worker {worker}: all or nothing");
    }
    eprintln!("every key was free again {:?} after the kill", killed_at.elapsed());
}
