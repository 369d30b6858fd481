//! Asking a node about its replicas over the internal Peer API (from a simulated client host):
//! applied index, state digest, prepared transactions and lock holders, for the convergence
//! and leak checks after healing.

use std::time::Duration;

use client::connector::Connector;
use proto::peer::Kind;
use proto::peer::peer_client::PeerClient;
use replication::codec;
use replication::handshake::Handshake;
use replication::mux::PeerMux;
use server::peer::message::Envelope;
use server::peer::message::Inspection;
use server::peer::message::PeerReply;
use server::peer::message::PeerRequest;
use server::peer::message::PrepareRequest;
use txn::command::Write;
use txn::types::ShardId;
use txn::types::Timestamp;
use txn::types::TxnId;

use crate::sim::net::SimConnector;

/// A prepare of `txn`'s `writes` at `shard` (its record at `home`) that takes their locks
/// itself, as the writes sent with END do: no statement locks, a second of lock wait. Tests
/// playing the coordinator change the rest with struct update syntax.
pub fn prepare_of(shard: ShardId, txn: TxnId, home: ShardId, writes: Vec<Write>) -> PrepareRequest {
    let mut acquire: Vec<Vec<u8>> = Vec::new();
    for write in &writes {
        if !acquire.contains(&write.key) {
            acquire.push(write.key.clone());
        }
    }
    PrepareRequest {
        shard,
        txn,
        home,
        lock_term: None,
        acquire,
        wait_ms: 1_000,
        writes,
        release_shared: true,
        locks: Vec::new(),
    }
}

/// Deadline of one inspection call.
pub const INSPECT_DEADLINE: Duration = Duration::from_secs(2);

/// The state of `addr`'s replica of `shard`, or why not.
pub async fn inspect(addr: &str, shard: ShardId) -> Result<Inspection, String> {
    match call(addr, PeerRequest::Inspect { shard }).await?.body {
        PeerReply::Inspected(inspection) => Ok(inspection),
        other => Err(format!("{addr} answered {other:?}")),
    }
}

/// Sends one Peer API request to `addr` as a node would (also for tests that play a
/// coordinator), and returns the reply with the sender's clock.
pub async fn call(addr: &str, request: PeerRequest) -> Result<Envelope<PeerReply>, String> {
    call_with_clock(addr, Timestamp::ZERO, request).await
}

/// [`call`], with `clock` as the sender's clock on the envelope.
pub async fn call_with_clock(
    addr: &str,
    clock: Timestamp,
    request: PeerRequest,
) -> Result<Envelope<PeerReply>, String> {
    // A tool, not a node: no handshake headers, so nothing is checked.
    let client = PeerClient::with_interceptor(SimConnector.channel(addr), Handshake::tool());
    let mux = PeerMux::new(client);
    let payload = codec::encode(&Envelope { clock, body: request });
    let response = mux
        .call(Kind::Call, 0, payload.into(), INSPECT_DEADLINE)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    codec::decode(&response).map_err(|e| e.to_string())
}

/// How often [`wait_settled`] looks again, and how many times (a minute).
pub const SETTLE_POLL: Duration = Duration::from_millis(100);
/// See [`SETTLE_POLL`].
pub const SETTLE_ATTEMPTS: usize = 600;

/// Waits until each of the `shards` shards of a cluster of nodes 1..=`nodes` is led by its
/// preferred replica, ready: the start-up elections and the handovers to the preferred
/// replicas (`server::participant::shard::HANDOVER_AFTER` after the first leader is ready) are
/// over. Awaited, not assumed after a fixed time: every replica starts quiet for an election
/// timeout (`replication::vote_gate`), so when the elections end varies.
pub async fn wait_settled(nodes: u64, shards: u32) -> Result<(), String> {
    let topology = sim_topology(nodes, shards);
    for shard in topology.shards() {
        let preferred = topology.replicas(shard)[0];
        let addr = crate::sim::cluster::node_addr(preferred);
        let mut attempts = 0;
        while !inspect(&addr, shard).await.is_ok_and(|inspection| inspection.leading) {
            attempts += 1;
            if attempts == SETTLE_ATTEMPTS {
                return Err(format!("node {preferred} never led {shard}"));
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }
    Ok(())
}

/// The node that leads `shard` of a cluster of nodes 1..=`nodes` once [`wait_settled`]
/// returns: the shard's preferred replica.
pub fn preferred_leader(nodes: u64, shards: u32, shard: ShardId) -> u64 {
    sim_topology(nodes, shards).replicas(shard)[0]
}

/// The topology of a simulated cluster of nodes 1..=`nodes` with `shards` shards.
fn sim_topology(nodes: u64, shards: u32) -> server::topology::Topology {
    let addrs = (1..=nodes).map(|id| (id, crate::sim::cluster::node_addr(id))).collect();
    server::topology::Topology::new(addrs, shards)
}

/// How often [`wait_converged`] looks again, and how many times.
pub const CONVERGE_POLL: Duration = Duration::from_millis(100);
/// See [`CONVERGE_POLL`].
pub const CONVERGE_ATTEMPTS: usize = 300;

/// Waits (at most [`CONVERGE_ATTEMPTS`] looks) until every replica of `shard` at `addrs`
/// answers with the same applied index and digest; false if they never do.
pub async fn wait_converged(addrs: &[String], shard: ShardId) -> bool {
    for _ in 0..CONVERGE_ATTEMPTS {
        let mut states = Vec::new();
        for addr in addrs {
            states.push(inspect(addr, shard).await);
        }
        let states: Vec<_> = states.into_iter().filter_map(Result::ok).collect();
        if states.len() == addrs.len()
            && states.windows(2).all(|w| w[0].applied == w[1].applied && w[0].digest == w[1].digest)
        {
            return true;
        }
        tokio::time::sleep(CONVERGE_POLL).await;
    }
    false
}
