//! A lost disk in the simulation, the scenario of openraft's FAQ: node 2 misses writes that
//! nodes 1 and 3 acknowledge, node 3 loses its data directory and comes back empty under its
//! id, node 1 is down. Nodes 2 and 3 must not serve a state without those writes (node 3
//! withholds its votes until it has caught up: `replication::vote_gate`); once node 1 is back,
//! every acknowledged write reads back and every replica converges. The same on real processes
//! is `tests/tests/lost_disk.rs`.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use chaos::inspect::wait_converged;
use chaos::sim::cluster::ClusterSpec;
use chaos::sim::cluster::SimCluster;
use chaos::sim::cluster::node_addr;
use chaos::sim::net::SimConnector;
use client::Client;
use txn::types::ShardId;

/// A key prefix per shard of the default 4-shard map.
const PREFIXES: [&str; 4] = ["A", "G", "W", "k"];
/// How long stale node 2 and emptied node 3 are watched for serving a read without the writes.
const WATCH_FOR: Duration = Duration::from_secs(4);
/// How long one read of that watch may take.
const READ_TIMEOUT: Duration = Duration::from_millis(500);

/// What the client asks of the driver, and the driver's answer (the next step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Writing,
    CrashNode2,
    Node2Down,
    LoseNode3AndCrashNode1,
    StaleAndEmptyUp,
    RestartNode1,
    AllUp,
}

fn keys(tag: &str) -> Vec<String> {
    (0..12).map(|i| format!("{}{tag}{i:02}", PREFIXES[i % PREFIXES.len()])).collect()
}

async fn put_until_ok(client: &Client, key: &str) {
    for _ in 0..300 {
        if client.put(key, key).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("put {key} never succeeded");
}

async fn wait_for(step: &Cell<Step>, want: Step) {
    while step.get() != want {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn a_stale_node_and_an_emptied_one_serve_nothing_until_the_third_is_back() {
    let mut cluster = SimCluster::new(ClusterSpec::new(21, 3));
    let addrs = cluster.addrs();
    let step = Rc::new(Cell::new(Step::Writing));
    let done = Rc::new(Cell::new(false));
    let (client_step, client_done) = (step.clone(), done.clone());
    cluster.client("client", async move {
        let client =
            Client::connect_options(&addrs, Arc::new(SimConnector), 1, Duration::from_secs(10))
                .await?;
        for key in keys("before") {
            put_until_ok(&client, &key).await;
        }
        client_step.set(Step::CrashNode2);
        wait_for(&client_step, Step::Node2Down).await;
        let missed = keys("missed");
        for key in &missed {
            put_until_ok(&client, key).await;
        }
        client_step.set(Step::LoseNode3AndCrashNode1);
        wait_for(&client_step, Step::StaleAndEmptyUp).await;

        let until = tokio::time::Instant::now() + WATCH_FOR;
        while tokio::time::Instant::now() < until {
            for key in &missed {
                if let Ok(Ok(value)) = tokio::time::timeout(READ_TIMEOUT, client.get(key)).await {
                    assert_eq!(
                        value.as_deref(),
                        Some(key.as_bytes()),
                        "nodes 2 and 3 served {key} without the write nodes 1 and 3 acknowledged"
                    );
                }
            }
        }

        client_step.set(Step::RestartNode1);
        wait_for(&client_step, Step::AllUp).await;
        for key in keys("before").iter().chain(&missed) {
            let mut value = None;
            for _ in 0..300 {
                if let Ok(found) = client.get(key).await {
                    value = found;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(value.as_deref(), Some(key.as_bytes()), "{key} reads back");
        }
        // The emptied replica converges on every shard.
        let all: Vec<String> = (1..=3).map(node_addr).collect();
        for shard in 0..4 {
            let converged = wait_converged(&all, ShardId(shard)).await;
            assert!(converged, "the replicas of s{shard} converged");
        }
        client_done.set(true);
        Ok(())
    });
    while !done.get() {
        match step.get() {
            Step::CrashNode2 => {
                cluster.crash(2);
                step.set(Step::Node2Down);
            }
            Step::LoseNode3AndCrashNode1 => {
                cluster.lose_disk(3);
                cluster.crash(1);
                cluster.restart(2);
                cluster.restart(3);
                step.set(Step::StaleAndEmptyUp);
            }
            Step::RestartNode1 => {
                cluster.restart(1);
                step.set(Step::AllUp);
            }
            _ => {}
        }
        match cluster.sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(error) => panic!("simulation failed: {error}"),
        }
    }
    assert!(done.get(), "the client finished");
}
