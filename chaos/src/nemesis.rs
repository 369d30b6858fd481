//! The nemesis: injects the faults of a run's plan into the simulation, on a schedule drawn
//! from the seed, and heals everything when the safety phase ends.
//!
//! At most one network partition is active at a time (healing repairs every link); crashes,
//! skews, latency and loss may overlap with it and with each other. Every fault has an end:
//! partitions are repaired, crashed nodes restarted, latency and loss reset. Clock skews stay
//! until the final heal (nodes must tolerate them indefinitely).
//!
//! Fault menu after Jepsen's `nemesis.clj` (TESTING.md §5.6), mapped onto turmoil.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use server::topology::Topology;
use txn::types::NodeId;
use txn::types::ShardId;

use crate::plan::FaultKind;
use crate::plan::Plan;
use crate::sim::cluster::SimCluster;

/// How long a partition, latency spike or loss burst lasts at most.
pub const FAULT_LENGTH_MAX: Duration = Duration::from_secs(4);
/// The largest clock skew (either way).
pub const SKEW_MAX_MS: i64 = 60_000;
/// The highest message latency of a latency spike.
pub const LATENCY_SPIKE_MAX: Duration = Duration::from_millis(300);
/// How long a pause lasts at most: under the HTTP/2 keep-alive's timeout (a ping every 0.5 s,
/// answered within 1 s: `client::connector`, `server::node`), so that the paused node's
/// connections survive and what they held is delivered; a longer pause is a partition whose
/// connections time out, and whose held segments then meet closed sockets.
pub const PAUSE_LENGTH_MAX: Duration = Duration::from_millis(900);
/// The highest message loss rate.
pub const LOSS_RATE_MAX: f64 = 0.01;

#[derive(Clone, Debug)]
enum Active {
    Partition,
    /// A partition of one direction ([`FaultKind::OneWay`]): never with message loss, since
    /// turmoil's random link failures repair a link cut one way at its next send (found by a
    /// review of the harness, 2026-12-07: the log said "cannot send" while it could).
    OneWay,
    Paused(NodeId),
    Crashed(Vec<NodeId>),
    DiskFailed(NodeId),
    Latency,
    Loss,
}

/// The nemesis of one run.
pub struct Nemesis {
    rng: SmallRng,
    plan: Plan,
    topology: Topology,
    next_at: Duration,
    active: Vec<(Active, Duration)>,
    /// True once a node's disk was lost or its log rotted (at most once per run).
    disk_lost: bool,
    /// Faults injected, by kind.
    pub injected: BTreeMap<FaultKind, usize>,
    /// One line per action, with its simulated time, for the run's trace.
    pub log: Vec<String>,
}

impl Nemesis {
    /// The nemesis of `plan` on a cluster laid out as `topology`; its first fault comes after
    /// a warm-up.
    pub fn new(plan: &Plan, topology: Topology) -> Nemesis {
        Nemesis {
            rng: SmallRng::seed_from_u64(plan.seed ^ 0xfa17_fa17),
            plan: plan.clone(),
            topology,
            next_at: Duration::from_secs(3),
            active: Vec::new(),
            disk_lost: false,
            injected: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    fn gap(&mut self) -> Duration {
        let (low, high) = self.plan.fault_gap;
        Duration::from_millis(
            self.rng.random_range(low.as_millis() as u64..=high.as_millis() as u64),
        )
    }

    fn length(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(500..=FAULT_LENGTH_MAX.as_millis() as u64))
    }

    /// Notes what the driver did on the nemesis's behalf (a refused node's disk replaced).
    pub fn record(&mut self, now: Duration, what: String) {
        self.note(now, what);
    }

    fn note(&mut self, now: Duration, what: String) {
        self.log.push(format!("{:>8.3}s {what}", now.as_secs_f64()));
    }

    /// Ends faults whose time is up and injects the next one when due. `leaders` is the latest
    /// view of each shard's leader.
    pub fn tick(
        &mut self,
        now: Duration,
        cluster: &mut SimCluster<'_>,
        leaders: &BTreeMap<u32, NodeId>,
    ) {
        let due: Vec<Active> =
            self.active.iter().filter(|(_, until)| *until <= now).map(|(a, _)| a.clone()).collect();
        self.active.retain(|(_, until)| *until > now);
        for fault in due {
            self.end(now, fault, cluster);
        }
        if now < self.next_at {
            return;
        }
        self.next_at = now + self.gap();
        let kind = self.plan.faults[self.rng.random_range(0..self.plan.faults.len())];
        // A pause holds links that a partition's heal would repair without delivering what
        // they held: the two never overlap.
        let partitioned = self
            .active
            .iter()
            .any(|(a, _)| matches!(a, Active::Partition | Active::OneWay | Active::Paused(_)));
        let one_way = self.active.iter().any(|(a, _)| matches!(a, Active::OneWay));
        let lossy = self.active.iter().any(|(a, _)| matches!(a, Active::Loss));
        let down: usize = self
            .active
            .iter()
            .map(|(a, _)| match a {
                Active::Crashed(n) => n.len(),
                Active::DiskFailed(_) | Active::Paused(_) => 1,
                _ => 0,
            })
            .sum();
        let nodes: Vec<NodeId> = cluster.nodes.iter().map(|n| n.id).collect();
        let length = self.length();
        match kind {
            FaultKind::PartitionHalves
            | FaultKind::IsolateLeader
            | FaultKind::Bridge
            | FaultKind::OneWay
            | FaultKind::Pause
                if partitioned => {}
            FaultKind::PartitionHalves => {
                let mut shuffled = nodes.clone();
                shuffled.shuffle(&mut self.rng);
                let cut = self.rng.random_range(1..shuffled.len());
                let (left, right) = shuffled.split_at(cut);
                cluster.partition(left, right);
                self.note(now, format!("partition {left:?} | {right:?}"));
                self.started(kind, Active::Partition, now + length);
            }
            FaultKind::IsolateLeader => {
                let Some((_, leader)) = self.pick_leader(leaders) else { return };
                let others: Vec<NodeId> = nodes.iter().copied().filter(|n| *n != leader).collect();
                cluster.partition(&[leader], &others);
                self.note(now, format!("isolate leader n{leader}"));
                self.started(kind, Active::Partition, now + length);
            }
            FaultKind::Bridge => {
                let mut shuffled = nodes.clone();
                shuffled.shuffle(&mut self.rng);
                // The first node bridges; the rest split in two halves that cannot talk.
                let rest = &shuffled[1..];
                let (left, right) = rest.split_at(rest.len() / 2);
                cluster.partition(left, right);
                self.note(now, format!("bridge n{} between {left:?} and {right:?}", shuffled[0]));
                self.started(kind, Active::Partition, now + length);
            }
            FaultKind::OneWay if lossy => {}
            FaultKind::OneWay => {
                let from = nodes[self.rng.random_range(0..nodes.len())];
                cluster.partition_oneway(from);
                self.note(now, format!("one-way: n{from} cannot send"));
                self.started(kind, Active::OneWay, now + length);
            }
            FaultKind::Pause => {
                // A running node, counted as down meanwhile (a majority keeps running): a
                // shard's leader half the time (its lease and its locks meet the burst of old
                // messages when it wakes), else any.
                let Some(any) = self.pick_victim(cluster, down) else { return };
                let running = |id: NodeId| cluster.nodes.iter().any(|n| n.id == id && n.running);
                let node = match self.rng.random_bool(0.5) {
                    true => self.pick_leader(leaders).map(|(_, l)| l).filter(|l| running(*l)),
                    false => None,
                };
                let node = node.unwrap_or(any);
                let length = Duration::from_millis(
                    self.rng.random_range(100..=PAUSE_LENGTH_MAX.as_millis() as u64),
                );
                cluster.hold(node);
                self.note(now, format!("pause n{node} for {length:?} (its links held)"));
                self.started(kind, Active::Paused(node), now + length);
            }
            FaultKind::Crash => {
                let Some(victim) = self.pick_victim(cluster, down) else { return };
                cluster.crash(victim);
                self.note(now, format!("crash n{victim}"));
                let back = now + Duration::from_millis(self.rng.random_range(500..=5000));
                self.started(kind, Active::Crashed(vec![victim]), back);
            }
            FaultKind::Kill => {
                let Some(victim) = self.pick_victim(cluster, down) else { return };
                // A disk failure on its way stays the nemesis's business (a restart would
                // withdraw it).
                if self
                    .active
                    .iter()
                    .any(|(a, _)| matches!(a, Active::DiskFailed(n) if *n == victim))
                {
                    return;
                }
                if cluster.kill(victim) {
                    self.note(now, format!("kill -9 n{victim}; its supervisor restarts it"));
                    *self.injected.entry(kind).or_default() += 1;
                }
            }
            FaultKind::Restart => {
                let Some(victim) = self.pick_victim(cluster, down) else { return };
                // As for a kill: a disk failure on its way stays the nemesis's business. Nor a
                // paused node: its release would cut the links its stop still uses.
                let failing = |a: &Active| matches!(a, Active::DiskFailed(n) | Active::Paused(n) if *n == victim);
                if self.active.iter().any(|(a, _)| failing(a)) || !cluster.terminate(victim) {
                    return;
                }
                self.note(now, format!("stop n{victim} cleanly (SIGTERM)"));
                let back = now + Duration::from_millis(self.rng.random_range(2000..=6000));
                self.started(kind, Active::Crashed(vec![victim]), back);
            }
            FaultKind::DiskLoss | FaultKind::Bitflip => {
                if self.disk_lost {
                    return;
                }
                let Some(victim) = self.pick_victim(cluster, down) else { return };
                self.disk_lost = true;
                if kind == FaultKind::DiskLoss {
                    cluster.lose_disk(victim);
                    self.note(now, format!("crash n{victim} and lose its data directory"));
                } else {
                    cluster.rot_log(victim, self.rng.random());
                    let what = "flip a bit of its Raft log (at its restart, if it holds any)";
                    self.note(now, format!("crash n{victim} and {what}"));
                }
                let back = now + Duration::from_millis(self.rng.random_range(500..=5000));
                self.started(kind, Active::Crashed(vec![victim]), back);
            }
            FaultKind::DiskFailure => {
                // A node whose disk fails stops: it counts as down, as a crashed one does.
                let Some(victim) = self.pick_victim(cluster, down) else { return };
                cluster.fail_disk(victim);
                self.note(now, format!("fail the disk of n{victim} at its next fsync"));
                self.started(kind, Active::DiskFailed(victim), now + length);
            }
            FaultKind::PowerLoss => {
                if down > 0 {
                    return;
                }
                for node in &nodes {
                    cluster.crash(*node);
                }
                self.note(now, "power loss: every node crashed".into());
                let back = now + Duration::from_millis(self.rng.random_range(200..=3000));
                self.started(kind, Active::Crashed(nodes.clone()), back);
            }
            FaultKind::ClockSkew => {
                let node = nodes[self.rng.random_range(0..nodes.len())];
                let skew = self.rng.random_range(-SKEW_MAX_MS..=SKEW_MAX_MS);
                cluster.skew(node, skew);
                self.note(now, format!("skew n{node} by {skew} ms"));
                *self.injected.entry(kind).or_default() += 1;
            }
            FaultKind::Latency => {
                let max = Duration::from_millis(
                    self.rng.random_range(20..=LATENCY_SPIKE_MAX.as_millis() as u64),
                );
                cluster.sim.set_max_message_latency(max);
                self.note(now, format!("latency up to {max:?}"));
                self.started(kind, Active::Latency, now + length);
            }
            FaultKind::TransferLeader => {
                let Some((shard, leader)) = self.pick_leader(leaders) else { return };
                let others: Vec<NodeId> = self
                    .topology
                    .replicas(ShardId(shard))
                    .iter()
                    .copied()
                    .filter(|n| *n != leader)
                    .collect();
                let to = others[self.rng.random_range(0..others.len())];
                cluster.transfer_leader(leader, ShardId(shard), to);
                self.note(now, format!("transfer leadership of s{shard} from n{leader} to n{to}"));
                *self.injected.entry(kind).or_default() += 1;
            }
            FaultKind::MessageLoss if one_way => {}
            FaultKind::MessageLoss => {
                let rate = self.rng.random_range(0.0001..LOSS_RATE_MAX);
                cluster.sim.set_fail_rate(rate);
                self.note(now, format!("message loss {rate:.4}"));
                self.started(kind, Active::Loss, now + length);
            }
        }
    }

    /// A running node to take down, if one more may go down (`down` are already): a majority
    /// keeps running, so that the run makes progress between faults.
    fn pick_victim(&mut self, cluster: &SimCluster<'_>, down: usize) -> Option<NodeId> {
        if down + 1 > (cluster.nodes.len() - 1) / 2 {
            return None;
        }
        let running: Vec<NodeId> =
            cluster.nodes.iter().filter(|n| n.running).map(|n| n.id).collect();
        running.get(self.rng.random_range(0..running.len().max(1))).copied()
    }

    /// A random shard among those with a known leader, and its leader.
    fn pick_leader(&mut self, leaders: &BTreeMap<u32, NodeId>) -> Option<(u32, NodeId)> {
        let index = self.rng.random_range(0..leaders.len().max(1));
        leaders.iter().nth(index).map(|(shard, leader)| (*shard, *leader))
    }

    fn started(&mut self, kind: FaultKind, fault: Active, until: Duration) {
        *self.injected.entry(kind).or_default() += 1;
        self.active.push((fault, until));
    }

    fn end(&mut self, now: Duration, fault: Active, cluster: &mut SimCluster<'_>) {
        match fault {
            Active::Partition | Active::OneWay => {
                cluster.heal();
                self.note(now, "heal partition".into());
            }
            Active::Paused(node) => {
                cluster.release(node);
                self.note(now, format!("resume n{node}: what its links held is delivered"));
            }
            Active::Crashed(nodes) => {
                for node in &nodes {
                    cluster.restart(*node);
                }
                self.note(now, format!("restart {nodes:?}"));
            }
            Active::DiskFailed(node) => {
                if cluster.replace_failed_disk(node) {
                    self.note(now, format!("n{node} stopped on its failed disk; restart it"));
                } else {
                    self.note(now, format!("no fsync on n{node} met the disk failure; withdrawn"));
                }
            }
            Active::Latency => {
                cluster.sim.set_max_message_latency(cluster.spec.latency.1);
                self.note(now, "latency back to normal".into());
            }
            Active::Loss => {
                cluster.sim.set_fail_rate(0.0);
                self.note(now, "message loss over".into());
            }
        }
    }

    /// Ends every fault (the safety phase is over): links repaired, nodes restarted, latency
    /// and loss reset, clocks back in line.
    pub fn heal_all(&mut self, now: Duration, cluster: &mut SimCluster<'_>) {
        for (fault, _) in std::mem::take(&mut self.active) {
            self.end(now, fault, cluster);
        }
        for node in cluster.nodes.clone() {
            cluster.restart(node.id);
            cluster.skew(node.id, 0);
        }
        cluster.heal();
        cluster.sim.set_fail_rate(0.0);
        cluster.sim.set_max_message_latency(cluster.spec.latency.1);
        self.note(now, "heal everything".into());
    }

    /// A short summary of the faults injected, e.g. `crash×2 partition×3`.
    pub fn summary(&self) -> String {
        if self.injected.is_empty() {
            return "none".into();
        }
        self.injected
            .iter()
            .map(|(kind, n)| format!("{}×{n}", kind.name()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}
