//! Bad input over the Peer API (what a node of another build, or a tool, might send): a request
//! that names a shard the cluster does not have is refused, and the node serves on. Until
//! 2026-12-06 a node answering such a request for a shard it did not replicate panicked (its
//! leader guess indexed the shard map), which stops kvd: one stray request took a node down.
//!
//! A frame whose sender's clock is further ahead than any node's could be
//! (`server::clock::PEER_CLOCK_AHEAD_MAX_MS`) is refused and moves no clock. Until 2026-12-07
//! a node adopted it: from `u64::MAX` its next reading overflowed under the clock's lock, and
//! the node panicked. So are the timestamps a request's body carries for the clock to adopt
//! or to write versions at (a commit at home's largest vote, a committed decision's timestamp).
//!
//! Requests that no correct node sends and that a replica would have applied as they came are
//! refused before anything runs (since 2026-12-07, found by a review): a prepare whose writes
//! name a key twice (its second version failed an assertion of the apply, on every replica and
//! at every replay), a `Decide` of COMMITTED, waits longer than any period (their deadlines
//! overflowed), a deadlock confirmation that is not a cycle (an assertion under the shard's
//! state lock poisoned it), a deadlock probe that is not a wait-for path (an empty one stopped
//! the node it reached as a coordinator: found by a review, 2026-12-07). And a `Finish` of an
//! ABORTED record changes nothing (it failed an assertion of the apply).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use chaos::inspect::call;
use chaos::inspect::call_with_clock;
use chaos::inspect::inspect;
use chaos::inspect::prepare_of;
use chaos::sim::cluster::ClusterSpec;
use chaos::sim::cluster::SimCluster;
use chaos::sim::cluster::node_addr;
use chaos::sim::net::SimConnector;
use client::Client;
use server::clock::PEER_CLOCK_AHEAD_MAX_MS;
use server::peer::message::PeerReply;
use server::peer::message::PeerRequest;
use server::peer::message::PrepareRequest;
use server::peer::message::SnapshotAt;
use server::peer::message::SnapshotOp;
use txn::command::AbortReason;
use txn::command::Decision;
use txn::command::Write;
use txn::deadlock::Confirmation;
use txn::deadlock::Deadlock;
use txn::deadlock::Probe;

use txn::types::ShardId;
use txn::types::Timestamp;
use txn::types::TxnId;

/// A shard the simulated cluster (4 shards) does not have.
const NO_SUCH_SHARD: ShardId = ShardId(9);

/// Runs `bad_input` in a fresh simulated cluster (seed `seed`) between two writes through a
/// client, which it is given and gives back; then checks that the cluster still serves.
fn serves_on_after<F, Fut>(seed: u64, bad_input: F)
where
    F: FnOnce(Client) -> Fut + 'static,
    Fut: std::future::Future<Output = turmoil::Result<Client>> + 'static,
{
    let mut cluster = SimCluster::new(ClusterSpec::new(seed, 3));
    let addrs = cluster.addrs();
    let done = Rc::new(Cell::new(false));
    let client_done = done.clone();
    cluster.client("tool", async move {
        let client =
            Client::connect_options(&addrs, Arc::new(SimConnector), 1, Duration::from_secs(10))
                .await?;
        client.put("key", "before").await?;
        let client = bad_input(client).await?;
        client.put("key", "after").await?;
        assert_eq!(client.get("key").await?.as_deref(), Some(&b"after"[..]));
        client_done.set(true);
        Ok(())
    });
    cluster.run_until(|| done.get());
    assert!(done.get(), "the tool finished");
}

#[test]
fn a_request_for_a_shard_the_cluster_does_not_have_is_refused() {
    serves_on_after(5, |client| async move {
        for id in 1..=3 {
            match inspect(&node_addr(id), NO_SUCH_SHARD).await {
                Err(why) => assert!(why.contains("the cluster has no s9"), "node {id}: {why}"),
                Ok(inspection) => panic!("node {id} inspected {NO_SUCH_SHARD}: {inspection:?}"),
            }
        }
        Ok(client)
    });
}

#[test]
fn a_frame_with_a_clock_from_the_future_is_refused_and_moves_no_clock() {
    serves_on_after(6, |client| async move {
        let node = node_addr(1);
        let inspect_request = || PeerRequest::Inspect { shard: ShardId(0) };
        let now = call(&node, inspect_request()).await?.clock;
        let too_far = Timestamp::new(now.physical_ms() + PEER_CLOCK_AHEAD_MAX_MS + 60_000, 0);
        for clock in [Timestamp(u64::MAX), too_far] {
            match call_with_clock(&node, clock, inspect_request()).await {
                Err(why) => assert!(why.contains("ahead of this node's"), "{clock}: {why}"),
                Ok(reply) => panic!("a frame with the clock {clock} answered {reply:?}"),
            }
        }
        // Nor in a request's body: a commit at home whose votes' largest timestamp, or a
        // phase 2 whose commit timestamp, is that far ahead (refused before anything runs).
        let txn = TxnId { start_ts: now, coordinator: 1, incarnation: u64::MAX, seq: 1 };
        let write = Write { key: b"0far".to_vec(), value: Some(b"v".to_vec()) };
        let request = prepare_of(ShardId(0), txn, ShardId(0), vec![write]);
        let decision = Decision::Committed { commit_ts: Timestamp(u64::MAX) };
        for body in [
            PeerRequest::CommitAtHome { request, after: Timestamp(u64::MAX) },
            PeerRequest::Finalize { shard: ShardId(0), txn, decision, prepared: true },
        ] {
            match call(&node, body).await?.body {
                PeerReply::Invalid(why) => assert!(why.contains("ahead of this node's"), "{why}"),
                other => panic!("a body with a timestamp from the future answered {other:?}"),
            }
        }
        // Within the limit (a peer whose clock runs ahead), it is taken.
        let ahead = Timestamp::new(now.physical_ms() + 60_000, 0);
        let later = call_with_clock(&node, ahead, inspect_request()).await?.clock;
        assert!(later > ahead, "the clock {later} moved past the peer's {ahead}");
        assert!(later < too_far, "the refused clocks moved nothing: {later}");
        Ok(client)
    });
}

#[test]
fn requests_no_correct_node_sends_are_refused_and_the_shards_serve_on() {
    serves_on_after(7, |client| async move {
        let node = node_addr(1);
        let now = call(&node, PeerRequest::Inspect { shard: ShardId(0) }).await?.clock;
        let txn = TxnId { start_ts: now, coordinator: 1, incarnation: u64::MAX, seq: 7 };
        let write = |value: &[u8]| Write { key: b"0twice".to_vec(), value: Some(value.to_vec()) };
        let prepare = |writes: Vec<Write>, wait_ms: u64| PrepareRequest {
            wait_ms,
            ..prepare_of(ShardId(0), txn, ShardId(0), writes)
        };
        let empty = Deadlock { cycle: Vec::new() };
        let refused = [
            (PeerRequest::CommitOnePhase(prepare(vec![write(b"a"), write(b"b")], 1_000)), "twice"),
            (PeerRequest::Prepare(prepare(vec![write(b"a")], u64::MAX)), "longer than any"),
            (
                PeerRequest::SnapshotRead {
                    shard: ShardId(0),
                    at: SnapshotAt::AtLeast(Timestamp::ZERO),
                    op: SnapshotOp::Read { key: b"0twice".to_vec() },
                    wait_ms: u64::MAX,
                },
                "longer than any",
            ),
            (
                PeerRequest::Decide {
                    shard: ShardId(0),
                    txn,
                    decision: Decision::Committed { commit_ts: now },
                    one_phase: false,
                },
                "ABORTED only",
            ),
            (
                PeerRequest::Confirm {
                    shard: ShardId(0),
                    confirmation: Confirmation { deadlock: empty, confirmed: 0 },
                },
                "not a deadlock cycle",
            ),
            // An empty probe, to a coordinator (it read the last holder of none and panicked)
            // and to a shard.
            (PeerRequest::ProbeTxn { probe: Probe { edges: Vec::new() } }, "not a wait-for path"),
            (
                PeerRequest::ProbeShard { shard: ShardId(0), probe: Probe { edges: Vec::new() } },
                "not a wait-for path",
            ),
        ];
        for (request, needle) in refused {
            let what = format!("{request:?}");
            match call(&node, request).await?.body {
                PeerReply::Invalid(why) => assert!(why.contains(needle), "{what}: {why}"),
                other => panic!("{what} answered {other:?}"),
            }
        }
        // A Finish of an ABORTED record, at the record's leader: applied, it changes nothing.
        let aborted = Decision::Aborted { reason: AbortReason::User };
        let mut finished = 0;
        for id in 1..=3 {
            let decide =
                PeerRequest::Decide { shard: ShardId(0), txn, decision: aborted, one_phase: false };
            if let PeerReply::Decided(decision) = call(&node_addr(id), decide).await?.body {
                assert_eq!(decision, aborted);
                let finish = PeerRequest::Finish { shard: ShardId(0), txn };
                let reply = call(&node_addr(id), finish).await?.body;
                assert!(matches!(reply, PeerReply::Done), "{reply:?}");
                finished += 1;
            }
        }
        // The record's leader decided it (the loop could pass without sending a Finish).
        assert!(finished >= 1, "no node decided the record");
        // Applied with the leader's next close (an idle shard closes every 250 ms: a second of
        // simulated time holds several); the shard serves on (as do the others).
        tokio::time::sleep(Duration::from_secs(1)).await;
        for round in 0..3 {
            let key = format!("0after{round}");
            client.put(&key, "v").await?;
            assert_eq!(client.get(&key).await?.as_deref(), Some(&b"v"[..]));
        }
        Ok(client)
    });
}
