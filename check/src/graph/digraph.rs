//! A compact labelled directed graph (CSR), the shape TESTING §1.3 suggests: one `u8` bitflag
//! of labels per (from, to) pair.

/// Write-write dependency: the target appended right after the source in a key's order.
pub(crate) const WW: u8 = 1;
/// Write-read dependency: the target read the source's append.
pub(crate) const WR: u8 = 2;
/// Read-write anti-dependency: the source read a state the target's append overwrote.
pub(crate) const RW: u8 = 4;
/// Session order: consecutive committed transactions of one process.
pub(crate) const PROCESS: u8 = 8;
/// Realtime order: the source completed before the target was invoked.
pub(crate) const REALTIME: u8 = 16;
/// The data dependencies (ww, wr, rw).
pub(crate) const DATA: u8 = WW | WR | RW;
/// Every label.
pub(crate) const ALL: u8 = DATA | PROCESS | REALTIME;

/// A directed graph over nodes `0..n` with labelled edges and no self-loops.
#[derive(Clone, Debug, Default)]
pub(crate) struct Digraph {
    /// `offsets[u]..offsets[u + 1]` indexes `u`'s out-edges.
    offsets: Vec<u32>,
    /// Edge targets.
    targets: Vec<u32>,
    /// Edge labels (bitflags).
    labels: Vec<u8>,
}

impl Digraph {
    /// Builds the graph from an edge list; parallel edges merge their labels, self-loops drop.
    pub(crate) fn from_edges(n: usize, mut edges: Vec<(u32, u32, u8)>) -> Digraph {
        edges.retain(|&(u, v, _)| u != v);
        edges.sort_unstable_by_key(|&(u, v, _)| (u, v));
        let mut offsets = vec![0u32; n + 1];
        let mut targets = Vec::with_capacity(edges.len());
        let mut labels: Vec<u8> = Vec::with_capacity(edges.len());
        let mut last: Option<(u32, u32)> = None;
        for (u, v, l) in edges {
            assert!((u as usize) < n && (v as usize) < n, "edge {u}->{v} outside 0..{n}");
            if last == Some((u, v)) {
                *labels.last_mut().expect("a previous edge exists") |= l;
                continue;
            }
            last = Some((u, v));
            offsets[u as usize + 1] += 1;
            targets.push(v);
            labels.push(l);
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        Digraph { offsets, targets, labels }
    }

    /// Returns the number of nodes.
    pub(crate) fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Returns `u`'s out-edges as (target, labels).
    pub(crate) fn successors(&self, u: u32) -> impl Iterator<Item = (u32, u8)> + '_ {
        let range = self.offsets[u as usize] as usize..self.offsets[u as usize + 1] as usize;
        self.targets[range.clone()].iter().copied().zip(self.labels[range].iter().copied())
    }

    /// Returns the labels of edge `u -> v` (0 if absent).
    #[cfg(test)]
    pub(crate) fn labels(&self, u: u32, v: u32) -> u8 {
        self.successors(u).find(|&(w, _)| w == v).map_or(0, |(_, l)| l)
    }

    /// Returns the subgraph induced by `nodes` (renumbered `0..nodes.len()` in that order).
    pub(crate) fn induced(&self, nodes: &[u32]) -> Digraph {
        let local: std::collections::HashMap<u32, u32> =
            nodes.iter().enumerate().map(|(i, &u)| (u, i as u32)).collect();
        let mut edges = Vec::new();
        for (i, &u) in nodes.iter().enumerate() {
            for (v, l) in self.successors(u) {
                if let Some(&j) = local.get(&v) {
                    edges.push((i as u32, j, l));
                }
            }
        }
        Digraph::from_edges(nodes.len(), edges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_edges_merge_and_self_loops_drop() {
        let g = Digraph::from_edges(3, vec![(0, 1, WW), (0, 1, RW), (2, 2, WR), (1, 2, WR)]);
        assert_eq!(g.labels(0, 1), WW | RW);
        assert_eq!(g.labels(2, 2), 0);
        assert_eq!(g.successors(1).collect::<Vec<_>>(), vec![(2, WR)]);
        let sub = g.induced(&[1, 2]);
        assert_eq!(sub.labels(0, 1), WR);
    }
}
