//! Dependency cycles: G0, G1c, G-single, G-nonadjacent, G2-item and their `-process` /
//! `-realtime` variants (Adya 1999 §4; Elle `elle/txn.clj`, `cycles!`; TESTING §1.3 step 8).
//!
//! 1. Build the model's graph (data edges, plus realtime or process edges).
//! 2. Tarjan SCCs; a valid history has none with two or more transactions
//!    (Elle's `PL-3-cycle-exists` shortcut), so valid histories stop here.
//! 3. In each non-trivial SCC, search each cycle class in severity order and report each class
//!    found once per SCC, with one reason per edge.
//! 4. If the search budget ran out before any class was found, report the first cycle through
//!    the SCC (always exists), classified by counting its edges.

use std::collections::BTreeSet;

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::graph::cycle::Cycle;
use crate::graph::cycle_search::{CYCLE_SEARCH_STEPS_MAX, CycleSearch, CycleSpec, RwRule};
use crate::graph::dependency_graph::{DependencyGraph, GraphOptions};
use crate::graph::digraph::{ALL, Digraph, PROCESS, REALTIME, RW, WR, WW};
use crate::graph::scc::Sccs;
use crate::history_index::HistoryIndex;
use crate::report::Report;

/// The cycle classes searched, most severe first: plain, then each extra label's variants.
fn specs(options: GraphOptions) -> Vec<CycleSpec> {
    let data = WW | WR | RW;
    let mut specs = vec![
        CycleSpec { allowed: WW, anchor: WW, required: 0, rw: RwRule::Any },
        CycleSpec { allowed: WW | WR, anchor: WR, required: 0, rw: RwRule::Any },
        CycleSpec { allowed: data, anchor: RW, required: 0, rw: RwRule::ExactlyOne },
        CycleSpec { allowed: data, anchor: RW, required: 0, rw: RwRule::AtLeastTwoNonadjacent },
        CycleSpec { allowed: data, anchor: RW, required: 0, rw: RwRule::AtLeastTwo },
    ];
    let extras = [(options.process, PROCESS), (options.realtime, REALTIME)];
    for (_, extra) in extras.into_iter().filter(|(on, _)| *on) {
        specs.extend([
            CycleSpec { allowed: WW | extra, anchor: extra, required: 0, rw: RwRule::Any },
            CycleSpec { allowed: WW | WR | extra, anchor: extra, required: WR, rw: RwRule::Any },
            CycleSpec { allowed: data | extra, anchor: extra, required: 0, rw: RwRule::ExactlyOne },
            CycleSpec {
                allowed: data | extra,
                anchor: extra,
                required: 0,
                rw: RwRule::AtLeastTwoNonadjacent,
            },
            CycleSpec { allowed: data | extra, anchor: extra, required: 0, rw: RwRule::AtLeastTwo },
        ]);
    }
    specs
}

/// Records every dependency cycle class found in `report`.
pub(crate) fn check(ix: &HistoryIndex, options: GraphOptions, report: &mut Report) {
    let graph = DependencyGraph::build(ix, options);
    let sccs = Sccs::of(&graph, ALL);
    let specs = specs(options);
    for component in &sccs.nontrivial {
        check_component(ix, &graph, component, &specs, options, report);
    }
}

/// Searches one strongly connected component for every cycle class.
fn check_component(
    ix: &HistoryIndex,
    graph: &Digraph,
    component: &[u32],
    specs: &[CycleSpec],
    options: GraphOptions,
    report: &mut Report,
) {
    let local = graph.induced(component);
    let mut search = CycleSearch::new(&local);
    let mut found: BTreeSet<AnomalyKind> = BTreeSet::new();
    let mut exhausted = false;
    for spec in specs {
        let mut budget = CYCLE_SEARCH_STEPS_MAX;
        if let Some(cycle) = search.find(spec, &mut budget) {
            let cycle = cycle.map_nodes(|u| component[u as usize]);
            let kind = cycle.kind();
            if found.insert(kind) {
                report.record(kind, || describe(ix, &cycle, kind, options.writers_only));
            }
        }
        exhausted |= budget == 0;
    }
    if found.is_empty() {
        // Every SCC holds a cycle through any of its edges; find one without a budget.
        let any = CycleSpec { allowed: ALL, anchor: ALL, required: 0, rw: RwRule::Any };
        let mut budget = u64::MAX;
        if let Some(cycle) = search.find(&any, &mut budget) {
            let cycle = cycle.map_nodes(|u| component[u as usize]);
            let kind = cycle.kind();
            report.record(kind, || describe(ix, &cycle, kind, options.writers_only));
        }
    }
    if exhausted {
        report.notes.push(format!(
            "cycle search in a component of {} transactions (from {}) hit its step or anchor limit; \
             some cycle classes there may be unreported",
            component.len(),
            ix.name(component[0])
        ));
    }
}

/// Builds the anomaly for `cycle`: its transactions and one reason per edge.
pub(crate) fn describe(
    ix: &HistoryIndex,
    cycle: &Cycle,
    kind: AnomalyKind,
    writers_only: bool,
) -> Anomaly {
    let nodes = cycle.nodes();
    let mut names: Vec<String> = nodes.iter().map(|&t| ix.name(t)).collect();
    names.push(ix.name(nodes[0]));
    let scope = if writers_only { " among read-write transactions" } else { "" };
    Anomaly {
        kind,
        txns: nodes.iter().map(|&t| ix.txn_ref(t)).collect(),
        explanation: format!("dependency cycle{scope}: {}", names.join(" -> ")),
        steps: cycle.steps.iter().map(|s| DependencyGraph::explain(ix, s)).collect(),
    }
}
