//! A node whose data directory was lost (a replaced disk) and that starts again under its old
//! id, on real processes.
//!
//! It catches up, and only then votes (`replication::vote_gate`, `server::participant::rejoin`):
//! with an empty log it would vote for any candidate, and a stale replica could be elected
//! without entries that were committed on the lost disk and one other node (openraft's FAQ
//! draws this case). The scenario is that one: node 2 misses writes, node 3 acknowledges them
//! with node 1, then node 3's disk is lost and node 1 dies. Nodes 2 and 3 must not serve a
//! state without those writes; once node 1 is back, every acknowledged write reads back.
//!
//! A node whose Raft log was damaged (a flipped bit in a synced record, not a crash's torn
//! write) refuses to start, and its message prescribes the same remedy: an empty data
//! directory (`replication::store::wal`).
//!
//! A node whose data directory is deleted while it runs stops by itself
//! (`replication::store::presence`), and rejoins on the emptied directory the same way.
//!
//! The price of the gate: a node cannot tell a lost disk from the first start of a new cluster,
//! so a new cluster forms only once all three nodes have started.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::Cluster;
use e2e::acked::AckedWrites;
use e2e::eventually;
use e2e::keys::spread;
use e2e::status::NodeStatus;
use tokio::time::Instant;

/// How long a write may take to be acknowledged while leaders move.
const WRITE_WITHIN: Duration = Duration::from_secs(20);
/// How long reading every key back may take.
const VERIFY_WITHIN: Duration = Duration::from_secs(60);
/// How long a fresh node may take to catch up and vote again.
const CATCH_UP_WITHIN: Duration = Duration::from_secs(30);
/// How long the stale node and the emptied one are watched for serving a read without the
/// writes (elections take about a second here).
const WATCH_FOR: Duration = Duration::from_secs(4);
/// How long one read of that watch may take.
const READ_TIMEOUT: Duration = Duration::from_millis(500);

/// Waits until nodes `ids` answer STATUS with their shards (they serve).
async fn until_serving(cluster: &Cluster, ids: &[u64]) {
    eventually(&format!("nodes {ids:?} answer STATUS"), CATCH_UP_WITHIN, || async {
        let statuses = cluster.statuses().await;
        for id in ids {
            let status = statuses[id].as_ref().map_err(|why| format!("node {id}: {why}"))?;
            if status.shards.is_empty() {
                return Err(format!("node {id} shows no shard yet"));
            }
        }
        Ok(())
    })
    .await;
}

async fn write_keys(record: &mut AckedWrites, client: &client::Client, keys: &[String], tag: &str) {
    for key in keys {
        record.write_until_acked(client, key, &format!("{key}={tag}"), WRITE_WITHIN).await;
    }
}

/// Removes node `id`'s data directory, as a replaced disk would leave it (the node is down).
fn lose_disk(cluster: &Cluster, id: u64) {
    assert!(!cluster.is_running(id), "node {id} is down before its disk goes");
    std::fs::remove_dir_all(cluster.data_dir(id)).expect("remove the data directory");
}

/// How long a node may take to refuse to start.
const REFUSE_WITHIN: Duration = Duration::from_secs(20);

/// Flips one bit in the middle of the newest WAL segment of node `id` (down) that holds
/// records; returns the segment's name.
fn flip_a_log_bit(cluster: &Cluster, id: u64) -> String {
    assert!(!cluster.is_running(id), "node {id} is down before its log is damaged");
    let wal = cluster.data_dir(id).join("wal");
    let mut segments: Vec<_> = std::fs::read_dir(&wal)
        .expect("the WAL directory")
        .map(|entry| entry.expect("a WAL entry").path())
        .collect();
    segments.sort();
    for path in segments.iter().rev() {
        let mut bytes = std::fs::read(path).expect("read a segment");
        let Some(last) = bytes.iter().rposition(|&byte| byte != 0) else { continue };
        bytes[last / 2] ^= 0x10;
        std::fs::write(path, &bytes).expect("write the damaged segment");
        return path.file_name().expect("a name").to_string_lossy().into_owned();
    }
    panic!("node {id}'s WAL holds no records");
}

/// Waits until node `id` votes again on every shard it replicates.
async fn wait_votes(cluster: &Cluster, id: u64) {
    eventually(&format!("node {id} to catch up and vote"), CATCH_UP_WITHIN, || async {
        let statuses = cluster.statuses().await;
        let status = statuses[&id].as_ref().map_err(|e| e.clone())?;
        let withheld: Vec<u32> =
            status.shards.iter().filter(|(_, r)| r.votes_withheld).map(|(s, _)| *s).collect();
        if status.shards.is_empty() || !withheld.is_empty() {
            return Err(format!("votes withheld on {withheld:?}: {}", status.text));
        }
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_disk_was_lost_catches_up_before_it_votes() {
    let mut cluster = Cluster::start().await;
    let mut record = AckedWrites::new();
    let client = cluster.client().await;
    write_keys(&mut record, &client, &spread("before", 20), "v1").await;

    eprintln!("phase 1: node 3 loses its disk and comes back; it catches up, then votes");
    let incarnation = |statuses: &BTreeMap<u64, Result<NodeStatus, String>>| {
        statuses[&3].as_ref().expect("node 3's status").incarnation
    };
    let before = incarnation(&cluster.statuses().await);
    cluster.kill9(3);
    lose_disk(&cluster, 3);
    cluster.restart(3);
    wait_votes(&cluster, 3).await;
    // Its transaction ids are new too: its incarnations do not count from 1 again.
    let after = incarnation(&cluster.statuses().await);
    assert!(after > before, "node 3's incarnation went from {before} to {after}");
    // Its votes count: without node 1, nodes 2 and 3 elect leaders and serve everything.
    cluster.kill9(1);
    let via_2_3 = cluster.client_via(&[2, 3]).await;
    assert_eq!(record.verify(&via_2_3, VERIFY_WITHIN).await, 20);
    cluster.restart(1);
    cluster.wait_ready().await;

    eprintln!("phase 2: node 2 misses writes that nodes 1 and 3 acknowledge");
    cluster.kill9(2);
    let via_1_3 = cluster.client_via(&[1, 3]).await;
    let missed = spread("missed", 20);
    write_keys(&mut record, &via_1_3, &missed, "v2").await;

    eprintln!("phase 3: node 3 loses its disk, node 1 dies; stale node 2 and empty node 3 start");
    cluster.kill9(3);
    lose_disk(&cluster, 3);
    cluster.kill9(1);
    cluster.restart(2);
    cluster.restart(3);
    // Both serve first (STATUS with their shards), so that the watch below watches them.
    until_serving(&cluster, &[2, 3]).await;
    let via_2_3 = cluster.client_via(&[2, 3]).await;
    let until = Instant::now() + WATCH_FOR;
    let mut answered = 0;
    while Instant::now() < until {
        for key in &missed {
            if let Ok(Ok(value)) = tokio::time::timeout(READ_TIMEOUT, via_2_3.get(key)).await {
                answered += 1;
                let value = value.map(|v| String::from_utf8_lossy(&v).into_owned());
                assert_eq!(
                    value.as_deref(),
                    Some(format!("{key}=v2").as_str()),
                    "nodes 2 and 3 served {key} without the write that nodes 1 and 3 acknowledged"
                );
            }
        }
    }
    eprintln!("{answered} reads answered while node 1 was down (none may miss a write)");
    let statuses = cluster.statuses().await;
    let node3 = statuses[&3].as_ref().expect("node 3's status");
    assert!(
        node3.shards.values().all(|r| r.votes_withheld),
        "node 3 withholds its votes while it cannot catch up: {}",
        node3.text
    );

    eprintln!("phase 4: node 1 is back; every acknowledged write reads back, node 3 votes");
    cluster.restart(1);
    cluster.wait_ready().await;
    assert_eq!(record.verify(&cluster.client().await, VERIFY_WITHIN).await, 40);
    wait_votes(&cluster, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_log_is_damaged_refuses_to_start_and_rejoins_on_an_empty_disk() {
    let mut cluster = Cluster::start().await;
    let mut record = AckedWrites::new();
    let client = cluster.client().await;
    write_keys(&mut record, &client, &spread("kept", 20), "v1").await;

    cluster.kill9(3);
    let segment = flip_a_log_bit(&cluster, 3);
    eprintln!("flipped a bit in the middle of node 3's {segment}");
    cluster.restart(3);
    // The damage and the remedy.
    let said = ["damaged record", "move its data directory aside"];
    exits_saying(&mut cluster, 3, REFUSE_WITHIN, &said).await;

    eprintln!("the operator moves node 3's data aside; it rejoins, catches up and votes");
    let data = cluster.data_dir(3);
    std::fs::rename(&data, data.with_extension("damaged")).expect("move the data aside");
    node_3_rejoins_with_every_write(&mut cluster, &record, 20).await;
}

/// A node whose Raft log files are gone while its identity survived (someone deleted them, a
/// mount came up empty) refuses to start: it would otherwise come back with no vote and none
/// of the entries it acknowledged, free to vote twice in a term. The remedy is a lost disk's.
/// Before 2026-12-05 it started as if nothing had happened (a review found it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_log_files_are_gone_refuses_to_start_and_rejoins_on_an_empty_disk() {
    let mut cluster = Cluster::start().await;
    let mut record = AckedWrites::new();
    let client = cluster.client().await;
    write_keys(&mut record, &client, &spread("kept", 20), "v1").await;

    cluster.kill9(3);
    let wal = cluster.data_dir(3).join("wal");
    for segment in std::fs::read_dir(&wal).expect("node 3's WAL directory") {
        std::fs::remove_file(segment.expect("a segment").path()).expect("delete a segment");
    }
    cluster.restart(3);
    let said = ["the Raft log is gone", "move its data directory aside"];
    exits_saying(&mut cluster, 3, REFUSE_WITHIN, &said).await;

    let data = cluster.data_dir(3);
    std::fs::rename(&data, data.with_extension("lost")).expect("move the data aside");
    node_3_rejoins_with_every_write(&mut cluster, &record, 20).await;
}

/// Waits until node `id` exits by itself, with an error, its log saying each of `said`.
async fn exits_saying(cluster: &mut Cluster, id: u64, within: Duration, said: &[&str]) {
    let status = cluster.wait_exit(id, within).await;
    let status = status.unwrap_or_else(|| panic!("node {id} exits by itself within {within:?}"));
    assert!(!status.success(), "node {id} exits with an error");
    let log = cluster.log_text(id);
    assert!(
        said.iter().all(|words| log.contains(words)),
        "node {id} says {said:?}: {}",
        cluster.log_tail(id, 5)
    );
}

/// Restarts node 3 on what its data directory holds now; once it votes again, every
/// acknowledged write of `record` (`count` of them) reads back with node 1 down.
async fn node_3_rejoins_with_every_write(
    cluster: &mut Cluster,
    record: &AckedWrites,
    count: usize,
) {
    cluster.restart(3);
    wait_votes(cluster, 3).await;
    cluster.kill9(1);
    let via_2_3 = cluster.client_via(&[2, 3]).await;
    assert_eq!(record.verify(&via_2_3, VERIFY_WITHIN).await, count);
}

/// How long a node may take to notice its data directory gone (checked every 0.5 s).
const NOTICE_WITHIN: Duration = Duration::from_secs(10);

/// A data directory deleted under a running node stops it, as PostgreSQL stops when its lock
/// file goes: it would otherwise go on acknowledging writes into files that no longer have a
/// name, all gone at its next start. The others go on; restarted, it catches up under its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_data_directory_is_deleted_under_it_stops_and_rejoins_on_an_empty_one() {
    let mut cluster = Cluster::start().await;
    let mut record = AckedWrites::new();
    let client = cluster.client().await;
    write_keys(&mut record, &client, &spread("before", 20), "v1").await;

    std::fs::remove_dir_all(cluster.data_dir(3)).expect("delete node 3's data directory");
    let said = ["was deleted, moved or replaced while the node ran", "node.redb is gone"];
    exits_saying(&mut cluster, 3, NOTICE_WITHIN, &said).await;
    write_keys(&mut record, &client, &spread("after", 20), "v2").await;

    node_3_rejoins_with_every_write(&mut cluster, &record, 40).await;
}

/// A new cluster of three whose third node has not started yet elects no leader (each fresh
/// replica waits for both others before it votes: it might be a node whose disk was lost),
/// and forms as soon as the third starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_cluster_forms_only_once_every_node_has_started() {
    let mut cluster = Cluster::builder().held(3).spawn();
    until_serving(&cluster, &[1, 2]).await;
    let until = Instant::now() + WATCH_FOR;
    while Instant::now() < until {
        let statuses = cluster.statuses().await;
        for id in [1, 2] {
            let status = statuses[&id].as_ref().expect("a running node's STATUS");
            for (shard, replica) in &status.shards {
                assert!(
                    replica.votes_withheld && replica.role != "leader",
                    "node {id} voted or leads s{shard} with node 3 never started: {}",
                    status.text
                );
            }
        }
        tokio::time::sleep(e2e::poll::POLL_PERIOD).await;
    }
    cluster.launch_held(3);
    cluster.wait_ready().await;
    let client = cluster.client().await;
    client.put("formed", "yes").await.expect("a write once the cluster formed");
    let read = client.get("formed").await.expect("a read");
    assert_eq!(read.as_deref(), Some(&b"yes"[..]));
}
