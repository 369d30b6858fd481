//! [`Deadlock`]: a closed cycle of wait-for edges, its victim, and the victim's abort. (The
//! file is not called `deadlock.rs` because it lives in the module of that name.)

use std::fmt;

use serde::Deserialize;
use serde::Serialize;

use super::MAX_PROBE_EDGES;
use super::WaitEdge;
use crate::lock::Grant;
use crate::lock::LockTable;
use crate::types::ShardId;
use crate::types::TxnId;

/// A deadlock: a closed cycle, where the last edge's holder is the first edge's waiter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadlock {
    /// The edges in wait order, starting at the initiator of the probe that found it.
    pub cycle: Vec<WaitEdge>,
}

impl Deadlock {
    /// A deadlock from a closed, chained, simple cycle (asserted).
    pub fn new(cycle: Vec<WaitEdge>) -> Deadlock {
        let deadlock = Deadlock { cycle };
        deadlock.check();
        deadlock
    }

    /// The edge whose waiter is the youngest transaction on the cycle (max TxnId).
    /// Deterministic, so concurrent detections of one cycle pick the same victim. With the
    /// pruning rule of [`super::shard_step`] it is also the edge of the initiator.
    pub fn victim(&self) -> &WaitEdge {
        self.cycle.iter().max_by_key(|edge| edge.waiter).expect("a cycle has edges")
    }

    /// For people: `t1.1.4 waits for t2.1.7 on key a (s0) -> t2.1.7 waits for t1.1.4 on key b
    /// (s1)`.
    pub fn describe(&self) -> String {
        self.to_string()
    }

    /// The transactions on the cycle, in wait order from the initiator.
    pub fn txns(&self) -> Vec<TxnId> {
        self.cycle.iter().map(|edge| edge.waiter).collect()
    }

    /// The position of [`Deadlock::victim`] in the cycle.
    pub fn victim_index(&self) -> usize {
        let victim = self.victim().waiter;
        self.cycle.iter().position(|edge| edge.waiter == victim).expect("the victim is on it")
    }

    /// Cancels the victim's request at the victim's shard if the victim's edge still exists
    /// (the request still waits, and still on the edge's holder). Returns the victim and the
    /// grants the cancel caused; `None` if the epoch has passed, in which case nothing must be
    /// aborted (no phantom deadlocks). The caller then aborts the transaction (releasing its
    /// locks at every shard) and answers it `DEADLOCK`. Prefer
    /// [`Confirmation`](super::Confirmation), which checks every edge of the cycle first.
    pub fn cancel_victim(
        &self,
        table: &mut LockTable,
        shard: ShardId,
    ) -> Option<(TxnId, Vec<Grant>)> {
        let victim = self.victim();
        assert_eq!(victim.shard, shard, "victim {victim} cancelled at the wrong shard");
        if !victim.exists_in(table) {
            return None;
        }
        let cancelled = table.cancel(victim.request).expect("request checked to be waiting");
        assert_eq!(cancelled.0, victim.waiter, "cancelled someone else's request");
        Some(cancelled)
    }

    /// True when the cycle is non-empty, at most [`MAX_PROBE_EDGES`] long (a probe's path and the edge that closes it), chained, closed and
    /// simple: what [`Deadlock::new`] asserts, and what a cycle received from a peer is checked
    /// for before any step of it runs (a malformed one failed an assertion under the shard's
    /// state lock, which stayed poisoned; a review, 2026-12-07).
    pub fn is_well_formed(&self) -> bool {
        let (Some(first), Some(last)) = (self.cycle.first(), self.cycle.last()) else {
            return false;
        };
        let mut txns = self.txns();
        txns.sort();
        txns.dedup();
        self.cycle.len() <= MAX_PROBE_EDGES
            && last.holder == first.waiter
            && self.cycle.windows(2).all(|pair| pair[0].holder == pair[1].waiter)
            && txns.len() == self.cycle.len()
    }

    /// Asserts [`Deadlock::is_well_formed`].
    fn check(&self) {
        assert!(self.is_well_formed(), "not a well-formed deadlock cycle: {self}");
    }
}

impl fmt::Display for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, edge) in self.cycle.iter().enumerate() {
            let separator = if index == 0 { "" } else { " -> " };
            write!(f, "{separator}{edge}")?;
        }
        Ok(())
    }
}
