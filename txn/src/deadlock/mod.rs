//! Edge-chasing deadlock detection: Chandy-Misra-Haas, AND model, across shards (DESIGN.md
//! section 5). This module holds the pure decisions; the server moves the messages, and
//! [`harness`] moves them in a deterministic simulation to test the decisions.
//!
//! THE GRAPH
//!
//! A transaction waiting at a shard waits for every blocker of its request
//! ([`crate::lock::LockTable::blockers`]): the holders of conflicting locks and the owners of
//! conflicting requests queued ahead. Those are the edges of the global wait-for graph, and no
//! node sees all of them: each shard sees the edges of the requests waiting there, each
//! coordinator knows at which shards its own transaction waits. A transaction is blocked until
//! *all* its edges go (AND model), so any cycle is a deadlock that never resolves by itself.
//!
//! THE PROTOCOL (here T1 is the youngest of the three)
//!
//! ```text
//!   T1 waits at s0 for T2         T2 waits at s1 for T3          T3 waits at s0 for T1
//!   s0: start_probes(r1)    ->  coord(T2)  ->  s1: shard_step  ->  coord(T3)  ->  s0: shard_step
//!       [T1->T2]                                [T1->T2, T2->T3]                    blocker T1 ==
//!                                                                                   initiator:
//!                                                                                   Deadlock
//! ```
//!
//! 1. When a request has waited a short delay (a server timer; [`harness::PROBE_DELAY_TICKS`]
//!    in the simulation), its shard calls [`start_probes`]: one [`Probe`] per blocker edge, each
//!    sent to the coordinator of that blocker. It repeats every interval while the request
//!    still waits, because a cycle may close after the first round.
//! 2. A coordinator forwards a probe to every shard where its transaction currently waits, or
//!    drops it if it waits nowhere (it is running, or finished: the path ends there).
//! 3. The shard calls [`shard_step`]: if the transaction does not wait there (any more) the
//!    probe is dropped; otherwise the probe is extended by each of its wait edges. An edge back
//!    to the initiator closes a cycle: [`ProbeStep::Deadlock`].
//! 4. The detecting shard starts a [`Confirmation`]: the deadlock travels around its cycle
//!    once more, shard to shard (one message per change of shard), each shard checking that
//!    its edge still exists and pinning it ([`Pins`]). The victim's own edge comes last: at the
//!    victim's shard it is checked and the victim's request cancelled in one step
//!    ([`ConfirmStep::Abort`]). The server then aborts the victim (`DEADLOCK` error, locks
//!    released at every shard), and the survivors' requests are granted in queue order.
//!
//! The victim ([`Deadlock::victim`]) is the youngest transaction on the cycle, so concurrent
//! detections of one cycle pick the same victim.
//!
//! EPOCHS AND CONFIRMATION: NO PHANTOM ABORTS
//!
//! Every edge carries its waiter's [`crate::lock::RequestId`], the wait epoch: an edge exists
//! only while that request waits, on that holder ([`WaitEdge::exists_in`]). In a cycle whose
//! members all wait, edges disappear only when a member aborts (strict 2PL: a waiting
//! transaction releases nothing). The probe only checks each edge as it passes, so a cycle can
//! be broken *behind* it: by the abort of a member that was the victim of another,
//! overlapping cycle, or by a lock-wait timeout. Edge chasing alone then aborts a second
//! victim for a cycle that no longer exists (the random test found this within 30 seeds).
//! The confirmation pass closes that gap:
//!
//! - an edge gone before the pass reaches it drops the confirmation
//!   ([`ConfirmDrop::EdgeGone`]): nothing is aborted;
//! - an edge the pass has checked is pinned until the pass is over; a victim whose request is
//!   pinned by the pass of a *different* victim is not aborted ([`ConfirmDrop::Pinned`]): its
//!   abort would break that cycle. If its own cycle survives, a later probe round finds it
//!   again. The pinning victim is always younger than the pinned one (it is the youngest on a
//!   cycle through the pinned one), so refusals can never go round in a circle: the youngest
//!   pending victim always goes through;
//! - the victim's edge is checked and cancelled atomically, at its shard.
//!
//! So when a victim is aborted, every edge of its cycle exists. The random test checks exactly
//! that against the global wait-for graph, on thousands of seeds. Limits: a pin lasts a fixed
//! time (longer than a pass); a pass slower than that, or a member aborted by something other
//! than a victim abort (lock-wait timeout, idle abort), can still cost one needless abort,
//! which only costs a retry. A pin also outlives the abort of its victim until it expires, so
//! an overlapping cycle it refused waits that long plus one round.

//! PRUNING (A DEPARTURE FROM PLAIN CMH, FOR FEWER MESSAGES)
//!
//! A probe is only extended to holders *older* than its initiator; an edge to a younger holder
//! drops it ([`DropReason::YoungerHolder`]), already in [`start_probes`] (no message). A cycle
//! is still always found: its youngest member's probes meet only older transactions along it.
//! In return only that member's probe can complete, so one cycle is detected once per round,
//! by one initiator, which is also the victim: concurrent detections cannot pick different
//! victims, and the message count per detection is `2 * (cycle length - 1)` for the successful
//! path (shard -> coordinator -> shard per edge) plus the pruned probes of other members. In
//! the worst case (ages decreasing along the cycle) those add up to `L * (L - 1)` for a cycle
//! of `L`, in the common case to a few.
//!
//! LIMITS
//!
//! A probe carries at most [`MAX_PROBE_EDGES`] edges: longer cycles are left to the lock-wait
//! timeout, the last resort. A probe that visits a transaction twice without closing on the
//! initiator is dropped ([`DropReason::AlreadyOnPath`]): that cycle does not contain the
//! initiator, and its own youngest member finds it. A probe fans out along every blocker, so
//! one round costs at most the number of simple paths of up to [`MAX_PROBE_EDGES`] edges from
//! the waiter through older transactions: small for the short, narrow waits of 2PL.
//!
//! INVARIANTS
//!
//! 1. A probe is a non-empty, chained, simple path (each holder is the next waiter, no
//!    transaction twice) of fewer than [`MAX_PROBE_EDGES`] edges, whose initiator is strictly
//!    younger than every other transaction on it ([`Probe::is_well_formed`], asserted when
//!    forwarding, checked on arrival).
//! 2. A [`Deadlock`] is closed (the last holder is the first waiter), chained and simple
//!    (asserted in [`Deadlock::new`]).
//! 3. A victim is aborted only through its own still-waiting request, after every other edge
//!    of its cycle was confirmed and pinned, and never while a younger victim's pass pins it.

mod confirmation;
mod cycle;
pub mod harness;
mod pins;
mod probe;
mod probe_rounds;
mod wait_edge;

#[cfg(test)]
mod confirmation_test;
#[cfg(test)]
mod harness_test;
#[cfg(test)]
mod probe_test;
#[cfg(test)]
mod random_test;

pub use confirmation::ConfirmDrop;
pub use confirmation::ConfirmStep;
pub use confirmation::Confirmation;
pub use cycle::Deadlock;
pub use pins::MAX_PINS;
pub use pins::Pins;
pub use probe::DropReason;
pub use probe::MAX_PROBE_EDGES;
pub use probe::Probe;
pub use probe::ProbeStep;
pub use probe::shard_step;
pub use probe::start_probes;
pub use probe_rounds::PROBES_REMEMBERED_MAX;
pub use probe_rounds::ProbeRounds;
pub use wait_edge::WaitEdge;
