//! Unit tests of the pure probe steps on hand-built tables, without messaging.

use super::*;
use crate::lock::Acquired;
use crate::lock::LockMode;
use crate::lock::LockSpan;
use crate::lock::LockTable;
use crate::lock::RequestId;
use crate::lock::lock_table_test::t;
use crate::types::ShardId;

const S0: ShardId = ShardId(0);
const S1: ShardId = ShardId(1);

fn must_wait(table: &mut LockTable, txn: u64, key: &str, mode: LockMode) -> RequestId {
    match table.acquire(t(txn), LockSpan::key(key), mode) {
        Acquired::Waiting(request) => request,
        Acquired::Granted => panic!("t{txn} {key} granted, expected to wait"),
    }
}

fn must_grant(table: &mut LockTable, txn: u64, key: &str, mode: LockMode) {
    assert_eq!(table.acquire(t(txn), LockSpan::key(key), mode), Acquired::Granted);
}

fn forwarded(steps: Vec<ProbeStep>) -> Vec<Probe> {
    steps
        .into_iter()
        .filter_map(|step| match step {
            ProbeStep::Forward(probe) => Some(probe),
            _ => None,
        })
        .collect()
}

#[test]
fn start_probes_sends_one_probe_per_older_blocker() {
    let mut table = LockTable::new(1);
    must_grant(&mut table, 1, "a", LockMode::Shared);
    must_grant(&mut table, 2, "a", LockMode::Shared);
    must_grant(&mut table, 5, "a", LockMode::Shared);
    let request = must_wait(&mut table, 3, "a", LockMode::Exclusive);
    let steps = start_probes(&table, S0, request);
    assert_eq!(steps.len(), 3, "one step per blocker edge");
    assert_eq!(steps[2], ProbeStep::Drop(DropReason::YoungerHolder(t(5))), "pruned: no message");
    let probes = forwarded(steps);
    let holders: Vec<_> = probes.iter().map(Probe::last_holder).collect();
    assert_eq!(holders, vec![t(1), t(2)]);
    assert_eq!(probes[0].edges[0].request, request, "the edge carries the wait epoch");
    assert_eq!(probes[0].initiator(), t(3));
    assert!(start_probes(&table, S0, RequestId(99)).is_empty(), "not waiting: no probes");
}

#[test]
fn shard_step_closes_a_cycle_on_the_initiator() {
    // t2 waits at s0 for t1; t1 waits at s1 for t2.
    let mut s0 = LockTable::new(1);
    let mut s1 = LockTable::new(1);
    must_grant(&mut s0, 1, "a", LockMode::Exclusive);
    must_grant(&mut s1, 2, "b", LockMode::Exclusive);
    let r2 = must_wait(&mut s0, 2, "a", LockMode::Exclusive);
    let r1 = must_wait(&mut s1, 1, "b", LockMode::Exclusive);
    let probes = forwarded(start_probes(&s0, S0, r2));
    assert_eq!(probes.len(), 1);
    // The coordinator of t1 forwards to s1, where t1 waits.
    let steps = shard_step(&s1, S1, &probes[0]);
    let [ProbeStep::Deadlock(deadlock)] = steps.as_slice() else {
        panic!("expected a deadlock, got {steps:?}");
    };
    assert_eq!(deadlock.txns(), vec![t(2), t(1)]);
    assert_eq!(deadlock.victim().waiter, t(2), "the youngest");
    assert_eq!((deadlock.victim().shard, deadlock.victim().request), (S0, r2));
    assert_eq!(deadlock.cycle[1].request, r1);
    assert_eq!(
        deadlock.describe(),
        "t1.1.2 waits for t1.1.1 on key a (s0) -> t1.1.1 waits for t1.1.2 on key b (s1)"
    );
    // Delivered to a shard where t1 does not wait, the probe is dropped.
    assert_eq!(
        shard_step(&s0, S0, &probes[0]),
        vec![ProbeStep::Drop(DropReason::NotWaiting(t(1)))]
    );
    // t1's own probe is pruned at once: its only holder, t2, is younger.
    assert!(forwarded(start_probes(&s1, S1, r1)).is_empty());
}

#[test]
fn shard_step_drops_cycles_not_through_the_initiator() {
    // t9 waits for t1; t1 and t2 deadlock without t9.
    let mut table = LockTable::new(1);
    must_grant(&mut table, 1, "a", LockMode::Exclusive);
    must_grant(&mut table, 2, "b", LockMode::Exclusive);
    must_grant(&mut table, 3, "c", LockMode::Exclusive);
    let waiting = must_wait(&mut table, 9, "a", LockMode::Exclusive);
    must_wait(&mut table, 1, "b", LockMode::Exclusive);
    must_wait(&mut table, 2, "a", LockMode::Exclusive);
    let probe = forwarded(start_probes(&table, S0, waiting)).remove(0);
    let probe = forwarded(shard_step(&table, S0, &probe)).remove(0);
    assert_eq!(probe.last_holder(), t(2));
    // t2 waits for t1 (holder) and t9 (queued ahead on a): t1 is on the path, t9 the initiator.
    let steps = shard_step(&table, S0, &probe);
    assert_eq!(steps[0], ProbeStep::Drop(DropReason::AlreadyOnPath(t(1))));
    assert!(matches!(&steps[1], ProbeStep::Deadlock(d) if d.txns() == vec![t(9), t(1), t(2)]));
}

#[test]
fn malformed_and_overlong_probes_are_dropped() {
    let mut table = LockTable::new(1);
    must_grant(&mut table, 1, "a", LockMode::Exclusive);
    let request = must_wait(&mut table, 2, "a", LockMode::Exclusive);
    let edge = |waiter: u64, holder: u64| WaitEdge {
        waiter: t(waiter),
        holder: t(holder),
        shard: S0,
        span: LockSpan::key("a"),
        request,
    };
    let unchained = Probe { edges: vec![edge(9, 3), edge(2, 1)] };
    assert_eq!(shard_step(&table, S0, &unchained), vec![ProbeStep::Drop(DropReason::Malformed)]);
    let younger = Probe { edges: vec![edge(3, 4)] };
    assert_eq!(shard_step(&table, S0, &younger), vec![ProbeStep::Drop(DropReason::Malformed)]);
    assert_eq!(
        shard_step(&table, S0, &Probe { edges: vec![] }),
        vec![ProbeStep::Drop(DropReason::Malformed)]
    );
    // A path of MAX_PROBE_EDGES - 1 edges ending at t2 cannot grow by another edge.
    let mut edges: Vec<WaitEdge> =
        (0..MAX_PROBE_EDGES as u64 - 2).map(|i| edge(100 - i, 99 - i)).collect();
    edges.push(edge(100 - (MAX_PROBE_EDGES as u64 - 2), 2));
    let long = Probe { edges };
    assert!(long.is_well_formed(), "{long}");
    assert_eq!(shard_step(&table, S0, &long), vec![ProbeStep::Drop(DropReason::TooLong)]);
}

#[test]
fn cancel_victim_only_while_its_edge_exists() {
    let mut table = LockTable::new(1);
    must_grant(&mut table, 1, "a", LockMode::Exclusive);
    must_grant(&mut table, 2, "b", LockMode::Exclusive);
    must_wait(&mut table, 1, "b", LockMode::Exclusive);
    let r2 = must_wait(&mut table, 2, "a", LockMode::Exclusive);
    let probe = forwarded(start_probes(&table, S0, r2)).remove(0);
    let steps = shard_step(&table, S0, &probe);
    let [ProbeStep::Deadlock(deadlock)] = steps.as_slice() else {
        panic!("expected a deadlock, got {steps:?}");
    };
    let deadlock = deadlock.clone();
    let mut stale = LockTable::new(1);
    must_grant(&mut stale, 1, "a", LockMode::Exclusive);
    assert_eq!(deadlock.cancel_victim(&mut stale, S0), None, "no such request in that table");
    let (victim, grants) = deadlock.cancel_victim(&mut table, S0).expect("edge exists");
    assert_eq!((victim, grants), (t(2), vec![]));
    assert_eq!(deadlock.cancel_victim(&mut table, S0), None, "the epoch has passed");
    table.check_invariants();
}
