//! Writes sent with END (`Transaction::commit_with`, `CommitRequest.writes`) on real processes:
//! the guarantees of WRITE statements (all or nothing, exclusive locks held to the end, bad
//! input refused without effect), with the locks taken by the prepares, so that a lock wait and
//! a deadlock happen inside END.

use std::time::Duration;

use client::Client;
use client::Error;
use client::Mutation;
use client::TxnOutcome;
use e2e::Cluster;
use e2e::KvshSession;
use e2e::keys::SHARD_KEYS;
use e2e::poll::eventually;
use e2e::text;

/// How long a blocked END is watched to show that it stays blocked.
const BLOCKED: Duration = Duration::from_millis(1500);

async fn read_all(client: &Client) -> Vec<Option<String>> {
    let mut values = Vec::new();
    for key in SHARD_KEYS {
        values.push(text(client.get(key).await.expect("a read")));
    }
    values
}

fn some(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| (!v.is_empty()).then(|| v.to_string())).collect()
}

/// Waits until some node reports a lock wait.
async fn until_a_lock_wait(cluster: &Cluster) {
    let what = "a lock wait at some shard leader";
    cluster.until_lock_waits(what, Duration::from_secs(5), |waits| waits > 0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_sent_with_end_commit_all_or_nothing_and_lock_like_statements() {
    let cluster = Cluster::start().await;
    let client = cluster.client().await;
    let reader = cluster.client_via(&[3]).await;

    // A cross-shard commit: every write is visible, and TxnStatus finds the record at the
    // shard of the first write (the home a client computes when END's answer is lost).
    let txn = client.begin().await.expect("BEGIN");
    let handle = *txn.handle().expect("an eagerly begun transaction has a handle");
    let writes = SHARD_KEYS.iter().map(|key| Mutation::put(key, "w1")).collect();
    let committed = txn.commit_with(writes).await.expect("END with writes commits");
    assert_eq!(read_all(&reader).await, some(&["w1"; 4]));
    let home = client.shard_of(SHARD_KEYS[2]).await.expect("shard map");
    assert_eq!(home, 2);
    let home = client.shard_of(SHARD_KEYS[0]).await.expect("shard map");
    let status = reader.txn_status(&handle, Some(home)).await.expect("TxnStatus");
    assert_eq!(status, TxnOutcome::Committed(committed.commit_ts));

    // Mixed with statements: the last write of a key wins, a delete deletes.
    let mut txn = client.begin().await.expect("BEGIN");
    txn.put(SHARD_KEYS[1], "statement").await.expect("WRITE");
    let writes = vec![Mutation::put(SHARD_KEYS[1], "w2"), Mutation::delete(SHARD_KEYS[2])];
    txn.commit_with(writes).await.expect("END commits");
    assert_eq!(read_all(&reader).await, some(&["w1", "w2", "", "w1"]));

    // Bad input among the writes: refused before anything happens. Through the library the
    // transaction is then aborted (its earlier WRITE never shows)...
    let mut txn = client.begin().await.expect("BEGIN");
    txn.put(SHARD_KEYS[0], "doomed").await.expect("WRITE");
    let handle = *txn.handle().expect("an eagerly begun transaction has a handle");
    let writes = vec![Mutation::put(SHARD_KEYS[3], "w3"), Mutation::put("", "empty key")];
    match txn.commit_with(writes).await {
        Err(Error::Invalid(message)) => assert!(message.contains("empty key"), "{message}"),
        other => panic!("an empty key sent with END: {other:?}"),
    }
    match reader.txn_status(&handle, Some(0)).await.expect("TxnStatus") {
        TxnOutcome::Aborted { reason, .. } => assert_eq!(reason, "USER"),
        other => panic!("a refused END leaves the transaction aborted: {other:?}"),
    }
    assert_eq!(read_all(&reader).await, some(&["w1", "w2", "", "w1"]));
    // ...while on the wire the transaction stays open, as the contract says: an END without
    // the bad write then commits the earlier statement alone.
    {
        use proto::kv::BeginRequest;
        use proto::kv::CommitRequest;
        use proto::kv::Outcome;
        use proto::kv::WriteRequest;
        let mut kv = cluster.kv_client(1).await;
        let handle = kv.begin(BeginRequest::default()).await.expect("Begin").into_inner().txn;
        let write = WriteRequest {
            txn: handle,
            key: SHARD_KEYS[0].as_bytes().to_vec().into(),
            value: b"kept".to_vec().into(),
            delete: false,
            causal_token: 0,
        };
        kv.write(write).await.expect("Write");
        let oversized = proto::kv::Mutation {
            key: SHARD_KEYS[3].as_bytes().to_vec().into(),
            value: vec![b'x'; 2 << 20].into(),
            delete: false,
        };
        let refused = kv
            .commit(CommitRequest { txn: handle, writes: vec![oversized], causal_token: 0 })
            .await;
        let status = refused.expect_err("an oversized value sent with END");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        let end =
            kv.commit(CommitRequest { txn: handle, writes: Vec::new(), causal_token: 0 }).await;
        let end = end.expect("Commit").into_inner();
        assert_eq!(end.outcome, Outcome::Committed as i32, "{end:?}");
        // END again, with writes this time: the same outcome, and the writes are ignored.
        let late = proto::kv::Mutation {
            key: SHARD_KEYS[3].as_bytes().to_vec().into(),
            value: b"too late".to_vec().into(),
            delete: false,
        };
        let again =
            kv.commit(CommitRequest { txn: handle, writes: vec![late], causal_token: 0 }).await;
        let again = again.expect("Commit").into_inner();
        assert_eq!((again.outcome, again.commit_ts), (end.outcome, end.commit_ts), "{again:?}");
    }
    assert_eq!(read_all(&reader).await, some(&["kept", "w2", "", "w1"]));

    // A READ ONLY transaction refuses writes sent with END.
    let txn = client.begin_read_only().await.expect("BEGIN READ ONLY");
    match txn.commit_with(vec![Mutation::put(SHARD_KEYS[0], "no")]).await {
        Err(Error::NotAllowed(_)) => {}
        other => panic!("a write with END in a READ ONLY transaction: {other:?}"),
    }

    // The END waits for a reader's shared lock (strict 2PL: the lock is taken by the prepare)
    // and commits once the reader ends; the reader never sees the pending write.
    let mut holder = reader.begin().await.expect("BEGIN");
    assert_eq!(text(holder.get(SHARD_KEYS[3]).await.expect("READ")).as_deref(), Some("w1"));
    let writer = client.session();
    let end = tokio::spawn(async move {
        let txn = writer.begin().await.expect("BEGIN");
        let writes = vec![Mutation::put(SHARD_KEYS[0], "w4"), Mutation::put(SHARD_KEYS[3], "w4")];
        txn.commit_with(writes).await
    });
    until_a_lock_wait(&cluster).await;
    let early = tokio::time::timeout(BLOCKED, async {
        while !end.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(early.is_err(), "END went through a reader's shared lock");
    assert_eq!(text(holder.get(SHARD_KEYS[3]).await.expect("READ")).as_deref(), Some("w1"));
    holder.commit().await.expect("the reader commits");
    end.await.expect("task").expect("the waiting END commits");
    assert_eq!(read_all(&reader).await, some(&["w4", "w2", "", "w4"]));

    // A deadlock closed inside two ENDs: each read what the other writes. Exactly one commits;
    // the other is the DEADLOCK victim and leaves nothing.
    let (left, right) = (client.session(), reader.session());
    let mut t1 = left.begin().await.expect("BEGIN");
    let mut t2 = right.begin().await.expect("BEGIN");
    t1.get(SHARD_KEYS[0]).await.expect("READ");
    t2.get(SHARD_KEYS[1]).await.expect("READ");
    let e1 = tokio::spawn(t1.commit_with(vec![Mutation::put(SHARD_KEYS[1], "t1")]));
    let e2 = tokio::spawn(t2.commit_with(vec![Mutation::put(SHARD_KEYS[0], "t2")]));
    let outcomes = [e1.await.expect("task"), e2.await.expect("task")];
    let committed = outcomes.iter().filter(|o| o.is_ok()).count();
    let victims = outcomes
        .iter()
        .filter(|o| matches!(o, Err(Error::Aborted { reason, .. }) if reason == "DEADLOCK"))
        .count();
    assert_eq!((committed, victims), (1, 1), "one commit, one DEADLOCK victim: {outcomes:?}");
    let values = read_all(&reader).await;
    let t1_won = outcomes[0].is_ok();
    let expected = if t1_won { ["w4", "t1"] } else { ["t2", "w4"] };
    assert_eq!(values[..2], some(&expected), "only the survivor's write: {outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_for_update_queues_the_next_read_modify_write_instead_of_deadlocking() {
    let cluster = Cluster::start().await;
    let client = cluster.client().await;
    client.put(SHARD_KEYS[1], "1").await.expect("seed");
    let other = client.session();

    // T1 reads for update: T2's read of the same key waits (an exclusive lock), then sees
    // T1's committed increment; no upgrade deadlock, both commit.
    let mut t1 = client.begin().await.expect("BEGIN");
    let seen = text(t1.get_for_update(SHARD_KEYS[1]).await.expect("READ FOR UPDATE"));
    assert_eq!(seen.as_deref(), Some("1"));
    let t2 = tokio::spawn(async move {
        let mut t2 = other.begin().await.expect("BEGIN");
        let seen = text(t2.get_for_update(SHARD_KEYS[1]).await?);
        let next = seen.as_deref().unwrap_or("0").parse::<i64>().expect("a number") + 1;
        t2.commit_with(vec![Mutation::put(SHARD_KEYS[1], next.to_string())]).await?;
        Ok::<Option<String>, Error>(seen)
    });
    until_a_lock_wait(&cluster).await;
    t1.commit_with(vec![Mutation::put(SHARD_KEYS[1], "2")]).await.expect("T1 commits");
    let t2_saw = t2.await.expect("task").expect("T2 commits after T1");
    assert_eq!(t2_saw.as_deref(), Some("2"), "T2 read after T1 committed");
    assert_eq!(text(client.get(SHARD_KEYS[1]).await.expect("read")).as_deref(), Some("3"));

    // Not in a READ ONLY transaction.
    let mut reader = client.begin_read_only().await.expect("BEGIN READ ONLY");
    match reader.get_for_update(SHARD_KEYS[1]).await {
        Err(Error::NotAllowed(_)) => {}
        other => panic!("a read for update in a READ ONLY transaction: {other:?}"),
    }
    reader.commit().await.expect("the READ ONLY transaction is still usable");

    // The same from kvsh: READ k FOR UPDATE.
    let addrs = cluster.addrs();
    let mut first = KvshSession::spawn("first", &addrs);
    let mut second = KvshSession::spawn("second", &addrs);
    first.expect("BEGIN", "OK").await;
    first.expect(&format!("READ {} FOR UPDATE", SHARD_KEYS[1]), "3").await;
    second.expect("BEGIN", "OK").await;
    second.send(&format!("read {} for update", SHARD_KEYS[1])).await;
    until_a_lock_wait(&cluster).await;
    first.expect(&format!("WRITE {} 4", SHARD_KEYS[1]), "OK").await;
    first.expect("END", "COMMITTED").await;
    assert_eq!(second.recv(Duration::from_secs(5)).await, "4", "the second read waited");
    second.expect("END", "COMMITTED").await;
    second.expect("BEGIN READ ONLY", "OK").await;
    second.send(&format!("READ {} FOR UPDATE", SHARD_KEYS[1])).await;
    let refused = second.recv(Duration::from_secs(5)).await;
    assert!(refused.starts_with("ERROR: "), "FOR UPDATE in a READ ONLY transaction: {refused}");
    second.expect("ABORT", "OK").await;
    for session in [first, second] {
        let (status, rest) = session.finish().await;
        assert!(rest.is_empty(), "{status} {rest:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_without_a_handle_are_one_transaction_of_their_own() {
    let cluster = Cluster::start().await;
    let client = cluster.client().await;
    let reader = cluster.client_via(&[2]).await;

    // Across every shard, in one call: all visible at once, at the returned commit timestamp.
    let writes = SHARD_KEYS.iter().map(|key| Mutation::put(key, "one")).collect();
    let committed = client.commit_writes(writes).await.expect("a one-shot commit");
    assert!(committed.commit_ts > 0);
    assert_eq!(read_all(&reader).await, some(&["one"; 4]));

    // Bad input anywhere refuses the whole of it, with nothing applied.
    let writes = vec![Mutation::put(SHARD_KEYS[0], "two"), Mutation::put("", "empty key")];
    match client.commit_writes(writes).await {
        Err(Error::Invalid(message)) => assert!(message.contains("empty key"), "{message}"),
        other => panic!("an empty key in a one-shot commit: {other:?}"),
    }
    match client.commit_writes(Vec::new()).await {
        Err(Error::Invalid(_)) => {}
        other => panic!("a one-shot commit of nothing: {other:?}"),
    }
    {
        // On the wire, too: no handle and no writes is a bad request.
        use proto::kv::CommitRequest;
        let mut kv = cluster.kv_client(3).await;
        let refused =
            kv.commit(CommitRequest { txn: None, writes: Vec::new(), causal_token: 0 }).await;
        let status = refused.expect_err("a Commit without a handle or writes");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    }
    assert_eq!(read_all(&reader).await, some(&["one"; 4]));

    // It locks like any transaction: it waits for a reader's shared lock, the reader never
    // sees it, and it commits once the reader ends.
    let mut holder = reader.begin().await.expect("BEGIN");
    assert_eq!(text(holder.get(SHARD_KEYS[3]).await.expect("READ")).as_deref(), Some("one"));
    let writer = client.session();
    let end = tokio::spawn(async move {
        let writes = vec![Mutation::put(SHARD_KEYS[1], "three"), Mutation::delete(SHARD_KEYS[3])];
        writer.commit_writes(writes).await
    });
    until_a_lock_wait(&cluster).await;
    assert_eq!(text(holder.get(SHARD_KEYS[3]).await.expect("READ")).as_deref(), Some("one"));
    // All or nothing while it waits: its other write is not visible either.
    let other = text(reader.get(SHARD_KEYS[1]).await.expect("READ"));
    assert_eq!(other.as_deref(), Some("one"), "half of a waiting one-shot commit showed");
    holder.commit().await.expect("the reader commits");
    end.await.expect("task").expect("the waiting one-shot commit goes through");
    assert_eq!(read_all(&reader).await, some(&["one", "three", "one", ""]));

    // The nodes forget one-shot transactions once they end (committed or refused); only the
    // reader's, which has a handle, is remembered (for a retried END).
    assert_eq!(remembered(&cluster).await, 1, "only the handled transaction is remembered");

    // Writes without BEGIN commit above the session's causal token, whichever node takes
    // them (monotonic writes): with a token imported from 2 s ahead of every clock here, a
    // one-statement write and a one-shot commit each answer a token above it.
    for one_shot in [false, true] {
        let session = client.session();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        let ahead = (now_ms + 2_000) << 16;
        session.observe_token(ahead);
        if one_shot {
            let writes =
                vec![Mutation::put(SHARD_KEYS[2], "late"), Mutation::put(SHARD_KEYS[0], "x")];
            let committed = session.commit_writes(writes).await.expect("one-shot commit");
            assert!(
                committed.commit_ts > ahead,
                "commit {} not above the token",
                committed.commit_ts
            );
        } else {
            session.put(SHARD_KEYS[2], "late").await.expect("WRITE");
        }
        assert!(session.token() > ahead, "a write without BEGIN ignored the session's token");
    }
}

/// Transactions the nodes remember, summed over their STATUS lines.
async fn remembered(cluster: &Cluster) -> usize {
    let mut remembered = 0;
    for status in cluster.statuses().await.values().flatten() {
        let line = status.text.lines().find(|l| l.starts_with("transactions: ")).expect("line");
        let count = line.split(", ").nth(1).and_then(|rest| rest.split(' ').next());
        remembered += count.and_then(|n| n.parse::<usize>().ok()).expect(line);
    }
    remembered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn begin_near_a_key_is_coordinated_by_the_leader_of_its_shard() {
    let config = "[timing]\nlock_wait_ms = 500\n";
    let cluster = Cluster::builder().config(config).start().await;
    let client = cluster.client().await;
    let leaders = cluster.leaders().await.expect("agreed leaders");
    let before = remembered(&cluster).await;

    // BEGIN travels with the first READ: no handle before it, the key's leader's after.
    for (shard, key) in SHARD_KEYS.iter().enumerate() {
        let mut txn = client.begin_near(key).await.expect("BEGIN near a key");
        assert!(txn.handle().is_none(), "begin_near sent a BEGIN of its own");
        txn.get_for_update(key).await.expect("the first READ begins it");
        let handle = *txn.handle().expect("a READ that began the transaction names it");
        assert_eq!(handle.coordinator, leaders[&(shard as u32)], "{key} is in s{shard}");
        let writes =
            vec![Mutation::put(key, "near"), Mutation::put(SHARD_KEYS[(shard + 1) % 4], "near")];
        txn.commit_with(writes).await.expect("END commits");
    }
    assert_eq!(read_all(&client).await, some(&["near"; 4]));
    assert_eq!(remembered(&cluster).await, before + 4, "one transaction per READ that began one");

    // A first statement that is not a READ sends BEGIN before itself.
    let mut txn = client.begin_near(SHARD_KEYS[1]).await.expect("BEGIN near");
    txn.put(SHARD_KEYS[1], "written").await.expect("a first WRITE begins it too");
    assert!(txn.handle().is_some());
    txn.commit().await.expect("END");
    assert_eq!(text(client.get(SHARD_KEYS[1]).await.expect("READ")).as_deref(), Some("written"));

    // Never begun: END and ABORT have nothing to end, and nothing reaches the nodes.
    let untouched = client.begin_near(SHARD_KEYS[2]).await.expect("BEGIN near");
    assert_eq!(untouched.commit().await.expect("an empty END").commit_ts, 0);
    client.begin_near(SHARD_KEYS[2]).await.expect("BEGIN near").abort().await.expect("ABORT");
    assert_eq!(remembered(&cluster).await, before + 5);

    // A first READ that fails leaves nothing behind: refused input begins nothing, and one
    // that times out behind a lock is aborted and forgotten, its lock released.
    let mut txn = client.begin_near(SHARD_KEYS[0]).await.expect("BEGIN near");
    let refused = txn.get(b"").await.expect_err("an empty key");
    assert!(matches!(refused, Error::Invalid(_)), "{refused:?}");
    assert!(txn.handle().is_none(), "a refused first READ began a transaction");
    let mut holder = client.begin().await.expect("BEGIN");
    holder.put(SHARD_KEYS[0], "held").await.expect("WRITE");
    match txn.get_for_update(SHARD_KEYS[0]).await {
        Err(Error::Aborted { reason, .. }) => assert_eq!(reason, "LOCK_TIMEOUT"),
        other => panic!("a READ behind a held lock answered {other:?}"),
    }
    assert!(txn.handle().is_none(), "a failed first READ has no transaction to name");
    txn.abort().await.expect("ABORT of nothing");
    holder.abort().await.expect("ABORT");
    let running = |status: &e2e::status::NodeStatus| !status.text.contains(" 0 running here");
    // The holder's transaction is remembered (it has a handle); the failed READ's is not.
    eventually("the failed first READ's transaction is gone", Duration::from_secs(10), || async {
        let statuses = cluster.statuses().await;
        let running = statuses.values().flatten().filter(|s| running(s)).count();
        let remembered = remembered(&cluster).await;
        match (running, remembered) {
            (0, n) if n == before + 6 => Ok(()),
            other => Err(format!(
                "(running, remembered) = {other:?}, expected remembered {}",
                before + 6
            )),
        }
    })
    .await;
    // And its lock with it: the key is free at once for a writer that does not wait.
    client.put(SHARD_KEYS[0], "free").await.expect("the key is free");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn begin_near_moves_on_from_a_node_that_cannot_be_reached() {
    // Elections slow enough that a client made just after a leader dies still names it.
    let config = "[timing]\nelection_min_ms = 3000\nelection_max_ms = 4000\n";
    let mut cluster = Cluster::builder().config(config).start().await;
    // Leaders where they stay (no handover later aborts the statements below).
    assert!(cluster.wait_settled(Duration::from_secs(30)).await, "leaders settled");
    let leaders = eventually("agreed leaders", Duration::from_secs(30), || cluster.leaders()).await;
    let victim = leaders[&0];
    let (other, other_key) = leaders
        .iter()
        .find(|(_, leader)| **leader != victim)
        .map(|(shard, _)| (*shard, SHARD_KEYS[*shard as usize]))
        .expect("a shard led by another node");
    cluster.kill9(victim);
    // A client with no connection to the dead node: reaching it fails at connect, so nothing
    // is sent there (a request on a connection that dies under it may have arrived).
    let live: Vec<u64> = cluster.running();
    let client = cluster.client_via(&live).await;
    assert_eq!(client.leader_of(SHARD_KEYS[0]), Some(victim), "the map still names the dead");

    // Near s0's key, so the dead node comes first. A first WRITE sends BEGIN to the next one;
    // its statements then work on s{other}, whose leader lives.
    let mut txn = client.begin_near(SHARD_KEYS[0]).await.expect("BEGIN near");
    txn.put(other_key, "first write").await.expect("a first WRITE begins at a live node");
    let coordinator = txn.handle().expect("begun").coordinator;
    assert_ne!(coordinator, victim, "begun at the dead node");
    txn.commit().await.expect("END");
    // A first READ, which carries the BEGIN, does the same.
    let mut txn = client.begin_near(SHARD_KEYS[0]).await.expect("BEGIN near");
    let read = txn.get(other_key).await.expect("a first READ begins at a live node");
    assert_eq!(text(read).as_deref(), Some("first write"), "s{other}");
    assert_ne!(txn.handle().expect("begun").coordinator, victim, "begun at the dead node");
    txn.commit().await.expect("END");
}

/// `lock_wait_ms` in the next test's cluster.
const LOCK_WAIT_MS: u64 = 3_000;

/// How much of that budget passes while the commit waits at its first shard.
const BUDGET_SPENT: Duration = Duration::from_millis(1_500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_locks_a_commit_takes_wait_within_one_budget() {
    let config = format!("[timing]\nlock_wait_ms = {LOCK_WAIT_MS}\n");
    let cluster = Cluster::builder().config(&config).start().await;
    let client = cluster.client().await;

    // One holder of a key of the commit's second shard, released part-way through the budget;
    // one of its home key (the first write's), which it never gets.
    let mut second = client.begin().await.expect("BEGIN");
    second.put(SHARD_KEYS[1], "held").await.expect("WRITE");
    let mut home = client.begin().await.expect("BEGIN");
    home.put(SHARD_KEYS[0], "held").await.expect("WRITE");
    let writer = client.session();
    let end = tokio::spawn(async move {
        let writes = vec![Mutation::put(SHARD_KEYS[0], "x"), Mutation::put(SHARD_KEYS[1], "x")];
        writer.commit_writes(writes).await
    });
    until_a_lock_wait(&cluster).await;
    // Not synchronisation: the budget must run down while the prepare waits.
    tokio::time::sleep(BUDGET_SPENT).await;
    second.abort().await.expect("ABORT");

    // Home's wait gets what is left of the budget, not a budget of its own: the whole commit
    // gives up within about lock_wait_ms, well inside the client's request deadline.
    match end.await.expect("task") {
        Err(Error::Aborted { reason, message, retryable }) => {
            assert_eq!(reason, "LOCK_TIMEOUT", "{message}");
            assert!(retryable);
            let waited: u64 = message
                .split("waited ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|ms| ms.parse().ok())
                .unwrap_or_else(|| panic!("no wait in {message:?}"));
            let left = LOCK_WAIT_MS - BUDGET_SPENT.as_millis() as u64;
            assert!(waited < left, "home waited a budget of its own: {message}");
        }
        other => panic!("a commit whose home key stays locked: {other:?}"),
    }
    home.abort().await.expect("ABORT");
    let reader = cluster.client_via(&[2]).await;
    assert_eq!(read_all(&reader).await[..2], [None, None], "nothing of it applied");
}

/// A read at one shard and a write sent with END to another (its home), whose lock is held by
/// a second transaction. While END waits for that lock, the leader of the read's shard is
/// killed: the read's shared lock, held only in that leader's memory, is gone, and the second
/// transaction writes the key that was read and commits. END then gets its lock; committing
/// would serialize it after the second transaction (it overwrites the second's home write)
/// although it read the value from before it: a write skew. END takes its locks before any
/// participant checks the shared locks it holds, so the check finds the leader changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_stays_protected_until_the_commit_has_taken_every_lock() {
    let mut cluster = Cluster::start().await;
    let (read_key, home_key) = (SHARD_KEYS[1], SHARD_KEYS[0]);
    let victim = cluster.leader_of(1).await;
    let home_leader = cluster.leader_of(0).await;
    let coordinator =
        cluster.ids().into_iter().find(|id| *id != victim && *id != home_leader).unwrap_or_else(
            || panic!("s0 and s1 share leader {victim}: the leaders did not settle"),
        );
    let client = cluster.client_via(&[coordinator]).await;
    client.put(read_key, "r0").await.expect("WRITE");
    client.put(home_key, "h0").await.expect("WRITE");

    let mut holder = client.begin().await.expect("BEGIN");
    holder.put(home_key, "holder").await.expect("WRITE");
    let mut reader = client.begin().await.expect("BEGIN");
    assert_eq!(text(reader.get(read_key).await.expect("READ")).as_deref(), Some("r0"));
    let end =
        tokio::spawn(
            async move { reader.commit_with(vec![Mutation::put(home_key, "reader")]).await },
        );
    until_a_lock_wait(&cluster).await;

    cluster.kill9(victim);
    cluster.wait_ready_within(Duration::from_secs(30)).await;
    holder.put(read_key, "holder").await.expect("WRITE at the new leader of s1");
    holder.commit().await.expect("the holder commits");

    match end.await.expect("task") {
        Err(Error::Aborted { reason, message, retryable }) => {
            assert_eq!(reason, "LEADER_CHANGED", "{message}");
            assert!(retryable);
        }
        other => panic!("END committed on a read another transaction overwrote: {other:?}"),
    }
    let values = (client.get(read_key).await, client.get(home_key).await);
    let values = (text(values.0.expect("READ")), text(values.1.expect("READ")));
    assert_eq!(values, (Some("holder".into()), Some("holder".into())), "only the holder's writes");
}
