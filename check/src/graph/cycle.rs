//! A dependency cycle and its classification (TESTING §1.3 step 8; Elle `elle/txn.clj`,
//! `cycle-anomaly-type`; Adya 1999 §4 for G0/G1c/G2, Elle's paper §4 for G-single and
//! G-nonadjacent).
//!
//! Classification counts how each step is justified:
//! - one rw step ⇒ G-single; more ⇒ G2-item if two rw steps are adjacent (cyclically), else
//!   G-nonadjacent; no rw ⇒ G1c if some step is justified only by wr, else G0;
//! - suffix `-realtime` if some step is justified only by realtime order, else `-process` if
//!   some step only by process order.

use crate::anomaly::AnomalyKind;

use super::digraph::{DATA, PROCESS, REALTIME, RW, WR, WW};

/// One edge of a cycle, with the labels chosen to justify it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    /// Source node.
    pub from: u32,
    /// Target node.
    pub to: u32,
    /// Exactly [`RW`] for an anti-dependency step; otherwise the non-rw labels usable.
    pub labels: u8,
}

impl Step {
    /// Returns whether the step is used as a read-write anti-dependency.
    pub(crate) fn is_rw(&self) -> bool {
        self.labels == RW
    }

    /// Returns the single label the explanation cites, most informative first.
    pub(crate) fn label(&self) -> u8 {
        [RW, WW, WR, PROCESS, REALTIME]
            .into_iter()
            .find(|&l| if l == RW { self.is_rw() } else { self.labels & l != 0 })
            .unwrap_or(REALTIME)
    }
}

/// A cycle: steps where each `to` is the next step's `from`, the last returning to the first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cycle {
    /// The steps in order.
    pub steps: Vec<Step>,
}

impl Cycle {
    /// Creates a cycle, checking that the steps close up.
    pub(crate) fn new(steps: Vec<Step>) -> Cycle {
        assert!(steps.len() >= 2, "a cycle without self-loops has at least two steps");
        for (i, step) in steps.iter().enumerate() {
            let next = &steps[(i + 1) % steps.len()];
            assert_eq!(step.to, next.from, "cycle steps {i} and {} do not connect", i + 1);
        }
        Cycle { steps }
    }

    /// Returns the number of steps.
    pub(crate) fn len(&self) -> usize {
        self.steps.len()
    }

    /// Returns the same cycle with its nodes renumbered by `map`.
    pub(crate) fn map_nodes(&self, map: impl Fn(u32) -> u32) -> Cycle {
        Cycle {
            steps: self
                .steps
                .iter()
                .map(|s| Step { from: map(s.from), to: map(s.to), labels: s.labels })
                .collect(),
        }
    }

    /// Classifies the cycle.
    pub(crate) fn kind(&self) -> AnomalyKind {
        use AnomalyKind as K;
        let n = self.steps.len();
        let rw = self.steps.iter().filter(|s| s.is_rw()).count();
        let adjacent = (0..n).any(|i| self.steps[i].is_rw() && self.steps[(i + 1) % n].is_rw());
        let wr_only =
            self.steps.iter().any(|s| !s.is_rw() && s.labels & WW == 0 && s.labels & WR != 0);
        let realtime = self.steps.iter().any(|s| s.labels & DATA == 0 && s.labels & REALTIME != 0);
        let process = self.steps.iter().any(|s| s.labels & DATA == 0 && s.labels & PROCESS != 0);
        let [plain, with_process, with_realtime] = match rw {
            0 if wr_only => [K::G1c, K::G1cProcess, K::G1cRealtime],
            0 => [K::G0, K::G0Process, K::G0Realtime],
            1 => [K::GSingle, K::GSingleProcess, K::GSingleRealtime],
            _ if adjacent => [K::G2Item, K::G2ItemProcess, K::G2ItemRealtime],
            _ => [K::GNonadjacent, K::GNonadjacentProcess, K::GNonadjacentRealtime],
        };
        if realtime {
            with_realtime
        } else if process {
            with_process
        } else {
            plain
        }
    }

    /// Returns the nodes in cycle order, starting at the first step's source.
    pub(crate) fn nodes(&self) -> Vec<u32> {
        self.steps.iter().map(|s| s.from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cycle(labels: &[u8]) -> Cycle {
        let n = labels.len() as u32;
        Cycle::new(
            labels
                .iter()
                .enumerate()
                .map(|(i, &l)| Step { from: i as u32, to: (i as u32 + 1) % n, labels: l })
                .collect(),
        )
    }

    #[test]
    fn classifies_by_counting_edge_types() {
        assert_eq!(cycle(&[WW, WW]).kind(), AnomalyKind::G0);
        assert_eq!(cycle(&[WW | WR, WW]).kind(), AnomalyKind::G0);
        assert_eq!(cycle(&[WR, WW]).kind(), AnomalyKind::G1c);
        assert_eq!(cycle(&[RW, WR]).kind(), AnomalyKind::GSingle);
        assert_eq!(cycle(&[RW, RW]).kind(), AnomalyKind::G2Item);
        assert_eq!(cycle(&[RW, WR, RW, WR]).kind(), AnomalyKind::GNonadjacent);
        assert_eq!(cycle(&[RW, REALTIME]).kind(), AnomalyKind::GSingleRealtime);
        assert_eq!(cycle(&[WW, PROCESS]).kind(), AnomalyKind::G0Process);
        assert_eq!(cycle(&[WR, WW | REALTIME]).kind(), AnomalyKind::G1c);
    }
}
