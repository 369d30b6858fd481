//! Shared test helpers: a tiny notation for hand-made histories, and a generator of serial
//! executions of an in-memory reference list-append store with overlapping intervals.
//!
//! Notation for micro-ops, space-separated: `x+1` appends 1 to x; `x=[1,2]` reads x as [1 2];
//! `x=[]` reads it empty; `x=?` is a read with unknown result.
#![allow(dead_code)]

use std::collections::BTreeMap;

use check::history::{Event, History, MicroOp, Recorder};
use check::{AnomalyKind, Model, Report, check};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Parses the micro-op notation.
pub fn ops(text: &str) -> Vec<MicroOp> {
    text.split_whitespace()
        .map(|token| {
            if let Some((key, value)) = token.split_once('+') {
                MicroOp::append(key, value.parse().expect("append value"))
            } else if let Some((key, value)) = token.split_once('=') {
                if value == "?" {
                    MicroOp::read(key)
                } else {
                    let inner = value.trim_start_matches('[').trim_end_matches(']');
                    let values = if inner.is_empty() {
                        Vec::new()
                    } else {
                        inner.split(',').map(|v| v.parse().expect("read element")).collect()
                    };
                    MicroOp::read_result(key, values)
                }
            } else {
                panic!("bad micro-op {token:?}")
            }
        })
        .collect()
}

/// Replaces read results by unknown, as in an invoke.
pub fn invoke_form(ops: &[MicroOp]) -> Vec<MicroOp> {
    ops.iter()
        .map(|op| match op {
            MicroOp::Read { key, .. } => MicroOp::read(key.clone()),
            other => other.clone(),
        })
        .collect()
}

/// Builds a hand-made history event by event (time = 100 × index).
#[derive(Default)]
pub struct H {
    recorder: Recorder,
    time: u64,
}

impl H {
    pub fn new() -> H {
        H::default()
    }

    fn tick(&mut self) -> u64 {
        self.time += 100;
        self.time
    }

    /// Makes process `p` one of session `s`'s processes (before `p`'s first event).
    pub fn session(&mut self, p: u64, s: u64) -> &mut H {
        self.recorder.join_session(p, s);
        self
    }

    /// Invokes `text` on process `p` (reads become unknown).
    pub fn invoke(&mut self, p: u64, text: &str) -> &mut H {
        let t = self.tick();
        self.recorder.invoke(p, t, invoke_form(&ops(text)));
        self
    }

    /// Completes process `p`'s pending txn as ok with `text`.
    pub fn ok(&mut self, p: u64, text: &str) -> &mut H {
        let t = self.tick();
        self.recorder.ok(p, t, ops(text));
        self
    }

    /// Completes process `p`'s pending txn as fail.
    pub fn fail(&mut self, p: u64) -> &mut H {
        let t = self.tick();
        self.recorder.fail(p, t);
        self
    }

    /// Completes process `p`'s pending txn as fail, with the reads of `text` (the first
    /// micro-ops of its invoke) completed before it ended.
    pub fn fail_after(&mut self, p: u64, text: &str) -> &mut H {
        let t = self.tick();
        self.recorder.fail_after(p, t, ops(text));
        self
    }

    /// Completes process `p`'s pending txn as info, with the reads of `text`.
    pub fn info_after(&mut self, p: u64, text: &str) -> &mut H {
        let t = self.tick();
        self.recorder.info_after(p, t, ops(text));
        self
    }

    /// Completes process `p`'s pending txn as info.
    pub fn info(&mut self, p: u64) -> &mut H {
        let t = self.tick();
        self.recorder.info(p, t);
        self
    }

    /// Invokes and completes `text` as ok on process `p`.
    pub fn txn(&mut self, p: u64, text: &str) -> &mut H {
        self.invoke(p, text).ok(p, text)
    }

    /// Invokes and fails `text` on process `p`.
    pub fn failed(&mut self, p: u64, text: &str) -> &mut H {
        self.invoke(p, text).fail(p)
    }

    pub fn history(&self) -> History {
        self.recorder.history()
    }

    pub fn jsonl(&self) -> String {
        self.recorder.to_jsonl()
    }

    pub fn check(&self, model: Model) -> Report {
        check(&self.history(), model)
    }
}

/// Asserts `report` found `kind`, printing the report otherwise.
pub fn must_find(report: &Report, kind: AnomalyKind) {
    assert!(!report.valid, "expected {kind}, got a valid report:\n{report}");
    assert!(report.has(kind), "expected {kind}:\n{report}");
    let anomaly = report.anomalies.iter().find(|a| a.kind == kind).expect("kept in detail");
    assert!(!anomaly.txns.is_empty() && !anomaly.explanation.is_empty(), "{anomaly}");
}

/// Asserts `report` is valid.
pub fn must_pass(report: &Report) {
    assert!(report.valid, "expected valid:\n{report}");
}

/// Outcome planned for a generated transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    Ok,
    Fail,
    InfoCommitted,
    InfoLost,
}

/// Parameters of a generated serial execution.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub txns: usize,
    pub workers: usize,
    /// Keys active at once.
    pub keys: usize,
    /// A key is retired after this many appends (then replaced by a fresh key).
    pub appends_per_key_max: usize,
    /// Whether to plan fail and info outcomes.
    pub faults: bool,
}

/// Worker state in the generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Worker {
    Idle,
    Invoked(usize),
    Done(usize),
}

/// Generates a serial execution of a reference list-append store: transactions take effect
/// one at a time in generation order, each inside its [invoke, completion] interval, and a
/// worker runs one transaction at a time (a new process id after each info). Realtime order is
/// therefore consistent with the serial order.
pub fn serial_history(seed: u64, shape: Shape) -> History {
    let mut rng = SmallRng::seed_from_u64(seed);
    // Plan the transactions: worker, micro-ops, outcome.
    let mut active: Vec<(String, usize)> = (0..shape.keys).map(|k| (format!("k{k}"), 0)).collect();
    let mut next_key = shape.keys;
    let mut next_value: i64 = 1;
    let mut plans: Vec<(usize, Vec<MicroOp>, Plan)> = Vec::with_capacity(shape.txns);
    for _ in 0..shape.txns {
        let worker = rng.random_range(0..shape.workers);
        let mut txn_ops = Vec::new();
        for _ in 0..rng.random_range(1..=4) {
            // Exponentially skewed key choice (Elle's generator): key i twice as likely as i+1.
            let mut slot = 0;
            while slot + 1 < active.len() && rng.random_bool(0.5) {
                slot += 1;
            }
            if rng.random_bool(0.5) {
                txn_ops.push(MicroOp::read(active[slot].0.as_str()));
            } else {
                txn_ops.push(MicroOp::append(active[slot].0.as_str(), next_value));
                next_value += 1;
                active[slot].1 += 1;
                if active[slot].1 >= shape.appends_per_key_max {
                    active[slot] = (format!("k{next_key}"), 0);
                    next_key += 1;
                }
            }
        }
        let plan = if !shape.faults {
            Plan::Ok
        } else {
            match rng.random_range(0..100) {
                0..80 => Plan::Ok,
                80..88 => Plan::Fail,
                88..94 => Plan::InfoCommitted,
                _ => Plan::InfoLost,
            }
        };
        plans.push((worker, txn_ops, plan));
    }
    let mut queues: Vec<std::collections::VecDeque<usize>> =
        vec![Default::default(); shape.workers];
    for (i, (w, _, _)) in plans.iter().enumerate() {
        queues[*w].push_back(i);
    }

    let mut recorder = Recorder::new();
    let mut time = 0u64;
    let mut store: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut results: Vec<Option<Vec<MicroOp>>> = vec![None; shape.txns];
    let mut state = vec![Worker::Idle; shape.workers];
    let mut process: Vec<u64> = (0..shape.workers as u64).collect();
    let workers = shape.workers as u64;

    let complete = |w: usize,
                    i: usize,
                    recorder: &mut Recorder,
                    time: &mut u64,
                    process: &mut Vec<u64>,
                    results: &mut Vec<Option<Vec<MicroOp>>>| {
        *time += 1 + (i as u64 % 7);
        match plans[i].2 {
            Plan::Ok => {
                recorder.ok(process[w], *time, results[i].take().expect("executed"));
            }
            Plan::Fail => {
                recorder.fail(process[w], *time);
            }
            Plan::InfoCommitted | Plan::InfoLost => {
                recorder.info(process[w], *time);
                process[w] += workers;
            }
        }
    };

    for i in 0..shape.txns {
        let w = plans[i].0;
        // Noise: other workers complete finished transactions or invoke their next one early.
        for _ in 0..rng.random_range(0..3) {
            let q = rng.random_range(0..shape.workers);
            if q == w {
                continue;
            }
            match state[q] {
                Worker::Done(j) => {
                    complete(q, j, &mut recorder, &mut time, &mut process, &mut results);
                    state[q] = Worker::Idle;
                }
                Worker::Idle => {
                    if let Some(&j) = queues[q].front() {
                        queues[q].pop_front();
                        time += 1;
                        recorder.invoke(process[q], time, plans[j].1.clone());
                        state[q] = Worker::Invoked(j);
                    }
                }
                Worker::Invoked(_) => {}
            }
        }
        if let Worker::Done(j) = state[w] {
            complete(w, j, &mut recorder, &mut time, &mut process, &mut results);
            state[w] = Worker::Idle;
        }
        if state[w] == Worker::Idle {
            let j = queues[w].pop_front().expect("transaction i is queued on its worker");
            assert_eq!(j, i, "a worker's queue is in serial order");
            time += 1;
            recorder.invoke(process[w], time, plans[i].1.clone());
            state[w] = Worker::Invoked(i);
        }
        assert_eq!(state[w], Worker::Invoked(i));
        // Take effect now, at the serial point.
        if matches!(plans[i].2, Plan::Ok | Plan::InfoCommitted) {
            let mut done = Vec::new();
            for op in &plans[i].1 {
                match op {
                    MicroOp::Append { key, value } => {
                        store.entry(key.to_string()).or_default().push(*value);
                        done.push(op.clone());
                    }
                    MicroOp::Read { key, .. } => {
                        let list = store.get(key.as_str()).cloned().unwrap_or_default();
                        done.push(MicroOp::read_result(key.clone(), list));
                    }
                }
            }
            results[i] = Some(done);
        }
        state[w] = Worker::Done(i);
    }
    for (w, worker) in state.iter().enumerate() {
        if let Worker::Done(j) = *worker {
            complete(w, j, &mut recorder, &mut time, &mut process, &mut results);
        }
    }
    recorder.into_history()
}

/// Rebuilds a history from (mutated) events.
pub fn rebuild(events: Vec<Event>) -> History {
    History::from_events(events).expect("mutation keeps the history well-formed")
}
