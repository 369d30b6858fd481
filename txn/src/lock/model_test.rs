//! Differential test: [`LockTable`] against a deliberately dumb model of the same rules
//! (etcd's `quorum/quick_test.go` idea). The model keeps a flat list of held locks and a flat
//! queue and decides everything by brute force with [`LockSpan::conflicts`]; both are fed the
//! same random operations and must give the same answers, and the table's invariants must hold
//! after every step. Fixed seeds, so a failure names the seed that reproduces it.

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::lock_table_test::t;
use super::*;
use crate::types::Key;
use crate::types::TxnId;

/// Random sequences run.
const MODEL_CASES: u64 = 400;
/// Operations per sequence.
const MODEL_STEPS: usize = 60;
/// Transactions per sequence (few, so that they collide often).
const MODEL_TXNS: u64 = 5;
/// Keys: single letters, so ranges between them include boundaries and gaps.
const MODEL_KEYS: &[&str] = &["a", "b", "c", "d", "e", "f"];

/// A queued request in the model.
#[derive(Clone, Debug)]
struct ModelRequest {
    id: RequestId,
    txn: TxnId,
    span: LockSpan,
    mode: LockMode,
    upgrade: bool,
}

/// The dumb model: lists and brute force.
#[derive(Default)]
struct Model {
    held: Vec<(TxnId, LockSpan, LockMode)>,
    queue: Vec<ModelRequest>,
    next_request: u64,
}

impl Model {
    fn conflicts_held(&self, txn: TxnId, span: &LockSpan, mode: LockMode) -> Vec<TxnId> {
        self.held
            .iter()
            .filter(|(holder, held, held_mode)| {
                *holder != txn && held.conflicts(*held_mode, span, mode)
            })
            .map(|(holder, _, _)| *holder)
            .collect()
    }

    /// A queued request `r` makes a later request of `txn` wait when it is another
    /// transaction's, conflicts, and does not itself wait for a lock `txn` holds.
    fn holds_up(&self, r: &ModelRequest, txn: TxnId, span: &LockSpan, mode: LockMode) -> bool {
        r.txn != txn
            && r.span.conflicts(r.mode, span, mode)
            && !self.conflicts_held(r.txn, &r.span, r.mode).contains(&txn)
    }

    fn holds(&self, txn: TxnId, key: &[u8], mode: LockMode) -> bool {
        self.held.iter().any(|(holder, span, held_mode)| {
            *holder == txn && span.contains(key) && held_mode.covers(mode)
        })
    }

    /// Union coverage by brute force: every key that could tell two answers apart (each range
    /// bound and the byte after it) inside [from, to) must be covered by one held range. With
    /// single-letter keys, checking the bounds themselves and each bound with a 0 appended is
    /// enough to catch a gap.
    fn holds_range(&self, txn: TxnId, from: &[u8], to: Option<&[u8]>) -> bool {
        if to.is_some_and(|to| to <= from) {
            return true;
        }
        let ranges: Vec<&LockSpan> = self
            .held
            .iter()
            .filter(|(holder, span, _)| *holder == txn && matches!(span, LockSpan::Range { .. }))
            .map(|(_, span, _)| span)
            .collect();
        let mut probes: Vec<Key> = vec![from.to_vec()];
        for span in &ranges {
            if let LockSpan::Range { from, to } = span {
                probes.push(from.clone());
                if let Some(to) = to {
                    probes.push(to.clone());
                }
            }
        }
        let mut with_suffix: Vec<Key> =
            probes.iter().map(|p| [p.as_slice(), &[0]].concat()).collect();
        probes.append(&mut with_suffix);
        probes.push(vec![0xff; 8]);
        let inside = |key: &[u8]| from <= key && to.is_none_or(|to| key < to);
        probes.iter().filter(|p| inside(p)).all(|p| ranges.iter().any(|span| span.contains(p)))
    }

    fn covers(&self, txn: TxnId, span: &LockSpan, mode: LockMode) -> bool {
        match span {
            LockSpan::Key(key) => self.holds(txn, key, mode),
            LockSpan::Range { from, to } => self.holds_range(txn, from, to.as_deref()),
        }
    }

    fn grant(&mut self, txn: TxnId, span: LockSpan, mode: LockMode) {
        if mode == LockMode::Exclusive {
            // The X replaces the transaction's S on that key.
            self.held.retain(|(holder, held, held_mode)| {
                !(*holder == txn && *held == span && *held_mode == LockMode::Shared)
            });
        }
        self.held.push((txn, span, mode));
    }

    fn acquire(&mut self, txn: TxnId, span: LockSpan, mode: LockMode) -> Acquired {
        if span.is_empty() {
            return Acquired::Granted;
        }
        if self.covers(txn, &span, mode) {
            // A covered range is one more hold of its own; a key covered by ranges alone is
            // recorded as S (one held as a key, S or X, is not recorded again).
            let held_as_key = |held: &LockSpan| matches!(held, LockSpan::Key(_)) && *held == span;
            let record = match &span {
                LockSpan::Range { .. } => true,
                LockSpan::Key(_) => {
                    !self.held.iter().any(|(holder, held, _)| *holder == txn && held_as_key(held))
                }
            };
            if record {
                self.held.push((txn, span, mode));
            }
            return Acquired::Granted;
        }
        let upgrade = match &span {
            LockSpan::Key(key) => {
                mode == LockMode::Exclusive && self.holds(txn, key, LockMode::Shared)
            }
            LockSpan::Range { .. } => false,
        };
        let blocked_held = !self.conflicts_held(txn, &span, mode).is_empty();
        let blocked_queue = self.queue.iter().any(|r| self.holds_up(r, txn, &span, mode));
        if !blocked_held && (upgrade || !blocked_queue) {
            self.grant(txn, span, mode);
            return Acquired::Granted;
        }
        self.next_request += 1;
        let id = RequestId(self.next_request);
        let request = ModelRequest { id, txn, span, mode, upgrade };
        let position = if upgrade {
            self.queue.iter().filter(|r| r.upgrade).count()
        } else {
            self.queue.len()
        };
        self.queue.insert(position, request);
        Acquired::Waiting(id)
    }

    fn regrant(&mut self) -> Vec<Grant> {
        let mut grants = Vec::new();
        let mut index = 0;
        while index < self.queue.len() {
            let request = self.queue[index].clone();
            let blocked_held =
                !self.conflicts_held(request.txn, &request.span, request.mode).is_empty();
            let blocked_queue = self.queue[..index]
                .iter()
                .any(|r| self.holds_up(r, request.txn, &request.span, request.mode));
            if blocked_held || blocked_queue {
                index += 1;
            } else {
                self.queue.remove(index);
                self.grant(request.txn, request.span, request.mode);
                grants.push(Grant { request: request.id, txn: request.txn });
            }
        }
        grants
    }

    fn release_all(&mut self, txn: TxnId) -> Vec<Grant> {
        self.held.retain(|(holder, _, _)| *holder != txn);
        self.queue.retain(|r| r.txn != txn);
        self.regrant()
    }

    fn release_shared(&mut self, txn: TxnId) -> Vec<Grant> {
        self.held.retain(|(holder, _, mode)| *holder != txn || *mode == LockMode::Exclusive);
        self.regrant()
    }

    fn narrow_range(&mut self, txn: TxnId, from: &Key, to: &Option<Key>, end: Key) -> Vec<Grant> {
        let held = LockSpan::Range { from: from.clone(), to: to.clone() };
        let position = self
            .held
            .iter()
            .position(|(holder, span, _)| *holder == txn && *span == held)
            .expect("the model narrows a range held");
        // One hold of the range shrinks; another hold of it (another statement's) stays.
        self.held[position].1 = LockSpan::Range { from: from.clone(), to: Some(end) };
        self.regrant()
    }

    fn cancel(&mut self, request: RequestId) -> Option<(TxnId, Vec<Grant>)> {
        let position = self.queue.iter().position(|r| r.id == request)?;
        let removed = self.queue.remove(position);
        Some((removed.txn, self.regrant()))
    }

    /// The set of blocking transactions of the request at `position`.
    fn blockers(&self, position: usize) -> Vec<TxnId> {
        let request = &self.queue[position];
        let mut txns = self.conflicts_held(request.txn, &request.span, request.mode);
        txns.extend(
            self.queue[..position]
                .iter()
                .filter(|r| self.holds_up(r, request.txn, &request.span, request.mode))
                .map(|r| r.txn),
        );
        txns.sort();
        txns.dedup();
        txns
    }

    fn waiting(&self, txn: TxnId) -> Option<RequestId> {
        self.queue.iter().find(|r| r.txn == txn).map(|r| r.id)
    }
}

fn random_key(rng: &mut SmallRng) -> Key {
    MODEL_KEYS[rng.random_range(0..MODEL_KEYS.len())].as_bytes().to_vec()
}

fn random_span(rng: &mut SmallRng) -> (LockSpan, LockMode) {
    if rng.random_bool(0.2) {
        let from = random_key(rng);
        let to = if rng.random_bool(0.3) { None } else { Some(random_key(rng)) };
        (LockSpan::Range { from, to }, LockMode::Shared)
    } else {
        let mode = if rng.random_bool(0.5) { LockMode::Shared } else { LockMode::Exclusive };
        (LockSpan::Key(random_key(rng)), mode)
    }
}

/// Runs one random sequence against both and compares every answer.
fn run_case(seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut table = LockTable::new(seed);
    let mut model = Model::default();
    for step in 0..MODEL_STEPS {
        let context = format!("seed {seed} step {step}");
        let txn = t(rng.random_range(1..=MODEL_TXNS));
        match rng.random_range(0..11) {
            0..=5 if table.waiting(txn).is_none() => {
                let (span, mode) = random_span(&mut rng);
                let got = table.acquire(txn, span.clone(), mode);
                let want = model.acquire(txn, span.clone(), mode);
                assert_eq!(got, want, "{context}: {txn} acquire {span} {mode}");
            }
            0..=6 => {
                assert_eq!(
                    table.release_all(txn),
                    model.release_all(txn),
                    "{context}: release_all {txn}"
                );
            }
            7 => {
                let got = table.release_shared(txn);
                assert_eq!(got, model.release_shared(txn), "{context}: release_shared {txn}");
            }
            10 => {
                // A SCAN stopping at its LIMIT: one of the txn's ranges shrinks to an end
                // inside it (a key, or a key with a 0 byte appended: just past a row).
                let ranges: Vec<(Key, Option<Key>)> = model
                    .held
                    .iter()
                    .filter_map(|(holder, span, _)| match span {
                        LockSpan::Range { from, to } if *holder == txn => {
                            Some((from.clone(), to.clone()))
                        }
                        _ => None,
                    })
                    .collect();
                if ranges.is_empty() {
                    continue;
                }
                let (from, to) = ranges[rng.random_range(0..ranges.len())].clone();
                let mut end = random_key(&mut rng);
                if rng.random_bool(0.5) {
                    end.push(0);
                }
                if end <= from || to.as_ref().is_some_and(|to| end >= *to) {
                    continue;
                }
                let got = table.narrow_range(txn, &from, to.as_deref(), end.clone());
                let want = model.narrow_range(txn, &from, &to, end.clone());
                assert_eq!(
                    got,
                    Some(want),
                    "{context}: {txn} narrows [{from:?}, {to:?}) to {end:?}"
                );
            }
            _ => {
                let request = RequestId(rng.random_range(1..=model.next_request.max(1)));
                assert_eq!(
                    table.cancel(request),
                    model.cancel(request),
                    "{context}: cancel {request}"
                );
            }
        }
        table.check_invariants();
        compare(&table, &model, &mut rng, &context);
    }
}

/// Compares every query of the table with the model.
fn compare(table: &LockTable, model: &Model, rng: &mut SmallRng, context: &str) {
    let waits = table.waits();
    let queue: Vec<(RequestId, TxnId)> = waits.iter().map(|w| (w.request, w.txn)).collect();
    let model_queue: Vec<(RequestId, TxnId)> = model.queue.iter().map(|r| (r.id, r.txn)).collect();
    assert_eq!(queue, model_queue, "{context}: queue");
    for (position, wait) in waits.iter().enumerate() {
        let mut blockers: Vec<TxnId> = wait.blockers.iter().map(|b| b.txn).collect();
        blockers.sort();
        assert_eq!(blockers, model.blockers(position), "{context}: blockers of {}", wait.request);
        assert_eq!(table.blockers(wait.request), wait.blockers, "{context}: blockers agree");
    }
    for n in 1..=MODEL_TXNS {
        let txn = t(n);
        assert_eq!(table.waiting(txn), model.waiting(txn), "{context}: waiting {txn}");
        for key in MODEL_KEYS {
            for mode in [LockMode::Shared, LockMode::Exclusive] {
                let got = table.holds(txn, key.as_bytes(), mode);
                assert_eq!(
                    got,
                    model.holds(txn, key.as_bytes(), mode),
                    "{context}: {txn} holds {key} {mode}"
                );
            }
        }
        let from = random_key(rng);
        let to = if rng.random_bool(0.3) { None } else { Some(random_key(rng)) };
        let got = table.holds_range(txn, &from, to.as_deref());
        let want = model.holds_range(txn, &from, to.as_deref());
        assert_eq!(got, want, "{context}: {txn} holds range {:?}", LockSpan::Range { from, to });
    }
    let mut txns: Vec<TxnId> = model.held.iter().map(|(txn, _, _)| *txn).collect();
    txns.extend(model.queue.iter().map(|r| r.txn));
    txns.sort();
    txns.dedup();
    assert_eq!(table.txns(), txns, "{context}: txns");
    assert_eq!(table.is_empty(), txns.is_empty(), "{context}: is_empty");
}

#[test]
fn lock_table_agrees_with_a_naive_model_on_random_sequences() {
    // `TXN_MODEL_CASES=100000` searches longer; the default keeps the suite fast.
    let cases = std::env::var("TXN_MODEL_CASES")
        .map_or(MODEL_CASES, |cases| cases.parse().expect("TXN_MODEL_CASES is a number"));
    for seed in 0..cases {
        run_case(seed);
    }
}
