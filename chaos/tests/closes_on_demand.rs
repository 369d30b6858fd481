//! Closes on demand (`server::participant::close_demand`), in simulated time: an idle shard's
//! leader replicates a `Close` only every `close_idle_interval_ms`, and while a follower serves
//! causal reads it closes every `close_interval_ms`. The count of entries a follower applies
//! over two simulated seconds tells the two apart (about 8 against about 200 with the defaults);
//! either half fails if the follower's ask or the leader's idle period breaks.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use chaos::inspect::inspect;
use chaos::sim::cluster::ClusterSpec;
use chaos::sim::cluster::SimCluster;
use chaos::sim::cluster::node_addr;
use chaos::sim::cluster::sim_timing;
use chaos::sim::net::SimConnector;
use client::Client;
use client::Consistency;
use txn::types::ShardId;

/// Shard 0 holds keys starting with 0-9 and A-E.
const SHARD: ShardId = ShardId(0);
/// How long each phase is watched.
const WINDOW: Duration = Duration::from_secs(2);

async fn applied(addr: &str) -> u64 {
    inspect(addr, SHARD).await.unwrap_or_else(|e| panic!("inspect {addr}: {e}")).applied
}

#[test]
fn an_idle_shard_closes_slowly_and_a_causally_read_one_closes_at_every_tick() {
    let timing = sim_timing();
    let fast = WINDOW.as_millis() as u64 / timing.close_interval_ms;
    let idle = WINDOW.as_millis() as u64 / timing.close_idle_interval_ms;
    assert!(idle * 5 < fast, "the test needs the two periods far apart");
    let mut cluster = SimCluster::new(ClusterSpec::new(11, 3));
    let addrs = cluster.addrs();
    let done = Rc::new(Cell::new(false));
    let client_done = done.clone();
    cluster.client("client", async move {
        let client =
            Client::connect_options(&addrs, Arc::new(SimConnector), 1, Duration::from_secs(10))
                .await?;
        chaos::inspect::wait_settled(3, chaos::sim::cluster::SHARDS).await?;
        client.put("0key", "v").await?;
        let mut follower = None;
        for id in 1..=3 {
            if !inspect(&node_addr(id), SHARD).await?.leading {
                follower = Some(id);
            }
        }
        let follower = node_addr(follower.expect("shard 0 has a follower"));

        // Idle: no reads, no writes.
        let before = applied(&follower).await;
        tokio::time::sleep(WINDOW).await;
        let idle_entries = applied(&follower).await - before;
        assert!(
            idle_entries <= idle + 4,
            "an idle shard applied {idle_entries} entries in {WINDOW:?} (closes every {} ms \
             would be about {idle})",
            timing.close_idle_interval_ms
        );

        // Causal reads served by the follower.
        let reader = Client::connect_options(
            std::slice::from_ref(&follower),
            Arc::new(SimConnector),
            2,
            Duration::from_secs(10),
        )
        .await?;
        reader.set_consistency(Consistency::Causal);
        let until = tokio::time::Instant::now() + WINDOW;
        let before = applied(&follower).await;
        let mut reads = 0;
        while tokio::time::Instant::now() < until {
            assert_eq!(reader.get("0key").await?.as_deref(), Some(&b"v"[..]));
            reads += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let read_entries = applied(&follower).await - before;
        assert!(
            read_entries >= fast / 2,
            "while causally read ({reads} reads), the shard applied only {read_entries} entries in \
             {WINDOW:?} (closes every {} ms would be about {fast})",
            timing.close_interval_ms
        );
        client_done.set(true);
        Ok(())
    });
    cluster.run_until(|| done.get());
    assert!(done.get(), "the client finished");
}
