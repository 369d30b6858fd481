//! Bad input over the Peer API (what a node of another build, or a tool, might send): a request
//! that names a shard the cluster does not have is refused, and the node serves on. Until
//! 2026-12-06 a node answering such a request for a shard it did not replicate panicked (its
//! leader guess indexed the shard map), which stops kvd: one stray request took a node down.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use chaos::inspect::inspect;
use chaos::sim::cluster::ClusterSpec;
use chaos::sim::cluster::SimCluster;
use chaos::sim::cluster::node_addr;
use chaos::sim::net::SimConnector;
use client::Client;
use txn::types::ShardId;

/// A shard the simulated cluster (4 shards) does not have.
const NO_SUCH_SHARD: ShardId = ShardId(9);

#[test]
fn a_request_for_a_shard_the_cluster_does_not_have_is_refused() {
    let mut cluster = SimCluster::new(ClusterSpec::new(5, 3));
    let addrs = cluster.addrs();
    let done = Rc::new(Cell::new(false));
    let client_done = done.clone();
    cluster.client("tool", async move {
        let client =
            Client::connect_options(&addrs, Arc::new(SimConnector), 1, Duration::from_secs(10))
                .await?;
        client.put("key", "before").await?;
        for id in 1..=3 {
            match inspect(&node_addr(id), NO_SUCH_SHARD).await {
                Err(why) => assert!(why.contains("the cluster has no s9"), "node {id}: {why}"),
                Ok(inspection) => panic!("node {id} inspected {NO_SUCH_SHARD}: {inspection:?}"),
            }
        }
        client.put("key", "after").await?;
        assert_eq!(client.get("key").await?.as_deref(), Some(&b"after"[..]));
        client_done.set(true);
        Ok(())
    });
    cluster.run_until(|| done.get());
    assert!(done.get(), "the tool finished");
}
