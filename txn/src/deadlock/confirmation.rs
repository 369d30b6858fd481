//! [`Confirmation`]: the pass a detected deadlock makes around its cycle before its victim is
//! aborted. See "CONFIRMATION" in the [module docs](super).

use serde::Deserialize;
use serde::Serialize;

use super::Deadlock;
use super::Pins;
use super::WaitEdge;
use crate::lock::Grant;
use crate::lock::LockTable;
use crate::types::ShardId;
use crate::types::TxnId;

/// A detected deadlock travelling around its cycle: every edge is checked (and pinned) at its
/// shard in wait order starting after the victim's edge, and the victim's own edge comes last,
/// checked and cancelled in one step at the victim's shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The cycle.
    pub deadlock: Deadlock,
    /// How many edges have been confirmed so far (0 to cycle length - 1).
    pub confirmed: usize,
}

/// What a shard does with a confirmation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfirmStep {
    /// The edge here exists and is pinned: send the confirmation to
    /// [`Confirmation::shard`] (or step it again at once if that is this shard).
    Forward(Confirmation),
    /// Every edge existed and the victim's request was cancelled here: abort the victim
    /// (release its locks at every shard, answer `DEADLOCK`). The grants come from the cancel.
    Abort {
        /// The victim.
        victim: TxnId,
        /// Requests the cancel granted.
        grants: Vec<Grant>,
        /// The cycle, for the error message ([`Deadlock::describe`]).
        deadlock: Deadlock,
    },
    /// The cycle is not confirmed; nothing is aborted.
    Drop(ConfirmDrop),
}

/// Why a confirmation ended without an abort.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfirmDrop {
    /// This edge no longer exists: a member was granted, cancelled or aborted since the probe
    /// passed, so the cycle is broken (or its epoch passed).
    EdgeGone(WaitEdge),
    /// The victim's request is pinned by the pending confirmation of a cycle with a younger
    /// victim, which the victim's abort would break. If this cycle survives that resolution,
    /// a later probe round finds it again.
    Pinned {
        /// The victim of the confirmation that holds the pin.
        by: TxnId,
    },
    /// The shard holds [`super::MAX_PINS`] live pins already; a later probe round finds the
    /// cycle again.
    PinsFull,
}

impl Confirmation {
    /// Starts the confirmation of a deadlock just detected.
    pub fn new(deadlock: Deadlock) -> Confirmation {
        Confirmation { deadlock, confirmed: 0 }
    }

    /// True when its cycle is well formed ([`Deadlock::is_well_formed`]) and its count is
    /// inside it: what a confirmation received from a peer is checked for.
    pub fn is_well_formed(&self) -> bool {
        self.deadlock.is_well_formed() && self.confirmed < self.deadlock.cycle.len()
    }

    /// The edge to check next.
    pub fn edge(&self) -> &WaitEdge {
        let length = self.deadlock.cycle.len();
        assert!(self.confirmed < length, "confirmation past its cycle");
        let index = (self.deadlock.victim_index() + 1 + self.confirmed) % length;
        &self.deadlock.cycle[index]
    }

    /// The shard to deliver the confirmation to: where the next edge's waiter waits.
    pub fn shard(&self) -> ShardId {
        self.edge().shard
    }

    /// Checks the next edge at `shard` (its table and pins), at time `now`.
    pub fn step(
        mut self,
        table: &mut LockTable,
        pins: &mut Pins,
        shard: ShardId,
        now: u64,
    ) -> ConfirmStep {
        let edge = self.edge().clone();
        assert_eq!(edge.shard, shard, "confirmation of {edge} delivered to {shard}");
        let victim = self.deadlock.victim().waiter;
        if !edge.exists_in(table) {
            return ConfirmStep::Drop(ConfirmDrop::EdgeGone(edge));
        }
        if edge.waiter != victim {
            if !pins.pin(edge.request, victim, now) {
                return ConfirmStep::Drop(ConfirmDrop::PinsFull);
            }
            self.confirmed += 1;
            return ConfirmStep::Forward(self);
        }
        assert_eq!(self.confirmed + 1, self.deadlock.cycle.len(), "victim's edge checked early");
        if let Some(by) = pins.blocking(edge.request, victim, now) {
            assert!(by > victim, "{victim} held back by the older {by}: refusals must age up");
            return ConfirmStep::Drop(ConfirmDrop::Pinned { by });
        }
        let (cancelled, grants) =
            self.deadlock.cancel_victim(table, shard).expect("the victim's edge exists");
        assert_eq!(cancelled, victim, "cancelled someone else's request");
        ConfirmStep::Abort { victim, grants, deadlock: self.deadlock }
    }
}
