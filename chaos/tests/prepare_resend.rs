//! A prepare delivered again after its first delivery prepared (`Peers::call_shard` resends a
//! call whose stream broke, and the first delivery may have arrived): the participant answers
//! the vote in its log again, not NO. The first delivery released the shared lock of the
//! transaction's READ at its vote, so the resend's check of held locks fails; without
//! `Shard::vote_again` the transaction would abort with COORDINATOR_LOST for nothing.
//!
//! The test plays the coordinator over the Peer API: a READ's shared lock, then the same
//! prepare twice, one after the other.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use chaos::inspect::call;
use chaos::inspect::inspect;
use chaos::sim::cluster::ClusterSpec;
use chaos::sim::cluster::SimCluster;
use chaos::sim::cluster::node_addr;
use server::peer::message::LockOp;
use server::peer::message::LockRequest;
use server::peer::message::PeerReply;
use server::peer::message::PeerRequest;
use server::peer::message::PrepareRequest;
use txn::command::Write;
use txn::lock::LockMode;
use txn::lock::LockSpan;
use txn::types::ShardId;
use txn::types::TxnId;

/// Shard 0 holds keys starting with 0-9 and A-E.
const SHARD: ShardId = ShardId(0);
/// The transaction's home (another shard: shard 0 only votes).
const HOME: ShardId = ShardId(1);

#[test]
fn a_prepare_delivered_again_after_it_prepared_answers_the_same_vote() {
    let mut cluster = SimCluster::new(ClusterSpec::new(12, 3));
    let done = Rc::new(Cell::new(false));
    let client_done = done.clone();
    cluster.client("coordinator", async move {
        // Past the start-up elections and the preferred leader's handover (3 s).
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut leader = None;
        for id in 1..=3 {
            if inspect(&node_addr(id), SHARD).await?.leading {
                leader = Some(node_addr(id));
            }
        }
        let leader = leader.expect("shard 0 has a leader");
        let now = call(&leader, PeerRequest::Inspect { shard: SHARD }).await?.clock;
        let txn = TxnId { start_ts: now, coordinator: 1, incarnation: u64::MAX, seq: 1 };

        let read = LockOp::Read { key: b"0read".to_vec(), for_update: false };
        let lock = LockRequest { shard: SHARD, txn, lock_term: None, op: read };
        let term = match call(&leader, PeerRequest::Lock(lock)).await?.body {
            PeerReply::Locked { term, .. } => term,
            other => panic!("READ answered {other:?}"),
        };
        let write = Write { key: b"0write".to_vec(), value: Some(b"v".to_vec()) };
        let prepare = PrepareRequest {
            shard: SHARD,
            txn,
            home: HOME,
            lock_term: Some(term),
            acquire: vec![write.key.clone()],
            wait_ms: 1_000,
            writes: vec![write],
            release_shared: true,
            locks: vec![(LockSpan::Key(b"0read".to_vec()), LockMode::Shared)],
        };
        let first = call(&leader, PeerRequest::Prepare(prepare.clone())).await?.body;
        let PeerReply::Voted { prepare_ts: Some(prepare_ts) } = first else {
            panic!("the first delivery answered {first:?}");
        };
        let again = call(&leader, PeerRequest::Prepare(prepare)).await?.body;
        assert!(
            matches!(again, PeerReply::Voted { prepare_ts: Some(ts) } if ts == prepare_ts),
            "the second delivery answered {again:?}, not the vote {prepare_ts}"
        );
        client_done.set(true);
        Ok(())
    });
    while !done.get() {
        match cluster.sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(error) => panic!("simulation failed: {error}"),
        }
    }
    assert!(done.get(), "the coordinator finished");
}
