//! Strongly connected components by Tarjan's algorithm (Tarjan, "Depth-first search and linear
//! graph algorithms", SIAM J. Comput. 1972), iterative so that 10⁵-node histories cannot
//! overflow the stack (TESTING §1.3 hints). Elle runs the same step (`elle/graph.clj`,
//! `strongly-connected-components`) before searching for typed cycles.

use super::digraph::Digraph;

/// Marks a node not yet visited.
const UNVISITED: u32 = u32::MAX;

/// The strongly connected components of a graph restricted to some labels.
#[derive(Clone, Debug)]
pub(crate) struct Sccs {
    /// Component id of each node.
    pub component: Vec<u32>,
    /// Components with at least two nodes, each sorted, ordered by their smallest node.
    pub nontrivial: Vec<Vec<u32>>,
}

impl Sccs {
    /// Computes the components of `g` using only edges carrying a label in `mask`.
    pub(crate) fn of(g: &Digraph, mask: u8) -> Sccs {
        let n = g.len();
        let mut index = vec![UNVISITED; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack: Vec<u32> = Vec::new();
        let mut component = vec![UNVISITED; n];
        let mut components = 0u32;
        let mut nontrivial = Vec::new();
        let mut counter = 0u32;
        // Call frames: (node, successors already examined).
        let mut frames: Vec<(u32, usize)> = Vec::new();
        for root in 0..n as u32 {
            if index[root as usize] != UNVISITED {
                continue;
            }
            frames.push((root, 0));
            index[root as usize] = counter;
            low[root as usize] = counter;
            counter += 1;
            stack.push(root);
            on_stack[root as usize] = true;
            while let Some(&(v, next)) = frames.last() {
                let mut examined = next;
                let mut child = None;
                for (w, l) in g.successors(v).skip(next) {
                    examined += 1;
                    if l & mask == 0 {
                        continue;
                    }
                    if index[w as usize] == UNVISITED {
                        child = Some(w);
                        break;
                    } else if on_stack[w as usize] {
                        low[v as usize] = low[v as usize].min(index[w as usize]);
                    }
                }
                frames.last_mut().expect("frame of v").1 = examined;
                if let Some(w) = child {
                    index[w as usize] = counter;
                    low[w as usize] = counter;
                    counter += 1;
                    stack.push(w);
                    on_stack[w as usize] = true;
                    frames.push((w, 0));
                    continue;
                }
                frames.pop();
                if let Some(&(parent, _)) = frames.last() {
                    low[parent as usize] = low[parent as usize].min(low[v as usize]);
                }
                if low[v as usize] == index[v as usize] {
                    let mut members = Vec::new();
                    loop {
                        let w = stack.pop().expect("v is on the stack");
                        on_stack[w as usize] = false;
                        component[w as usize] = components;
                        members.push(w);
                        if w == v {
                            break;
                        }
                    }
                    components += 1;
                    if members.len() > 1 {
                        members.sort_unstable();
                        nontrivial.push(members);
                    }
                }
            }
        }
        nontrivial.sort_unstable_by_key(|c: &Vec<u32>| c[0]);
        Sccs { component, nontrivial }
    }
}

#[cfg(test)]
mod tests {
    use super::super::digraph::{RW, WW};
    use super::*;

    #[test]
    fn finds_cycles_under_the_mask_only() {
        // 0 -> 1 -> 2 -> 0 (ww, ww, rw), 3 -> 4 -> 3 (ww).
        let g = Digraph::from_edges(
            5,
            vec![(0, 1, WW), (1, 2, WW), (2, 0, RW), (3, 4, WW), (4, 3, WW)],
        );
        assert_eq!(Sccs::of(&g, WW | RW).nontrivial, vec![vec![0, 1, 2], vec![3, 4]]);
        assert_eq!(Sccs::of(&g, WW).nontrivial, vec![vec![3, 4]]);
    }

    #[test]
    fn long_chain_does_not_overflow() {
        let n = 200_000u32;
        let mut edges: Vec<(u32, u32, u8)> = (0..n - 1).map(|i| (i, i + 1, WW)).collect();
        edges.push((n - 1, 0, WW));
        let sccs = Sccs::of(&Digraph::from_edges(n as usize, edges), WW);
        assert_eq!(sccs.nontrivial.len(), 1);
        assert_eq!(sccs.nontrivial[0].len(), n as usize);
    }
}
