//! [`Probe`] and the two pure steps of edge chasing: [`start_probes`] where a waiter has waited
//! long enough, [`shard_step`] where a probe arrives. See the [module docs](super).

use std::fmt;

use serde::Deserialize;
use serde::Serialize;

use super::Deadlock;
use super::WaitEdge;
use crate::lock::LockTable;
use crate::lock::RequestId;
use crate::types::ShardId;
use crate::types::TxnId;

/// The most edges a probe carries, and so the longest cycle found (in transactions). Longer
/// paths are dropped: a cycle that long is left to the lock-wait timeout, and the bound keeps
/// every probe (and the work a branching wait-for graph can cause) finite.
pub const MAX_PROBE_EDGES: usize = 16;

/// A probe travelling along wait-for edges. `edges[0].waiter` is the initiator; each edge's
/// holder is the next edge's waiter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// The path so far, never empty, at most [`MAX_PROBE_EDGES`] long.
    pub edges: Vec<WaitEdge>,
}

impl Probe {
    /// The transaction that started the probe (the youngest on its path, by the pruning rule).
    pub fn initiator(&self) -> TxnId {
        self.edges.first().expect("a probe has at least one edge").waiter
    }

    /// The transaction whose coordinator routes the probe next: the last edge's holder.
    pub fn last_holder(&self) -> TxnId {
        self.edges.last().expect("a probe has at least one edge").holder
    }

    /// True when the path is non-empty, chained (each holder is the next waiter), shorter
    /// than [`MAX_PROBE_EDGES`], visits no transaction twice, and its initiator is younger
    /// than every other transaction on it (the pruning rule).
    pub fn is_well_formed(&self) -> bool {
        let Some(first) = self.edges.first() else {
            return false;
        };
        let initiator = first.waiter;
        let pruned = self.edges.iter().all(|edge| edge.holder < initiator);
        let chained = self.edges.windows(2).all(|pair| pair[0].holder == pair[1].waiter);
        let mut waiters: Vec<TxnId> = self.edges.iter().map(|edge| edge.waiter).collect();
        waiters.sort();
        waiters.dedup();
        let simple = waiters.len() == self.edges.len()
            && self.edges.last().is_some_and(|last| !waiters.contains(&last.holder));
        self.edges.len() < MAX_PROBE_EDGES && pruned && chained && simple
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, edge) in self.edges.iter().enumerate() {
            let separator = if index == 0 { "" } else { " -> " };
            write!(f, "{separator}{edge}")?;
        }
        Ok(())
    }
}

/// What happens to a probe extended along one edge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeStep {
    /// Send to the coordinator of the last holder ([`Probe::last_holder`]), which forwards it
    /// to every shard where that transaction waits.
    Forward(Probe),
    /// The path closed on its initiator: start a [`super::Confirmation`] of it, which
    /// aborts [`Deadlock::victim`] if the whole cycle still exists.
    Deadlock(Deadlock),
    /// The path ends here.
    Drop(DropReason),
}

/// Why a probe path ended without a deadlock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DropReason {
    /// The transaction the probe arrived for does not wait here (any more): the edge that led
    /// here has no continuation, or the coordinator's knowledge was stale.
    NotWaiting(TxnId),
    /// The next holder is younger than the initiator. If a cycle runs through it, the
    /// youngest transaction on that cycle finds it with its own probe (the pruning rule).
    YoungerHolder(TxnId),
    /// The next holder is already on the path, but is not the initiator: that cycle does not
    /// contain the initiator, and one of its own members finds it.
    AlreadyOnPath(TxnId),
    /// The path would exceed [`MAX_PROBE_EDGES`].
    TooLong,
    /// The probe received is not a chained, simple path within the limit (a bug or a version
    /// mismatch on the sender's side); it is ignored rather than trusted.
    Malformed,
}

/// A shard starts probing for `request` (it has waited long enough): one step per blocker edge.
/// Edges to holders younger than the waiter are dropped at once (no message). Empty if the
/// request is no longer waiting.
pub fn start_probes(table: &LockTable, shard: ShardId, request: RequestId) -> Vec<ProbeStep> {
    let Some(waiter) = table.request_txn(request) else {
        return Vec::new();
    };
    extend(table, shard, &[], waiter, request)
}

/// A probe arrived at `shard` because the coordinator of its last holder says that transaction
/// waits here. Drops it if that transaction has no waiting request here; otherwise extends it
/// along each of that request's blocker edges: blocker == initiator -> [`ProbeStep::Deadlock`];
/// blocker younger than the initiator, already on the path, or path too long ->
/// [`ProbeStep::Drop`]; else [`ProbeStep::Forward`].
pub fn shard_step(table: &LockTable, shard: ShardId, probe: &Probe) -> Vec<ProbeStep> {
    if !probe.is_well_formed() {
        return vec![ProbeStep::Drop(DropReason::Malformed)];
    }
    let waiter = probe.last_holder();
    let Some(request) = table.waiting(waiter) else {
        return vec![ProbeStep::Drop(DropReason::NotWaiting(waiter))];
    };
    extend(table, shard, &probe.edges, waiter, request)
}

/// Extends `path` (empty when starting) by each wait-for edge of `waiter`'s `request`.
fn extend(
    table: &LockTable,
    shard: ShardId,
    path: &[WaitEdge],
    waiter: TxnId,
    request: RequestId,
) -> Vec<ProbeStep> {
    assert_eq!(table.request_txn(request), Some(waiter), "{request} is not {waiter}'s wait");
    assert!(path.last().is_none_or(|last| last.holder == waiter), "probe path not chained");
    let initiator = path.first().map_or(waiter, |first| first.waiter);
    table
        .blockers(request)
        .into_iter()
        .map(|blocker| {
            assert_ne!(blocker.txn, waiter, "{waiter} waits on itself");
            let edge = WaitEdge { waiter, holder: blocker.txn, shard, span: blocker.span, request };
            let mut edges = path.to_vec();
            edges.push(edge);
            if blocker.txn == initiator {
                ProbeStep::Deadlock(Deadlock::new(edges))
            } else if blocker.txn > initiator {
                ProbeStep::Drop(DropReason::YoungerHolder(blocker.txn))
            } else if path.iter().any(|edge| edge.waiter == blocker.txn) {
                ProbeStep::Drop(DropReason::AlreadyOnPath(blocker.txn))
            } else if edges.len() >= MAX_PROBE_EDGES {
                ProbeStep::Drop(DropReason::TooLong)
            } else {
                let probe = Probe { edges };
                assert!(probe.is_well_formed(), "forwarding a malformed probe: {probe}");
                ProbeStep::Forward(probe)
            }
        })
        .collect()
}
