//! A deterministic world for the deadlock detector: several shards (each a [`LockTable`] and
//! its [`Pins`]), one coordinator per transaction, and a FIFO queue of messages between them,
//! all on logical ticks. It drives [`start_probes`], [`shard_step`] and [`Confirmation::step`]
//! the way the server is meant to, so it doubles as the reference for the server's routing. It
//! is public (not test-only) so that the server's and the simulation's tests can use it as an
//! oracle too.
//!
//! ```text
//!   tick t: request R of T waits at shard S   (World::acquire)
//!   tick t + PROBE_DELAY_TICKS, then every PROBE_INTERVAL_TICKS while R waits:
//!     S: start_probes(R) --Forward(p)--> ProbeToCoordinator(p)         (to p.last_holder())
//!   coordinator of H = p.last_holder(): for every shard where H waits --> ProbeToShard(p)
//!     (H waits nowhere: drop)
//!   shard: shard_step(p) --Forward(p')--> ProbeToCoordinator(p')
//!                        --Deadlock(d)--> Confirmation::new(d), stepped here
//!   shard of the next edge: Confirmation::step --Forward(c)--> Confirm(c) (to c.shard(); at
//!                                                              once if that is this shard)
//!                                          --Abort{victim}--> abort the victim: release_all
//!                                                              at every shard, survivors get
//!                                                              their grants
//!                                          --Drop-->          nothing is aborted
//! ```
//!
//! Every message is delivered [`MESSAGE_DELAY_TICKS`] after it is sent, in sending order, and
//! [`Stats`] counts them. Two simplifications make the world kinder than a real network; the
//! server must not rely on them. A coordinator knows at once where its transaction waits (the
//! server learns it from the shard's reply; a stale view only costs a dropped probe, which
//! [`shard_step`] handles). An aborted victim's locks are released at every shard in the same
//! tick (the server sends abort messages; until they arrive, the victim blocks others longer).
//!
//! For checking, [`Event::Detected`] and [`Event::Aborted`] carry the global wait-for graph
//! ([`World::wait_for_graph`], built from every table's blockers) at that moment, so a test can
//! confirm with a brute-force search that the cycle was real.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::collections::VecDeque;

use super::ConfirmDrop;
use super::ConfirmStep;
use super::Confirmation;
use super::Deadlock;
use super::MAX_PROBE_EDGES;
use super::Pins;
use super::Probe;
use super::ProbeStep;
use super::shard_step;
use super::start_probes;
use crate::lock::Acquired;
use crate::lock::Grant;
use crate::lock::LockMode;
use crate::lock::LockSpan;
use crate::lock::LockTable;
use crate::lock::RequestId;
use crate::types::ShardId;
use crate::types::TxnId;

/// Ticks a request waits before its shard starts probing for it. Most waits end quickly on
/// their own; probing only the ones that last keeps probe traffic low.
pub const PROBE_DELAY_TICKS: u64 = 3;
/// Ticks between two probe rounds for a request that still waits. Re-probing finds cycles
/// that closed after the first round (the last waiter's own probe may have been pruned).
pub const PROBE_INTERVAL_TICKS: u64 = 10;
/// Ticks between sending a message and its delivery.
pub const MESSAGE_DELAY_TICKS: u64 = 1;
/// The most messages in flight; more means probes multiply without bound (a bug).
pub const MAX_IN_FLIGHT: usize = 100_000;
/// How long a confirmation pin lasts: longer than the longest confirmation pass (one message
/// per edge of a cycle of [`MAX_PROBE_EDGES`]), so a pin never expires under its own pass.
pub const CONFIRM_PIN_TICKS: u64 = 2 * MAX_PROBE_EDGES as u64 * MESSAGE_DELAY_TICKS;

/// The global wait-for graph: waiter to the transactions it waits for, over all shards.
pub type WaitForGraph = BTreeMap<TxnId, BTreeSet<TxnId>>;

/// A message between a shard and a coordinator.
#[derive(Clone, Debug)]
pub enum Message {
    /// To the coordinator of [`Probe::last_holder`].
    ProbeToCoordinator(Probe),
    /// From a coordinator to a shard where its transaction waits.
    ProbeToShard {
        /// The destination shard.
        shard: ShardId,
        /// The probe.
        probe: Probe,
    },
    /// A detected deadlock on its confirmation pass, to the shard of its next edge.
    Confirm(Confirmation),
}

/// Something that happened in a tick, for the test driving the world.
#[derive(Clone, Debug)]
pub enum Event {
    /// A waiting request was granted.
    Granted {
        /// When.
        tick: u64,
        /// Where.
        shard: ShardId,
        /// To whom.
        txn: TxnId,
        /// The request.
        request: RequestId,
    },
    /// A probe closed a cycle at `shard`.
    Detected {
        /// When.
        tick: u64,
        /// The shard that found it.
        shard: ShardId,
        /// The cycle.
        deadlock: Deadlock,
        /// The global wait-for graph at that moment.
        graph: WaitForGraph,
    },
    /// A victim was aborted.
    Aborted {
        /// When.
        tick: u64,
        /// The victim.
        txn: TxnId,
        /// The cycle it was aborted for.
        deadlock: Deadlock,
        /// The global wait-for graph just before the abort.
        graph: WaitForGraph,
    },
    /// A confirmation pass failed: nothing was aborted.
    Unconfirmed {
        /// When.
        tick: u64,
        /// The cycle.
        deadlock: Deadlock,
        /// Why.
        reason: ConfirmDrop,
    },
}

/// Message and outcome counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Probe rounds started (timer firings of waiting requests).
    pub rounds: u64,
    /// Probe messages sent (to coordinators and to shards).
    pub probe_messages: u64,
    /// Probe paths dropped (by shards or coordinators).
    pub probes_dropped: u64,
    /// Cycles found.
    pub detections: u64,
    /// Confirmation messages sent.
    pub confirm_messages: u64,
    /// Victims aborted.
    pub aborts: u64,
    /// Confirmations that failed because an edge had gone.
    pub edges_gone: u64,
    /// Confirmations held back by the pin of a younger victim's confirmation.
    pub pinned: u64,
}

/// The world: see the module docs.
#[derive(Debug)]
pub struct World {
    /// The current logical time.
    tick: u64,
    /// One lock table per shard.
    tables: BTreeMap<ShardId, LockTable>,
    /// The confirmation pins of each shard.
    pins: BTreeMap<ShardId, Pins>,
    /// When each waiting request started waiting, which drives its probe timer.
    waiting_since: BTreeMap<(ShardId, RequestId), u64>,
    /// The coordinators' knowledge: the shards where each transaction waits.
    waiting_at: BTreeMap<TxnId, BTreeSet<ShardId>>,
    /// Transactions aborted as victims.
    aborted: BTreeSet<TxnId>,
    /// Messages with their delivery tick, in sending order.
    in_flight: VecDeque<(u64, Message)>,
    /// Counters.
    stats: Stats,
    /// Events of the current step, handed out by [`World::step`].
    events: Vec<Event>,
}

impl World {
    /// A world of `shards` shards, `s0` to `s{shards-1}`, at tick 0.
    pub fn new(shards: u32) -> World {
        let tables = (0..shards).map(|shard| (ShardId(shard), LockTable::new(1))).collect();
        let pins =
            (0..shards).map(|shard| (ShardId(shard), Pins::new(CONFIRM_PIN_TICKS))).collect();
        World {
            tick: 0,
            tables,
            pins,
            waiting_since: BTreeMap::new(),
            waiting_at: BTreeMap::new(),
            aborted: BTreeSet::new(),
            in_flight: VecDeque::new(),
            stats: Stats::default(),
            events: Vec::new(),
        }
    }

    /// The current tick.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// The lock table of `shard`.
    pub fn table(&self, shard: ShardId) -> &LockTable {
        self.tables.get(&shard).expect("no such shard")
    }

    /// The counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// True when `txn` was aborted as a deadlock victim.
    pub fn is_aborted(&self, txn: TxnId) -> bool {
        self.aborted.contains(&txn)
    }

    /// Every transaction aborted as a victim.
    pub fn aborted(&self) -> &BTreeSet<TxnId> {
        &self.aborted
    }

    /// Messages in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// A statement of `txn` asks for a lock at `shard`, now.
    pub fn acquire(
        &mut self,
        txn: TxnId,
        shard: ShardId,
        span: LockSpan,
        mode: LockMode,
    ) -> Acquired {
        assert!(!self.is_aborted(txn), "aborted {txn} issues a statement");
        let table = self.tables.get_mut(&shard).expect("no such shard");
        let acquired = table.acquire(txn, span, mode);
        if let Acquired::Waiting(request) = acquired {
            self.waiting_since.insert((shard, request), self.tick);
            self.waiting_at.entry(txn).or_default().insert(shard);
        }
        acquired
    }

    /// `txn` ends (commits, or aborts for a reason of its own): its locks are released at
    /// every shard, now. Returns the grants it caused (also reported as events by the next
    /// step).
    pub fn finish(&mut self, txn: TxnId) -> Vec<Event> {
        self.release_everywhere(txn);
        std::mem::take(&mut self.events)
    }

    /// Advances one tick: delivers the messages due, then fires the probe timers. Returns what
    /// happened.
    pub fn step(&mut self) -> Vec<Event> {
        self.tick += 1;
        while self.in_flight.front().is_some_and(|(due, _)| *due <= self.tick) {
            let (_, message) = self.in_flight.pop_front().expect("front exists");
            self.deliver(message);
        }
        self.fire_probe_timers();
        for pins in self.pins.values_mut() {
            pins.expire(self.tick);
        }
        std::mem::take(&mut self.events)
    }

    /// Runs `ticks` steps; returns all their events.
    pub fn run(&mut self, ticks: u64) -> Vec<Event> {
        (0..ticks).flat_map(|_| self.step()).collect()
    }

    /// The global wait-for graph, from every table's blockers.
    pub fn wait_for_graph(&self) -> WaitForGraph {
        let mut graph = WaitForGraph::new();
        for table in self.tables.values() {
            for wait in table.waits() {
                graph.entry(wait.txn).or_default().extend(wait.blockers.iter().map(|b| b.txn));
            }
        }
        graph
    }

    /// Checks every table, and that timers and coordinators agree with the tables.
    pub fn check_invariants(&self) {
        let mut waits = BTreeSet::new();
        let mut where_waiting: BTreeMap<TxnId, BTreeSet<ShardId>> = BTreeMap::new();
        for (&shard, table) in &self.tables {
            table.check_invariants();
            for wait in table.waits() {
                waits.insert((shard, wait.request));
                where_waiting.entry(wait.txn).or_default().insert(shard);
                assert!(!self.aborted.contains(&wait.txn), "aborted {} still waits", wait.txn);
            }
            for txn in table.txns() {
                assert!(!self.aborted.contains(&txn), "aborted {txn} still holds locks");
            }
        }
        let timers: BTreeSet<_> = self.waiting_since.keys().copied().collect();
        assert_eq!(timers, waits, "probe timers out of sync with the waits");
        assert_eq!(self.waiting_at, where_waiting, "coordinators out of sync with the waits");
        assert!(self.in_flight.len() <= MAX_IN_FLIGHT, "probe storm");
    }

    fn send(&mut self, message: Message) {
        match message {
            Message::Confirm(_) => self.stats.confirm_messages += 1,
            Message::ProbeToCoordinator(_) | Message::ProbeToShard { .. } => {
                self.stats.probe_messages += 1;
            }
        }
        assert!(self.in_flight.len() < MAX_IN_FLIGHT, "more than {MAX_IN_FLIGHT} in flight");
        self.in_flight.push_back((self.tick + MESSAGE_DELAY_TICKS, message));
    }

    fn deliver(&mut self, message: Message) {
        match message {
            Message::ProbeToCoordinator(probe) => {
                let holder = probe.last_holder();
                let shards = self.waiting_at.get(&holder).cloned().unwrap_or_default();
                if shards.is_empty() {
                    self.stats.probes_dropped += 1;
                }
                for shard in shards {
                    self.send(Message::ProbeToShard { shard, probe: probe.clone() });
                }
            }
            Message::ProbeToShard { shard, probe } => {
                let steps = shard_step(self.table(shard), shard, &probe);
                self.handle_steps(shard, steps);
            }
            Message::Confirm(confirmation) => self.confirm(confirmation),
        }
    }

    /// Starts a probe round for every request that has waited `PROBE_DELAY_TICKS`, and every
    /// `PROBE_INTERVAL_TICKS` after that.
    fn fire_probe_timers(&mut self) {
        let due: Vec<(ShardId, RequestId)> = self
            .waiting_since
            .iter()
            .filter(|(_, since)| {
                let waited = self.tick - **since;
                waited >= PROBE_DELAY_TICKS
                    && (waited - PROBE_DELAY_TICKS).is_multiple_of(PROBE_INTERVAL_TICKS)
            })
            .map(|(key, _)| *key)
            .collect();
        for (shard, request) in due {
            self.stats.rounds += 1;
            let steps = start_probes(self.table(shard), shard, request);
            assert!(!steps.is_empty(), "a timer for {request} at {shard}, which does not wait");
            self.handle_steps(shard, steps);
        }
    }

    fn handle_steps(&mut self, shard: ShardId, steps: Vec<ProbeStep>) {
        for step in steps {
            match step {
                ProbeStep::Forward(probe) => self.send(Message::ProbeToCoordinator(probe)),
                ProbeStep::Drop(_) => self.stats.probes_dropped += 1,
                ProbeStep::Deadlock(deadlock) => {
                    self.stats.detections += 1;
                    let graph = self.wait_for_graph();
                    let tick = self.tick;
                    self.events.push(Event::Detected {
                        tick,
                        shard,
                        deadlock: deadlock.clone(),
                        graph,
                    });
                    self.confirm(Confirmation::new(deadlock));
                }
            }
        }
    }

    /// Steps a confirmation at the shard of its next edge, and on at once while the next edge
    /// is on the same shard.
    fn confirm(&mut self, mut confirmation: Confirmation) {
        loop {
            let shard = confirmation.shard();
            // The graph just before a possible abort, for the checks of the tests.
            let last = confirmation.edge().waiter == confirmation.deadlock.victim().waiter;
            let graph = if last { self.wait_for_graph() } else { WaitForGraph::new() };
            let table = self.tables.get_mut(&shard).expect("edge's shard exists");
            let pins = self.pins.get_mut(&shard).expect("edge's shard exists");
            match confirmation.clone().step(table, pins, shard, self.tick) {
                ConfirmStep::Forward(next) if next.shard() == shard => confirmation = next,
                ConfirmStep::Forward(next) => return self.send(Message::Confirm(next)),
                ConfirmStep::Drop(reason) => {
                    match reason {
                        ConfirmDrop::EdgeGone(_) => self.stats.edges_gone += 1,
                        ConfirmDrop::Pinned { .. } | ConfirmDrop::PinsFull => {
                            self.stats.pinned += 1
                        }
                    }
                    let deadlock = confirmation.deadlock;
                    let tick = self.tick;
                    return self.events.push(Event::Unconfirmed { tick, deadlock, reason });
                }
                ConfirmStep::Abort { victim, grants, deadlock } => {
                    return self.abort_victim(shard, victim, &grants, deadlock, graph);
                }
            }
        }
    }

    /// Aborts a confirmed victim whose request at `shard` was just cancelled.
    fn abort_victim(
        &mut self,
        shard: ShardId,
        txn: TxnId,
        grants: &[Grant],
        deadlock: Deadlock,
        graph: WaitForGraph,
    ) {
        assert!(!self.aborted.contains(&txn), "{txn} aborted twice");
        self.stats.aborts += 1;
        self.waiting_since.remove(&(shard, deadlock.victim().request));
        self.forget_wait(txn, shard);
        self.note_grants(shard, grants);
        self.events.push(Event::Aborted { tick: self.tick, txn, deadlock, graph });
        self.aborted.insert(txn);
        self.release_everywhere(txn);
    }

    /// Releases everything of `txn` at every shard, withdrawing its waits.
    fn release_everywhere(&mut self, txn: TxnId) {
        let shards: Vec<ShardId> = self.tables.keys().copied().collect();
        for shard in shards {
            let table = self.tables.get_mut(&shard).expect("shard exists");
            if let Some(request) = table.waiting(txn) {
                self.waiting_since.remove(&(shard, request));
                self.forget_wait(txn, shard);
            }
            let table = self.tables.get_mut(&shard).expect("shard exists");
            let grants = table.release_all(txn);
            self.note_grants(shard, &grants);
        }
    }

    fn note_grants(&mut self, shard: ShardId, grants: &[Grant]) {
        for grant in grants {
            let since = self.waiting_since.remove(&(shard, grant.request));
            assert!(since.is_some(), "{} granted without a timer", grant.request);
            self.forget_wait(grant.txn, shard);
            let event =
                Event::Granted { tick: self.tick, shard, txn: grant.txn, request: grant.request };
            self.events.push(event);
        }
    }

    fn forget_wait(&mut self, txn: TxnId, shard: ShardId) {
        let shards = self.waiting_at.get_mut(&txn).expect("the coordinator knows its waits");
        assert!(shards.remove(&shard), "{txn} did not wait at {shard}");
        if shards.is_empty() {
            self.waiting_at.remove(&txn);
        }
    }
}
