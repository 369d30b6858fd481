//! The checker host: watches shard leaders during the run (the nemesis isolates them), then,
//! once the clients stopped, reads the final state and checks the cluster itself:
//!
//! 1. the final list of every list-append key and the final value of every register, read
//!    linearizably through the leaders; both join their histories as reads of their own
//!    (process [`FINAL_PROCESS`]), so the checkers order an append after a key's last read
//!    against them too (before 2026-12-06 the final lists were only counted, and two appends
//!    after the last read could be applied in the wrong real-time order unseen; found by a
//!    review of the checker);
//! 2. the exact outcome (TxnStatus) of every transaction whose client never learned it (asked
//!    during the run too, by the resolver host, before its record is collected: an answer
//!    that changed since is a finding);
//! 3. the bank total;
//! 4. convergence: every replica of every shard with the same data digest (versions, prepared
//!    transactions, records, GC watermark); the applied index is not compared, because leaders
//!    append a `Close` every close interval, so replicas are rarely seen at one index;
//! 5. no leaked locks and no undecided prepared transaction anywhere.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use check::history::Key;
use check::history::MicroOp;
use client::Client;
use server::topology::Topology;
use txn::types::ShardId;

use crate::inspect::inspect;
use crate::resolver::Asked;
use crate::resolver::ask;
use crate::sim::cluster::node_addr;
use crate::sim::net::SimConnector;
use crate::workload::ACCOUNTS;
use crate::workload::CLIENT_TIMEOUT;
use crate::workload::Ended;
use crate::workload::OPENING_BALANCE;
use crate::workload::REGISTERS;
use crate::workload::account;
use crate::workload::decode_list;
use crate::workload::register;
use crate::workload::register_read;
use crate::world::Findings;
use crate::world::Phase;
use crate::world::Shared;
use crate::world::now_ns;

/// How often leaders are polled during the run.
pub const LEADER_POLL: Duration = Duration::from_millis(300);
/// How long the final state may take to settle (convergence, lock release, resolution).
pub const SETTLE_BOUND: Duration = Duration::from_secs(30);
/// Attempts at each final read.
pub const FINAL_READ_ATTEMPTS: usize = 100;
/// The process of the final reads in both histories (clients' processes start at 1).
pub const FINAL_PROCESS: u64 = 0;

fn committed_or_aborted(committed: bool) -> &'static str {
    if committed { "COMMITTED" } else { "ABORTED" }
}

async fn poll_leaders(world: &Shared, topology: &Topology) {
    for shard in topology.shards() {
        for node in topology.replicas(shard) {
            if let Ok(state) = inspect(&node_addr(*node), shard).await
                && state.leading
            {
                world.borrow_mut().leaders.insert(shard.0, *node);
            }
        }
    }
}

/// The checker host's life.
pub async fn checker(world: Shared, topology: Topology, seed: u64) -> turmoil::Result {
    while world.borrow().phase != Phase::Final {
        poll_leaders(&world, &topology).await;
        tokio::time::sleep(LEADER_POLL).await;
    }
    let addrs: Vec<String> = topology.nodes().values().cloned().collect();
    let client =
        Client::connect_options(&addrs, Arc::new(SimConnector), seed, CLIENT_TIMEOUT).await?;
    let mut findings = Findings::default();
    let keys: Vec<String> = world.borrow().keys.iter().cloned().collect();
    for key in keys {
        let op = vec![MicroOp::read(key.as_str())];
        world.borrow_mut().histories.invoke(FINAL_PROCESS, now_ns(), op, true);
        let mut read = None;
        for _ in 0..FINAL_READ_ATTEMPTS {
            match client.get(&key).await {
                Ok(value) => {
                    // A value that is no list is a finding (a read answered from another key,
                    // or a corrupted value), never read as a shorter list.
                    read = Some(decode_list(value).map_err(|error| {
                        findings.problems.push(format!("final read of {key}: {error}"));
                    }));
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let mut world = world.borrow_mut();
        match read {
            Some(Ok(list)) => {
                let done = vec![MicroOp::read_result(key.as_str(), list.clone())];
                world.histories.ok(FINAL_PROCESS, now_ns(), done, true);
                findings.final_reads.insert(Key::new(key), list);
            }
            Some(Err(())) => {
                world.histories.fail(FINAL_PROCESS, now_ns(), true);
                findings.final_reads.insert(Key::new(key), Vec::new());
            }
            None => {
                world.histories.fail(FINAL_PROCESS, now_ns(), true);
                findings.problems.push(format!("final read of {key} never succeeded"));
            }
        }
    }
    for key in (0..REGISTERS).map(register) {
        let mut done = false;
        for _ in 0..FINAL_READ_ATTEMPTS {
            done = register_read(&world, &client, &key, FINAL_PROCESS).await == Ended::Committed;
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !done {
            findings.problems.push(format!("final read of register {key} never succeeded"));
        }
    }
    let unknown = world.borrow().unknown.clone();
    for txn in unknown {
        let early = world.borrow().resolved.get(&txn.index).copied();
        let late = ask(&client, &txn).await;
        let status = match (early, late) {
            (Some(Asked::Settled(before)), Asked::Settled(now)) if before != now => {
                findings.problems.push(format!(
                    "T{}: TxnStatus said {} during the run and {} at the end",
                    txn.index,
                    committed_or_aborted(before),
                    committed_or_aborted(now)
                ));
                Some(now)
            }
            (_, Asked::Settled(now)) => Some(now),
            (Some(Asked::Settled(before)), _) => Some(before),
            // Its record was collected before anyone learned the outcome: it stays an `info`
            // operation, which the history check takes as either.
            (Some(Asked::Forgotten), _) | (_, Asked::Forgotten) => {
                findings.forgotten += 1;
                continue;
            }
            (_, Asked::Unanswered) => None,
        };
        findings.statuses.insert(txn.index, status);
    }
    if world.borrow().bank_ready {
        let total = client
            .transaction(|txn| {
                Box::pin(async move {
                    let mut total = 0i64;
                    for i in 0..ACCOUNTS {
                        let value = txn.get(account(i)).await?;
                        total += value
                            .and_then(|v| String::from_utf8(v).ok())
                            .and_then(|v| v.parse::<i64>().ok())
                            .unwrap_or(0);
                    }
                    Ok(total)
                })
            })
            .await;
        match total {
            Ok(total) if total == OPENING_BALANCE * ACCOUNTS as i64 => {}
            Ok(total) => findings.problems.push(format!("bank total is {total} at the end")),
            Err(error) => findings.problems.push(format!("final bank read failed: {error}")),
        }
    }
    settle(&topology, &mut findings).await;
    let mut w = world.borrow_mut();
    w.findings = Some(findings);
    w.phase = Phase::Done;
    Ok(())
}

/// Waits (bounded) until every shard's replicas agree and nothing is locked or prepared.
async fn settle(topology: &Topology, findings: &mut Findings) {
    let deadline = tokio::time::Instant::now() + SETTLE_BOUND;
    let mut pending: Vec<ShardId> = topology.shards().collect();
    loop {
        let mut still = Vec::new();
        let mut lines = Vec::new();
        let mut why = BTreeMap::new();
        for shard in &pending {
            // All replicas at once: leaders keep replicating a Close every close interval, so
            // replicas asked one after the other would rarely be seen at the same index.
            let replicas = topology.replicas(*shard);
            let answers = futures::future::join_all(replicas.iter().map(|node| {
                let (addr, shard) = (node_addr(*node), *shard);
                async move { inspect(&addr, shard).await }
            }))
            .await;
            let mut states = Vec::new();
            for (node, answer) in replicas.iter().zip(answers) {
                match answer {
                    Ok(state) => states.push((*node, state)),
                    Err(error) => {
                        why.insert(*shard, format!("n{node} unreachable: {error}"));
                    }
                }
            }
            let complete = states.len() == replicas.len();
            let agree = states.windows(2).all(|w| w[0].1.digest == w[1].1.digest);
            let clean = states.iter().all(|(_, s)| s.prepared == 0 && s.lock_holders == 0);
            let led = states.iter().any(|(_, s)| s.leading);
            if complete && agree && clean && led {
                let (_, first) = &states[0];
                lines.push(format!("{shard}: digest {:016x}", first.digest));
            } else {
                if !why.contains_key(shard) {
                    let detail: Vec<String> = states
                        .iter()
                        .map(|(n, s)| {
                            format!(
                                "n{n} applied {} digest {:016x} prepared {} locks {}",
                                s.applied, s.digest, s.prepared, s.lock_holders
                            )
                        })
                        .collect();
                    why.insert(*shard, detail.join("; "));
                }
                still.push(*shard);
            }
        }
        findings.digests.extend(lines);
        if still.is_empty() {
            findings.digests.sort();
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            for shard in still {
                findings.problems.push(format!(
                    "{shard} did not settle (replicas converged, no locks or prepares, a leader) within {SETTLE_BOUND:?}: {}",
                    why.get(&shard).cloned().unwrap_or_default()
                ));
            }
            findings.digests.sort();
            return;
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
