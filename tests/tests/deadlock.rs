//! Issue 4: distributed deadlock detection, seen from interleaved `kvsh` sessions.
//!
//! Each scenario runs sessions S0, S1, ... begun in that order (S0 is the oldest), each holding
//! an exclusive lock on its own key, then each asking for the next one's key: S0 -> S1 -> ...
//! -> S(n-1) -> S0. The last request closes the cycle. Within 1 s of sending it, exactly one
//! session, the youngest, gets `ABORTED: DEADLOCK` naming the cycle; the others go on and commit
//! one after the other. Before the cycle closes, the waiting chain aborts nobody.
//!
//! Where each transaction is coordinated matters to the edge-chasing protocol: a probe reaching
//! a lock holder is forwarded by the holder's *coordinator*, which must know where the holder
//! waits. So every scenario runs with two placements: each transaction coordinated by the
//! leader of the shard where it will wait, and each coordinated by another node.
//!
//! Regression: the second placement found that only the participant's node recorded a wait
//! (server/src/participant/shard.rs, `acquire`), so a coordinator on another node answered
//! probes for its own waiting transaction with "not waiting" and every such cycle ran into the
//! 10 s lock wait timeout, which aborted the *older* transaction. Coordinators now mark their
//! own lock waits (server/src/coordinator/coordinator.rs, `lock`, commit 695a257).

use std::time::Duration;

use e2e::Cluster;
use e2e::KvshSession;
use e2e::keys::SHARD_KEYS;
use e2e::kvsh;
use e2e::text;
use tokio::time::Instant;

/// How fast a cycle must be broken once it closes.
const BREAK_WITHIN: Duration = Duration::from_secs(1);
/// How long a waiting chain (no cycle yet) is watched for phantom aborts.
const CHAIN_WATCH: Duration = Duration::from_millis(500);
/// A transaction's age is its start timestamp, a hybrid logical clock reading of millisecond
/// resolution taken by its coordinator. Two BEGINs on different nodes less than a millisecond
/// apart (and not causally related) have no defined order, so the scenarios leave this much
/// wall-clock time between BEGINs for "begun later" to mean "younger". (Without it, a 3-cycle
/// run once aborted S1 instead of S2: both had begun within the same millisecond.)
const CLOCK_RESOLUTION_GAP: Duration = Duration::from_millis(3);

/// Which node coordinates a transaction, relative to the leader of the shard where it waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placement {
    /// The node that leads the shard where the transaction will wait.
    WaitedOnLeader,
    /// A node that does not lead the shard where the transaction will wait.
    Elsewhere,
}

/// The node that coordinates session `index`, a transaction that will wait at a shard led by
/// `leader` (`Elsewhere`: sessions spread over the other nodes).
fn coordinator(placement: Placement, leader: u64, index: usize, ids: &[u64]) -> u64 {
    match placement {
        Placement::WaitedOnLeader => leader,
        Placement::Elsewhere => {
            let others: Vec<u64> = ids.iter().copied().filter(|id| *id != leader).collect();
            others[index % others.len()]
        }
    }
}

/// A session whose transactions are begun on node `id` (kvsh begins on its first address).
fn session_on(cluster: &Cluster, name: &str, id: u64) -> KvshSession {
    let mut ids = vec![id];
    ids.extend(cluster.ids().into_iter().filter(|other| *other != id));
    KvshSession::spawn(name, &cluster.addrs_of(&ids))
}

/// The line the session that closed a cycle gets: it must be the victim, so it must answer
/// (within a grace period past [`BREAK_WITHIN`], so that a slow answer is measured, not lost).
async fn victim_line(session: &mut KvshSession) -> String {
    match session.try_recv(BREAK_WITHIN * 3).await {
        Some(line) => line,
        None => panic!(
            "{} closed a cycle and got no answer within {:?}: the deadlock was not detected; \
             transcript:\n{}",
            session.name(),
            BREAK_WITHIN * 3,
            session.transcript()
        ),
    }
}

/// The cycle S0 -> S1 -> ... -> S(n-1) -> S0 over the shards `shards` (session i holds the key
/// of `shards[i]` and waits for the key of `shards[i + 1]`), checked end to end.
async fn cycle(shards: &[usize], placement: Placement) {
    let cluster = Cluster::start().await;
    let n = shards.len();
    let keys: Vec<&str> = shards.iter().map(|s| SHARD_KEYS[*s]).collect();
    let leaders = cluster.leaders().await.expect("agreed leaders");
    let mut sessions = Vec::new();
    for i in 0..n {
        let waits_at = shards[(i + 1) % n] as u32;
        let node = coordinator(placement, leaders[&waits_at], i, &cluster.ids());
        eprintln!(
            "S{i} holds {} and will wait at s{waits_at}: coordinated by node {node}",
            keys[i]
        );
        sessions.push(session_on(&cluster, &format!("S{i}"), node));
    }

    for (i, session) in sessions.iter_mut().enumerate() {
        tokio::time::sleep(CLOCK_RESOLUTION_GAP).await;
        session.expect("BEGIN", "OK").await;
        session.expect(&format!("WRITE {} S{i}-own", keys[i]), "OK").await;
    }
    // The chain S0 -> ... -> S(n-1): every request waits, nobody is aborted.
    for i in 0..n - 1 {
        sessions[i].send(&format!("WRITE {} S{i}-next", keys[i + 1])).await;
    }
    for session in &mut sessions[..n - 1] {
        let early = session.try_recv(CHAIN_WATCH).await;
        assert_eq!(early, None, "{} answered while only waiting in a chain", session.name());
    }
    // LOCKS shows who waits for whom meanwhile: one wait for each key of the chain (once every
    // wait has reached its shard leader: the silence above does not say so on a loaded machine).
    let chain = "every wait of the chain";
    cluster.until_lock_waits(chain, Duration::from_secs(5), |waits| waits >= n - 1).await;
    let locks = kvsh::run_c(&cluster.addrs(), "LOCKS").await;
    let waits: Vec<&str> = locks.lines().into_iter().filter(|l| l.contains(" waits ")).collect();
    assert_eq!(waits.len(), n - 1, "LOCKS shows the chain's waits: {locks:?}");
    for key in &keys[1..] {
        let on_key = waits.iter().any(|wait| wait.contains(key) && wait.contains("behind t"));
        assert!(on_key, "LOCKS shows a wait for {key} behind its holder: {locks:?}");
    }

    // The youngest closes the cycle and is its only victim, within a second.
    let youngest = n - 1;
    let closed_at = sessions[youngest].send(&format!("WRITE {} S{youngest}-next", keys[0])).await;
    let line = victim_line(&mut sessions[youngest]).await;
    let broken_after = closed_at.elapsed();
    eprintln!("S{youngest}: {line} (after {broken_after:?})");
    assert!(line.starts_with("ABORTED: DEADLOCK"), "the youngest is the victim: {line}");
    for key in &keys {
        assert!(line.contains(key), "the message names the cycle's key {key}: {line}");
    }
    assert!(broken_after <= BREAK_WITHIN, "the cycle was broken after {broken_after:?}");
    // Its locks went: the one that waited for it gets its lock at once.
    let unblocked = youngest - 1;
    let line = sessions[unblocked].recv(BREAK_WITHIN).await;
    assert_eq!(line, "OK", "S{unblocked} gets the victim's lock");
    let victim = &mut sessions[youngest];
    victim.expect("READ Alice", "ERROR: transaction aborted, end it with ABORT").await;
    victim.expect("ABORT", "OK").await;

    // The survivors commit, youngest first, each releasing the next.
    for i in (0..youngest).rev() {
        if i < unblocked {
            let started = Instant::now();
            let line = sessions[i].recv(Duration::from_secs(5)).await;
            assert_eq!(line, "OK", "S{i} gets S{}'s lock once S{} commits", i + 1, i + 1);
            assert!(started.elapsed() < Duration::from_secs(5));
        }
        sessions[i].expect("END", "COMMITTED").await;
    }

    let client = cluster.client().await;
    for (i, key) in keys.iter().enumerate() {
        let expected = if i == 0 { "S0-own".to_string() } else { format!("S{}-next", i - 1) };
        let read = text(client.get(key).await.expect("read"));
        assert_eq!(read.as_deref(), Some(expected.as_str()), "{key}");
    }
    for session in sessions {
        let name = session.name().to_string();
        let (status, rest) = session.finish().await;
        assert!(rest.is_empty(), "{name} printed nothing more: {rest:?}");
        // The victim's ABORTED line makes its exit status non-zero; the others' is zero.
        assert_eq!(status.success(), name != format!("S{youngest}"), "{name}: {status}");
    }
}

/// Two readers of one key both upgrade to a write: the younger is the victim.
async fn upgrade(placement: Placement) {
    let cluster = Cluster::start().await;
    let leader = cluster.leader_of(1).await;
    let ids = cluster.ids();
    let (first, second) =
        (coordinator(placement, leader, 0, &ids), coordinator(placement, leader, 1, &ids));
    eprintln!("both wait at s1 (leader {leader}): coordinated by nodes {first} and {second}");
    let mut older = session_on(&cluster, "older", first);
    let mut younger = session_on(&cluster, "younger", second);
    older.expect("BEGIN", "OK").await;
    older.expect("READ Gina", "(nil)").await;
    tokio::time::sleep(CLOCK_RESOLUTION_GAP).await;
    younger.expect("BEGIN", "OK").await;
    younger.expect("READ Gina", "(nil)").await;
    older.send("WRITE Gina older").await;
    assert_eq!(older.try_recv(CHAIN_WATCH).await, None, "the older upgrade waits");
    let closed_at = younger.send("WRITE Gina younger").await;
    let line = victim_line(&mut younger).await;
    let broken_after = closed_at.elapsed();
    assert!(line.starts_with("ABORTED: DEADLOCK"), "the younger is the victim: {line}");
    assert!(broken_after <= BREAK_WITHIN, "the cycle was broken after {broken_after:?}");
    assert_eq!(older.recv(BREAK_WITHIN).await, "OK", "the older upgrade is granted");
    older.expect("END", "COMMITTED").await;
    younger.expect("ABORT", "OK").await;
    younger.expect("READ Gina", "older").await;
}

/// A READ can be the victim too, and the shell prints its abort as `ABORTED:` (README: any
/// statement the server aborts): each of two transactions writes a key of its own shard, then
/// reads the other's; the younger's READ closes the cycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_closes_a_cycle_is_the_victim_and_prints_aborted() {
    let cluster = Cluster::start().await;
    let mut older = session_on(&cluster, "older", 1);
    let mut younger = session_on(&cluster, "younger", 2);
    older.expect("BEGIN", "OK").await;
    older.expect("WRITE Alice older", "OK").await;
    tokio::time::sleep(CLOCK_RESOLUTION_GAP).await;
    younger.expect("BEGIN", "OK").await;
    younger.expect("WRITE kate younger", "OK").await;
    older.send("READ kate").await;
    assert_eq!(older.try_recv(CHAIN_WATCH).await, None, "the older READ waits");
    cluster
        .until_lock_waits("the older READ's wait", Duration::from_secs(5), |waits| waits > 0)
        .await;
    let closed_at = younger.send("READ Alice").await;
    let line = victim_line(&mut younger).await;
    assert!(line.starts_with("ABORTED: DEADLOCK"), "the younger READ is the victim: {line}");
    assert!(closed_at.elapsed() <= BREAK_WITHIN, "broken after {:?}", closed_at.elapsed());
    younger.expect("READ Alice", "ERROR: transaction aborted, end it with ABORT").await;
    younger.expect("ABORT", "OK").await;
    assert_eq!(older.recv(BREAK_WITHIN).await, "(nil)", "the older READ gets its lock");
    older.expect("END", "COMMITTED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_cycle_across_shards_aborts_only_the_younger_within_a_second() {
    cycle(&[0, 3], Placement::Elsewhere).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_cycle_across_three_shards_aborts_only_the_youngest_within_a_second() {
    cycle(&[0, 1, 2], Placement::Elsewhere).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_deadlock_of_two_readers_aborts_only_the_younger_within_a_second() {
    upgrade(Placement::Elsewhere).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_cycle_is_broken_when_each_transaction_is_coordinated_by_the_leader_it_waits_on() {
    cycle(&[0, 3], Placement::WaitedOnLeader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_cycle_is_broken_when_each_transaction_is_coordinated_by_the_leader_it_waits_on() {
    cycle(&[0, 1, 2], Placement::WaitedOnLeader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_deadlock_is_broken_when_both_are_coordinated_by_the_leader_they_wait_on() {
    upgrade(Placement::WaitedOnLeader).await;
}

/// Waits until some node's STATUS text passes `check`.
async fn until_status(cluster: &Cluster, what: &str, check: impl Fn(&str) -> bool) {
    e2e::eventually(what, Duration::from_secs(5), || async {
        let statuses = cluster.statuses().await;
        let seen = statuses.values().flatten().any(|status| check(&status.text));
        if seen { Ok(()) } else { Err(format!("no node's STATUS shows {what}")) }
    })
    .await
}

/// The sum over the nodes of `N one-statement victims run again`.
async fn runs_again(cluster: &Cluster) -> u64 {
    let statuses = cluster.statuses().await;
    statuses
        .values()
        .flatten()
        .filter_map(|status| {
            let line = status.text.lines().find(|line| line.starts_with("deadlocks:"))?;
            let (_, tail) = line.rsplit_once("; ")?;
            tail.strip_suffix(" one-statement victims run again")?.parse::<u64>().ok()
        })
        .sum()
}

/// A SCAN outside BEGIN that spans shards is a read-only transaction of its own, so it can
/// close a deadlock, and as the youngest on the cycle it is the victim. Its coordinator runs it
/// again: the caller gets the rows, not `ABORTED: DEADLOCK` for a statement it sent alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_statement_scan_chosen_as_a_deadlock_victim_runs_again_and_answers() {
    let cluster = Cluster::start().await;
    let client = cluster.client().await;
    let mut writer = client.begin().await.expect("BEGIN");
    writer.put(SHARD_KEYS[1], "w").await.expect("WRITE in s1");
    tokio::time::sleep(CLOCK_RESOLUTION_GAP).await;
    assert_eq!(runs_again(&cluster).await, 0);

    // The scan locks its s0 part ([Alice, F)), then waits at s1 behind the writer.
    let scanner = client.session();
    let scan = tokio::spawn(async move { scanner.scan(SHARD_KEYS[0], "H", None).await });
    cluster.until_lock_waits("a lock wait", Duration::from_secs(5), |waits| waits > 0).await;
    // The older writer asks for a key of the scan's s0 part: the cycle closes, the scan is the
    // victim, and the writer gets its lock.
    writer.put("Bob", "w").await.expect("the older writer goes on");
    writer.commit().await.expect("END");

    let rows = scan.await.expect("task").expect("the scan runs again and answers");
    let rows: Vec<(String, String)> = rows
        .into_iter()
        .map(|(k, v)| (String::from_utf8(k).expect("utf8"), String::from_utf8(v).expect("utf8")))
        .collect();
    let expected = [("Bob", "w"), ("Gina", "w")].map(|(k, v)| (k.to_string(), v.to_string()));
    assert_eq!(rows, expected, "the second run reads after the writer's commit");
    assert_eq!(runs_again(&cluster).await, 1, "the victim ran again once");
}

/// The same for a commit without a handle (`kvbench txn2`'s path): its prepares hold a lock at
/// one shard and wait at another, the older transaction waiting for the first closes the cycle,
/// and the commit runs again after it instead of answering DEADLOCK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_without_a_handle_chosen_as_a_deadlock_victim_runs_again_and_commits() {
    let cluster = Cluster::start().await;
    let client = cluster.client().await;
    let mut writer = client.begin().await.expect("BEGIN");
    writer.put(SHARD_KEYS[1], "older").await.expect("WRITE in s1");
    tokio::time::sleep(CLOCK_RESOLUTION_GAP).await;

    // Home is s0 (the first write); s2 prepares (and holds its key), s1 waits for the writer.
    let committer = client.session();
    let commit = tokio::spawn(async move {
        let writes = [0, 1, 2].map(|s| client::Mutation::put(SHARD_KEYS[s], "younger"));
        committer.commit_writes(writes.to_vec()).await
    });
    until_status(&cluster, "a prepared transaction at s2", |text| {
        text.lines().any(|line| line.starts_with("  s2 leader") && line.ends_with(" 1 prepared"))
    })
    .await;
    cluster.until_lock_waits("a lock wait", Duration::from_secs(5), |waits| waits > 0).await;
    writer.put(SHARD_KEYS[2], "older").await.expect("the older writer goes on");
    writer.commit().await.expect("END");

    commit.await.expect("task").expect("the commit runs again and commits");
    for key in &SHARD_KEYS[..3] {
        let read = text(client.get(key).await.expect("READ"));
        assert_eq!(read.as_deref(), Some("younger"), "{key}: the second run committed last");
    }
    assert_eq!(runs_again(&cluster).await, 1, "the victim ran again once");
}

/// A one-key statement outside BEGIN holds no lock while it waits for its one, but lock queues
/// are FIFO: a transaction queued behind it waits for it, so it can be on a cycle. Here H (the
/// oldest) holds a shared lock on a; W, a one-statement WRITE of a sent to a node that does not
/// lead a's shard, waits for H; T (the youngest) holds b and asks to read a, which queues
/// behind W; H then asks for b: T -> W -> H -> T. Before 2026-12-05, W's coordinator answered
/// probes for it with "not waiting" (a one-statement operation was not marked waiting there),
/// so nobody found the cycle and it lasted until W's lock wait timed out, 10 s later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_through_a_waiting_one_statement_write_is_broken_within_a_second() {
    let cluster = Cluster::start().await;
    let client = cluster.client().await;
    let (a, b) = (SHARD_KEYS[0], SHARD_KEYS[1]);
    let leaders = cluster.leaders().await.expect("agreed leaders");
    let elsewhere = cluster.ids().into_iter().find(|id| *id != leaders[&0]).expect("a node");

    let mut h = client.begin().await.expect("BEGIN H");
    h.get(a).await.expect("H reads a");
    tokio::time::sleep(CLOCK_RESOLUTION_GAP).await;
    let mut kv = cluster.kv_client(elsewhere).await;
    let write = tokio::spawn(async move {
        let request =
            proto::kv::WriteRequest { key: a.into(), value: "W".into(), ..Default::default() };
        kv.write(request).await
    });
    cluster.until_lock_waits("W's lock wait", Duration::from_secs(5), |waits| waits > 0).await;
    tokio::time::sleep(CLOCK_RESOLUTION_GAP).await;

    let t_session = client.session();
    let mut t = t_session.begin().await.expect("BEGIN T");
    t.put(b, "T").await.expect("T writes b");
    let t_read = tokio::spawn(async move {
        let read = t.get(a).await;
        (t, read)
    });
    until_status(&cluster, "T's lock wait behind W", |text| {
        text.lines().any(|line| {
            let waits = line.strip_prefix("lock waits: ").and_then(|n| n.parse::<u32>().ok());
            waits.is_some_and(|waits| waits >= 2)
        })
    })
    .await;

    let closed_at = Instant::now();
    let h_write = tokio::spawn(async move {
        let written = h.put(b, "H").await;
        (h, written)
    });
    let (t, read) = tokio::time::timeout(BREAK_WITHIN * 3, t_read)
        .await
        .expect("the cycle was found: T's READ answered")
        .expect("task");
    let broken_after = closed_at.elapsed();
    let error = read.expect_err("T, the youngest, is the victim");
    assert!(error.to_string().contains("DEADLOCK"), "{error}");
    assert!(broken_after <= BREAK_WITHIN, "the cycle was broken after {broken_after:?}");
    let _ = t.abort().await;

    let (h, written) = h_write.await.expect("task");
    written.expect("H gets b once T is gone");
    h.commit().await.expect("H commits");
    write.await.expect("task").expect("W commits after H");
    let read = text(client.get(a).await.expect("READ a"));
    assert_eq!(read.as_deref(), Some("W"));
    assert_eq!(text(client.get(b).await.expect("READ b")).as_deref(), Some("H"));
}

/// A transaction that read a key and then scans a range over it is granted the range even when
/// a writer of that key is queued in between: the writer waits for the reader's S lock anyway,
/// so putting the scan behind it made a two-cycle out of two transactions that do not conflict,
/// and the younger, the writer, was aborted as a deadlock victim (found by a review of the lock
/// queues; `txn::lock` test `a_scan_over_a_key_read_earlier_does_not_queue_behind_a_writer_...`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_over_a_key_read_earlier_does_not_deadlock_with_a_writer_queued_for_it() {
    let cluster = Cluster::start().await;
    let client = cluster.client().await;
    let a = SHARD_KEYS[0];
    client.put(a, "0").await.expect("seed a");

    let mut reader = client.begin().await.expect("BEGIN reader");
    reader.get(a).await.expect("reader reads a");
    tokio::time::sleep(CLOCK_RESOLUTION_GAP).await;
    let writer_session = client.session();
    let mut writer = writer_session.begin().await.expect("BEGIN writer");
    let write = tokio::spawn(async move {
        let written = writer.put(a, "1").await;
        (writer, written)
    });
    cluster
        .until_lock_waits("the writer's lock wait", Duration::from_secs(5), |waits| waits > 0)
        .await;

    // The whole of shard 0's part of the key space up to "F", over a.
    let rows = reader.scan("", "F", None).await.expect("the scan is granted past the writer");
    assert_eq!(rows, vec![(a.as_bytes().to_vec(), b"0".to_vec())]);
    reader.commit().await.expect("reader commits");

    let (writer, written) = write.await.expect("task");
    written.expect("the writer is granted a once the reader ends, not aborted");
    writer.commit().await.expect("writer commits");
    assert_eq!(text(client.get(a).await.expect("READ a")).as_deref(), Some("1"));
}
