//! Scale: a 100 000-transaction valid history is checked well under a minute (TESTING §7a
//! item 3; Elle reports 100–160 k txn/s). Prints the time per model.

mod common;

use std::time::{Duration, Instant};

use check::{Model, check};
use common::{Shape, serial_history};

/// Transactions in the generated history.
const TXNS: usize = 100_000;

/// Upper bound per model, generous for a loaded debug-build CI machine.
const CHECK_TIME_MAX: Duration = Duration::from_secs(30);

#[test]
fn hundred_thousand_txns_check_in_seconds() {
    let started = Instant::now();
    let shape = Shape { txns: TXNS, workers: 10, keys: 10, appends_per_key_max: 256, faults: true };
    let history = serial_history(7, shape);
    eprintln!("generated {} txns in {:?}", history.txns().len(), started.elapsed());
    for model in [Model::StrictSerializable, Model::Serializable, Model::Causal] {
        let started = Instant::now();
        let report = check(&history, model);
        let took = started.elapsed();
        eprintln!("{model}: {took:?}: {}", report.summary());
        assert!(report.valid, "{report}");
        assert!(took < CHECK_TIME_MAX, "{model} took {took:?}");
    }
}

#[test]
fn hundred_thousand_txns_with_one_stale_read_are_caught_in_seconds() {
    use check::history::{EventType, MicroOp};
    let shape =
        Shape { txns: TXNS, workers: 10, keys: 10, appends_per_key_max: 256, faults: false };
    let history = serial_history(11, shape);
    // Empty the last non-empty read of the history's middle ok transaction that has one: a
    // stale read across many realtime boundaries.
    let mut events = history.events().to_vec();
    let site = (events.len() / 2..events.len())
        .find(|&e| {
            events[e].kind == EventType::Ok
                && events[e]
                    .value
                    .iter()
                    .any(|op| matches!(op, MicroOp::Read { value: Some(v), .. } if v.len() > 3))
        })
        .expect("some ok read");
    for op in &mut events[site].value {
        if let MicroOp::Read { value: Some(v), .. } = op
            && v.len() > 3
        {
            v.truncate(1);
            break;
        }
    }
    let mutated = common::rebuild(events);
    for model in [Model::StrictSerializable, Model::Serializable, Model::Causal] {
        let started = Instant::now();
        let report = check(&mutated, model);
        let took = started.elapsed();
        eprintln!("{model}: {took:?}: {}", report.summary());
        assert!(took < CHECK_TIME_MAX, "{model} took {took:?}");
        if model == Model::StrictSerializable {
            assert!(!report.valid, "{report}");
            assert!(report.counts.keys().any(|k| k.is_cycle()), "{report}");
        }
    }
}
