//! The confirmation pass on hand-built tables: edges gone, and the pin that keeps an
//! overlapping cycle from being broken under a younger victim's confirmation.

use super::*;
use crate::lock::Acquired;
use crate::lock::LockMode;
use crate::lock::LockSpan;
use crate::lock::LockTable;
use crate::lock::RequestId;
use crate::lock::lock_table_test::t;
use crate::types::ShardId;

const S0: ShardId = ShardId(0);
/// Pin lifetime in these tests.
const LIFETIME: u64 = 10;

fn must_wait(table: &mut LockTable, txn: u64, key: &str, mode: LockMode) -> RequestId {
    match table.acquire(t(txn), LockSpan::key(key), mode) {
        Acquired::Waiting(request) => request,
        Acquired::Granted => panic!("t{txn} {key} granted, expected to wait"),
    }
}

fn must_grant(table: &mut LockTable, txn: u64, key: &str, mode: LockMode) {
    assert_eq!(table.acquire(t(txn), LockSpan::key(key), mode), Acquired::Granted);
}

fn edge(waiter: u64, holder: u64, key: &str, request: RequestId) -> WaitEdge {
    WaitEdge { waiter: t(waiter), holder: t(holder), shard: S0, span: LockSpan::key(key), request }
}

/// Two overlapping cycles on one shard: t1 -> t2 -> t1 (victim t2) and t3 -> t1 -> t2 -> t3
/// (victim t3). t2's one request waits for both t1 and t3 (their S locks on k).
struct Overlap {
    table: LockTable,
    small: Deadlock,
    large: Deadlock,
}

fn overlap() -> Overlap {
    let mut table = LockTable::new(1);
    must_grant(&mut table, 2, "a", LockMode::Exclusive);
    must_grant(&mut table, 1, "b", LockMode::Exclusive);
    must_grant(&mut table, 1, "k", LockMode::Shared);
    must_grant(&mut table, 3, "k", LockMode::Shared);
    let r1 = must_wait(&mut table, 1, "a", LockMode::Exclusive);
    let r2 = must_wait(&mut table, 2, "k", LockMode::Exclusive);
    let r3 = must_wait(&mut table, 3, "b", LockMode::Exclusive);
    table.check_invariants();
    let small = Deadlock::new(vec![edge(2, 1, "k", r2), edge(1, 2, "a", r1)]);
    let large = Deadlock::new(vec![edge(3, 1, "b", r3), edge(1, 2, "a", r1), edge(2, 3, "k", r2)]);
    assert!(small.cycle.iter().chain(&large.cycle).all(|e| e.exists_in(&table)));
    Overlap { table, small, large }
}

fn forward(step: ConfirmStep) -> Confirmation {
    match step {
        ConfirmStep::Forward(next) => next,
        other => panic!("expected to forward, got {other:?}"),
    }
}

#[test]
fn a_younger_victims_pass_holds_back_the_abort_that_would_break_its_cycle() {
    let Overlap { mut table, small, large } = overlap();
    let mut pins = Pins::new(LIFETIME);
    // The large cycle's pass confirms t1's and t2's edges, pinning them for t3.
    let pass = Confirmation::new(large.clone());
    assert_eq!(pass.edge().waiter, t(1), "the pass starts after the victim's edge");
    let pass = forward(pass.step(&mut table, &mut pins, S0, 0));
    let pass = forward(pass.step(&mut table, &mut pins, S0, 1));
    assert_eq!(pass.edge().waiter, t(3), "the victim's edge comes last");
    // Meanwhile the small cycle's pass wants to abort t2: that would break the large cycle.
    let other = forward(Confirmation::new(small.clone()).step(&mut table, &mut pins, S0, 2));
    let refused = other.step(&mut table, &mut pins, S0, 2);
    assert_eq!(refused, ConfirmStep::Drop(ConfirmDrop::Pinned { by: t(3) }));
    // The large cycle is intact: t3 is aborted.
    let ConfirmStep::Abort { victim, grants, deadlock } = pass.step(&mut table, &mut pins, S0, 3)
    else {
        panic!("expected the abort of t3");
    };
    assert_eq!((victim, grants, deadlock), (t(3), vec![], large));
    assert!(table.release_all(t(3)).is_empty(), "t2 still waits for t1's S on k");
    table.check_invariants();
    // The small cycle survived; once the pins expire, its next confirmation goes through.
    let retry = forward(Confirmation::new(small.clone()).step(&mut table, &mut pins, S0, 5));
    assert!(matches!(retry.clone().step(&mut table, &mut pins, S0, 5), ConfirmStep::Drop(_)));
    let later = 5 + LIFETIME;
    pins.expire(later);
    assert!(pins.is_empty(), "{pins:?}");
    let retry = forward(Confirmation::new(small).step(&mut table, &mut pins, S0, later));
    let step = retry.step(&mut table, &mut pins, S0, later);
    assert!(matches!(step, ConfirmStep::Abort { victim, .. } if victim == t(2)), "{step:?}");
    table.check_invariants();
}

#[test]
fn a_pass_that_finds_an_edge_gone_aborts_nobody() {
    let Overlap { mut table, small, large } = overlap();
    let mut pins = Pins::new(LIFETIME);
    // The small cycle resolves first: t2 is aborted.
    let pass = forward(Confirmation::new(small).step(&mut table, &mut pins, S0, 0));
    let ConfirmStep::Abort { victim, .. } = pass.step(&mut table, &mut pins, S0, 0) else {
        panic!("expected the abort of t2");
    };
    assert_eq!(victim, t(2));
    table.release_all(t(2));
    // The large cycle's probe passed t2 before that; its confirmation finds t1's edge gone.
    let step = Confirmation::new(large).step(&mut table, &mut pins, S0, 1);
    let ConfirmStep::Drop(ConfirmDrop::EdgeGone(gone)) = step else {
        panic!("expected the pass to stop, got {step:?}");
    };
    assert_eq!((gone.waiter, gone.holder), (t(1), t(2)));
    assert_eq!(table.waiting(t(3)).map(|r| table.request_txn(r)), Some(Some(t(3))), "t3 waits on");
    table.check_invariants();
}

#[test]
fn pins_expire_and_never_block_their_own_victim() {
    let mut pins = Pins::new(5);
    assert!(pins.pin(RequestId(1), t(7), 10));
    assert!(pins.pin(RequestId(1), t(9), 12));
    assert_eq!(pins.blocking(RequestId(1), t(7), 14), Some(t(9)), "the other victim's pin");
    assert_eq!(pins.blocking(RequestId(1), t(9), 14), Some(t(7)));
    assert_eq!(pins.blocking(RequestId(1), t(9), 15), None, "t7's pin expired at 15");
    assert_eq!(pins.blocking(RequestId(2), t(9), 0), None);
    assert_eq!(pins.len(), 2);
    pins.expire(17);
    assert!(pins.is_empty());
}

#[test]
fn pins_past_the_bound_are_refused_until_some_expire() {
    let mut pins = Pins::new(5);
    for request in 0..MAX_PINS as u64 {
        assert!(pins.pin(RequestId(request), t(request + 1), 10));
    }
    assert!(!pins.pin(RequestId(u64::MAX), t(1), 12), "full: the confirmation is dropped");
    assert_eq!(pins.len(), MAX_PINS);
    assert!(pins.pin(RequestId(u64::MAX), t(1), 15), "the old pins expired at 15");
    assert_eq!(pins.len(), 1);
}
