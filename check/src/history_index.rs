//! Indexes over a history that every checker shares (Elle `elle/list_append.clj`: `append-index`,
//! `write-index`, `read-index`; TESTING §1.3 steps 3 and 5).
//!
//! - Keys are interned to dense ids (sorted by name, so iteration is deterministic).
//! - `writers`: (key, element) → the transaction and micro-op that appended it. Validation made
//!   appends unique, so every element has at most one writer (*recoverability*).
//! - Version order: per key, the longest read of any `ok` transaction. Every read must be a
//!   prefix of it (*traceability*); reads that are not are flagged (incompatible-order). An
//!   element appended by a committed transaction and never read lies after the whole order.
//! - Committed transactions (`C` in TESTING): `ok` ones, plus `info` ones some `ok` read
//!   observed. An `info` transaction nobody observed contributes no edges.
//! - The reads that `fail` and `info` transactions completed before they ended
//!   (`unfinished_reads`, external ones only: a read after the transaction's own append to the
//!   key shows that append, which never committed) take part in no dependency, but are still
//!   reads of the store: each must show only elements committed transactions appended, once
//!   each, as a prefix of the key's order (aborted-read, garbage-read, duplicate-elements,
//!   incompatible-order check them too; before 2026-12-08 they were not recorded, and a
//!   deadlock victim's dirty read passed, found by a review of the checker).
//!
//! Transactions are referred to by their position in [`History::txns`] as `u32`.

use std::collections::{BTreeSet, HashMap};

use crate::anomaly::TxnRef;
use crate::history::{History, Key, MicroOp, Outcome, Txn};

/// Marks "no transaction" in dense per-position tables.
pub(crate) const NO_TXN: u32 = u32::MAX;

/// A micro-op with its key interned.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op<'a> {
    /// `[append key value]`.
    Append { key: u32, value: i64 },
    /// `[r key value]`; `None` when unknown (non-ok transactions).
    Read { key: u32, value: Option<&'a [i64]> },
}

/// Who appended an element.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Writer {
    /// The appending transaction.
    pub txn: u32,
    /// The append's position among the transaction's micro-ops.
    pub op: u32,
}

/// One read by an `ok` transaction.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyRead<'a> {
    /// The reading transaction.
    pub txn: u32,
    /// The read's position among the transaction's micro-ops.
    pub op: u32,
    /// The list observed.
    pub values: &'a [i64],
    /// Whether the list is a prefix of the key's version order.
    pub prefix: bool,
    /// Whether the read precedes every append of the same key in its transaction.
    pub external: bool,
}

/// What precedes an element in its key's version order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prev {
    /// The element is first: the initial (empty) state precedes it.
    Initial,
    /// This element precedes it.
    Element(i64),
}

/// Shared indexes over one history.
#[derive(Debug)]
pub(crate) struct HistoryIndex<'a> {
    /// The history indexed.
    pub history: &'a History,
    /// Interned keys, sorted by name.
    pub keys: Vec<&'a Key>,
    /// Per transaction, its micro-ops with interned keys.
    pub ops: Vec<Vec<Op<'a>>>,
    /// Per transaction, whether it committed (ok, or info and observed).
    pub committed: Vec<bool>,
    /// (key, element) → writer, over all transactions (fail and info included).
    pub writers: HashMap<(u32, i64), Writer>,
    /// Per key, its version order: the longest ok read.
    pub orders: Vec<&'a [i64]>,
    /// Per key, the writer of each position of its version order ([`NO_TXN`] if none).
    pub order_writers: Vec<Vec<u32>>,
    /// (key, element) → first position in the key's version order.
    pub positions: HashMap<(u32, i64), u32>,
    /// Per key, the reads of ok transactions, in history order.
    pub reads: Vec<Vec<KeyRead<'a>>>,
    /// Per key, the external reads that fail and info transactions completed, in history
    /// order (`prefix` against the order of the ok reads).
    pub unfinished_reads: Vec<Vec<KeyRead<'a>>>,
    /// Per key, whether some read is not a prefix of the version order.
    pub incompatible: Vec<bool>,
}

impl<'a> HistoryIndex<'a> {
    /// Builds every index of `history`.
    pub(crate) fn new(history: &'a History) -> HistoryIndex<'a> {
        let txns = history.txns();
        let key_set: BTreeSet<&Key> =
            txns.iter().flat_map(|t| t.ops.iter().map(MicroOp::key)).collect();
        let keys: Vec<&Key> = key_set.into_iter().collect();
        let key_ids: HashMap<&str, u32> =
            keys.iter().enumerate().map(|(i, k)| (k.as_str(), i as u32)).collect();

        let mut ops = Vec::with_capacity(txns.len());
        let mut writers = HashMap::new();
        let mut reads: Vec<Vec<KeyRead<'a>>> = vec![Vec::new(); keys.len()];
        let mut unfinished_reads: Vec<Vec<KeyRead<'a>>> = vec![Vec::new(); keys.len()];
        for (t, txn) in txns.iter().enumerate() {
            let mut txn_ops = Vec::with_capacity(txn.ops.len());
            let mut appended: Vec<u32> = Vec::new();
            for (j, op) in txn.ops.iter().enumerate() {
                let key = key_ids[op.key().as_str()];
                match op {
                    MicroOp::Append { value, .. } => {
                        writers.insert((key, *value), Writer { txn: t as u32, op: j as u32 });
                        appended.push(key);
                        txn_ops.push(Op::Append { key, value: *value });
                    }
                    MicroOp::Read { value, .. } => {
                        let external = !appended.contains(&key);
                        if txn.outcome != Outcome::Ok
                            && external
                            && let Some(values) = value.as_deref()
                        {
                            unfinished_reads[key as usize].push(KeyRead {
                                txn: t as u32,
                                op: j as u32,
                                values,
                                prefix: true,
                                external,
                            });
                        }
                        let value =
                            if txn.outcome == Outcome::Ok { value.as_deref() } else { None };
                        if let Some(values) = value {
                            reads[key as usize].push(KeyRead {
                                txn: t as u32,
                                op: j as u32,
                                values,
                                prefix: true,
                                external: !appended.contains(&key),
                            });
                        }
                        txn_ops.push(Op::Read { key, value });
                    }
                }
            }
            ops.push(txn_ops);
        }

        let mut orders: Vec<&[i64]> = Vec::with_capacity(keys.len());
        let mut incompatible = vec![false; keys.len()];
        let mut positions = HashMap::new();
        let mut order_writers = Vec::with_capacity(keys.len());
        for (k, key_reads) in reads.iter_mut().enumerate() {
            let mut order: &[i64] = &[];
            for read in key_reads.iter() {
                if read.values.len() > order.len() {
                    order = read.values;
                }
            }
            for read in key_reads.iter_mut() {
                read.prefix = order.starts_with(read.values);
                incompatible[k] |= !read.prefix;
            }
            let mut position_writers = Vec::with_capacity(order.len());
            for (i, v) in order.iter().enumerate() {
                positions.entry((k as u32, *v)).or_insert(i as u32);
                position_writers
                    .push(writers.get(&(k as u32, *v)).map_or(NO_TXN, |w: &Writer| w.txn));
            }
            for read in unfinished_reads[k].iter_mut() {
                read.prefix = order.starts_with(read.values);
            }
            orders.push(order);
            order_writers.push(position_writers);
        }

        let mut index = HistoryIndex {
            history,
            keys,
            ops,
            committed: Vec::new(),
            writers,
            orders,
            order_writers,
            positions,
            reads,
            unfinished_reads,
            incompatible,
        };
        index.committed = (0..txns.len())
            .map(|t| match txns[t].outcome {
                Outcome::Ok => true,
                Outcome::Fail => false,
                Outcome::Info => index.ops[t].iter().any(|op| match op {
                    Op::Append { key, value } => index.observed(*key, *value),
                    Op::Read { .. } => false,
                }),
            })
            .collect();
        index
    }

    /// Returns the number of transactions.
    pub(crate) fn len(&self) -> usize {
        self.ops.len()
    }

    /// Returns transaction `t`.
    pub(crate) fn txn(&self, t: u32) -> &'a Txn {
        &self.history.txns()[t as usize]
    }

    /// Returns transaction `t`'s outcome.
    pub(crate) fn outcome(&self, t: u32) -> Outcome {
        self.txn(t).outcome
    }

    /// Cites transaction `t` in a report.
    pub(crate) fn txn_ref(&self, t: u32) -> TxnRef {
        TxnRef::of(self.txn(t))
    }

    /// Returns transaction `t`'s name, `T<invoke index>`.
    pub(crate) fn name(&self, t: u32) -> String {
        self.txn(t).name()
    }

    /// Returns key `k`.
    pub(crate) fn key(&self, k: u32) -> &'a Key {
        self.keys[k as usize]
    }

    /// Returns the writer of element `v` of key `k`, if any transaction appended it.
    pub(crate) fn writer(&self, k: u32, v: i64) -> Option<Writer> {
        self.writers.get(&(k, v)).copied()
    }

    /// Returns whether some ok read of `k` contains `v`.
    pub(crate) fn observed(&self, k: u32, v: i64) -> bool {
        self.positions.contains_key(&(k, v))
            || (self.incompatible[k as usize]
                && self.reads[k as usize].iter().any(|r| r.values.contains(&v)))
    }

    /// Returns what precedes `v` in `k`'s version order; an element never read follows the
    /// whole observed order (TESTING §1.3 step 6, ww).
    pub(crate) fn prev(&self, k: u32, v: i64) -> Prev {
        let order = self.orders[k as usize];
        match self.positions.get(&(k, v)) {
            Some(0) => Prev::Initial,
            Some(&i) => Prev::Element(order[i as usize - 1]),
            None => order.last().map_or(Prev::Initial, |&p| Prev::Element(p)),
        }
    }

    /// Every read of key `k` whose elements must be committed appends, each once, in the key's
    /// order: the ok reads, then the unfinished ones.
    pub(crate) fn checked_reads(&self, k: usize) -> impl Iterator<Item = &KeyRead<'a>> {
        self.reads[k].iter().chain(&self.unfinished_reads[k])
    }

    /// Returns the number of info transactions some read observed.
    pub(crate) fn info_observed(&self) -> usize {
        (0..self.len() as u32)
            .filter(|&t| self.committed[t as usize] && self.outcome(t) == Outcome::Info)
            .count()
    }
}
