//! Scenario tests of [`LockTable`]: one behaviour each, named as a spec. Every step checks all
//! invariants. Transactions are `t1`, `t2`, ... with `t1` the oldest.

use super::*;
use crate::types::Key;
use crate::types::Timestamp;
use crate::types::TxnId;
use LockMode::Exclusive as X;
use LockMode::Shared as S;

/// Transaction number `n`; a larger `n` is younger.
pub(crate) fn t(n: u64) -> TxnId {
    TxnId { start_ts: Timestamp(n), coordinator: 1, incarnation: 1, seq: n }
}

fn key(key: &str) -> LockSpan {
    LockSpan::key(key)
}

fn range(from: &str, to: Option<&str>) -> LockSpan {
    LockSpan::range(from, to)
}

/// A table that checks its invariants after every call and speaks in transaction numbers.
struct Fixture {
    table: LockTable,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture { table: LockTable::new(1) }
    }

    fn acquire(&mut self, txn: u64, span: LockSpan, mode: LockMode) -> Acquired {
        let acquired = self.table.acquire(t(txn), span, mode);
        self.table.check_invariants();
        acquired
    }

    fn must_grant(&mut self, txn: u64, span: LockSpan, mode: LockMode) {
        let acquired = self.acquire(txn, span.clone(), mode);
        assert_eq!(acquired, Acquired::Granted, "t{txn} {span} {mode}");
    }

    /// Asserts the request waits, and on exactly `blockers` (in order).
    fn must_wait(
        &mut self,
        txn: u64,
        span: LockSpan,
        mode: LockMode,
        blockers: &[u64],
    ) -> RequestId {
        let Acquired::Waiting(request) = self.acquire(txn, span.clone(), mode) else {
            panic!("t{txn} {span} {mode} granted, expected to wait");
        };
        assert_eq!(self.blockers(request), blockers, "blockers of t{txn} {span} {mode}");
        assert_eq!(self.table.waiting(t(txn)), Some(request));
        assert_eq!(self.table.request_txn(request), Some(t(txn)));
        request
    }

    fn blockers(&self, request: RequestId) -> Vec<u64> {
        self.table.blockers(request).iter().map(|blocker| blocker.txn.seq).collect()
    }

    /// Releases everything of `txn`; returns the transactions granted, in order.
    fn release_all(&mut self, txn: u64) -> Vec<u64> {
        let grants = self.table.release_all(t(txn));
        self.table.check_invariants();
        assert!(self.table.held(t(txn)).is_empty());
        assert_eq!(self.table.waiting(t(txn)), None);
        grants.iter().map(|grant| grant.txn.seq).collect()
    }

    fn release_shared(&mut self, txn: u64) -> Vec<u64> {
        let grants = self.table.release_shared(t(txn));
        self.table.check_invariants();
        grants.iter().map(|grant| grant.txn.seq).collect()
    }

    fn cancel(&mut self, request: RequestId) -> Option<(u64, Vec<u64>)> {
        let cancelled = self.table.cancel(request);
        self.table.check_invariants();
        cancelled.map(|(txn, grants)| (txn.seq, grants.iter().map(|g| g.txn.seq).collect()))
    }

    /// The waiting transactions in queue order.
    fn queue(&self) -> Vec<u64> {
        self.table.waits().iter().map(|wait| wait.txn.seq).collect()
    }
}

#[test]
fn compatible_locks_are_granted_and_conflicting_ones_queue() {
    let mut f = Fixture::new();
    f.must_grant(1, key("a"), S);
    f.must_grant(2, key("a"), S);
    f.must_grant(1, key("b"), X);
    f.must_wait(3, key("a"), X, &[1, 2]);
    f.must_wait(4, key("b"), S, &[1]);
    assert_eq!(f.release_all(1), vec![4], "t3 still waits for t2's S");
    assert_eq!(f.release_all(2), vec![3]);
    assert!(f.table.holds(t(3), b"a", X));
    assert!(f.table.holds(t(4), b"b", S));
    f.release_all(3);
    f.release_all(4);
    assert!(f.table.is_empty());
}

#[test]
fn reentrant_requests_are_granted_at_once() {
    let mut f = Fixture::new();
    f.must_grant(1, key("a"), X);
    f.must_wait(2, key("a"), S, &[1]);
    // Already held, or weaker than held: granted although t2 is queued on the key.
    f.must_grant(1, key("a"), X);
    f.must_grant(1, key("a"), S);
    f.must_grant(1, range("m", Some("p")), S);
    f.must_grant(1, key("n"), S);
    f.must_grant(1, range("n", Some("o")), S);
    // Two adjacent ranges cover the range spanning both.
    f.must_grant(1, range("p", None), S);
    f.must_grant(1, range("m", Some("zz")), S);
    // A key held as a key is not recorded again; a key covered by ranges alone is, as S, and
    // a covered range as a hold of its own (a narrowing may shrink the ranges): a (X), n (S),
    // then [m, p), [m, zz), [n, o), [p, ..).
    assert_eq!(
        f.table.held(t(1)).len(),
        6,
        "no duplicate key locks recorded: {:?}",
        f.table.held(t(1))
    );
    assert!(f.table.holds(t(1), b"n", S));
    assert!(!f.table.holds(t(1), b"n", X));
    assert!(f.table.holds_range(t(1), b"m", Some(b"zz")));
    assert!(!f.table.holds_range(t(1), b"l", Some(b"n")));
}

#[test]
fn writers_are_granted_in_arrival_order() {
    let mut f = Fixture::new();
    f.must_grant(1, key("a"), X);
    f.must_wait(2, key("a"), X, &[1]);
    f.must_wait(3, key("a"), X, &[1, 2]);
    f.must_wait(4, key("a"), X, &[1, 2, 3]);
    assert_eq!(f.queue(), vec![2, 3, 4]);
    assert_eq!(f.release_all(1), vec![2]);
    assert_eq!(f.blockers(f.table.waiting(t(4)).expect("t4 waits")), vec![2, 3]);
    assert_eq!(f.release_all(2), vec![3]);
    assert_eq!(f.release_all(3), vec![4]);
}

#[test]
fn writer_is_not_starved_by_readers_arriving_after_it() {
    let mut f = Fixture::new();
    f.must_grant(1, key("a"), S);
    f.must_wait(2, key("a"), X, &[1]);
    // Compatible with t1's S, but the writer t2 is queued ahead: t3 and t4 line up behind it.
    f.must_wait(3, key("a"), S, &[2]);
    f.must_wait(4, key("a"), S, &[2]);
    // Other keys are not held up by the queue.
    f.must_grant(5, key("b"), S);
    assert_eq!(f.release_all(1), vec![2]);
    assert_eq!(f.release_all(2), vec![3, 4], "readers are granted together");
}

#[test]
fn release_grants_readers_up_to_the_next_writer() {
    let mut f = Fixture::new();
    f.must_grant(1, key("a"), X);
    f.must_wait(2, key("a"), S, &[1]);
    f.must_wait(3, key("a"), S, &[1]);
    f.must_wait(4, key("a"), X, &[1, 2, 3]);
    f.must_wait(5, key("a"), S, &[1, 4]);
    assert_eq!(f.release_all(1), vec![2, 3]);
    assert_eq!(f.queue(), vec![4, 5]);
    assert_eq!(f.release_all(2), vec![]);
    assert_eq!(f.release_all(3), vec![4]);
    assert_eq!(f.release_all(4), vec![5]);
}

#[test]
fn upgrade_by_the_only_reader_is_granted_past_the_queue() {
    let mut f = Fixture::new();
    f.must_grant(1, key("a"), S);
    f.must_wait(2, key("a"), X, &[1]);
    // t2 waits for t1's S anyway: making t1 wait behind t2 would deadlock t1 with its own queue.
    f.must_grant(1, key("a"), X);
    assert!(f.table.holds(t(1), b"a", X));
    assert_eq!(f.table.held(t(1)), vec![(key("a"), X)], "S replaced by X");
    assert_eq!(f.release_all(1), vec![2]);
}

#[test]
fn upgrade_with_other_readers_waits_ahead_of_writers() {
    let mut f = Fixture::new();
    f.must_grant(1, key("a"), S);
    f.must_grant(2, key("a"), S);
    f.must_wait(3, key("a"), X, &[1, 2]);
    f.must_wait(1, key("a"), X, &[2]);
    assert_eq!(f.queue(), vec![1, 3], "the upgrade jumps ahead of the writer");
    assert_eq!(f.release_all(2), vec![1]);
    assert_eq!(f.blockers(f.table.waiting(t(3)).expect("t3 waits")), vec![1]);
    assert_eq!(f.release_all(1), vec![3]);
}

#[test]
fn upgrades_queue_among_themselves_in_arrival_order() {
    let mut f = Fixture::new();
    for txn in 1..=3 {
        f.must_grant(txn, key("a"), S);
    }
    f.must_grant(9, key("z"), X);
    f.must_wait(4, key("z"), X, &[9]);
    f.must_wait(5, key("a"), X, &[1, 2, 3]);
    f.must_wait(1, key("a"), X, &[2, 3]);
    f.must_wait(2, key("a"), X, &[1, 3]);
    assert_eq!(f.queue(), vec![1, 2, 4, 5]);
}

#[test]
fn two_readers_upgrading_one_key_deadlock_until_one_aborts() {
    let mut f = Fixture::new();
    f.must_grant(1, key("a"), S);
    f.must_grant(2, key("a"), S);
    let first = f.must_wait(1, key("a"), X, &[2]);
    let second = f.must_wait(2, key("a"), X, &[1]);
    assert!(first < second, "request ids increase");
    // The detector picks the youngest, t2: cancel its request, then abort it.
    assert_eq!(f.cancel(second), Some((2, vec![])), "t1 still waits for t2's S");
    assert_eq!(f.release_all(2), vec![1]);
    assert!(f.table.holds(t(1), b"a", X));
}

#[test]
fn a_scan_over_a_key_read_earlier_does_not_queue_behind_a_writer_waiting_for_it() {
    let mut f = Fixture::new();
    f.must_grant(1, key("b"), S);
    f.must_wait(2, key("b"), X, &[1]);
    // The range conflicts with t2's queued X(b), but t2 waits for t1: no real conflict.
    f.must_grant(1, range("a", Some("c")), S);
    // Another transaction's scan still lines up behind the writer.
    f.must_wait(3, range("a", Some("c")), S, &[2]);
    assert_eq!(f.release_all(1), vec![2]);
    assert_eq!(f.release_all(2), vec![3]);
}

#[test]
fn a_write_inside_a_range_queued_behind_the_writer_does_not_wait_for_that_range() {
    let mut f = Fixture::new();
    f.must_grant(1, key("a"), X);
    f.must_wait(2, range("a", Some("c")), S, &[1]);
    f.must_grant(1, key("b"), X);
    f.must_wait(3, key("bb"), X, &[2]);
    assert_eq!(f.release_all(1), vec![2]);
    assert_eq!(f.release_all(2), vec![3]);
}

#[test]
fn a_request_waiting_on_a_holder_names_only_the_real_blockers() {
    let mut f = Fixture::new();
    f.must_grant(1, key("b"), S);
    f.must_wait(2, key("b"), X, &[1]);
    f.must_grant(3, key("c"), X);
    // Held up by t3's X(c) only: t2's queued X(b) waits for t1, so it is no edge of t1.
    let request = f.must_wait(1, range("a", Some("d")), S, &[3]);
    assert_eq!(f.release_all(3), vec![1]);
    assert_eq!(f.table.waiting(t(1)), None, "{request} granted");
    assert_eq!(f.release_all(1), vec![2]);
}

#[test]
fn upgrade_of_a_key_read_through_a_range() {
    let mut f = Fixture::new();
    f.must_grant(1, range("a", Some("c")), S);
    f.must_wait(2, key("b"), X, &[1]);
    f.must_grant(1, key("b"), X);
    assert_eq!(f.table.blockers(f.table.waiting(t(2)).expect("t2 waits"))[0].span, key("b"));
    assert_eq!(f.release_shared(1), vec![], "t1 keeps its X on b");
    assert_eq!(f.release_all(1), vec![2]);
}

#[test]
fn range_lock_blocks_writers_inside_it_and_only_inside() {
    let mut f = Fixture::new();
    f.must_grant(1, range("b", Some("d")), S);
    f.must_grant(2, key("a"), X);
    f.must_grant(3, key("c"), S);
    f.must_wait(4, key("b"), X, &[1]);
    f.must_wait(5, key("c"), X, &[3, 1]);
    f.must_wait(6, LockSpan::key(b"c\xff".to_vec()), X, &[1]);
    f.must_grant(7, key("d"), X);
    // A second SCAN over the range lines up behind the queued writers inside it.
    f.must_wait(8, range("b", Some("d")), S, &[4, 5, 6]);
    assert_eq!(f.release_all(1), vec![4, 6]);
    let waiting: Vec<_> = f.table.waits().iter().map(|w| (w.txn.seq, w.blockers.len())).collect();
    assert_eq!(waiting, vec![(5, 1), (8, 3)], "t5 on t3's S; t8 on t4, t6's X and t5's request");
    assert_eq!(f.release_all(3), vec![5]);
    f.release_all(4);
    f.release_all(5);
    assert_eq!(f.release_all(6), vec![8]);
}

#[test]
fn range_to_the_end_of_the_key_space() {
    let mut f = Fixture::new();
    f.must_grant(1, range("m", None), S);
    f.must_grant(2, key("l"), X);
    f.must_wait(3, key("m"), X, &[1]);
    f.must_wait(4, LockSpan::key(b"\xff\xff".to_vec()), X, &[1]);
    assert_eq!(f.release_all(1), vec![3, 4]);
}

#[test]
fn range_request_waits_for_writers_inside_it() {
    let mut f = Fixture::new();
    f.must_grant(1, key("b"), X);
    f.must_wait(2, range("a", Some("c")), S, &[1]);
    f.must_grant(3, range("c", Some("d")), S);
    // A writer inside the queued range lines up behind it; a reader does not conflict with it.
    f.must_wait(4, key("bb"), X, &[2]);
    f.must_grant(5, key("ba"), S);
    assert_eq!(f.release_all(1), vec![2]);
    assert_eq!(f.release_all(2), vec![4]);
}

#[test]
fn empty_range_is_granted_and_recorded_nowhere() {
    let mut f = Fixture::new();
    f.must_grant(1, key("b"), X);
    f.must_grant(2, range("b", Some("b")), S);
    f.must_grant(2, range("c", Some("a")), S);
    assert!(f.table.held(t(2)).is_empty());
}

#[test]
fn ranges_never_conflict_with_ranges() {
    let mut f = Fixture::new();
    f.must_grant(1, range("a", None), S);
    f.must_grant(2, range("b", Some("c")), S);
    f.must_grant(3, range("", None), S);
}

#[test]
fn release_shared_keeps_exclusive_locks() {
    let mut f = Fixture::new();
    f.must_grant(1, key("a"), S);
    f.must_grant(1, key("b"), X);
    f.must_grant(1, range("c", Some("e")), S);
    f.must_wait(2, key("a"), X, &[1]);
    f.must_wait(3, key("d"), X, &[1]);
    f.must_wait(4, key("b"), S, &[1]);
    assert_eq!(f.release_shared(1), vec![2, 3]);
    assert!(f.table.holds(t(1), b"b", X));
    assert!(!f.table.holds(t(1), b"a", S));
    assert!(!f.table.holds_range(t(1), b"c", Some(b"e")));
    assert_eq!(f.table.held(t(1)), vec![(key("b"), X)]);
    assert_eq!(f.release_all(1), vec![4]);
    assert_eq!(f.release_shared(9), vec![], "an unknown transaction releases nothing");
}

/// A SCAN stopped by its LIMIT narrows its range: writers past the new end are granted, those
/// inside still wait; a range held twice (an earlier SCAN's) keeps covering; a range not held
/// exactly is left alone.
#[test]
fn narrowing_a_range_grants_the_writers_past_its_new_end() {
    let mut f = Fixture::new();
    f.must_grant(1, range("b", Some("f")), S);
    f.must_wait(2, key("e"), X, &[1]);
    f.must_wait(3, key("c"), X, &[1]);
    let granted = f.table.narrow_range(t(1), b"b", Some(b"f"), b"c\0".to_vec());
    let granted: Vec<u64> = granted.expect("held").iter().map(|g| g.txn.seq).collect();
    assert_eq!(granted, vec![2], "e is past the new end, c is not");
    assert!(f.table.holds_range(t(1), b"b", Some(b"c\0")));
    assert!(!f.table.holds_range(t(1), b"b", Some(b"f")));
    assert_eq!(f.table.narrow_range(t(1), b"b", Some(b"f"), b"d".to_vec()), None, "not held");
    f.table.check_invariants();

    // Narrowed onto a range it holds already: the wider one goes, the narrower stays.
    f.must_grant(4, range("x", Some("z")), S);
    f.must_grant(4, range("x", None), S);
    assert_eq!(f.table.narrow_range(t(4), b"x", None, b"z".to_vec()), Some(Vec::new()));
    assert!(f.table.holds_range(t(4), b"x", Some(b"z")));
    assert!(!f.table.holds(t(4), b"zz", S));
    f.table.check_invariants();

    // Two statements hold one range (the second covered by the first): narrowing one hold
    // leaves the other's, so a writer inside still waits.
    f.must_grant(5, range("m", Some("p")), S);
    f.must_grant(5, range("m", Some("p")), S);
    assert_eq!(f.table.narrow_range(t(5), b"m", Some(b"p"), b"n".to_vec()), Some(Vec::new()));
    assert!(f.table.holds_range(t(5), b"m", Some(b"p")), "the other hold stays");
    f.must_wait(6, key("o"), X, &[5]);
    let granted = f.table.narrow_range(t(5), b"m", Some(b"p"), b"n".to_vec());
    let granted: Vec<u64> = granted.expect("held").iter().map(|g| g.txn.seq).collect();
    assert_eq!(granted, vec![6], "both holds narrowed: o is free");
    f.table.check_invariants();

    // A READ of a key the range covers takes its own S lock, which outlives the narrowing.
    f.must_grant(7, range("q", Some("u")), S);
    f.must_grant(7, key("s"), S);
    assert_eq!(f.table.narrow_range(t(7), b"q", Some(b"u"), b"r".to_vec()), Some(Vec::new()));
    assert!(f.table.holds(t(7), b"s", S), "the READ's own lock stays");
    f.must_wait(8, key("s"), X, &[7]);
    f.table.check_invariants();
}

#[test]
fn cancel_unblocks_later_waiters() {
    let mut f = Fixture::new();
    f.must_grant(1, key("a"), S);
    let writer = f.must_wait(2, key("a"), X, &[1]);
    f.must_wait(3, key("a"), S, &[2]);
    assert_eq!(f.cancel(writer), Some((2, vec![3])));
    assert_eq!(f.cancel(writer), None, "the epoch has passed");
    assert!(f.table.blockers(writer).is_empty());
    assert_eq!(f.table.waiting(t(2)), None);
    assert_eq!(f.table.request_txn(writer), None);
    assert_eq!(f.table.txns(), vec![t(1), t(3)], "t2 held nothing and is gone");
}

#[test]
fn release_all_withdraws_the_waiting_request() {
    let mut f = Fixture::new();
    f.must_grant(1, key("a"), X);
    f.must_grant(2, key("b"), X);
    let waiting = f.must_wait(2, key("a"), X, &[1]);
    f.must_wait(3, key("b"), X, &[2]);
    assert_eq!(f.release_all(2), vec![3]);
    assert_eq!(f.cancel(waiting), None);
}

#[test]
fn restore_exclusive_grants_without_queueing_and_keeps_the_term() {
    let mut table = LockTable::new(7);
    assert_eq!(table.term(), 7);
    table.restore_exclusive(t(1), [b"a".to_vec(), b"b".to_vec()]);
    table.restore_exclusive(t(1), [b"a".to_vec()]);
    table.check_invariants();
    assert!(table.holds(t(1), b"a", X) && table.holds(t(1), b"b", X));
    let Acquired::Waiting(request) = table.acquire(t(2), key("a"), S) else {
        panic!("t2 must wait for the restored lock");
    };
    table.check_invariants();
    assert_eq!(table.blockers(request)[0].txn, t(1));
    assert_eq!(table.release_all(t(1)), vec![Grant { request, txn: t(2) }]);
    assert_eq!(table.term(), 7);
}

#[test]
#[should_panic(expected = "despite")]
fn restore_exclusive_over_a_conflicting_lock_is_a_bug() {
    let mut table = LockTable::new(1);
    table.restore_exclusive(t(1), [b"a".to_vec()]);
    table.restore_exclusive(t(2), [b"a".to_vec()]);
}

#[test]
#[should_panic(expected = "still waits")]
fn a_second_request_while_waiting_is_a_bug() {
    let mut f = Fixture::new();
    f.must_grant(1, key("a"), X);
    f.must_wait(2, key("a"), X, &[1]);
    f.acquire(2, key("b"), X);
}

#[test]
#[should_panic(expected = "only ever locked shared")]
fn exclusive_range_is_a_bug() {
    Fixture::new().acquire(1, range("a", None), X);
}

#[test]
fn blockers_name_each_transaction_once_holders_first() {
    let mut f = Fixture::new();
    f.must_grant(1, key("a"), S);
    f.must_grant(1, range("a", Some("b")), S);
    f.must_grant(2, key("a"), S);
    f.must_wait(3, key("a"), X, &[1, 2]);
    let blockers = f.table.blockers(f.table.waiting(t(3)).expect("t3 waits"));
    assert_eq!(blockers[0], Blocker { txn: t(1), span: key("a"), mode: S }, "first span found");
    // t4 waits behind t3's queued X and t1, t2's S locks: holders come first.
    f.must_wait(4, key("a"), X, &[1, 2, 3]);
}

#[test]
fn listings_are_sorted_and_in_queue_order() {
    let mut f = Fixture::new();
    f.must_grant(5, key("a"), X);
    f.must_grant(2, key("b"), S);
    f.must_wait(4, key("a"), S, &[5]);
    f.must_wait(3, key("b"), X, &[2]);
    assert_eq!(f.table.txns(), vec![t(2), t(3), t(4), t(5)]);
    let waits = f.table.waits();
    assert_eq!(waits.len(), 2);
    assert_eq!((waits[0].txn, &waits[0].span, waits[0].mode), (t(4), &key("a"), S));
    assert_eq!(waits[1].blockers, vec![Blocker { txn: t(2), span: key("b"), mode: S }]);
    assert!(waits[0].request < waits[1].request);
}

#[test]
fn thousands_of_keys_release_in_one_call() {
    let mut table = LockTable::new(1);
    let keys: Vec<Key> = (0..5000u32).map(|i| i.to_be_bytes().to_vec()).collect();
    for key in &keys {
        assert_eq!(table.acquire(t(1), LockSpan::Key(key.clone()), X), Acquired::Granted);
    }
    for waiter in 2..40 {
        let key = keys[usize::try_from(waiter * 100).expect("small")].clone();
        assert!(matches!(table.acquire(t(waiter), LockSpan::Key(key), S), Acquired::Waiting(_)));
    }
    let scan = LockSpan::range(keys[10].clone(), Some(keys[4000].clone()));
    assert!(matches!(table.acquire(t(40), scan, S), Acquired::Waiting(_)));
    table.check_invariants();
    assert_eq!(table.release_all(t(1)).len(), 39);
    table.check_invariants();
}
