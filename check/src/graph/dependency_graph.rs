//! The transaction dependency graph (Adya 1999 §3.3, direct serialization graph; Elle
//! `elle/list_append.clj` `ww-graph`/`wr-graph`/`rw-graph`, `elle/core.clj` realtime and
//! process graphs; TESTING §1.3 step 6).
//!
//! Nodes are committed transactions (ok, or info and observed); there are no self-edges.
//!
//! | edge | rule |
//! |---|---|
//! | ww `W → T` | `T` appends `v` to `k`; `W` appended `p`, the element before `v` in `k`'s order (for a `v` never read: the last observed element; nothing if `v` is first) |
//! | wr `W → T` | `T` read `k` and the read's last element `v` was appended by `W` |
//! | rw `R → T` | same `p` as ww; `R` read `k` ending at `p` (or empty, when `v` is first) |
//! | process `T1 → T2` | consecutive committed transactions of one process |
//! | realtime `T1 → T2` | `T1` is ok and completed before `T2` was invoked (transitively reduced) |
//!
//! Realtime edges use Elle's O(n·p) reduction: a buffer of completed ok transactions; each
//! invoke links every buffered one; an ok completion `d` drops the buffered ones it was linked
//! from (they reach later transactions through `d`) and joins the buffer. Info transactions are
//! never sources; failed ones are not nodes.
//!
//! [`DependencyGraph::explain`] recomputes the reason for one edge, so the graph itself only
//! stores label bits.

use std::collections::HashMap;

use crate::history::{ListDisplay, Outcome};
use crate::history_index::{HistoryIndex, Op, Prev};

use super::cycle::Step;
use super::digraph::{Digraph, PROCESS, REALTIME, RW, WR, WW};

/// Which edges and nodes a graph includes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct GraphOptions {
    /// Adds realtime edges (strict serializability).
    pub realtime: bool,
    /// Adds process edges (strong session serializability).
    pub process: bool,
    /// Keeps only transactions that append (the causal model's read-write check).
    pub writers_only: bool,
}

/// Builds dependency graphs and explains their edges.
#[derive(Debug)]
pub(crate) struct DependencyGraph;

impl DependencyGraph {
    /// Builds the graph over all transactions of `ix` (non-nodes have no edges).
    pub(crate) fn build(ix: &HistoryIndex, options: GraphOptions) -> Digraph {
        let n = ix.len();
        let node: Vec<bool> = (0..n)
            .map(|t| {
                ix.committed[t]
                    && (!options.writers_only
                        || ix.ops[t].iter().any(|op| matches!(op, Op::Append { .. })))
            })
            .collect();
        let mut edges: Vec<(u32, u32, u8)> = Vec::new();
        // Readers by (key, last element); None is the empty read.
        let mut readers: HashMap<(u32, Option<i64>), Vec<u32>> = HashMap::new();
        for (k, key_reads) in ix.reads.iter().enumerate() {
            for read in key_reads {
                if !node[read.txn as usize] {
                    continue;
                }
                let last = read.values.last().copied();
                readers.entry((k as u32, last)).or_default().push(read.txn);
                if let Some(v) = last
                    && let Some(w) = ix.writer(k as u32, v)
                    && node[w.txn as usize]
                {
                    edges.push((w.txn, read.txn, WR));
                }
            }
        }
        for t in 0..n as u32 {
            if !node[t as usize] {
                continue;
            }
            for op in &ix.ops[t as usize] {
                let Op::Append { key, value } = *op else { continue };
                let prev = ix.prev(key, value);
                let last = match prev {
                    Prev::Initial => None,
                    Prev::Element(p) => {
                        if let Some(w) = ix.writer(key, p)
                            && node[w.txn as usize]
                        {
                            edges.push((w.txn, t, WW));
                        }
                        Some(p)
                    }
                };
                if let Some(rs) = readers.get(&(key, last)) {
                    edges.extend(rs.iter().map(|&r| (r, t, RW)));
                }
            }
        }
        if options.process {
            let mut last_of_process: HashMap<u64, u32> = HashMap::new();
            for t in 0..n as u32 {
                if node[t as usize]
                    && let Some(prev) = last_of_process.insert(ix.txn(t).process, t)
                {
                    edges.push((prev, t, PROCESS));
                }
            }
        }
        if options.realtime {
            DependencyGraph::realtime_edges(ix, &node, &mut edges);
        }
        Digraph::from_edges(n, edges)
    }

    /// Adds the transitively reduced realtime edges between nodes.
    fn realtime_edges(ix: &HistoryIndex, node: &[bool], edges: &mut Vec<(u32, u32, u8)>) {
        // (history index, txn, is completion), in history order.
        let mut events: Vec<(u64, u32, bool)> = Vec::with_capacity(2 * ix.len());
        for t in 0..ix.len() as u32 {
            if !node[t as usize] {
                continue;
            }
            let txn = ix.txn(t);
            events.push((txn.invoke_index, t, false));
            if txn.outcome == Outcome::Ok
                && let Some(c) = txn.completion_index
            {
                events.push((c, t, true));
            }
        }
        events.sort_unstable();
        let mut buffer: Vec<u32> = Vec::new();
        let mut linked: HashMap<u32, Vec<u32>> = HashMap::new();
        for (_, t, completion) in events {
            if completion {
                let from = linked.remove(&t).unwrap_or_default();
                buffer.retain(|b| !from.contains(b));
                buffer.push(t);
            } else {
                edges.extend(buffer.iter().map(|&b| (b, t, REALTIME)));
                linked.insert(t, buffer.clone());
            }
        }
    }

    /// Explains one step of a cycle: why its source precedes its target.
    pub(crate) fn explain(ix: &HistoryIndex, step: &Step) -> String {
        let (a, b) = (step.from, step.to);
        let (na, nb) = (ix.name(a), ix.name(b));
        let reason = match step.label() {
            WW => DependencyGraph::explain_ww(ix, a, b),
            WR => DependencyGraph::explain_wr(ix, a, b),
            RW => DependencyGraph::explain_rw(ix, a, b),
            PROCESS => Some(format!("{nb} followed {na} on process {}", ix.txn(a).process)),
            _ => {
                let (ta, tb) = (ix.txn(a), ix.txn(b));
                Some(format!(
                    "{na} completed (index {}) before {nb} began (index {})",
                    ta.completion_index.map_or("?".to_string(), |c| c.to_string()),
                    tb.invoke_index
                ))
            }
        };
        reason.unwrap_or_else(|| format!("{na} precedes {nb}"))
    }

    /// Finds the key where `b` appended right after `a`'s append.
    fn explain_ww(ix: &HistoryIndex, a: u32, b: u32) -> Option<String> {
        ix.ops[b as usize].iter().find_map(|op| {
            let Op::Append { key, value } = *op else { return None };
            let Prev::Element(p) = ix.prev(key, value) else { return None };
            (ix.writer(key, p)?.txn == a).then(|| {
                format!(
                    "{} appended {value} to {} after {} appended {p}",
                    ix.name(b),
                    ix.key(key),
                    ix.name(a)
                )
            })
        })
    }

    /// Finds a read in `b` that observed an append of `a` (preferring the read's last element).
    fn explain_wr(ix: &HistoryIndex, a: u32, b: u32) -> Option<String> {
        let mut any = None;
        for op in &ix.ops[b as usize] {
            let Op::Read { key, value: Some(values) } = *op else { continue };
            for (i, &v) in values.iter().enumerate().rev() {
                if ix.writer(key, v).is_some_and(|w| w.txn == a) {
                    let text = format!(
                        "{} observed {}'s append of {v} to {}",
                        ix.name(b),
                        ix.name(a),
                        ix.key(key)
                    );
                    if i + 1 == values.len() {
                        return Some(text);
                    }
                    any.get_or_insert(text);
                }
            }
        }
        any
    }

    /// Finds a read in `a` that missed the append of `b` that followed it.
    fn explain_rw(ix: &HistoryIndex, a: u32, b: u32) -> Option<String> {
        ix.ops[b as usize].iter().find_map(|op| {
            let Op::Append { key, value } = *op else { return None };
            let last = match ix.prev(key, value) {
                Prev::Initial => None,
                Prev::Element(p) => Some(p),
            };
            ix.ops[a as usize].iter().find_map(|rop| match *rop {
                Op::Read { key: rk, value: Some(values) }
                    if rk == key && values.last().copied() == last =>
                {
                    Some(format!(
                        "{} read {} = {} and did not observe {}'s append of {value} to {}",
                        ix.name(a),
                        ix.key(key),
                        ListDisplay(values),
                        ix.name(b),
                        ix.key(key)
                    ))
                }
                _ => None,
            })
        })
    }
}
