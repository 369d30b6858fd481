//! Property tests against a reference store (TESTING §7a item 2): random serial executions of
//! an in-memory list-append store, with random overlapping intervals consistent with the
//! serial order, pass every model; one mutation of such a history is caught.

mod common;

use std::collections::HashMap;

use check::history::{Event, EventType, History, MicroOp, Outcome};
use check::{AnomalyKind as K, Model, check};
use common::{Shape, rebuild, serial_history};
use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

/// Cases of the validity property (fixed so the suite's run time is fixed).
const VALID_CASES: u32 = 192;

/// Seeds of the mutation test.
const MUTATION_SEEDS: u64 = 240;

/// Each mutation must have been applied at least this often over all seeds.
const MUTATIONS_APPLIED_MIN: usize = 20;

/// An element never appended by the generator.
const GARBAGE: i64 = 1_000_000_007;

/// A small random shape derived from `seed`.
fn shape(seed: u64) -> Shape {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed);
    Shape {
        txns: rng.random_range(4..40),
        workers: rng.random_range(1..6),
        keys: rng.random_range(1..5),
        appends_per_key_max: rng.random_range(2..20),
        faults: true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: VALID_CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn serial_executions_pass_every_model(seed in any::<u64>()) {
        let history = serial_history(seed, shape(seed));
        for model in Model::ALL {
            let report = check(&history, model);
            prop_assert!(report.valid, "seed {seed}: {report}\n{}", history.to_jsonl());
        }
    }
}

/// A read micro-op site: (event position, micro-op position).
type ReadSite = (usize, usize);

/// The ok reads of a history, with how many reads contain each (key, element).
struct Reads {
    sites: Vec<(ReadSite, String, Vec<i64>)>,
    /// (key, element) -> the read sites showing it.
    containing: HashMap<(String, i64), Vec<ReadSite>>,
}

fn reads(events: &[Event]) -> Reads {
    let mut sites = Vec::new();
    let mut containing = HashMap::new();
    for (e, event) in events.iter().enumerate() {
        if event.kind != EventType::Ok {
            continue;
        }
        for (j, op) in event.value.iter().enumerate() {
            if let MicroOp::Read { key, value: Some(values) } = op {
                for &v in values {
                    containing.entry((key.to_string(), v)).or_insert_with(Vec::new).push((e, j));
                }
                sites.push(((e, j), key.to_string(), values.clone()));
            }
        }
    }
    Reads { sites, containing }
}

/// Replaces the read at `site` by `values`.
fn set_read(events: &mut [Event], (e, j): ReadSite, values: Vec<i64>) {
    if let MicroOp::Read { value, .. } = &mut events[e].value[j] {
        *value = Some(values);
    }
}

/// Drops a non-last element that another read also shows: incompatible-order.
fn drop_element(events: &[Event], rng: &mut SmallRng) -> Option<Vec<Event>> {
    let r = reads(events);
    let mut candidates = Vec::new();
    for (site, key, values) in &r.sites {
        for i in 0..values.len().saturating_sub(1) {
            if r.containing[&(key.clone(), values[i])].len() >= 2 {
                candidates.push((*site, i, values.clone()));
            }
        }
    }
    let (site, i, mut values) = candidates.choose(rng)?.clone();
    values.remove(i);
    let mut events = events.to_vec();
    set_read(&mut events, site, values);
    Some(events)
}

/// Swaps two adjacent elements, the first shown by another read too: incompatible-order.
fn swap_elements(events: &[Event], rng: &mut SmallRng) -> Option<Vec<Event>> {
    let r = reads(events);
    let mut candidates = Vec::new();
    for (site, key, values) in &r.sites {
        for i in 0..values.len().saturating_sub(1) {
            if r.containing[&(key.clone(), values[i])].len() >= 2 {
                candidates.push((*site, i, values.clone()));
            }
        }
    }
    let (site, i, mut values) = candidates.choose(rng)?.clone();
    values.swap(i, i + 1);
    let mut events = events.to_vec();
    set_read(&mut events, site, values);
    Some(events)
}

/// Inserts a never-appended element into a read: garbage-read.
fn insert_element(events: &[Event], rng: &mut SmallRng) -> Option<Vec<Event>> {
    let r = reads(events);
    let (site, _, mut values) = r.sites.choose(rng)?.clone();
    let at = rng.random_range(0..=values.len());
    values.insert(at, GARBAGE);
    let mut events = events.to_vec();
    set_read(&mut events, site, values);
    Some(events)
}

/// Cuts an external read just before the element of an ok writer that completed before the
/// reader began: a stale read across a realtime boundary (strict serializability only).
fn stale_prefix(history: &History, rng: &mut SmallRng) -> Option<Vec<Event>> {
    let txns = history.txns();
    let mut writer: HashMap<(String, i64), usize> = HashMap::new();
    for (t, txn) in txns.iter().enumerate() {
        for op in &txn.ops {
            if let MicroOp::Append { key, value } = op {
                writer.insert((key.to_string(), *value), t);
            }
        }
    }
    let mut candidates = Vec::new();
    for txn in txns.iter().filter(|t| t.outcome == Outcome::Ok) {
        let mut appended: Vec<String> = Vec::new();
        for (j, op) in txn.ops.iter().enumerate() {
            match op {
                MicroOp::Append { key, .. } => appended.push(key.to_string()),
                MicroOp::Read { key, value: Some(values) }
                    if !appended.contains(&key.to_string()) =>
                {
                    for (i, v) in values.iter().enumerate() {
                        let w = &txns[writer[&(key.to_string(), *v)]];
                        if w.outcome == Outcome::Ok
                            && w.completion_index.is_some_and(|c| c < txn.invoke_index)
                        {
                            let site = (txn.completion_index.expect("ok") as usize, j);
                            candidates.push((site, values[..i].to_vec()));
                        }
                    }
                }
                MicroOp::Read { .. } => {}
            }
        }
    }
    let (site, values) = candidates.choose(rng)?.clone();
    let mut events = history.events().to_vec();
    set_read(&mut events, site, values);
    Some(events)
}

/// Turns an ok transaction whose append someone read into a fail: G1a.
fn flip_ok_to_fail(history: &History, rng: &mut SmallRng) -> Option<Vec<Event>> {
    let r = reads(history.events());
    let candidates: Vec<_> = history
        .txns()
        .iter()
        .filter(|t| t.outcome == Outcome::Ok)
        .filter(|t| {
            t.ops.iter().any(|op| match op {
                MicroOp::Append { key, value } => {
                    r.containing.get(&(key.to_string(), *value)).is_some_and(|sites| {
                        sites.iter().any(|&(e, _)| Some(e as u64) != t.completion_index)
                    })
                }
                MicroOp::Read { .. } => false,
            })
        })
        .collect();
    let txn = candidates.choose(rng)?;
    let mut events = history.events().to_vec();
    let completion = txn.completion_index.expect("ok") as usize;
    events[completion].kind = EventType::Fail;
    events[completion].value = events[txn.invoke_index as usize].value.clone();
    Some(events)
}

/// Turns an append-only fail into an ok when a later transaction read one of its keys: the
/// read missed an acknowledged append that completed before it began.
fn flip_fail_to_ok(history: &History, rng: &mut SmallRng) -> Option<Vec<Event>> {
    let txns = history.txns();
    let mut candidates = Vec::new();
    for f in
        txns.iter().filter(|t| t.outcome == Outcome::Fail && t.ops.iter().all(MicroOp::is_append))
    {
        let done = f.completion_index.expect("fail is a completion");
        let later_read = txns.iter().any(|r| {
            r.outcome == Outcome::Ok
                && r.invoke_index > done
                && r.ops
                    .iter()
                    .take_while(|op| !op.is_append())
                    .any(|op| f.ops.iter().any(|a| a.key() == op.key()))
        });
        if later_read {
            candidates.push(done as usize);
        }
    }
    let completion = *candidates.choose(rng)?;
    let mut events = history.events().to_vec();
    events[completion].kind = EventType::Ok;
    Some(events)
}

#[test]
fn single_mutations_are_caught() {
    let mut applied = [0usize; 6];
    for seed in 0..MUTATION_SEEDS {
        let history = serial_history(seed, shape(seed));
        let mut rng = SmallRng::seed_from_u64(seed);
        let events = history.events();
        let per_op: [(usize, Option<Vec<Event>>, K); 4] = [
            (0, drop_element(events, &mut rng), K::IncompatibleOrder),
            (1, swap_elements(events, &mut rng), K::IncompatibleOrder),
            (2, insert_element(events, &mut rng), K::GarbageRead),
            (3, flip_ok_to_fail(&history, &mut rng), K::G1a),
        ];
        for (slot, mutated, kind) in per_op {
            let Some(mutated) = mutated else { continue };
            applied[slot] += 1;
            let mutated = rebuild(mutated);
            for model in Model::ALL {
                let report = check(&mutated, model);
                assert!(
                    report.has(kind),
                    "seed {seed}: expected {kind}: {report}\n{}",
                    mutated.to_jsonl()
                );
            }
        }
        let realtime =
            [(4, stale_prefix(&history, &mut rng)), (5, flip_fail_to_ok(&history, &mut rng))];
        for (slot, mutated) in realtime {
            let Some(mutated) = mutated else { continue };
            applied[slot] += 1;
            let mutated = rebuild(mutated);
            let report = check(&mutated, Model::StrictSerializable);
            assert!(!report.valid, "seed {seed}: mutation {slot} missed:\n{}", mutated.to_jsonl());
        }
    }
    for (slot, count) in applied.iter().enumerate() {
        assert!(
            *count >= MUTATIONS_APPLIED_MIN,
            "mutation {slot} applied only {count} times: {applied:?}"
        );
    }
}
