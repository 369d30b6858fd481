//! Probes forwarded once per round (Chandy, Misra and Haas: a process forwards an initiator's
//! probe only the first time it sees it).
//!
//! The first probe of an initiator to reach a holder is extended along every edge out of that
//! holder, so later ones, arriving by other paths within the same round, could only find the
//! same cycles again. Both places that forward probes remember what they sent in the current
//! round: a coordinator, before it passes a probe on to the shards where its transaction
//! waits, and a shard, before it sends a probe extended by its wait edges to the next holder's
//! coordinator. Without the shard's memory, n transactions queued behind one slow holder sent
//! about n³/16 probes a round, nearly all of them dropped by the coordinators (a review found
//! it, 2026-12-07).
//!
//! The memory is bounded: past [`PROBES_REMEMBERED_MAX`] pairs it forgets the rounds that are
//! over (at most once a round), and past twice that it remembers nothing new: a probe is then
//! forwarded again, which costs messages, never a missed deadlock.

use std::collections::BTreeMap;

use crate::types::TxnId;

/// Pairs remembered before the rounds that are over are forgotten.
pub const PROBES_REMEMBERED_MAX: usize = 1024;

/// The (holder, initiator) pairs a probe went through in the current round. `I` is the
/// caller's clock (tokio's `Instant` in the server).
#[derive(Debug)]
pub struct ProbeRounds<I> {
    /// Pair -> the end of the round in which it was forwarded.
    forwarded: BTreeMap<(TxnId, TxnId), I>,
    /// When the rounds that are over may be forgotten next.
    prune_at: Option<I>,
}

impl<I> Default for ProbeRounds<I> {
    fn default() -> Self {
        ProbeRounds { forwarded: BTreeMap::new(), prune_at: None }
    }
}

impl<I: Copy + Ord> ProbeRounds<I> {
    /// True the first time in a round that a probe of `initiator` reaches `holder`: forward
    /// it, and remember it until `round_end`. False again until then.
    pub fn first(&mut self, holder: TxnId, initiator: TxnId, now: I, round_end: I) -> bool {
        if self.forwarded.len() >= PROBES_REMEMBERED_MAX && self.prune_at.is_none_or(|at| now >= at)
        {
            self.forwarded.retain(|_, end| *end > now);
            self.prune_at = Some(round_end);
        }
        match self.forwarded.get(&(holder, initiator)) {
            Some(end) if *end > now => false,
            _ => {
                if self.forwarded.len() < 2 * PROBES_REMEMBERED_MAX {
                    self.forwarded.insert((holder, initiator), round_end);
                }
                true
            }
        }
    }

    /// The pairs remembered.
    pub fn len(&self) -> usize {
        self.forwarded.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.forwarded.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Timestamp;

    fn txn(seq: u64) -> TxnId {
        TxnId { start_ts: Timestamp(seq), coordinator: 1, incarnation: 1, seq }
    }

    #[test]
    fn a_pair_is_forwarded_once_a_round() {
        let mut rounds = ProbeRounds::default();
        assert!(rounds.first(txn(1), txn(2), 0, 10));
        assert!(!rounds.first(txn(1), txn(2), 5, 15), "the same round");
        assert!(rounds.first(txn(1), txn(3), 5, 15), "another initiator");
        assert!(rounds.first(txn(4), txn(2), 5, 15), "another holder");
        assert!(rounds.first(txn(1), txn(2), 10, 20), "the next round");
        assert!(!rounds.first(txn(1), txn(2), 19, 29));
    }

    #[test]
    fn the_memory_stays_bounded_and_forgets_rounds_that_are_over() {
        let mut rounds = ProbeRounds::default();
        let n = 3 * PROBES_REMEMBERED_MAX as u64;
        for seq in 0..n {
            assert!(rounds.first(txn(seq), txn(0), 0, 10), "a new pair is forwarded");
        }
        assert_eq!(rounds.len(), 2 * PROBES_REMEMBERED_MAX, "no more than twice the bound");
        // A pair not remembered is forwarded again: more messages, no missed cycle.
        assert!(rounds.first(txn(n - 1), txn(0), 1, 11));
        // Once the round is over, the next call forgets it.
        assert!(rounds.first(txn(n), txn(0), 10, 20));
        assert_eq!(rounds.len(), 1);
    }
}
