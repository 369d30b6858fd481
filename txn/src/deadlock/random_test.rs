//! Random workloads in the simulated world, checked against a brute-force cycle finder over the
//! global wait-for graph (the differential idea of etcd's `quorum/quick_test.go`).
//!
//! Each seed builds a world of 1-3 shards and 2-10 transactions, each with a script of 1-4
//! lock requests on random keys (shared or exclusive, sometimes a range, sometimes two requests
//! to different shards at once). A transaction issues its next request when the previous ones
//! were granted; in half the seeds it commits (releases everything) when its script is done, in
//! the other half it keeps its locks forever, so waits pile up. The world runs to quiescence
//! (nothing changed for a few probe rounds). Checked:
//!
//! - every abort happens while every edge of the cycle it reports is in the global wait-for
//!   graph (so its victim is on a real cycle at that moment: no aborts without a deadlock);
//!   detections whose cycle was already broken behind the probe are counted as `needless`,
//!   and the confirmation pass must have kept each of them from aborting anyone;
//! - at quiescence the global wait-for graph is acyclic (every deadlock was found), and with
//!   committing transactions everything has finished;
//! - every table's invariants, after every tick.
//!
//! A failure message names the seed.

use std::collections::BTreeSet;
use std::collections::VecDeque;

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::ConfirmDrop;
use super::Deadlock;
use super::MAX_PROBE_EDGES;
use super::harness::Event;
use super::harness::PROBE_DELAY_TICKS;
use super::harness::PROBE_INTERVAL_TICKS;
use super::harness::WaitForGraph;
use super::harness::World;
use crate::lock::Acquired;
use crate::lock::LockMode;
use crate::lock::LockSpan;
use crate::lock::lock_table_test::t;
use crate::types::ShardId;
use crate::types::TxnId;

/// Seeds run.
const RANDOM_SEEDS: u64 = 1000;
/// The most transactions per seed; below [`MAX_PROBE_EDGES`], so every cycle is findable.
const RANDOM_TXNS_MAX: u64 = 10;
/// The most shards per seed.
const RANDOM_SHARDS_MAX: u32 = 3;
/// Keys per shard (few, so that transactions collide).
const RANDOM_KEYS_PER_SHARD: u8 = 3;
/// The most requests in one transaction's script.
const RANDOM_REQUESTS_MAX: usize = 4;
/// Ticks without any change after which the world is quiescent: two full probe rounds, and
/// time for the longest probe to travel and its abort to arrive.
const QUIET_TICKS: u64 =
    PROBE_DELAY_TICKS + 2 * PROBE_INTERVAL_TICKS + 2 * MAX_PROBE_EDGES as u64 + 4;
/// A seed that has not quiesced by then is a liveness bug.
const MAX_TICKS: u64 = 20_000;

const _: () = assert!(RANDOM_TXNS_MAX < MAX_PROBE_EDGES as u64, "cycles must be findable");

/// One lock request of a script.
#[derive(Clone, Debug)]
struct Request {
    shard: ShardId,
    span: LockSpan,
    mode: LockMode,
    /// Issued together with the next request (which is on another shard).
    parallel: bool,
}

/// A transaction of the workload.
#[derive(Debug)]
struct Client {
    txn: TxnId,
    script: VecDeque<Request>,
    /// Requests issued and not yet granted.
    outstanding: usize,
    /// The tick it begins.
    begin: u64,
    /// Committed, or aborted as a victim.
    done: bool,
}

/// What the checks found, summed over seeds.
#[derive(Debug, Default)]
struct Tally {
    detections: u64,
    aborts: u64,
    edge_gone: u64,
    pinned: u64,
    needless: u64,
}

fn random_script(rng: &mut SmallRng, shards: u32) -> VecDeque<Request> {
    let length = rng.random_range(1..=RANDOM_REQUESTS_MAX);
    let mut script: VecDeque<Request> = VecDeque::new();
    for _ in 0..length {
        let shard = ShardId(rng.random_range(0..shards));
        let key = |rng: &mut SmallRng| vec![b'a' + rng.random_range(0..RANDOM_KEYS_PER_SHARD)];
        let (span, mode) = if rng.random_bool(0.1) {
            let from = key(rng);
            let to = if rng.random_bool(0.5) { None } else { Some(vec![from[0] + 2]) };
            (LockSpan::Range { from, to }, LockMode::Shared)
        } else {
            let mode = if rng.random_bool(0.4) { LockMode::Shared } else { LockMode::Exclusive };
            (LockSpan::Key(key(rng)), mode)
        };
        // Two requests (never more) go out together, and only to different shards: one wait
        // per transaction per table.
        let in_pair = script.len() >= 2 && script[script.len() - 2].parallel;
        if let Some(previous) = script.back_mut()
            && !in_pair
            && previous.shard != shard
            && rng.random_bool(0.2)
        {
            previous.parallel = true;
        }
        script.push_back(Request { shard, span, mode, parallel: false });
    }
    script
}

/// True when `txn` lies on a cycle of `graph`.
fn on_cycle(graph: &WaitForGraph, txn: TxnId) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<TxnId> = graph.get(&txn).into_iter().flatten().copied().collect();
    while let Some(next) = stack.pop() {
        if next == txn {
            return true;
        }
        if seen.insert(next) {
            stack.extend(graph.get(&next).into_iter().flatten().copied());
        }
    }
    false
}

/// True when every edge of the deadlock's cycle is in `graph`.
fn cycle_in(graph: &WaitForGraph, deadlock: &Deadlock) -> bool {
    deadlock
        .cycle
        .iter()
        .all(|edge| graph.get(&edge.waiter).is_some_and(|holders| holders.contains(&edge.holder)))
}

/// Issues what each idle client does next: its next request(s), or its commit. Returns whether
/// anything happened and the grants the commits caused.
fn drive_clients(world: &mut World, clients: &mut [Client], commits: bool) -> (bool, Vec<Event>) {
    let mut changed = false;
    let mut events = Vec::new();
    for client in clients.iter_mut() {
        if client.done || client.outstanding > 0 || client.begin > world.tick() {
            continue;
        }
        if client.script.is_empty() {
            if commits {
                events.extend(world.finish(client.txn));
                client.done = true;
                changed = true;
            }
            continue;
        }
        loop {
            let request = client.script.pop_front().expect("script not empty");
            let acquired = world.acquire(client.txn, request.shard, request.span, request.mode);
            if let Acquired::Waiting(_) = acquired {
                client.outstanding += 1;
            }
            changed = true;
            if !request.parallel {
                break;
            }
        }
    }
    (changed, events)
}

/// Applies the events of a step to the clients, checking every detection and abort against
/// the graph it carries. Returns whether anything changed.
fn apply_events(seed: u64, events: &[Event], clients: &mut [Client], tally: &mut Tally) -> bool {
    let client = |clients: &mut [Client], txn: TxnId| -> usize {
        clients.iter().position(|c| c.txn == txn).expect("a known transaction")
    };
    let mut changed = false;
    for event in events {
        match event {
            Event::Granted { txn, .. } => {
                let index = client(clients, *txn);
                assert!(clients[index].outstanding > 0, "seed {seed}: {txn} granted unasked");
                clients[index].outstanding -= 1;
                changed = true;
            }
            Event::Detected { deadlock, graph, .. } => {
                tally.detections += 1;
                let victim = deadlock.victim().waiter;
                assert_eq!(victim, deadlock.cycle[0].waiter, "seed {seed}: victim = initiator");
                if !cycle_in(graph, deadlock) {
                    // An edge passed earlier went away: only an abort can do that to a cycle.
                    tally.needless += 1;
                }
            }
            Event::Aborted { txn, deadlock, graph, .. } => {
                tally.aborts += 1;
                assert!(
                    on_cycle(graph, *txn) && cycle_in(graph, deadlock),
                    "seed {seed}: {txn} aborted for a cycle that is not there: {}; graph {graph:?}",
                    deadlock.describe()
                );
                let index = client(clients, *txn);
                clients[index].done = true;
                clients[index].outstanding = 0;
                changed = true;
            }
            Event::Unconfirmed { reason, .. } => match reason {
                ConfirmDrop::EdgeGone(_) => tally.edge_gone += 1,
                ConfirmDrop::Pinned { .. } | ConfirmDrop::PinsFull => tally.pinned += 1,
            },
        }
    }
    changed
}

fn run_seed(seed: u64, tally: &mut Tally) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let shards = rng.random_range(1..=RANDOM_SHARDS_MAX);
    let commits = rng.random_bool(0.5);
    let mut world = World::new(shards);
    let mut clients: Vec<Client> = (1..=rng.random_range(2..=RANDOM_TXNS_MAX))
        .map(|n| Client {
            txn: t(n),
            script: random_script(&mut rng, shards),
            outstanding: 0,
            begin: rng.random_range(0..2 * PROBE_INTERVAL_TICKS),
            done: false,
        })
        .collect();
    let mut last_change = 0;
    while world.tick() - last_change < QUIET_TICKS {
        assert!(world.tick() < MAX_TICKS, "seed {seed}: no quiescence by tick {MAX_TICKS}");
        let (changed, events) = drive_clients(&mut world, &mut clients, commits);
        apply_events(seed, &events, &mut clients, tally);
        if changed {
            last_change = world.tick();
        }
        world.check_invariants();
        let events = world.step();
        world.check_invariants();
        if apply_events(seed, &events, &mut clients, tally) {
            last_change = world.tick();
        }
    }
    let graph = world.wait_for_graph();
    for &txn in graph.keys() {
        assert!(
            !on_cycle(&graph, txn),
            "seed {seed}: undetected deadlock through {txn}: {graph:?}"
        );
    }
    if commits {
        assert!(clients.iter().all(|c| c.done), "seed {seed}: someone never finished");
        assert!(graph.is_empty(), "seed {seed}: waits left");
    }
    assert_eq!(
        world.stats().aborts,
        u64::try_from(world.aborted().len()).expect("small"),
        "seed {seed}: a victim aborted twice"
    );
}

#[test]
fn random_workloads_find_every_deadlock_and_abort_only_on_cycles() {
    // `TXN_RANDOM_SEEDS=100000` searches longer; the default keeps the suite fast.
    let seeds = std::env::var("TXN_RANDOM_SEEDS")
        .map_or(RANDOM_SEEDS, |seeds| seeds.parse().expect("TXN_RANDOM_SEEDS is a number"));
    let mut tally = Tally::default();
    for seed in 0..seeds {
        run_seed(seed, &mut tally);
    }
    eprintln!("{tally:?}");
    assert!(tally.detections > 0 && tally.aborts > 0, "the workload must deadlock: {tally:?}");
    // Needless detections need an overlapping cycle resolved mid-probe: rare by construction.
    assert!(tally.needless * 10 <= tally.detections, "{tally:?}");
}
