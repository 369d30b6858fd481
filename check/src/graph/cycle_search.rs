//! Typed shortest-cycle search inside one strongly connected component (TESTING §1.3 step 8;
//! Elle `elle/graph.clj`, `find-cycle-starting-with` and the typed cycle specs of
//! `elle/txn.clj`).
//!
//! A [`CycleSpec`] says which labels a cycle may use, which label its first ("anchor") edge
//! carries, which label must appear somewhere, and how many rw edges it needs. For each anchor
//! edge `u -> v` (an edge carrying the anchor label whose ends share a component of the
//! allowed-label subgraph), a breadth-first search runs from `v` back to `u` over states
//!
//! ```text
//! (node, rw edges so far capped at 2, last edge was rw, required label seen)
//! ```
//!
//! so the first path found is the shortest satisfying the spec through that anchor. The search
//! tries at most [`CYCLE_SEARCH_ANCHORS_MAX`] anchors and stops after a step budget (the
//! caller's, [`CYCLE_SEARCH_STEPS_MAX`] per spec): Elle bounds the same search by time.

use std::collections::VecDeque;

use super::cycle::{Cycle, Step};
use super::digraph::{Digraph, RW};
use super::scc::Sccs;

/// Anchor edges tried per spec before settling for the shortest cycle found.
pub(crate) const CYCLE_SEARCH_ANCHORS_MAX: usize = 64;

/// Search states expanded per spec and component before giving up.
pub(crate) const CYCLE_SEARCH_STEPS_MAX: u64 = 4_000_000;

/// States per node: rw count (0, 1, 2+) × last edge rw × required label seen.
const STATES_PER_NODE: usize = 12;

/// Marks the start state in the parent table.
const NO_PARENT: u32 = u32::MAX;

/// How many read-write edges a cycle must contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RwRule {
    /// No constraint (used for plain cycles such as CyclicCO).
    Any,
    /// Exactly one (G-single).
    ExactlyOne,
    /// At least two, no two adjacent, cyclically (G-nonadjacent).
    AtLeastTwoNonadjacent,
    /// At least two (G2-item).
    AtLeastTwo,
}

/// What kind of cycle to look for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CycleSpec {
    /// Labels the cycle may use.
    pub allowed: u8,
    /// The label the first edge is used as.
    pub anchor: u8,
    /// A label that must justify at least one non-rw edge (0: none required).
    pub required: u8,
    /// The rw-edge constraint.
    pub rw: RwRule,
}

/// Reusable search buffers over one component's graph.
#[derive(Debug)]
pub(crate) struct CycleSearch<'g> {
    /// The component's graph (nodes renumbered `0..n`).
    graph: &'g Digraph,
    /// Per state, the generation that last reached it.
    stamp: Vec<u32>,
    /// Per state, the state it was reached from.
    parent: Vec<u32>,
    /// Per state, the labels of the edge it was reached by.
    via: Vec<u8>,
    /// The current search's generation.
    generation: u32,
    /// The breadth-first queue.
    queue: VecDeque<u32>,
}

impl<'g> CycleSearch<'g> {
    /// Prepares to search `graph`.
    pub(crate) fn new(graph: &'g Digraph) -> CycleSearch<'g> {
        let states = graph.len() * STATES_PER_NODE;
        CycleSearch {
            graph,
            stamp: vec![0; states],
            parent: vec![NO_PARENT; states],
            via: vec![0; states],
            generation: 0,
            queue: VecDeque::new(),
        }
    }

    /// Finds a short cycle satisfying `spec`, spending at most `budget` state expansions.
    pub(crate) fn find(&mut self, spec: &CycleSpec, budget: &mut u64) -> Option<Cycle> {
        let sub = Sccs::of(self.graph, spec.allowed);
        let mut best: Option<Cycle> = None;
        let mut tried = 0;
        for u in 0..self.graph.len() as u32 {
            for (v, labels) in self.graph.successors(u) {
                if labels & spec.anchor == 0
                    || sub.component[u as usize] != sub.component[v as usize]
                {
                    continue;
                }
                if *budget == 0 {
                    return best;
                }
                if tried >= CYCLE_SEARCH_ANCHORS_MAX {
                    // Out of anchors with budget left: the search stopped short all the same,
                    // which the caller reports as an exhausted budget (before 2026-12-06 it
                    // stopped silently; found by a review of the checker).
                    *budget = 0;
                    return best;
                }
                tried += 1;
                if let Some(cycle) = self.search_from(u, v, labels, spec, budget)
                    && best.as_ref().is_none_or(|b| cycle.len() < b.len())
                {
                    let shortest = cycle.len() == 2;
                    best = Some(cycle);
                    if shortest {
                        return best;
                    }
                }
            }
        }
        best
    }

    /// Breadth-first search from `v` back to `u`, the anchor edge `u -> v` (carrying
    /// `anchor_labels`) taken first.
    fn search_from(
        &mut self,
        u: u32,
        v: u32,
        anchor_labels: u8,
        spec: &CycleSpec,
        budget: &mut u64,
    ) -> Option<Cycle> {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamp.fill(0);
            self.generation = 1;
        }
        self.queue.clear();
        let anchor_non_rw = anchor_labels & spec.allowed & !RW;
        let first_rw = spec.anchor == RW || anchor_non_rw == 0;
        let anchor_used = if first_rw { RW } else { anchor_non_rw };
        let seen = spec.required == 0 || (!first_rw && anchor_non_rw & spec.required != 0);
        let start = encode(v, u8::from(first_rw), first_rw, seen);
        self.visit(start, NO_PARENT, anchor_used);
        while let Some(state) = self.queue.pop_front() {
            if *budget == 0 {
                return None;
            }
            *budget -= 1;
            let (x, rw, last_rw, seen) = decode(state);
            for (y, labels) in self.graph.successors(x) {
                let labels = labels & spec.allowed;
                let non_rw = labels & !RW;
                let mut moves = [None, None];
                if non_rw != 0 {
                    moves[0] = Some((rw, false, seen || non_rw & spec.required != 0, non_rw));
                }
                if labels & RW != 0 {
                    let next_rw = (rw + 1).min(2);
                    let allowed = match spec.rw {
                        RwRule::Any | RwRule::AtLeastTwo => true,
                        RwRule::ExactlyOne => next_rw == 1,
                        RwRule::AtLeastTwoNonadjacent => !last_rw,
                    };
                    if allowed {
                        moves[1] = Some((next_rw, true, seen, RW));
                    }
                }
                for (next_rw, next_last, next_seen, used) in moves.into_iter().flatten() {
                    if y == u {
                        let accept = next_seen
                            && match spec.rw {
                                RwRule::Any => true,
                                RwRule::ExactlyOne => next_rw == 1,
                                RwRule::AtLeastTwo => next_rw == 2,
                                RwRule::AtLeastTwoNonadjacent => {
                                    next_rw == 2 && !(next_last && first_rw)
                                }
                            };
                        if accept {
                            return Some(self.path(u, v, anchor_used, state, used));
                        }
                        continue;
                    }
                    let next = encode(y, next_rw, next_last, next_seen);
                    if self.stamp[next as usize] != self.generation {
                        self.visit(next, state, used);
                    }
                }
            }
        }
        None
    }

    /// Marks `state` reached from `parent` by an edge used as `used`, and queues it.
    fn visit(&mut self, state: u32, parent: u32, used: u8) {
        self.stamp[state as usize] = self.generation;
        self.parent[state as usize] = parent;
        self.via[state as usize] = used;
        self.queue.push_back(state);
    }

    /// Rebuilds the cycle: anchor `u -> v`, the path to `last`, then `last -> u` used as `used`.
    fn path(&self, u: u32, v: u32, anchor_used: u8, last: u32, used: u8) -> Cycle {
        let mut back = vec![Step { from: decode(last).0, to: u, labels: used }];
        let mut state = last;
        while self.parent[state as usize] != NO_PARENT {
            let parent = self.parent[state as usize];
            back.push(Step {
                from: decode(parent).0,
                to: decode(state).0,
                labels: self.via[state as usize],
            });
            state = parent;
        }
        debug_assert_eq!(decode(state).0, v, "the path starts at the anchor's target");
        let mut steps = vec![Step { from: u, to: v, labels: anchor_used }];
        steps.extend(back.into_iter().rev());
        Cycle::new(steps)
    }
}

/// Packs a search state into one index.
fn encode(node: u32, rw: u8, last_rw: bool, seen: bool) -> u32 {
    node * STATES_PER_NODE as u32 + u32::from(rw) * 4 + u32::from(last_rw) * 2 + u32::from(seen)
}

/// Unpacks a search state.
fn decode(state: u32) -> (u32, u8, bool, bool) {
    let node = state / STATES_PER_NODE as u32;
    let rest = state % STATES_PER_NODE as u32;
    (node, (rest / 4) as u8, rest & 2 != 0, rest & 1 != 0)
}

#[cfg(test)]
mod tests {
    use super::super::digraph::{REALTIME, WR, WW};
    use super::*;
    use crate::anomaly::AnomalyKind;

    fn find(g: &Digraph, spec: CycleSpec) -> Option<Cycle> {
        let mut budget = CYCLE_SEARCH_STEPS_MAX;
        CycleSearch::new(g).find(&spec, &mut budget)
    }

    #[test]
    fn finds_g_single_but_not_g0_in_a_read_skew() {
        // 0 -wr-> 1 -rw-> 2 -ww-> 0
        let g = Digraph::from_edges(3, vec![(0, 1, WR), (1, 2, RW), (2, 0, WW)]);
        let g0 = CycleSpec { allowed: WW, anchor: WW, required: 0, rw: RwRule::Any };
        assert!(find(&g, g0).is_none());
        let single =
            CycleSpec { allowed: WW | WR | RW, anchor: RW, required: 0, rw: RwRule::ExactlyOne };
        let cycle = find(&g, single).expect("G-single");
        assert_eq!(cycle.kind(), AnomalyKind::GSingle);
        assert_eq!(cycle.len(), 3);
    }

    #[test]
    fn nonadjacent_rule_rejects_adjacent_rw_edges() {
        // 0 -rw-> 1 -rw-> 0 only: G2-item, never G-nonadjacent.
        let g = Digraph::from_edges(2, vec![(0, 1, RW), (1, 0, RW | REALTIME)]);
        let nonadjacent = CycleSpec {
            allowed: WW | WR | RW,
            anchor: RW,
            required: 0,
            rw: RwRule::AtLeastTwoNonadjacent,
        };
        assert!(find(&g, nonadjacent).is_none());
        let g2 =
            CycleSpec { allowed: WW | WR | RW, anchor: RW, required: 0, rw: RwRule::AtLeastTwo };
        assert_eq!(find(&g, g2).expect("G2-item").kind(), AnomalyKind::G2Item);
        let realtime = CycleSpec {
            allowed: WW | WR | RW | REALTIME,
            anchor: REALTIME,
            required: 0,
            rw: RwRule::ExactlyOne,
        };
        assert_eq!(
            find(&g, realtime).expect("G-single-realtime").kind(),
            AnomalyKind::GSingleRealtime
        );
    }
}
