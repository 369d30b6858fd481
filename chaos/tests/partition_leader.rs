//! The simulation seam, proven: three real nodes in turmoil; the leader of a shard is
//! partitioned away; writes continue on the majority; after healing, the old leader catches up
//! and every replica of the shard holds the same state (equal digests at the same applied index).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use chaos::inspect::inspect;
use chaos::inspect::wait_converged;
use chaos::sim::cluster::ClusterSpec;
use chaos::sim::cluster::SimCluster;
use chaos::sim::cluster::node_addr;
use chaos::sim::net::SimConnector;
use client::Client;
use txn::types::ShardId;

/// Shard 0 holds keys starting with 0-9 and A-E.
const SHARD: ShardId = ShardId(0);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Warming,
    CutLeader(u64),
    Cut,
    Heal,
    Healed,
}

async fn put_until_ok(client: &Client, key: &str, value: &str) {
    for _ in 0..200 {
        match client.put(key, value).await {
            Ok(()) => return,
            Err(error) => {
                tracing::info!(key, %error, "put failed, retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    panic!("put {key} never succeeded");
}

async fn leader_of(addrs: &[String]) -> Option<u64> {
    for addr in addrs {
        if let Ok(inspection) = inspect(addr, SHARD).await
            && inspection.leading
        {
            return addr.strip_prefix('n')?.split(':').next()?.parse().ok();
        }
    }
    None
}

#[test]
fn writes_continue_on_the_majority_and_the_old_leader_converges() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let mut cluster = SimCluster::new(ClusterSpec::new(7, 3));
    let addrs = cluster.addrs();
    let phase = Rc::new(Cell::new(Phase::Warming));
    let client_phase = phase.clone();
    cluster.client("client", async move {
        let client =
            Client::connect_options(&addrs, Arc::new(SimConnector), 1, Duration::from_secs(10))
                .await?;
        for i in 0..10 {
            put_until_ok(&client, &format!("0before{i}"), "x").await;
        }
        let leader = loop {
            if let Some(leader) = leader_of(&addrs).await {
                break leader;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        client_phase.set(Phase::CutLeader(leader));
        while client_phase.get() != Phase::Cut {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let majority: Vec<String> = (1..=3).filter(|id| *id != leader).map(node_addr).collect();
        let client =
            Client::connect_options(&majority, Arc::new(SimConnector), 2, Duration::from_secs(10))
                .await?;
        for i in 0..20 {
            put_until_ok(&client, &format!("0during{i}"), "y").await;
        }
        let new_leader = leader_of(&majority).await;
        assert!(
            new_leader.is_some_and(|l| l != leader),
            "the majority elected a new leader: {new_leader:?}"
        );
        client_phase.set(Phase::Heal);
        while client_phase.get() != Phase::Healed {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Convergence: every replica at the same applied index with the same digest.
        let all: Vec<String> = (1..=3).map(node_addr).collect();
        let converged = wait_converged(&all, SHARD).await;
        assert!(converged, "the replicas of {SHARD} converged after healing");
        // Every acknowledged write reads back, through the old leader's node too.
        let via_old = Client::connect_options(
            &[node_addr(leader)],
            Arc::new(SimConnector),
            3,
            Duration::from_secs(10),
        )
        .await?;
        for i in 0..20 {
            let key = format!("0during{i}");
            let mut value = None;
            for _ in 0..50 {
                if let Ok(found) = via_old.get(&key).await {
                    value = found;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(value.as_deref(), Some(&b"y"[..]), "{key}");
        }
        Ok(())
    });
    loop {
        match phase.get() {
            Phase::CutLeader(leader) => {
                let others: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
                cluster.partition(&[leader], &others);
                phase.set(Phase::Cut);
            }
            Phase::Heal => {
                cluster.heal();
                phase.set(Phase::Healed);
            }
            _ => {}
        }
        if cluster.step() {
            break;
        }
    }
}
