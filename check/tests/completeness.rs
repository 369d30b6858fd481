//! Final-read completeness (TESTING §7a): every ok append present exactly once, every fail
//! append absent, info appends reported for comparison with `TxnStatus`.

mod common;

use std::collections::BTreeMap;

use check::completeness::{FinalReadViolation as V, check_final_reads};
use check::history::Key;
use common::H;

fn finals(entries: &[(&str, &[i64])]) -> BTreeMap<Key, Vec<i64>> {
    entries.iter().map(|(k, v)| (Key::from(*k), v.to_vec())).collect()
}

fn history() -> check::history::History {
    let mut h = H::new();
    h.txn(1, "x+1 y+1"); // T0 ok
    h.failed(2, "x+2"); // T2 fail
    h.invoke(3, "x+3 y+3").info(3); // T4 info
    h.invoke(4, "y+4").info(4); // T6 info
    h.txn(5, "x+5"); // T8 ok
    h.history()
}

#[test]
fn complete_final_reads_pass_and_resolve_info() {
    let report = check_final_reads(&history(), &finals(&[("x", &[1, 3, 5]), ("y", &[1, 3])]));
    assert!(report.is_valid(), "{report}");
    assert_eq!(report.info_committed.iter().copied().collect::<Vec<_>>(), vec![4]);
    assert_eq!(report.info_absent.iter().copied().collect::<Vec<_>>(), vec![6]);
    assert!(report.info_present.contains(&(Key::from("y"), 3)));
}

#[test]
fn lost_duplicated_unexpected_and_partial_are_reported() {
    let report = check_final_reads(&history(), &finals(&[("x", &[1, 2, 3, 9, 3]), ("y", &[1])]));
    assert!(!report.is_valid());
    let v = &report.violations;
    assert!(v.contains(&V::OkMissing { key: Key::from("x"), value: 5, txn: 8 }), "{report}");
    assert!(v.contains(&V::FailPresent { key: Key::from("x"), value: 2, txn: 2 }), "{report}");
    assert!(v.contains(&V::Duplicated { key: Key::from("x"), value: 3, count: 2 }), "{report}");
    assert!(v.contains(&V::Unknown { key: Key::from("x"), value: 9 }), "{report}");
    assert!(v.iter().any(|x| matches!(x, V::InfoPartial { txn: 4, .. })), "{report}");
    assert!(report.to_string().contains("lost: 5 appended to x by ok T8"), "{report}");
}

#[test]
fn absent_key_reads_as_empty() {
    let report = check_final_reads(&history(), &finals(&[("x", &[1, 5])]));
    assert!(report.violations.contains(&V::OkMissing { key: Key::from("y"), value: 1, txn: 0 }));
}

#[test]
fn a_read_that_the_final_read_does_not_extend_is_reported() {
    // An info append observed by an ok read (taken as committed by the history check), then
    // absent at the end: the read saw a write that is gone.
    let mut h = H::new();
    h.txn(1, "x+1"); // T0 ok
    h.invoke(2, "x+2").info(2); // T2 info
    h.txn(3, "x=[1,2]"); // T4 ok read
    h.txn(4, "x=[1]"); // T6 ok read, a prefix: fine
    let report = check_final_reads(&h.history(), &finals(&[("x", &[1])]));
    let gone = V::ReadNotExtended { key: Key::from("x"), txn: 4, observed: vec![1, 2] };
    assert_eq!(report.violations, vec![gone], "{report}");
    assert!(report.to_string().contains("gone: ok T4 read x = [1, 2]"), "{report}");
    // Extended, it passes.
    let report = check_final_reads(&h.history(), &finals(&[("x", &[1, 2])]));
    assert!(report.is_valid(), "{report}");
}

#[test]
fn a_read_of_a_key_with_no_final_read_is_not_extended() {
    // The key reads as empty at the end, so a read that saw the info append is gone (the check
    // skipped keys absent from the final reads; found by a review, 2026-12-07).
    let mut h = H::new();
    h.invoke(1, "x+1").info(1); // T0 info
    h.txn(2, "x=[1]"); // T2 ok read
    let report = check_final_reads(&h.history(), &finals(&[]));
    let gone = V::ReadNotExtended { key: Key::from("x"), txn: 2, observed: vec![1] };
    assert!(report.violations.contains(&gone), "{report}");
}
