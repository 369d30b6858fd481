//! Snapshot order: the snapshot reads of a history must all be cuts of one timestamp order of
//! the committed writers.
//!
//! A causal-mode snapshot read (a one-statement read, a causal SCAN, a `BEGIN READ ONLY`
//! transaction) reads every key at one timestamp `s`: it sees exactly the writers that
//! committed at or below `s`. The causal checks (`checker::causal_read`) test each snapshot
//! against its reader's causal past only, so two snapshots of unrelated sessions that order
//! two independent writers oppositely (a *long fork*), which no single timestamp order allows,
//! passed; so did a snapshot that missed a write committed below its timestamp (a closed
//! timestamp broken) whenever no session linked the two. This check builds the order that
//! the timestamps must follow and looks for a cycle in it:
//!
//! ```text
//!   ww    U -> V   V appended to a key right after U in its version order
//!                  (a new version's timestamp is above every older one's)
//!   wr    U -> T   writer T read U's append last in a key (T's clock observed U's version,
//!                  and T commits above it: writes-follow-reads, which causal snapshots need)
//!   seen  W -> S   snapshot S read W's append last in a key   (ts(W) <= s)
//!   next  S -> V   V appended right after what S read of a key (ts(V) > s)
//! ```
//!
//! Every cycle passes through a strict edge, so any cycle is a contradiction: the snapshots
//! are not cuts of one order. Read-write anti-dependencies are not timestamp-ordered (a
//! read-only participant releases its shared locks at its vote, before the reader's commit
//! timestamp is chosen) and are not edges here; nor are locking reads that write nothing.
//! Only reads whose lists are prefixes of the key's version order count (the others are
//! already incompatible-order anomalies).

use std::collections::BTreeSet;
use std::collections::VecDeque;

use crate::graph::digraph::Digraph;
use crate::graph::digraph::WW;
use crate::graph::scc::Sccs;
use crate::history::History;
use crate::history_index::HistoryIndex;
use crate::history_index::NO_TXN;
use crate::history_index::Op;

/// Cycles described at most.
pub const SNAPSHOT_CYCLES_MAX: usize = 5;

/// Why one writer or snapshot is ordered before the next.
#[derive(Clone, Debug)]
struct Edge {
    to: u32,
    why: String,
}

/// Checks that the snapshot reads of `history` (the transactions whose invoke indexes are in
/// `snapshots`: read-only, each at one timestamp) are cuts of one timestamp order of its
/// committed writers. Returns a description of each contradiction found (at most
/// [`SNAPSHOT_CYCLES_MAX`]), empty if none.
pub fn check_snapshot_order(history: &History, snapshots: &BTreeSet<u64>) -> Vec<String> {
    let ix = HistoryIndex::new(history);
    let n = ix.len();
    let is_snapshot: Vec<bool> =
        history.txns().iter().map(|t| snapshots.contains(&t.invoke_index)).collect();
    let writes: Vec<bool> =
        ix.ops.iter().map(|ops| ops.iter().any(|op| matches!(op, Op::Append { .. }))).collect();
    let mut edges: Vec<Vec<Edge>> = vec![Vec::new(); n];
    let mut add = |from: u32, to: u32, why: String| {
        if from != to && from != NO_TXN && to != NO_TXN {
            edges[from as usize].push(Edge { to, why });
        }
    };
    for k in 0..ix.keys.len() {
        let key = ix.key(k as u32);
        let writers = &ix.order_writers[k];
        // ww: consecutive distinct writers of the version order.
        let mut last = NO_TXN;
        for &w in writers.iter().filter(|&&w| w != NO_TXN) {
            if last != NO_TXN && w != last {
                add(last, w, format!("ww on {key}"));
            }
            last = w;
        }
        for read in ix.reads[k].iter().filter(|r| r.prefix && r.external) {
            let t = read.txn;
            let len = read.values.len();
            let seen = len.checked_sub(1).map(|i| writers[i]);
            if is_snapshot[t as usize] {
                if let Some(w) = seen {
                    add(w, t, format!("{} saw it on {key}", ix.name(t)));
                }
                if let Some(&next) = writers.get(len) {
                    add(t, next, format!("{} did not see it on {key}", ix.name(t)));
                }
            } else if writes[t as usize]
                && ix.committed[t as usize]
                && let Some(w) = seen
            {
                add(w, t, format!("wr on {key}"));
            }
        }
    }
    // Only snapshots in a strongly connected component of two or more can be on a cycle
    // (every cycle has one: a cycle of writers alone is a G0 or G1c the cycle checks report).
    let all_edges = edges
        .iter()
        .enumerate()
        .flat_map(|(u, out)| out.iter().map(move |e| (u as u32, e.to, WW)))
        .collect();
    let sccs = Sccs::of(&Digraph::from_edges(n, all_edges), WW);
    let mut cyclic = vec![false; n];
    for node in sccs.nontrivial.iter().flatten() {
        cyclic[*node as usize] = true;
    }
    let mut found = Vec::new();
    let mut on_cycle = vec![false; n];
    for start in 0..n as u32 {
        if found.len() >= SNAPSHOT_CYCLES_MAX {
            break;
        }
        if !is_snapshot[start as usize] || !cyclic[start as usize] || on_cycle[start as usize] {
            continue;
        }
        let Some(cycle) = cycle_through(&edges, start) else { continue };
        let mut text = ix.name(start);
        for (node, why) in &cycle {
            on_cycle[*node as usize] = true;
            text.push_str(&format!(" -> {} ({why})", ix.name(*node)));
        }
        found.push(format!("snapshots are not cuts of one timestamp order: {text}"));
    }
    found
}

/// The shortest cycle from `start` back to it, as (node, why it follows) steps, by a
/// breadth-first search.
fn cycle_through(edges: &[Vec<Edge>], start: u32) -> Option<Vec<(u32, String)>> {
    let mut parent: Vec<Option<(u32, usize)>> = vec![None; edges.len()];
    let mut queue = VecDeque::from([start]);
    let mut visited = vec![false; edges.len()];
    visited[start as usize] = true;
    while let Some(u) = queue.pop_front() {
        for (i, edge) in edges[u as usize].iter().enumerate() {
            if edge.to == start {
                let mut steps = vec![(start, edge.why.clone())];
                let mut at = u;
                while at != start {
                    let (from, j) = parent[at as usize].expect("a visited node has a parent");
                    steps.push((at, edges[from as usize][j].why.clone()));
                    at = from;
                }
                steps.reverse();
                return Some(steps);
            }
            if !visited[edge.to as usize] {
                visited[edge.to as usize] = true;
                parent[edge.to as usize] = Some((u, i));
                queue.push_back(edge.to);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::MicroOp;
    use crate::history::Recorder;

    /// Runs `txns` one after another on processes of their own; returns the history and the
    /// invoke indexes of those marked as snapshots.
    fn history(txns: &[(bool, Vec<MicroOp>)]) -> (History, BTreeSet<u64>) {
        let mut rec = Recorder::new();
        let mut snapshots = BTreeSet::new();
        for (i, (snapshot, ops)) in txns.iter().enumerate() {
            let time = 10 * i as u64;
            let invoke: Vec<MicroOp> = ops
                .iter()
                .map(|op| match op {
                    MicroOp::Read { key, .. } => MicroOp::read(key.as_str()),
                    append => append.clone(),
                })
                .collect();
            let index = rec.invoke(i as u64, time, invoke);
            rec.ok(i as u64, time + 5, ops.clone());
            if *snapshot {
                snapshots.insert(index);
            }
        }
        (rec.history(), snapshots)
    }

    fn append(key: &str, value: i64) -> MicroOp {
        MicroOp::append(key, value)
    }

    fn read(key: &str, values: &[i64]) -> MicroOp {
        MicroOp::read_result(key, values.to_vec())
    }

    #[test]
    fn a_long_fork_between_two_snapshots_is_found() {
        let (h, snapshots) = history(&[
            (false, vec![append("x", 1)]),
            (false, vec![append("y", 1)]),
            (true, vec![read("x", &[1]), read("y", &[])]),
            (true, vec![read("x", &[]), read("y", &[1])]),
        ]);
        let found = check_snapshot_order(&h, &snapshots);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("did not see it on y"), "{found:?}");
    }

    #[test]
    fn a_fractured_snapshot_is_found() {
        let (h, snapshots) = history(&[
            (false, vec![append("x", 1), append("y", 1)]),
            (true, vec![read("x", &[1]), read("y", &[])]),
            (false, vec![read("y", &[1])]),
        ]);
        assert_eq!(check_snapshot_order(&h, &snapshots).len(), 1);
    }

    #[test]
    fn a_snapshot_missing_what_its_writer_read_is_found() {
        // T1 read x's 1 and then wrote y's 1: a snapshot with y's 1 must have x's 1.
        let (h, snapshots) = history(&[
            (false, vec![append("x", 1)]),
            (false, vec![read("x", &[1]), append("y", 1)]),
            (true, vec![read("x", &[]), read("y", &[1])]),
        ]);
        assert_eq!(check_snapshot_order(&h, &snapshots).len(), 1);
    }

    #[test]
    fn snapshots_at_different_times_of_one_order_pass() {
        let (h, snapshots) = history(&[
            (false, vec![append("x", 1)]),
            (true, vec![read("x", &[1]), read("y", &[])]),
            (false, vec![append("y", 1)]),
            (true, vec![read("x", &[1]), read("y", &[1])]),
            (false, vec![append("x", 2), append("y", 2)]),
            (true, vec![read("x", &[1]), read("y", &[1])]),
            (true, vec![read("x", &[1, 2]), read("y", &[1, 2])]),
            // A locking reader is no snapshot: stale or not, it adds no edge here.
            (false, vec![read("x", &[1, 2]), read("y", &[1])]),
        ]);
        assert_eq!(check_snapshot_order(&h, &snapshots), Vec::<String>::new());
    }
}
