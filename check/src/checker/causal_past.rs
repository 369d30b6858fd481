//! Causal order and causal pasts for the causal model (TESTING §3.2 items 1–2; Bouajjani et
//! al., "On Verifying Causal Consistency", POPL 2017, §2–3: CO = (po ∪ rf)⁺, bad pattern
//! CyclicCO).
//!
//! - Committed transactions only (ok, or info and observed).
//! - Sessions: a history's `session` field groups a client's processes (a client takes a new
//!   process after an `info` and keeps its session, its causal token); without it, each
//!   process is a session. In a session, the ok transactions are in invoke order (`seq` is the
//!   position); an observed `info` one follows the ok ones before it but precedes none (the
//!   token does not cover a write whose outcome the client never learned): it is a session of
//!   its own, after its predecessor ([`CausalPast::info_prev`]). Before 2026-12-07 sessions
//!   were processes only, so session order was cut at every `info` (a review of the checker).
//! - Read-from: the appender of *any* element a transaction read precedes it (a read of
//!   `[a b c]` shows all three appends).
//! - No topological order of session ∪ read-from ⇒ CyclicCO, reported with a shortest cycle
//!   per strongly connected component.
//!
//! # Causal pasts per key
//!
//! TESTING §3.2 suggests a vector clock per transaction (O(n·P)). Every `info` retires a
//! process, so P grows with the run (10⁴ sessions in a 10⁵-transaction history) and n·P
//! becomes the bottleneck. The checks only ever ask "which appenders of key k are in
//! CausalPast(T)?" for transactions T that read or append k, so [`CausalPast::walk_key`]
//! answers exactly that: it propagates a bitset over k's appenders along the topological order,
//! from k's first appender to its last consumer (no path between them leaves that window).
//! The cost is the sum over keys of window × in-degree × ⌈appenders / 64⌉, which stays small
//! because keys are retired after a bounded number of appends (Elle's generator, TESTING §1.1).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::anomaly::AnomalyKind;
use crate::graph::cycle_search::{CycleSearch, CycleSpec, RwRule};
use crate::graph::digraph::{Digraph, PROCESS, WR};
use crate::graph::scc::Sccs;
use crate::history::Outcome;
use crate::history_index::HistoryIndex;
use crate::report::Report;

use super::cycles::describe;

/// Marks a transaction outside every session (not committed).
pub(crate) const NO_SESSION: u32 = u32::MAX;

/// Marks a transaction outside the topological order (not committed).
const NO_POSITION: u32 = u32::MAX;

/// Marks a transaction that is not an appender of the current chunk.
const NO_BIT: u32 = u32::MAX;

/// Dense per-transaction scratch tables reused across keys.
#[derive(Debug, Default)]
struct WalkScratch {
    /// Per transaction, its bit in the current chunk, or [`NO_BIT`].
    bit_of: Vec<u32>,
    /// Per transaction, whether it is a consumer of the current key.
    consumer: Vec<bool>,
}

/// Appenders tracked per bitset pass (a multiple of 64): bounds a pass's memory to
/// window × this / 8 bytes.
pub(crate) const PAST_BITS_PER_PASS: usize = 1024;

/// Sessions, read-from sources and the causal order of a history's committed transactions.
#[derive(Debug)]
pub(crate) struct CausalPast {
    /// Per transaction, its session, or [`NO_SESSION`].
    pub session_of: Vec<u32>,
    /// Per transaction, its position in its session.
    pub seq: Vec<u32>,
    /// Per session, its transactions in order.
    pub sessions: Vec<Vec<u32>>,
    /// Per observed `info` transaction, the ok transaction of its session before it, or
    /// [`NO_SESSION`].
    pub info_prev: Vec<u32>,
    /// Per transaction, the committed transactions it read from (sorted, without itself).
    pub wr_sources: Vec<Vec<u32>>,
    /// Session order and read-from edges.
    graph: Digraph,
    /// Committed transactions in a topological order of `graph` (all of them iff acyclic).
    order: Vec<u32>,
    /// Per transaction, its position in `order`, or [`NO_POSITION`].
    position: Vec<u32>,
    /// Scratch tables for [`CausalPast::walk_key`].
    scratch: RefCell<WalkScratch>,
}

impl CausalPast {
    /// Computes sessions, read-from, and a topological order.
    pub(crate) fn new(ix: &HistoryIndex) -> CausalPast {
        let n = ix.len();
        // Keyed (named, id): a named session, or a process that is its own.
        let mut by_session: BTreeMap<(bool, u64), Vec<u32>> = BTreeMap::new();
        for t in 0..n as u32 {
            if ix.committed[t as usize] {
                let txn = ix.txn(t);
                let key = txn.session.map_or((false, txn.process), |session| (true, session));
                by_session.entry(key).or_default().push(t);
            }
        }
        let mut sessions: Vec<Vec<u32>> = Vec::new();
        let mut info_prev = vec![NO_SESSION; n];
        let mut edges = Vec::new();
        for txns in by_session.into_values() {
            let mut chain: Vec<u32> = Vec::new();
            for t in txns {
                if ix.outcome(t) == Outcome::Info {
                    if let Some(&prev) = chain.last() {
                        info_prev[t as usize] = prev;
                        edges.push((prev, t, PROCESS));
                    }
                    sessions.push(vec![t]);
                } else {
                    chain.push(t);
                }
            }
            if !chain.is_empty() {
                sessions.push(chain);
            }
        }
        let mut session_of = vec![NO_SESSION; n];
        let mut seq = vec![0u32; n];
        for (s, txns) in sessions.iter().enumerate() {
            for (i, &t) in txns.iter().enumerate() {
                session_of[t as usize] = s as u32;
                seq[t as usize] = i as u32;
                if i > 0 {
                    edges.push((txns[i - 1], t, PROCESS));
                }
            }
        }
        let mut wr_sources = vec![Vec::new(); n];
        for (k, key_reads) in ix.reads.iter().enumerate() {
            for read in key_reads {
                let sources = &mut wr_sources[read.txn as usize];
                let writers = &ix.order_writers[k];
                for (i, &v) in read.values.iter().enumerate() {
                    // A prefix read's writers are the order's; others need a lookup.
                    let w = if read.prefix {
                        writers[i]
                    } else {
                        ix.writer(k as u32, v).map_or(u32::MAX, |w| w.txn)
                    };
                    if w != u32::MAX && w != read.txn && ix.committed[w as usize] {
                        sources.push(w);
                    }
                }
            }
        }
        for (t, sources) in wr_sources.iter_mut().enumerate() {
            sources.sort_unstable();
            sources.dedup();
            edges.extend(sources.iter().map(|&w| (w, t as u32, WR)));
        }
        let graph = Digraph::from_edges(n, edges);
        let order = topological_order(&graph, &session_of);
        let mut position = vec![NO_POSITION; n];
        for (i, &t) in order.iter().enumerate() {
            position[t as usize] = i as u32;
        }
        CausalPast {
            session_of,
            seq,
            sessions,
            info_prev,
            wr_sources,
            graph,
            order,
            position,
            scratch: RefCell::default(),
        }
    }

    /// Returns whether session order ∪ read-from is acyclic.
    pub(crate) fn is_acyclic(&self) -> bool {
        let committed = self.session_of.iter().filter(|&&s| s != NO_SESSION).count();
        self.order.len() == committed
    }

    /// Records one CyclicCO anomaly per strongly connected component of session ∪ read-from.
    pub(crate) fn report_cycles(&self, ix: &HistoryIndex, report: &mut Report) {
        let sccs = Sccs::of(&self.graph, PROCESS | WR);
        let any =
            CycleSpec { allowed: PROCESS | WR, anchor: PROCESS | WR, required: 0, rw: RwRule::Any };
        for component in &sccs.nontrivial {
            let local = self.graph.induced(component);
            let mut budget = u64::MAX;
            if let Some(cycle) = CycleSearch::new(&local).find(&any, &mut budget) {
                let cycle = cycle.map_nodes(|u| component[u as usize]);
                report.record(AnomalyKind::CyclicCo, || {
                    let mut anomaly = describe(ix, &cycle, AnomalyKind::CyclicCo, false);
                    anomaly.explanation = format!(
                        "session order and read-from are cyclic: {}",
                        anomaly.explanation.trim_start_matches("dependency cycle: ")
                    );
                    anomaly
                });
            }
        }
    }

    /// Calls `visit(t, in_past)` for each `t` in `consumers` (committed transactions), where
    /// `in_past` lists the indexes into `appenders` of those in CausalPast(t) (t excluded).
    /// A consumer may be visited once per [`PAST_BITS_PER_PASS`] appenders. Requires
    /// [`CausalPast::is_acyclic`].
    pub(crate) fn walk_key(
        &self,
        appenders: &[u32],
        consumers: &[u32],
        mut visit: impl FnMut(u32, &[usize]),
    ) {
        let Some(end) = consumers.iter().map(|&t| self.position[t as usize]).max() else { return };
        let mut scratch = self.scratch.borrow_mut();
        let WalkScratch { bit_of, consumer } = &mut *scratch;
        bit_of.resize(self.position.len(), NO_BIT);
        consumer.resize(self.position.len(), false);
        for &t in consumers {
            consumer[t as usize] = true;
        }
        let mut in_past: Vec<usize> = Vec::new();
        for (chunk_index, chunk) in appenders.chunks(PAST_BITS_PER_PASS).enumerate() {
            let base = chunk_index * PAST_BITS_PER_PASS;
            for (b, &t) in chunk.iter().enumerate() {
                bit_of[t as usize] = b as u32;
            }
            let start = chunk.iter().map(|&t| self.position[t as usize]).min().unwrap_or(u32::MAX);
            if start <= end {
                self.walk_chunk(
                    chunk.len(),
                    start as usize,
                    end as usize,
                    base,
                    bit_of,
                    consumer,
                    &mut in_past,
                    &mut visit,
                );
            }
            for &t in chunk {
                bit_of[t as usize] = NO_BIT;
            }
        }
        for &t in consumers {
            consumer[t as usize] = false;
        }
    }

    /// Propagates one chunk's bits over order positions `start..=end` (see [`Self::walk_key`]).
    #[allow(clippy::too_many_arguments)]
    fn walk_chunk(
        &self,
        chunk_len: usize,
        start: usize,
        end: usize,
        base: usize,
        bit_of: &[u32],
        consumer: &[bool],
        in_past: &mut Vec<usize>,
        visit: &mut impl FnMut(u32, &[usize]),
    ) {
        let words = chunk_len.div_ceil(64);
        let mut bits = vec![0u64; (end - start + 1) * words];
        for i in start..=end {
            let x = self.order[i];
            let row = (i - start) * words;
            let (before, rest) = bits.split_at_mut(row);
            let current = &mut rest[..words];
            for p in self.predecessors(x) {
                let pp = self.position[p as usize] as usize;
                if pp < start {
                    continue;
                }
                let source = &before[(pp - start) * words..][..words];
                for (c, s) in current.iter_mut().zip(source) {
                    *c |= s;
                }
                let b = bit_of[p as usize];
                if b != NO_BIT {
                    current[b as usize / 64] |= 1 << (b % 64);
                }
            }
            if consumer[x as usize] {
                in_past.clear();
                for (w, &word) in current.iter().enumerate() {
                    let mut word = word;
                    while word != 0 {
                        in_past.push(base + w * 64 + word.trailing_zeros() as usize);
                        word &= word - 1;
                    }
                }
                if !in_past.is_empty() {
                    visit(x, in_past);
                }
            }
        }
    }

    /// Returns `t`'s immediate causal predecessors: its session predecessor and its sources.
    fn predecessors(&self, t: u32) -> impl Iterator<Item = u32> + '_ {
        let (s, q) = (self.session_of[t as usize], self.seq[t as usize]);
        let session_prev = (q > 0).then(|| self.sessions[s as usize][q as usize - 1]);
        let info_prev = Some(self.info_prev[t as usize]).filter(|&prev| prev != NO_SESSION);
        session_prev.or(info_prev).into_iter().chain(self.wr_sources[t as usize].iter().copied())
    }
}

/// Kahn's algorithm over the committed transactions, always taking the ready transaction
/// invoked first, so the order stays close to history order and each key's window (first
/// appender to last consumer) stays as short as the key's life in the history.
fn topological_order(graph: &Digraph, session_of: &[u32]) -> Vec<u32> {
    let n = graph.len();
    let mut indegree = vec![0u32; n];
    for u in 0..n as u32 {
        for (v, _) in graph.successors(u) {
            indegree[v as usize] += 1;
        }
    }
    let mut ready: BinaryHeap<Reverse<u32>> = (0..n as u32)
        .filter(|&t| session_of[t as usize] != NO_SESSION && indegree[t as usize] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(u)) = ready.pop() {
        order.push(u);
        for (v, _) in graph.successors(u) {
            indegree[v as usize] -= 1;
            if indegree[v as usize] == 0 {
                ready.push(Reverse(v));
            }
        }
    }
    order
}
