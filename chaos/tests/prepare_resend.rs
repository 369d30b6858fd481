//! A prepare delivered again after its first delivery prepared (`Peers::call_shard` resends a
//! call whose stream broke, and the first delivery may have arrived): the participant answers
//! the vote in its log again, not NO. The first delivery released the shared lock of the
//! transaction's READ at its vote, so the resend's check of held locks fails; without
//! `Shard::vote_again` the transaction would abort with COORDINATOR_LOST for nothing.
//!
//! And a delivery that comes after its transaction ended at the participant (phase 2 applied,
//! its commit at home applied, its locks released, or its read-only vote given) is refused: it would take locks, or prepare the transaction again,
//! with nothing left to end them soon (`LeaderState::ended`).
//!
//! And a one-statement WRITE delivered again while its first delivery waits for the lock: the
//! second takes the wait over, and the first answers that the outcome is open (UNAVAILABLE),
//! never ABORTED, since the second goes on and commits (`WaitEnd::Superseded`). Delivered again
//! after it committed and its transaction was finished there, it answers COMMITTED from the
//! record (`Shard::outcome_of_single`), and so it does when the copy waits behind a later holder
//! of the key and its wait fails (`Shard::refused_single_write`). Answered ABORTED because its
//! leader lost the shard, it is not committed by a copy that arrives after the same node leads
//! again (`EndedTxns`), nor by a copy that arrives at the next leader (the refusal is settled
//! in the shard's record: `Shard::settle_refused`).
//!
//! The tests play the coordinator over the Peer API.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use chaos::inspect::call;
use chaos::inspect::inspect;
use chaos::inspect::prepare_of;
use chaos::sim::cluster::ClusterSpec;
use chaos::sim::cluster::SimCluster;
use chaos::sim::cluster::node_addr;
use chaos::sim::net::SimConnector;
use client::Client;
use server::peer::message::LockOp;
use server::peer::message::LockRequest;
use server::peer::message::PeerReply;
use server::peer::message::PeerRequest;
use server::peer::message::PrepareRequest;
use server::peer::message::SingleOp;
use txn::command::Decision;
use txn::command::Write;
use txn::lock::LockMode;
use txn::lock::LockSpan;
use txn::types::ShardId;
use txn::types::TxnId;

/// Shard 0 holds keys starting with 0-9 and A-E.
const SHARD: ShardId = ShardId(0);
/// The transaction's home (another shard: shard 0 only votes).
const HOME: ShardId = ShardId(1);
/// The deadline of a client's calls.
const DEADLINE: Duration = Duration::from_secs(10);

/// Runs `coordinator` (given shard 0's leader) in a fresh simulated cluster to the end.
fn with_leader<F, Fut>(seed: u64, coordinator: F)
where
    F: FnOnce(String) -> Fut + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + 'static,
{
    let mut cluster = SimCluster::new(ClusterSpec::new(seed, 3));
    let done = Rc::new(Cell::new(false));
    let client_done = done.clone();
    cluster.client("coordinator", async move {
        coordinator(node_addr(settled_leader().await?)).await?;
        client_done.set(true);
        Ok(())
    });
    cluster.run_until(|| done.get());
    assert!(done.get(), "the coordinator finished");
}

/// The node that leads shard 0 once the start-up elections and the preferred leaders'
/// handovers are over: its preferred replica.
async fn settled_leader() -> Result<u64, String> {
    let shards = chaos::sim::cluster::SHARDS;
    chaos::inspect::wait_settled(3, shards).await?;
    Ok(chaos::inspect::preferred_leader(3, shards, SHARD))
}

/// A running transaction holding `key` exclusively (READ FOR UPDATE). Its coordinator
/// answers for it, so no holder check evicts it; it holds the key while the result lives.
async fn running_holder(
    addrs: &[String],
    key: &[u8],
) -> Result<(Client, client::Transaction), String> {
    let client = Client::connect_options(addrs, Arc::new(SimConnector), 1, DEADLINE)
        .await
        .map_err(|e| e.to_string())?;
    let mut holder = client.begin().await.map_err(|e| e.to_string())?;
    holder.get_for_update(key).await.map_err(|e| e.to_string())?;
    Ok((client, holder))
}

/// A one-statement WRITE of `key` that waits at `leader` behind a running transaction holding
/// the key, until the leader loses the shard (the test's driver moves it once `phase` is 1),
/// and is answered ABORTED. Returns the WRITE, for copies of it, and the holder, which keeps
/// the key while it lives.
async fn write_aborted_by_a_leader_change(
    addrs: &[String],
    leader: &str,
    key: &[u8],
    phase: &Cell<u32>,
) -> Result<(PeerRequest, (Client, client::Transaction)), String> {
    let holder = running_holder(addrs, key).await?;
    let txn = new_txn(leader, 1).await?;
    let op = SingleOp::Write { key: key.to_vec(), value: Some(b"v".to_vec()) };
    let write = PeerRequest::Single { shard: SHARD, txn, op };
    let first = deliver_queued(leader, write.clone()).await?;
    phase.set(1);
    let first = first.await.map_err(|e| e.to_string())??;
    assert!(
        matches!(first, PeerReply::Aborted { .. }),
        "the WRITE answered {first:?} when its leader lost the shard"
    );
    Ok((write, holder))
}

/// Sends `request` to `leader` in a task of its own; returns once it waits behind the one
/// lock holder there.
async fn deliver_queued(
    leader: &str,
    request: PeerRequest,
) -> Result<tokio::task::JoinHandle<Result<PeerReply, String>>, String> {
    let reply = {
        let leader = leader.to_string();
        tokio::spawn(async move { call(&leader, request).await.map(|reply| reply.body) })
    };
    while inspect(leader, SHARD).await?.lock_holders < 2 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(reply)
}

/// A transaction id with coordinator 1 that no node uses, starting at `leader`'s clock.
async fn new_txn(leader: &str, seq: u64) -> Result<TxnId, String> {
    let now = call(leader, PeerRequest::Inspect { shard: SHARD }).await?.clock;
    Ok(TxnId { start_ts: now, coordinator: 1, incarnation: u64::MAX, seq })
}

/// `txn` READs `key` at `leader` (a shared lock); returns the term of the lock.
async fn read_locked(leader: &str, txn: TxnId, key: &[u8]) -> Result<u64, String> {
    let read = LockOp::Read { key: key.to_vec(), for_update: false };
    let lock = LockRequest { shard: SHARD, txn, lock_term: None, op: read };
    match call(leader, PeerRequest::Lock(lock)).await?.body {
        PeerReply::Locked { term, .. } => Ok(term),
        other => panic!("READ answered {other:?}"),
    }
}

/// The prepare of `txn` at shard 0 (home `home`, with `writes`) after its READ of `key` took
/// a shared lock in `term`: the lock it names, to be checked still held.
fn prepare_after_read(
    txn: TxnId,
    term: u64,
    key: &[u8],
    home: ShardId,
    writes: Vec<Write>,
) -> PrepareRequest {
    PrepareRequest {
        lock_term: Some(term),
        locks: vec![(LockSpan::Key(key.to_vec()), LockMode::Shared)],
        ..prepare_of(SHARD, txn, home, writes)
    }
}

#[test]
fn a_prepare_delivered_again_after_it_prepared_answers_the_same_vote() {
    with_leader(12, |leader| async move {
        let txn = new_txn(&leader, 1).await?;
        let term = read_locked(&leader, txn, b"0read").await?;
        let write = Write { key: b"0write".to_vec(), value: Some(b"v".to_vec()) };
        let prepare = prepare_after_read(txn, term, b"0read", HOME, vec![write]);
        let first = call(&leader, PeerRequest::Prepare(prepare.clone())).await?.body;
        let PeerReply::Voted { prepare_ts: Some(prepare_ts) } = first else {
            panic!("the first delivery answered {first:?}");
        };
        let again = call(&leader, PeerRequest::Prepare(prepare)).await?.body;
        assert!(
            matches!(again, PeerReply::Voted { prepare_ts: Some(ts) } if ts == prepare_ts),
            "the second delivery answered {again:?}, not the vote {prepare_ts}"
        );
        Ok(())
    });
}

/// The read-only twin: a read-only vote releases the READ's shared lock and leaves nothing in
/// the log, so the resend's check of held locks fails; the leader remembers the vote this
/// term (`LeaderState::voted_read_only`) and answers it again. Before 2026-12-05 it answered
/// NO (COORDINATOR_LOST).
#[test]
fn a_read_only_prepare_delivered_again_after_it_voted_answers_the_same_vote() {
    with_leader(12, |leader| async move {
        let txn = new_txn(&leader, 1).await?;
        let term = read_locked(&leader, txn, b"0read").await?;
        let prepare = prepare_after_read(txn, term, b"0read", HOME, Vec::new());
        let first = call(&leader, PeerRequest::Prepare(prepare.clone())).await?.body;
        assert!(
            matches!(first, PeerReply::Voted { prepare_ts: None }),
            "the first delivery answered {first:?}"
        );
        let again = call(&leader, PeerRequest::Prepare(prepare)).await?.body;
        assert!(
            matches!(again, PeerReply::Voted { prepare_ts: None }),
            "the second delivery answered {again:?}, not the read-only vote"
        );
        Ok(())
    });
}

#[test]
fn deliveries_after_the_transaction_ended_take_nothing() {
    with_leader(13, |leader| async move {
        // Writes sent with END: the prepare takes its lock itself (no statement locks).
        let txn = new_txn(&leader, 1).await?;
        let write = Write { key: b"0end".to_vec(), value: Some(b"v".to_vec()) };
        let prepare = prepare_of(SHARD, txn, HOME, vec![write]);
        let voted = call(&leader, PeerRequest::Prepare(prepare.clone())).await?.body;
        let PeerReply::Voted { prepare_ts: Some(prepare_ts) } = voted else {
            panic!("the prepare answered {voted:?}");
        };
        let decision = Decision::Committed { commit_ts: prepare_ts };
        let finalize = PeerRequest::Finalize { shard: SHARD, txn, decision, prepared: true };
        let done = call(&leader, finalize).await?.body;
        assert!(matches!(done, PeerReply::Done), "phase 2 answered {done:?}");
        let late = call(&leader, PeerRequest::Prepare(prepare)).await?.body;
        assert!(matches!(late, PeerReply::Aborted { .. }), "a late prepare answered {late:?}");

        // A statement's lock, released at the transaction's end, then its request again.
        let other = new_txn(&leader, 2).await?;
        let read = || LockOp::Read { key: b"0read".to_vec(), for_update: true };
        let lock = || LockRequest { shard: SHARD, txn: other, lock_term: None, op: read() };
        let locked = call(&leader, PeerRequest::Lock(lock())).await?.body;
        assert!(matches!(locked, PeerReply::Locked { .. }), "READ answered {locked:?}");
        call(&leader, PeerRequest::Release { shard: SHARD, txn: other }).await?;
        let late = call(&leader, PeerRequest::Lock(lock())).await?.body;
        assert!(matches!(late, PeerReply::Aborted { .. }), "a late READ answered {late:?}");

        // A statement's lock at the home shard of a transaction that commits there, with the
        // decision (CommitAtHome) or in one phase (no phase 2 follows at home either way),
        // then its request again.
        for (seq, at_home) in [(3, true), (4, false)] {
            let txn = new_txn(&leader, seq).await?;
            let read = || LockOp::Read { key: b"0home".to_vec(), for_update: false };
            let lock = || LockRequest { shard: SHARD, txn, lock_term: None, op: read() };
            let term = match call(&leader, PeerRequest::Lock(lock())).await?.body {
                PeerReply::Locked { term, .. } => term,
                other => panic!("READ answered {other:?}"),
            };
            let write = Write { key: b"0homewrite".to_vec(), value: Some(b"v".to_vec()) };
            let request = prepare_after_read(txn, term, b"0home", SHARD, vec![write]);
            let commit = if at_home {
                PeerRequest::CommitAtHome { request, after: txn.start_ts }
            } else {
                PeerRequest::CommitOnePhase(request)
            };
            let committed = call(&leader, commit).await?.body;
            assert!(
                matches!(committed, PeerReply::Committed { .. }),
                "the commit (at home: {at_home}) answered {committed:?}"
            );
            let late = call(&leader, PeerRequest::Lock(lock())).await?.body;
            assert!(
                matches!(late, PeerReply::Aborted { .. }),
                "a READ delivered after its transaction committed (at home: {at_home}) \
                 answered {late:?}"
            );
        }

        // A read-only participant's statement lock, released at its vote (nothing releases
        // anything there after it), then its request again; the prepare again still answers
        // its vote.
        let txn = new_txn(&leader, 5).await?;
        let term = read_locked(&leader, txn, b"0voted").await?;
        let prepare = prepare_after_read(txn, term, b"0voted", HOME, Vec::new());
        let voted = call(&leader, PeerRequest::Prepare(prepare.clone())).await?.body;
        assert!(matches!(voted, PeerReply::Voted { prepare_ts: None }), "voted {voted:?}");
        let read = LockOp::Read { key: b"0voted".to_vec(), for_update: true };
        let lock = LockRequest { shard: SHARD, txn, lock_term: None, op: read };
        let late = call(&leader, PeerRequest::Lock(lock)).await?.body;
        assert!(
            matches!(late, PeerReply::Aborted { .. }),
            "a READ delivered after its transaction's read-only vote answered {late:?}"
        );
        let again = call(&leader, PeerRequest::Prepare(prepare)).await?.body;
        assert!(matches!(again, PeerReply::Voted { prepare_ts: None }), "again {again:?}");

        let inspection = inspect(&leader, SHARD).await?;
        assert_eq!(inspection.prepared, 0, "nothing prepared again");
        assert_eq!(inspection.lock_holders, 0, "no lock taken again");
        Ok(())
    });
}

#[test]
fn a_lock_wait_taken_over_by_another_delivery_leaves_the_outcome_open() {
    with_leader(14, |leader| async move {
        // Another transaction holds the key, so the WRITE's deliveries wait. A client's, whose
        // coordinator answers for it: a made-up one is evicted by the holder check, and the
        // first delivery would get the lock (it did once the start-up took longer).
        let key = b"0single".to_vec();
        let addrs: Vec<String> = (1..=3).map(node_addr).collect();
        let (_client, holder) = running_holder(&addrs, &key).await?;

        let txn = new_txn(&leader, 2).await?;
        let value = Some(b"v".to_vec());
        let write = PeerRequest::Single { shard: SHARD, txn, op: SingleOp::Write { key, value } };
        let deliver = |leader: String, request: PeerRequest| {
            tokio::spawn(async move { call(&leader, request).await.map(|reply| reply.body) })
        };
        let first = deliver(leader.clone(), write.clone());
        while inspect(&leader, SHARD).await?.lock_holders < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let second = deliver(leader.clone(), write.clone());
        let first = first.await.map_err(|e| e.to_string())??;
        assert!(
            matches!(first, PeerReply::Unavailable(_)),
            "the delivery whose wait was taken over answered {first:?}, not an open outcome"
        );
        holder.abort().await.map_err(|e| e.to_string())?;
        let second = second.await.map_err(|e| e.to_string())??;
        assert!(matches!(second, PeerReply::Committed { .. }), "the second answered {second:?}");
        // The caller's retry after the open answer learns the outcome.
        let retry = call(&leader, write).await?.body;
        assert!(matches!(retry, PeerReply::Committed { .. }), "the retry answered {retry:?}");
        Ok(())
    });
}

#[test]
fn a_write_delivered_again_after_it_committed_and_was_finished_answers_committed() {
    with_leader(15, |leader| async move {
        let txn = new_txn(&leader, 1).await?;
        let op = SingleOp::Write { key: b"0again".to_vec(), value: Some(b"v".to_vec()) };
        let write = PeerRequest::Single { shard: SHARD, txn, op };
        let first = call(&leader, write.clone()).await?.body;
        let PeerReply::Committed { commit_ts } = first else {
            panic!("the first delivery answered {first:?}");
        };
        // The resolver finishes a transaction it found in doubt there: phase 2 of the commit,
        // after which the leader remembers it as ended.
        let decision = Decision::Committed { commit_ts };
        let finalize = PeerRequest::Finalize { shard: SHARD, txn, decision, prepared: true };
        let done = call(&leader, finalize).await?.body;
        assert!(matches!(done, PeerReply::Done), "phase 2 answered {done:?}");
        let again = call(&leader, write).await?.body;
        assert!(
            matches!(again, PeerReply::Committed { commit_ts: ts } if ts == commit_ts),
            "the delivery after the commit answered {again:?}, not COMMITTED at {commit_ts}"
        );
        Ok(())
    });
}

#[test]
fn a_write_answered_aborted_is_not_committed_by_a_copy_after_its_leader_leads_again() {
    let mut cluster = SimCluster::new(ClusterSpec::new(16, 3));
    // The client's progress, which the driver follows: 1 once the WRITE waits at the leader,
    // 2 once it was answered ABORTED, 3 at the end.
    let phase = Rc::new(Cell::new(0));
    let leader_id = Rc::new(Cell::new(0));
    let (client_phase, client_leader_id) = (phase.clone(), leader_id.clone());
    let addrs = cluster.addrs();
    cluster.client("coordinator", async move {
        let id = settled_leader().await?;
        let leader = node_addr(id);
        client_leader_id.set(id);

        let key = b"0regained".to_vec();
        let (write, _holder) =
            write_aborted_by_a_leader_change(&addrs, &leader, &key, &client_phase).await?;
        client_phase.set(2);

        // The same node leads again; a copy of the WRITE arrives (its handler ran late).
        while !inspect(&leader, SHARD).await?.leading {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let copy = call(&leader, write).await?.body;
        assert!(
            !matches!(copy, PeerReply::Committed { .. }),
            "a copy committed a WRITE answered ABORTED: {copy:?}"
        );
        let read = PeerRequest::Single {
            shard: SHARD,
            txn: new_txn(&leader, 3).await?,
            op: SingleOp::Read { key },
        };
        let read = call(&leader, read).await?.body;
        match read {
            PeerReply::Read(result) => assert!(result.rows.is_empty(), "the key holds {result:?}"),
            other => panic!("the READ answered {other:?}"),
        }
        client_phase.set(3);
        Ok(())
    });
    cluster.run_until(|| phase.get() >= 1);
    let (leader, other) = (leader_id.get(), leader_id.get() % 3 + 1);
    cluster.transfer_leader(leader, SHARD, other);
    cluster.run_until(|| phase.get() >= 2);
    cluster.transfer_leader(other, SHARD, leader);
    cluster.run_until(|| phase.get() >= 3);
    assert_eq!(phase.get(), 3, "the client finished");
}

/// A one-statement WRITE answered ABORTED because its wait failed (its leader lost the shard)
/// is not committed by a copy that arrives at the new leader: the refusal was settled in the
/// shard's record (decided ABORTED, `Shard::settle_refused`), which refuses the copy's commit.
/// Before 2026-12-07 only the old leader remembered the abort (`LeaderState::ended`), and the
/// copy committed at the new leader a write its client had been told was aborted, and had
/// written again (found by a review).
#[test]
fn a_write_answered_aborted_is_not_committed_by_a_copy_at_the_next_leader() {
    let mut cluster = SimCluster::new(ClusterSpec::new(18, 3));
    // The client's progress, which the driver follows: 1 once the WRITE waits at the leader,
    // 2 at the end.
    let phase = Rc::new(Cell::new(0));
    let leader_id = Rc::new(Cell::new(0));
    let (client_phase, client_leader_id) = (phase.clone(), leader_id.clone());
    let addrs = cluster.addrs();
    cluster.client("coordinator", async move {
        let id = settled_leader().await?;
        let leader = node_addr(id);
        client_leader_id.set(id);
        let next = node_addr(id % 3 + 1);

        let key = b"0moved".to_vec();
        let (write, _holder) =
            write_aborted_by_a_leader_change(&addrs, &leader, &key, &client_phase).await?;
        let PeerRequest::Single { txn, .. } = write else { unreachable!("a one-statement WRITE") };

        // A copy of the WRITE arrives at the new leader (its handler ran late).
        while !inspect(&next, SHARD).await?.leading {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let copy = call(&next, write).await?.body;
        assert!(
            !matches!(copy, PeerReply::Committed { .. }),
            "a copy committed a WRITE answered ABORTED: {copy:?}"
        );
        let status =
            PeerRequest::Status { shard: SHARD, txn, resolve: false, prepared_here: false };
        let status = call(&next, status).await?.body;
        assert!(
            matches!(status, PeerReply::Decided(Decision::Aborted { .. })),
            "the record of a WRITE answered ABORTED: {status:?}"
        );
        let read = PeerRequest::Single {
            shard: SHARD,
            txn: new_txn(&next, 3).await?,
            op: SingleOp::Read { key },
        };
        match call(&next, read).await?.body {
            PeerReply::Read(result) => assert!(result.rows.is_empty(), "the key holds {result:?}"),
            other => panic!("the READ answered {other:?}"),
        }
        client_phase.set(2);
        Ok(())
    });
    cluster.run_until(|| phase.get() >= 1);
    let (leader, next) = (leader_id.get(), leader_id.get() % 3 + 1);
    cluster.transfer_leader(leader, SHARD, next);
    cluster.run_until(|| phase.get() >= 2);
    assert_eq!(phase.get(), 2, "the client finished");
}

/// A one-statement WRITE that committed, whose answer was lost, is delivered again while a
/// later transaction holds the key: the copy waits, and its wait fails (here the leader loses
/// the shard; a lock wait timeout or a deadlock does the same). It must answer COMMITTED from
/// the record, not the wait's ABORTED: the client would take that as "nothing happened" and
/// write again, after the holder, a write the holder may have read (a review found it,
/// 2026-12-05; `Shard::refused_single_write`).
#[test]
fn a_write_delivered_again_after_it_committed_answers_committed_when_its_wait_fails() {
    let mut cluster = SimCluster::new(ClusterSpec::new(17, 3));
    // The client's progress, which the driver follows: 1 once the copy waits, 2 at the end.
    let phase = Rc::new(Cell::new(0));
    let leader_id = Rc::new(Cell::new(0));
    let (client_phase, client_leader_id) = (phase.clone(), leader_id.clone());
    let addrs = cluster.addrs();
    cluster.client("coordinator", async move {
        let id = settled_leader().await?;
        let leader = node_addr(id);
        client_leader_id.set(id);
        let key = b"0committed".to_vec();
        let txn = new_txn(&leader, 1).await?;
        let op = SingleOp::Write { key: key.clone(), value: Some(b"v".to_vec()) };
        let write = PeerRequest::Single { shard: SHARD, txn, op };
        let first = call(&leader, write.clone()).await?.body;
        let PeerReply::Committed { commit_ts } = first else {
            panic!("the first delivery answered {first:?}");
        };

        // A running transaction takes the key; the copy of the WRITE waits behind it.
        let _holder = running_holder(&addrs, &key).await?;
        let copy = deliver_queued(&leader, write).await?;
        client_phase.set(1);
        let copy = copy.await.map_err(|e| e.to_string())??;
        assert!(
            matches!(copy, PeerReply::Committed { commit_ts: ts } if ts == commit_ts),
            "a copy of a committed WRITE whose wait failed answered {copy:?}, not COMMITTED at \
             {commit_ts}"
        );
        client_phase.set(2);
        Ok(())
    });
    cluster.run_until(|| phase.get() >= 1);
    let (leader, other) = (leader_id.get(), leader_id.get() % 3 + 1);
    cluster.transfer_leader(leader, SHARD, other);
    cluster.run_until(|| phase.get() >= 2);
    assert_eq!(phase.get(), 2, "the client finished");
}
