//! Deadlock scenarios in the simulated world: messages take a tick, time is logical, and every
//! step checks every invariant. Transactions are `t1`, `t2`, ... with `t1` the oldest.

use super::harness::Event;
use super::harness::PROBE_DELAY_TICKS;
use super::harness::PROBE_INTERVAL_TICKS;
use super::harness::World;
use crate::lock::Acquired;
use crate::lock::LockMode;
use crate::lock::LockSpan;
use crate::lock::lock_table_test::t;
use crate::types::ShardId;
use crate::types::TxnId;

/// Ticks after which a scenario is expected to have settled: several probe rounds.
const SETTLE_TICKS: u64 = 10 * PROBE_INTERVAL_TICKS;

fn shard(n: u32) -> ShardId {
    ShardId(n)
}

fn lock(world: &mut World, txn: u64, at: u32, key: &str, mode: LockMode) -> Acquired {
    let acquired = world.acquire(t(txn), shard(at), LockSpan::key(key), mode);
    world.check_invariants();
    acquired
}

fn must_grant(world: &mut World, txn: u64, at: u32, key: &str, mode: LockMode) {
    let acquired = lock(world, txn, at, key, mode);
    assert_eq!(acquired, Acquired::Granted, "t{txn} {key}@s{at}");
}

fn must_wait(world: &mut World, txn: u64, at: u32, key: &str, mode: LockMode) {
    let acquired = lock(world, txn, at, key, mode);
    assert!(matches!(acquired, Acquired::Waiting(_)), "t{txn} {key}@s{at} expected to wait");
}

/// Runs `ticks` steps, checking invariants after each; returns the events.
fn run(world: &mut World, ticks: u64) -> Vec<Event> {
    let mut events = Vec::new();
    for _ in 0..ticks {
        events.extend(world.step());
        world.check_invariants();
    }
    events
}

/// Steps until the first abort; returns the events up to and including it.
fn run_until_abort(world: &mut World) -> Vec<Event> {
    let mut events = Vec::new();
    for _ in 0..SETTLE_TICKS {
        let step = world.step();
        world.check_invariants();
        let aborted = step.iter().any(|event| matches!(event, Event::Aborted { .. }));
        events.extend(step);
        if aborted {
            return events;
        }
    }
    panic!("no abort within {SETTLE_TICKS} ticks: {events:?}");
}

fn aborted(events: &[Event]) -> Vec<TxnId> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Aborted { txn, .. } => Some(*txn),
            _ => None,
        })
        .collect()
}

fn granted(events: &[Event]) -> Vec<TxnId> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Granted { txn, .. } => Some(*txn),
            _ => None,
        })
        .collect()
}

/// A ring of exclusive waits: `members[i]` holds key `k{i}` at shard `i % shards`, then each
/// member asks for the next member's key, so `members[i]` waits for `members[i + 1]` and the
/// last for the first. All at the current tick.
fn ring(world: &mut World, members: &[u64], shards: u32) {
    let place = |i: usize| u32::try_from(i).expect("small ring") % shards;
    for (i, &member) in members.iter().enumerate() {
        must_grant(world, member, place(i), &format!("k{member}"), LockMode::Exclusive);
    }
    for (i, &member) in members.iter().enumerate() {
        let next = (i + 1) % members.len();
        let key = format!("k{}", members[next]);
        must_wait(world, member, place(next), &key, LockMode::Exclusive);
    }
}

/// After a victim's abort, ends the survivors one by one (each as soon as it waits nowhere),
/// checking that every survivor is granted its request before it ends.
fn drain_survivors(world: &mut World, members: &[u64], events: &mut Vec<Event>) {
    let mut remaining: Vec<TxnId> =
        members.iter().map(|&m| t(m)).filter(|&txn| !world.is_aborted(txn)).collect();
    while !remaining.is_empty() {
        let waits = world.wait_for_graph();
        let position = remaining
            .iter()
            .position(|txn| !waits.contains_key(txn))
            .unwrap_or_else(|| panic!("every survivor waits: {waits:?}"));
        let txn = remaining.remove(position);
        events.extend(world.finish(txn));
        world.check_invariants();
        events.extend(run(world, 1));
    }
    for &member in members {
        let txn = t(member);
        let grants = granted(events).iter().filter(|&&g| g == txn).count();
        let expected = usize::from(!world.is_aborted(txn));
        assert_eq!(grants, expected, "{txn} granted {grants} times");
    }
    for shard in 0..3 {
        assert!(world.table(ShardId(shard)).is_empty(), "s{shard} not empty at the end");
    }
}

/// Steps until the first detection; returns the events up to and including it.
fn run_until_detected(world: &mut World) -> Vec<Event> {
    let mut events = Vec::new();
    while !events.iter().any(|event| matches!(event, Event::Detected { .. })) {
        assert!(world.tick() < SETTLE_TICKS, "no detection: {events:?}");
        events.extend(run(world, 1));
    }
    events
}

/// One ring, resolved: exactly one victim, the youngest; survivors then get their locks.
/// Returns the probe messages sent in the detection round (until the cycle was found).
fn resolve_ring(members: &[u64], shards: u32) -> u64 {
    let mut world = World::new(shards.max(3));
    ring(&mut world, members, shards);
    let mut events = run_until_detected(&mut world);
    let messages = world.stats().probe_messages;
    let length = u64::try_from(members.len()).expect("small");
    if aborted(&events).is_empty() {
        events.extend(run_until_abort(&mut world));
    }
    assert!(world.stats().confirm_messages <= length, "one confirmation message per edge");
    let youngest = members.iter().copied().max().expect("non-empty ring");
    assert_eq!(aborted(&events), vec![t(youngest)], "the youngest is the one victim");
    events.extend(run(&mut world, SETTLE_TICKS));
    assert_eq!(world.stats().aborts, 1, "exactly one victim, even after more rounds");
    drain_survivors(&mut world, members, &mut events);
    messages
}

#[test]
fn two_cycle_on_one_shard_aborts_the_youngest() {
    assert_eq!(resolve_ring(&[1, 2], 1), 2);
}

#[test]
fn two_cycle_across_shards_aborts_the_youngest() {
    assert_eq!(resolve_ring(&[1, 2], 2), 2);
    assert_eq!(resolve_ring(&[2, 1], 2), 2);
}

#[test]
fn three_cycle_over_three_shards() {
    // Ages increasing along the waits: only the youngest's probe travels, 2 * (L - 1).
    assert_eq!(resolve_ring(&[1, 2, 3], 3), 4);
    // Decreasing: every member's probe travels until it meets a younger one, L * (L - 1).
    assert_eq!(resolve_ring(&[3, 2, 1], 3), 6);
    assert_eq!(resolve_ring(&[2, 3, 1], 3), 4);
}

#[test]
fn five_cycle_over_three_shards() {
    assert_eq!(resolve_ring(&[1, 2, 3, 4, 5], 3), 8);
    assert_eq!(resolve_ring(&[5, 4, 3, 2, 1], 3), 20);
    assert_eq!(resolve_ring(&[3, 5, 1, 4, 2], 3), 12);
}

#[test]
fn probe_messages_per_detection_stay_within_the_pruning_bound() {
    // Every rotation and reflection of a few age orders of rings up to 6: at most L * (L - 1)
    // probe messages per detection round, and never less than the successful path.
    let orders: [&[u64]; 4] =
        [&[1, 2, 3, 4, 5, 6], &[6, 1, 5, 2, 4, 3], &[2, 4, 6, 1, 3, 5], &[4, 1, 6, 3, 2, 5]];
    for order in orders {
        for length in 2..=order.len() {
            let members = &order[..length];
            let bound = u64::try_from(length * (length - 1)).expect("small");
            let path = 2 * u64::try_from(length - 1).expect("small");
            let messages = resolve_ring(members, 3);
            assert!((path..=bound).contains(&messages), "{members:?}: {messages} messages");
        }
    }
}

#[test]
fn two_readers_upgrading_one_key_deadlock_and_the_older_gets_x() {
    let mut world = World::new(1);
    must_grant(&mut world, 1, 0, "a", LockMode::Shared);
    must_grant(&mut world, 2, 0, "a", LockMode::Shared);
    must_wait(&mut world, 1, 0, "a", LockMode::Exclusive);
    must_wait(&mut world, 2, 0, "a", LockMode::Exclusive);
    let events = run_until_abort(&mut world);
    assert_eq!(aborted(&events), vec![t(2)]);
    assert_eq!(granted(&events), vec![t(1)]);
    assert!(world.table(shard(0)).holds(t(1), b"a", LockMode::Exclusive));
    run(&mut world, SETTLE_TICKS);
    assert_eq!(world.stats().aborts, 1);
}

#[test]
fn a_cycle_that_forms_while_another_is_resolved() {
    let mut world = World::new(3);
    // Cycle A: t1 <-> t2 across s0 and s1.
    ring(&mut world, &[1, 2], 2);
    let mut events = run_until_detected(&mut world);
    // A is detected, its confirmation is in flight. Cycle B: t3 <-> t4, over s2 and s0.
    must_grant(&mut world, 3, 2, "m", LockMode::Exclusive);
    must_grant(&mut world, 4, 0, "n", LockMode::Exclusive);
    must_wait(&mut world, 3, 0, "n", LockMode::Exclusive);
    must_wait(&mut world, 4, 2, "m", LockMode::Exclusive);
    events.extend(run_until_abort(&mut world));
    assert_eq!(aborted(&events), vec![t(2)]);
    assert!(granted(&events).contains(&t(1)), "t1 got t2's key");
    // Cycle C, with the survivor of A: t1 (now running) and t5.
    must_grant(&mut world, 5, 2, "p", LockMode::Exclusive);
    must_wait(&mut world, 1, 2, "p", LockMode::Exclusive);
    must_wait(&mut world, 5, 0, "k1", LockMode::Exclusive);
    events.extend(run(&mut world, SETTLE_TICKS));
    assert_eq!(aborted(&events), vec![t(2), t(4), t(5)], "one victim per cycle, the youngest");
    assert_eq!(world.stats().aborts, 3);
    assert!(world.wait_for_graph().is_empty(), "everyone else got their locks");
    assert!(world.table(shard(2)).holds(t(1), b"p", LockMode::Exclusive));
    assert!(world.table(shard(0)).holds(t(3), b"n", LockMode::Exclusive));
}

#[test]
fn chains_and_trees_of_waits_are_never_aborted() {
    let mut world = World::new(3);
    // A tree rooted at t1 (running), over two shards, with readers and writers.
    must_grant(&mut world, 1, 0, "a", LockMode::Exclusive);
    must_grant(&mut world, 1, 1, "b", LockMode::Shared);
    must_wait(&mut world, 2, 0, "a", LockMode::Shared);
    must_wait(&mut world, 3, 0, "a", LockMode::Shared);
    must_wait(&mut world, 4, 1, "b", LockMode::Exclusive);
    must_wait(&mut world, 5, 1, "b", LockMode::Shared);
    // A chain t9 -> t8 -> t7 -> t6 across all shards, ages mixed, ending at running t6.
    must_grant(&mut world, 6, 2, "c", LockMode::Exclusive);
    must_grant(&mut world, 7, 0, "d", LockMode::Exclusive);
    must_grant(&mut world, 8, 1, "e", LockMode::Exclusive);
    must_wait(&mut world, 7, 2, "c", LockMode::Exclusive);
    must_wait(&mut world, 8, 0, "d", LockMode::Exclusive);
    must_wait(&mut world, 9, 1, "e", LockMode::Shared);
    // An old transaction waiting behind the young chain: probes go all the way to t6.
    must_grant(&mut world, 10, 2, "f", LockMode::Exclusive);
    must_wait(&mut world, 6, 2, "f", LockMode::Shared);
    let events = run(&mut world, 50 * PROBE_INTERVAL_TICKS);
    assert!(events.is_empty(), "no detection, no abort, no grant: {events:?}");
    assert_eq!(world.stats().detections, 0);
    assert!(world.stats().rounds >= 50 * 8, "every waiter kept probing");
    let mut events = world.finish(t(1));
    events.extend(world.finish(t(6)));
    assert_eq!(granted(&events), vec![t(2), t(3), t(4), t(7)]);
}

#[test]
fn a_transaction_waiting_at_two_shards_is_chased_along_both_waits() {
    // AND model: t1 waits at s0 (for t2) and at s1 (for t3) at once; t3 waits for t1 at s2.
    let mut world = World::new(3);
    must_grant(&mut world, 1, 2, "c", LockMode::Exclusive);
    must_grant(&mut world, 2, 0, "a", LockMode::Exclusive);
    must_grant(&mut world, 3, 1, "b", LockMode::Exclusive);
    must_wait(&mut world, 1, 0, "a", LockMode::Exclusive);
    must_wait(&mut world, 1, 1, "b", LockMode::Exclusive);
    must_wait(&mut world, 3, 2, "c", LockMode::Exclusive);
    let events = run_until_abort(&mut world);
    assert_eq!(aborted(&events), vec![t(3)]);
    assert_eq!(granted(&events), vec![t(1)], "t1's wait at s1 ends; at s0 it still waits");
    run(&mut world, SETTLE_TICKS);
    assert_eq!(world.stats().aborts, 1);
}

#[test]
fn a_victim_whose_wait_ended_meanwhile_is_not_aborted() {
    let mut world = World::new(2);
    ring(&mut world, &[1, 2], 2);
    let mut events = run_until_detected(&mut world);
    // The confirmation is in flight; t2 ends by itself first (say, its lock-wait timeout fired).
    events.extend(world.finish(t(2)));
    events.extend(run(&mut world, SETTLE_TICKS));
    assert!(aborted(&events).is_empty(), "the epoch passed: no phantom abort");
    assert!(events.iter().any(|event| matches!(event, Event::Unconfirmed { .. })));
    assert_eq!(world.stats().edges_gone, 1);
    assert_eq!(granted(&events), vec![t(1)]);
}

#[test]
fn probing_starts_after_the_delay_and_repeats_at_the_interval() {
    let mut world = World::new(1);
    must_grant(&mut world, 1, 0, "a", LockMode::Exclusive);
    must_wait(&mut world, 2, 0, "a", LockMode::Exclusive);
    run(&mut world, PROBE_DELAY_TICKS - 1);
    assert_eq!(world.stats().rounds, 0);
    run(&mut world, 1);
    assert_eq!(world.stats().rounds, 1);
    run(&mut world, PROBE_INTERVAL_TICKS);
    assert_eq!(world.stats().rounds, 2);
    // t1 is running: each round is one message, to t1's coordinator, which drops it.
    assert_eq!(world.stats().probe_messages, 2);
    assert_eq!(world.stats().probes_dropped, 1, "the second is delivered next tick");
    run(&mut world, 1);
    assert_eq!(world.stats().probes_dropped, 2);
}
