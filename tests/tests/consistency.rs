//! Issue 5: the two consistency modes on real processes, with two of three nodes frozen
//! (SIGSTOP: they keep their sockets and answer nothing, like the far side of a partition).
//!
//! - a causal session reads its own writes, even when a follower serves the read;
//! - on the minority side, a causal read-only transaction returns a consistent snapshot
//!   quickly, and a sequential read fails with a clear error within its deadline (no hang);
//! - after the nodes resume, everything converges: writes work and every node serves them;
//! - a read-only transaction whose snapshot fell out of the retention window gets a clear error,
//!   not a wrong answer;
//! - garbage collection in passes that split keys' versions keeps every live value and every
//!   delete.

use std::time::Duration;
use std::time::Instant;

use client::Client;
use client::Consistency;
use e2e::Cluster;
use e2e::eventually;
use e2e::keys::SHARD_KEYS;
use e2e::placement::begin_on;

/// A causal read-only transaction on the minority side must answer within this.
const SNAPSHOT_WITHIN: Duration = Duration::from_secs(3);
/// A sequential read on the minority side must fail within this (the client's deadline).
const ERROR_WITHIN: Duration = Duration::from_secs(20);

fn text(value: Option<Vec<u8>>) -> Option<String> {
    value.map(|v| String::from_utf8_lossy(&v).into_owned())
}

async fn causal_client(cluster: &Cluster, id: u64) -> Client {
    let client = cluster.client_via(&[id]).await;
    client.set_consistency(Consistency::Causal);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn causal_reads_survive_on_the_minority_side_and_sequential_reads_fail_cleanly() {
    let mut cluster = Cluster::start().await;
    cluster.wait_ready().await;
    let writer = cluster.client().await;
    for key in SHARD_KEYS {
        writer.put(key, "v1").await.expect("initial write");
    }
    // A causal session through node 3 writes (through the leaders, under locks) and reads its
    // own write back from node 3's replica, whether or not node 3 leads that shard.
    let session = causal_client(&cluster, 3).await;
    for key in SHARD_KEYS {
        session.put(key, "v2").await.expect("causal session's write");
        let (read, snapshot) = session.get_with_snapshot(key).await.expect("causal read");
        assert_eq!(text(read).as_deref(), Some("v2"), "{key}: read-your-writes through node 3");
        assert!(snapshot > 0, "a causal read reports its snapshot");
    }
    let token = session.token();
    assert!(token > 0, "the session's token rose with its writes");
    // Each causal read waits until node 3's replica has closed past the token (tens of
    // milliseconds): after these, every shard on node 3 can serve a snapshot at the token.
    for key in SHARD_KEYS {
        session.get(key).await.expect("causal read at the token");
    }

    // Freeze nodes 1 and 2: node 3 is alone, on the minority side.
    cluster.freeze(1);
    cluster.freeze(2);

    // A causal read-only transaction on node 3 reads one consistent snapshot, quickly.
    let started = Instant::now();
    let mut txn = session.begin_read_only().await.expect("BEGIN READ ONLY on the minority side");
    let mut values = Vec::new();
    for key in SHARD_KEYS {
        values.push(text(txn.get(key).await.expect("snapshot read")));
    }
    txn.commit().await.expect("a read-only snapshot commits");
    let took = started.elapsed();
    assert_eq!(values, vec![Some("v2".to_string()); 4], "the snapshot holds the session's writes");
    assert!(took < SNAPSHOT_WITHIN, "the minority side answered a causal transaction in {took:?}");
    assert!(session.token() >= token, "the token never goes back");

    // A fresh causal session (no token) on node 3 also reads a snapshot.
    let fresh = causal_client(&cluster, 3).await;
    let value = text(fresh.get(SHARD_KEYS[0]).await.expect("a fresh causal session reads"));
    assert!(value.is_some(), "a snapshot after the initial writes");

    // A sequential read through node 3 cannot be served (no quorum): a clear error, in time.
    let started = Instant::now();
    let output = tokio::task::spawn_blocking({
        let kvsh = e2e::binaries::kvsh();
        let addr = cluster.addr(3);
        move || {
            std::process::Command::new(kvsh)
                .args(["--connect", &addr, "--consistency", "sequential", "-c", "READ Alice"])
                .output()
                .expect("run kvsh")
        }
    })
    .await
    .expect("kvsh task");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.trim_start().starts_with("ERROR:"),
        "a sequential read on the minority side: {stdout:?}"
    );
    assert!(!output.status.success(), "kvsh exits non-zero on the error");
    assert!(took < ERROR_WITHIN, "the error came within the deadline ({took:?})");

    // The nodes resume: writes work again and converge everywhere.
    cluster.thaw(1);
    cluster.thaw(2);
    eventually("a write after the nodes resumed", Duration::from_secs(30), || async {
        writer.put(SHARD_KEYS[1], "v3").await.map_err(|e| e.to_string())
    })
    .await;
    for id in [1, 2, 3] {
        let reader = cluster.client_via(&[id]).await;
        let value = eventually(
            &format!("node {id} serves the new write"),
            Duration::from_secs(30),
            || async {
                match reader.get(SHARD_KEYS[1]).await {
                    Ok(Some(value)) if value == b"v3" => Ok(value),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
        assert_eq!(text(Some(value)).as_deref(), Some("v3"));
    }
    // The causal session on node 3 sees it too once its token says so.
    session.observe_token(writer.token());
    let value =
        eventually("the causal session sees the newer write", Duration::from_secs(30), || async {
            match session.get(SHARD_KEYS[1]).await {
                Ok(Some(value)) if value == b"v3" => Ok(value),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    assert_eq!(text(Some(value)).as_deref(), Some("v3"), "causality carried by the imported token");
}

/// Retention short enough to outlive in a test (collection runs every second).
/// A causal read whose token is ahead of everything its replica can learn (the replica missed
/// the write, and the nodes that have it are frozen) waits for the safe time to reach the
/// token, then answers UNAVAILABLE within its deadline: never the older value the replica
/// holds. Once the other nodes resume, the same read returns the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_causal_read_ahead_of_its_replica_answers_unavailable_never_a_stale_value() {
    let mut cluster = Cluster::start().await;
    cluster.wait_ready().await;
    let writer = cluster.client().await;
    let key = SHARD_KEYS[0];
    writer.put(key, "old").await.expect("the first write");
    // Node 3 misses the second write.
    cluster.freeze(3);
    eventually("the write with node 3 frozen", ERROR_WITHIN, || async {
        writer.put(key, "new").await.map_err(|e| e.to_string())
    })
    .await;
    let token = writer.token();
    // Now node 3 is alone, with the old value and a safe time below the token.
    cluster.freeze(1);
    cluster.freeze(2);
    cluster.thaw(3);
    let session = causal_client(&cluster, 3).await;
    session.observe_token(token);
    let started = Instant::now();
    let read = session.get(key).await;
    let took = started.elapsed();
    match &read {
        Err(client::Error::Unavailable(message)) => eprintln!("after {took:?}: {message}"),
        other => panic!("a causal read at token {token} on node 3 alone: {other:?}"),
    }
    assert!(took < ERROR_WITHIN, "the error came within the deadline ({took:?})");

    cluster.thaw(1);
    cluster.thaw(2);
    let value = eventually("the causal read once node 3 caught up", ERROR_WITHIN, || async {
        session.get(key).await.map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(text(value).as_deref(), Some("new"));
}

const SHORT_RETENTION: &str = "[timing]\nretention_ms = 2000\n";
/// How long a snapshot may take to fall out of a 2 s retention window.
const COLLECTED_WITHIN: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_older_than_the_retention_window_gets_a_clear_error() {
    let cluster = Cluster::builder().config(SHORT_RETENTION).start().await;
    let client = cluster.client().await;
    let key = SHARD_KEYS[0];
    // A causal session: its READ ONLY transactions read one snapshot, without locks, at or
    // above its own writes.
    let causal = cluster.client().await;
    causal.set_consistency(Consistency::Causal);
    causal.put(key, "old").await.expect("first write");
    let mut reader = causal.begin_read_only().await.expect("BEGIN READ ONLY");
    assert_eq!(text(reader.get(key).await.expect("read in the window")).as_deref(), Some("old"));
    // Newer versions shadow the one the snapshot sees, and collection moves past it.
    let started = Instant::now();
    let error = loop {
        client.put(key, "new").await.expect("a newer write");
        match reader.get(key).await {
            Err(error) => break error,
            Ok(value) => assert_eq!(text(value).as_deref(), Some("old"), "the snapshot holds"),
        }
        assert!(started.elapsed() < COLLECTED_WITHIN, "the snapshot was never collected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let message = error.to_string();
    assert!(message.contains("older than the retention window"), "unclear error: {message}");
    // Fresh snapshots are served as usual.
    let mut fresh = causal.begin_read_only().await.expect("a new READ ONLY");
    assert_eq!(text(fresh.get(key).await.expect("fresh read")).as_deref(), Some("new"));
}

/// A 2 s window, and collection passes of 2 rows: passes split the versions of one key.
const SHORT_RETENTION_SMALL_PASSES: &str =
    "[timing]\nretention_ms = 2000\n[limits]\ncollect_pass_rows = 2\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_in_small_passes_keeps_every_live_value_and_every_delete() {
    let cluster = Cluster::builder().config(SHORT_RETENTION_SMALL_PASSES).start().await;
    let client = cluster.client().await;
    let prefix = SHARD_KEYS[0];
    // Twelve keys of one shard, three versions each; every other key then deleted, so that
    // its tombstone is the newest version with older ones behind it.
    let keys: Vec<String> = (0..12).map(|i| format!("{prefix}{i:02}")).collect();
    for round in 0..3 {
        for key in &keys {
            client.put(key, format!("{key}-v{round}")).await.expect("write");
        }
    }
    for key in keys.iter().step_by(2) {
        client.delete(key).await.expect("delete");
    }
    let expected: Vec<(Vec<u8>, Vec<u8>)> = keys
        .iter()
        .skip(1)
        .step_by(2)
        .map(|key| (key.clone().into_bytes(), format!("{key}-v2").into_bytes()))
        .collect();
    // Wait until collection passed all of those versions: a snapshot taken now falls out of
    // the window only once a round ran above it.
    let causal = cluster.client().await;
    causal.set_consistency(Consistency::Causal);
    causal.put(format!("{prefix}ticker"), "0").await.expect("ticker");
    let mut reader = causal.begin_read_only().await.expect("BEGIN READ ONLY");
    let started = Instant::now();
    loop {
        client.put(format!("{prefix}ticker"), "1").await.expect("a newer write");
        if reader.get(format!("{prefix}ticker")).await.is_err() {
            break;
        }
        assert!(started.elapsed() < COLLECTED_WITHIN, "collection never passed the writes");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every live key reads its last value and every deleted key stays deleted, through the
    // leader and through a causal read.
    let to = format!("{prefix}99");
    let rows = client.scan(format!("{prefix}00"), &to, None).await.expect("scan");
    assert_eq!(rows, expected, "collection changed what a scan sees");
    for (i, key) in keys.iter().enumerate() {
        let want = (i % 2 == 1).then(|| format!("{key}-v2"));
        assert_eq!(text(client.get(key).await.expect("read")), want, "{key} after collection");
        assert_eq!(text(causal.get(key).await.expect("causal read")), want, "{key}, causal");
    }
}

/// END carries the session's token, so a transaction commits above what its session saw
/// after BEGIN (writes-follow-reads): here a token imported from another session between BEGIN
/// and END. Before 2026-12-05 END carried none, and the commit could be ordered below a
/// version the session had read before it (a review found it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_is_above_what_its_session_saw_after_begin() {
    let cluster = Cluster::start().await;
    let client = cluster.client().await;
    let mut txn = client.begin().await.expect("BEGIN");
    txn.put(SHARD_KEYS[0], "v").await.expect("WRITE");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    // A token a minute ahead (within the nodes' limit), as if seen in another session.
    let seen = (now_ms + 60_000) << proto::kv::CAUSAL_TOKEN_LOGICAL_BITS;
    client.observe_token(seen);
    let committed = txn.commit().await.expect("END");
    assert!(committed.commit_ts > seen, "committed at {} below {seen}", committed.commit_ts);
}

/// Reads made through leaders confirm the leadership by its lease by default, and by a
/// ReadIndex round only with lease reads off (`lease_read_percent = 0`, for machines whose
/// monotonic clock stops while suspended; docs/consistency.md): the leaders' STATUS counts
/// both ways. Both clusters answer every read with the value written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_lease_reads_off_every_leader_read_confirms_by_read_index() {
    const READS: u64 = 20;
    for (config, leases_on) in [("", true), ("[timing]\nlease_read_percent = 0\n", false)] {
        let cluster = Cluster::builder().config(config).start().await;
        let client = cluster.client().await;
        client.put(SHARD_KEYS[0], "v").await.expect("WRITE");
        for _ in 0..READS {
            let read = client.get(SHARD_KEYS[0]).await.expect("READ");
            assert_eq!(text(read).as_deref(), Some("v"));
        }
        let (mut lease, mut read_index) = (0, 0);
        for (id, status) in cluster.statuses().await {
            let status = status.unwrap_or_else(|why| panic!("STATUS of node {id}: {why}"));
            lease += status.lease_reads;
            read_index += status.read_index_reads;
        }
        if leases_on {
            // A read right after a leadership change may find no lease yet: most, not all.
            assert!(lease > READS / 2, "{lease} by lease, {read_index} by ReadIndex");
        } else {
            assert_eq!(lease, 0, "a lease read with lease reads off");
            assert!(read_index >= READS, "{read_index} by ReadIndex of {READS} reads");
        }
    }
}

/// The first causal reads of a new cluster, before any replica applied a closed timestamp,
/// are served (after a short wait for one) and not refused as older than the retention window:
/// a snapshot at or below the watermark only because the replica's safe time is means the
/// replica is behind. Before 2026-12-05 a session with no token asked such a replica for
/// snapshot 0 and was told OUT_OF_RANGE (a review found it). The idle close period is set
/// long, so that no shard closes a timestamp before causal readers ask for closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_causal_reads_of_a_new_cluster_are_served() {
    let config = "[timing]\nclose_idle_interval_ms = 600000\n";
    let cluster = Cluster::builder().config(config).start().await;
    let reader = causal_client(&cluster, 1).await;
    assert_eq!(reader.get(SHARD_KEYS[0]).await.expect("a causal READ"), None);
    let rows = reader.scan("", "", None).await.expect("a causal SCAN over every shard");
    assert!(rows.is_empty(), "{rows:?}");
    let fresh = causal_client(&cluster, 2).await;
    let mut txn = fresh.begin_read_only().await.expect("BEGIN READ ONLY");
    assert_eq!(txn.get(SHARD_KEYS[1]).await.expect("READ in a causal transaction"), None);
    txn.commit().await.expect("END");
}

/// A locking SCAN (in a transaction, or a sequential one-statement scan) that passes over a
/// deleted key read the delete too: the session's token rises to it, so a causal read after it
/// at a replica behind the delete cannot answer the value from before. Before 2026-12-05 a
/// locking scan raised the token to the rows it returned only, and END of a transaction
/// without writes raises nothing (a review found it; the snapshot path had been fixed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locking_scan_that_passes_a_delete_raises_the_token_to_the_delete() {
    let cluster = Cluster::start().await;
    let writer = cluster.client().await;
    let key = SHARD_KEYS[0];
    writer.put(key, "1").await.expect("write");
    writer.delete(key).await.expect("delete");
    let deleted_at = writer.token();

    let in_txn = cluster.client().await;
    let mut txn = in_txn.begin().await.expect("BEGIN");
    let rows = txn.scan(key, format!("{key}\0"), None).await.expect("SCAN in a transaction");
    assert!(rows.is_empty(), "{rows:?}");
    txn.commit().await.expect("END");
    assert!(
        in_txn.token() >= deleted_at,
        "the transaction's scan read the delete at {deleted_at}; token {}",
        in_txn.token()
    );

    let alone = cluster.client().await;
    let rows = alone.scan(key, format!("{key}\0"), None).await.expect("one-statement SCAN");
    assert!(rows.is_empty(), "{rows:?}");
    assert!(
        alone.token() >= deleted_at,
        "the scan read the delete at {deleted_at}; token {}",
        alone.token()
    );
}

/// A causal SCAN that finds a key deleted read the delete: the session's token rises to it,
/// as a READ's does, so no later read of the session, at any replica, can answer the value
/// from before the delete (before 2026-12-05 a scan raised the token to the rows it
/// returned only; a review found it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_causal_scan_that_finds_a_key_deleted_raises_the_token_to_the_delete() {
    let cluster = Cluster::start().await;
    let writer = cluster.client().await;
    let key = SHARD_KEYS[0];
    writer.put(key, "1").await.expect("write");
    // The reader has seen the write: its snapshots are at or above it.
    let reader = causal_client(&cluster, 1).await;
    reader.observe_token(writer.token());
    writer.delete(key).await.expect("delete");
    let deleted_at = writer.token();
    let rows = loop {
        // A replica whose safe time has not passed the delete serves the key as written.
        let rows = reader.scan(key, format!("{key}\0"), None).await.expect("causal scan");
        if rows.iter().all(|(k, _)| k.as_slice() != key.as_bytes()) {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(rows.is_empty(), "the range holds that key only: {rows:?}");
    assert!(
        reader.token() >= deleted_at,
        "the scan read the delete at {deleted_at} but the session's token is {}",
        reader.token()
    );
}

/// Long enough for two collection rounds (one a second), well inside a 4 s window.
const COLLECTION_ROUNDS: Duration = Duration::from_millis(2_500);

/// A causal token this far ahead of the nodes' clocks (within their limit).
const TOKEN_AHEAD_MS: u64 = 30_000;

/// The session's token, `ahead_ms` ahead of this machine's clock.
fn token_ahead(ahead_ms: u64) -> u64 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    (now_ms + ahead_ms) << proto::kv::CAUSAL_TOKEN_LOGICAL_BITS
}

/// A leader whose clock was pushed ahead of physical time (here by a token from ahead, as a
/// faster node's clock would) still closes timestamps past its new commits, so a causal
/// session reads its own write at once. Before 2026-12-06 a close kept only the clock's
/// milliseconds: every commit made while the clock ran ahead was above every close, and the
/// session's read waited until physical time caught up (30 s here; a review found it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_pushed_ahead_still_closes_past_its_commits() {
    let cluster = Cluster::start().await;
    let session = cluster.client().await;
    session.set_consistency(Consistency::Causal);
    session.observe_token(token_ahead(TOKEN_AHEAD_MS));
    for key in SHARD_KEYS {
        session.put(key, "ahead").await.expect("a write above the token");
    }
    let started = Instant::now();
    for key in SHARD_KEYS {
        let read = tokio::time::timeout(SNAPSHOT_WITHIN, session.get(key))
            .await
            .unwrap_or_else(|_| panic!("a causal read of {key} took over {SNAPSHOT_WITHIN:?}"))
            .expect("a causal read of the session's own write");
        assert_eq!(text(read).as_deref(), Some("ahead"), "{key}");
    }
    eprintln!("the four reads took {:?}", started.elapsed());
}

/// A token from ahead does not move the retention window: a transaction in flight at the
/// same shard still commits after collection rounds. Before 2026-12-06 the window was
/// measured from the closed timestamp alone, which the token moved 30 s ahead at once, so the
/// next collection passed every transaction and snapshot in flight (COORDINATOR_LOST; a
/// review found it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_ahead_does_not_move_the_retention_window() {
    // A 6 s window: collection rounds every second (`collect_loop`), and a writing
    // transaction may commit until it is 3 s old (TOO_OLD past half the window).
    let cluster = Cluster::builder().config("[timing]\nretention_ms = 6000\n").start().await;
    let client = cluster.client().await;
    let mut txn = client.begin().await.expect("BEGIN");
    txn.put("Ann", "in flight").await.expect("WRITE");
    let ahead = cluster.client().await;
    ahead.observe_token(token_ahead(TOKEN_AHEAD_MS));
    ahead.put("Abe", "ahead").await.expect("a write above the token, at Ann's shard");
    // A right collection round changes nothing visible here, so there is no condition to
    // await: 2.5 s hold at least two rounds, and leave the transaction 3.5 s inside the window.
    tokio::time::sleep(COLLECTION_ROUNDS).await;
    txn.commit().await.expect("the transaction in flight commits");
    assert_eq!(text(client.get("Ann").await.expect("READ")).as_deref(), Some("in flight"));
}

/// kv.proto: a causal read answers the snapshot timestamp it was served at, and a locking read
/// 0. READ and SCAN in a causal READ ONLY transaction are causal reads and name its snapshot,
/// the same one for every statement (they answered 0 until 2026-12-07; found by a review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_in_a_causal_read_only_transaction_name_its_snapshot() {
    let cluster = Cluster::start().await;
    cluster.client().await.put(SHARD_KEYS[0], "v").await.expect("a write");
    let mut kv = cluster.kv_client(1).await;
    let begin = |read_only, consistency: proto::kv::Consistency| proto::kv::BeginRequest {
        read_only,
        consistency: consistency as i32,
        causal_token: 0,
    };
    let causal = kv.begin(begin(true, proto::kv::Consistency::Causal)).await.expect("BEGIN");
    let txn = causal.into_inner().txn;
    let read = proto::kv::ReadRequest { txn, key: SHARD_KEYS[0].into(), ..Default::default() };
    let read = kv.read(read).await.expect("READ").into_inner();
    assert!(read.snapshot_ts > 0, "a causal read names its snapshot: {read:?}");
    let scan = proto::kv::ScanRequest { txn, from: "A".into(), ..Default::default() };
    let scan = kv.scan(scan).await.expect("SCAN").into_inner();
    assert_eq!(scan.snapshot_ts, read.snapshot_ts, "one snapshot for the transaction");

    let locking = kv.begin(begin(false, proto::kv::Consistency::Sequential)).await.expect("BEGIN");
    let txn = locking.into_inner().txn;
    let read = proto::kv::ReadRequest { txn, key: SHARD_KEYS[0].into(), ..Default::default() };
    let read = kv.read(read).await.expect("READ").into_inner();
    assert_eq!(read.snapshot_ts, 0, "a locking read: {read:?}");
}

/// A causal SCAN picks its snapshot from the replicas of the shards it reads: a transaction
/// prepared on another shard and not yet decided does not hold it back. A replica's safe time
/// stays below its oldest undecided prepare, and the snapshot was the smallest safe time over
/// all of the node's replicas, so until 2026-12-07 such a SCAN missed every write committed
/// after that prepare for as long as it stayed undecided (found by a review). Here node 1
/// coordinates a transaction writing `Alice` (home, s0) and `Gina` (s1) and pauses before its
/// decision (s1 holds it prepared; its coordinator answers that it is alive, so no resolver
/// settles it); a write to s2 after that is seen by a fresh causal session's SCAN of s2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_causal_scan_is_not_held_back_by_a_prepare_on_a_shard_it_does_not_read() {
    let cluster = Cluster::builder().node_env(1, "KVD_PAUSE", "before-decide:60000").start().await;
    cluster.wait_ready().await;
    let via1 = cluster.client_via(&[1]).await;
    let mut txn = begin_on(&via1, &cluster.addr(1)).await;
    txn.put(SHARD_KEYS[0], "held").await.expect("WRITE at home");
    txn.put(SHARD_KEYS[1], "held").await.expect("WRITE on s1");
    let commit = tokio::spawn(async move { txn.commit().await });
    eventually("the commit to pause before its decision", Duration::from_secs(20), || async {
        let paused = cluster.log_text(1).contains("pausing at a test failpoint");
        if paused { Ok(()) } else { Err("not paused yet".to_string()) }
    })
    .await;
    let writer = cluster.client().await;
    writer.put(SHARD_KEYS[2], "after the prepare").await.expect("a write to s2");
    for id in 1..=3 {
        let reader = causal_client(&cluster, id).await;
        eventually(&format!("node {id}'s causal SCAN of s2"), SNAPSHOT_WITHIN, || async {
            let rows = reader.scan("V", "k", None).await.map_err(|e| e.to_string())?;
            let seen = rows.iter().any(|(key, _)| key == SHARD_KEYS[2].as_bytes());
            if seen { Ok(()) } else { Err(format!("{} rows, without the write", rows.len())) }
        })
        .await;
    }
    assert!(!commit.is_finished(), "the transaction stayed undecided throughout");
    commit.abort();
}
