//! What one simulated run does, derived entirely from its seed (swarm testing: each seed
//! enables its own subset of fault kinds at its own pace, so that faults rare in one mix are
//! common in another).

use std::time::Duration;

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use replication::canary::Canary;

/// The kinds of fault the nemesis can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// Cut the cluster into two random halves.
    PartitionHalves,
    /// Cut one shard's leader off from everyone.
    IsolateLeader,
    /// Two halves that only one node bridges (3 nodes: cut one link; 5: a majority ring).
    Bridge,
    /// Cut one direction of the links from one node.
    OneWay,
    /// Crash one node (unsynced writes lost) and restart it later.
    Crash,
    /// Crash every node at once (power loss) and restart them all.
    PowerLoss,
    /// Move a node's clock by up to a minute, either way.
    ClockSkew,
    /// Raise message latency for a while.
    Latency,
    /// Drop a small fraction of messages for a while (which breaks TCP connections).
    MessageLoss,
    /// Make one shard's leader hand leadership to another replica (openraft TransferLeader),
    /// under load: a leader change with no fault at all, as an operator or a rebalancer does.
    TransferLeader,
    /// Make one node's disk fail under it: its next fsync reports an I/O error and the disk
    /// is dead from then on; the node must stop by itself (fail-stop) and is restarted later,
    /// with what it had synced. Not in [`FaultKind::ALL`]: drawn on its own, after the rest of
    /// the plan, so that the seeds' plans from before it stayed as they were.
    DiskFailure,
    /// Hold every link of one node (to the other nodes and to the clients) for a while, then
    /// deliver everything held at once: a process paused (SIGSTOP, a long garbage-collection
    /// pause, a VM migration) that wakes to a burst of old messages while its own old messages
    /// arrive late. Unlike a partition nothing is lost, so connections survive and stale
    /// requests and replies reach their receivers after the world moved on. Drawn on its own,
    /// after the rest of the plan, as [`FaultKind::DiskFailure`] is.
    Pause,
    /// Crash one node and lose its whole data directory (a replaced disk), then restart it
    /// empty under its old id: it must catch up before it votes (`replication::vote_gate`).
    /// At most once per run (two lost disks of three lose data whatever the protocol). Drawn
    /// on its own, after the rest of the plan.
    DiskLoss,
    /// Crash one node and flip one bit of its Raft log (bit rot in a synced record; Jepsen's
    /// `bitflip`, on a minority as TESTING.md's atlas principle asks). It must refuse to start
    /// rather than forget what the record held (`replication::store::wal`); its operator then
    /// replaces its disk, and it rejoins as after [`FaultKind::DiskLoss`], with which it shares
    /// the once-per-run budget. Drawn on its own, after the rest of the plan.
    Bitflip,
    /// Kill one node as `kill -9` does and restart it at once, as a supervisor does: its memory
    /// is gone, but what it wrote without syncing is in the page cache and survives (a crash,
    /// like a power loss, discards it). The start after it must not trust those writes before
    /// it syncs them (`replication::store::wal`'s recovery sync), nor a later power loss find
    /// a log that went back. Drawn on its own, after the rest of the plan.
    Kill,
    /// Stop one node cleanly, as an operator's rolling restart does (SIGTERM: its leaderships
    /// handed over, its clients told which requests it never read), and start it again a
    /// few seconds later. Drawn on its own, after the rest of the plan.
    Restart,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 10] = [
        FaultKind::PartitionHalves,
        FaultKind::IsolateLeader,
        FaultKind::Bridge,
        FaultKind::OneWay,
        FaultKind::Crash,
        FaultKind::PowerLoss,
        FaultKind::ClockSkew,
        FaultKind::Latency,
        FaultKind::MessageLoss,
        FaultKind::TransferLeader,
    ];

    /// Its name in run summaries.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::PartitionHalves => "partition",
            FaultKind::IsolateLeader => "isolate-leader",
            FaultKind::Bridge => "bridge",
            FaultKind::OneWay => "one-way",
            FaultKind::Crash => "crash",
            FaultKind::PowerLoss => "power-loss",
            FaultKind::ClockSkew => "skew",
            FaultKind::Latency => "latency",
            FaultKind::MessageLoss => "loss",
            FaultKind::TransferLeader => "transfer",
            FaultKind::DiskFailure => "disk-failure",
            FaultKind::Pause => "pause",
            FaultKind::DiskLoss => "disk-loss",
            FaultKind::Bitflip => "bitflip",
            FaultKind::Kill => "kill",
            FaultKind::Restart => "restart",
        }
    }
}

/// Simulated seconds of the safety phase (faults plus workload) unless told otherwise.
pub const SAFETY_SECS_DEFAULT: u64 = 30;
/// After healing, every client must commit this many transactions...
pub const LIVENESS_TXNS: usize = 3;
/// ...within this much simulated time.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(60);
/// A causal client, once it committed those, must complete a snapshot read within this much
/// simulated time: every node is up and leaders are elected by then, so closed timestamps
/// reach the session's token within milliseconds. (Longer only if closes stall: a close cut
/// to the millisecond stalled for as long as a healed clock had run ahead, up to a minute.)
pub const CAUSAL_READ_BOUND: Duration = Duration::from_secs(10);

/// The share of runs whose nemesis also fails disks ([`FaultKind::DiskFailure`]).
pub const DISK_FAILURE_SHARE: f64 = 0.4;
/// The share of runs whose nemesis also pauses nodes ([`FaultKind::Pause`]).
pub const PAUSE_SHARE: f64 = 0.5;
/// The share of runs whose nemesis also loses one node's disk ([`FaultKind::DiskLoss`]).
pub const DISK_LOSS_SHARE: f64 = 0.3;
/// The share of runs whose nemesis also flips a bit of one node's log ([`FaultKind::Bitflip`]).
pub const BITFLIP_SHARE: f64 = 0.3;
/// The share of runs whose nemesis also kills nodes ([`FaultKind::Kill`]).
pub const KILL_SHARE: f64 = 0.5;
/// The share of runs whose nemesis also restarts nodes cleanly ([`FaultKind::Restart`]).
pub const RESTART_SHARE: f64 = 0.4;
/// The share of seeds whose nodes run with lease reads off ([`Plan::lease_reads`]; since
/// 2026-12-08, drawn after everything else, so that every other draw of a seed stayed what it
/// was): the ReadIndex path that `lease_read_percent = 0` makes the only one.
pub const LEASE_READS_OFF_SHARE: f64 = 0.25;

/// One run's plan.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The seed everything derives from.
    pub seed: u64,
    /// Nodes in the cluster.
    pub nodes: u64,
    /// Concurrent client processes.
    pub clients: usize,
    /// Length of the safety phase.
    pub safety: Duration,
    /// The fault kinds this run injects.
    pub faults: Vec<FaultKind>,
    /// The pause between faults, drawn uniformly from this range.
    pub fault_gap: (Duration, Duration),
    /// True when a share of the clients runs bank transfers.
    pub bank: bool,
    /// Clients whose sessions are causal (their read-only transactions read snapshots from
    /// any replica, without locks).
    pub causal_clients: usize,
    /// The canary switched on (`Canary::None` for a real run).
    pub canary: Canary,
    /// Every this-many-th node-to-node call that would be resent after a broken stream is
    /// delivered twice at once (`server::peer::caller::duplicate_calls`); 0: none. Not drawn
    /// from the seed: `chaos --duplicate-calls N` sets it.
    pub duplicate_every: u64,
    /// With `duplicate_every`, the copy is delivered up to this many milliseconds late instead
    /// of at once; 0: at once. `chaos --duplicate-late-ms MS` sets it.
    pub duplicate_late_ms: u64,
    /// How long an fsync takes on the simulated disks (real disks: well under a millisecond
    /// to over ten).
    pub fsync: Duration,
    /// False when the nodes run with lease reads off (`lease_read_percent = 0`: every read
    /// through a leader confirms by a ReadIndex round), in [`LEASE_READS_OFF_SHARE`] of the
    /// seeds.
    pub lease_reads: bool,
}

impl Plan {
    /// The plan of `seed`.
    pub fn new(seed: u64, nodes: u64, safety_secs: u64, canary: Canary) -> Plan {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x005e_ed0f_c4a0_5000);
        let mut faults: Vec<FaultKind> =
            FaultKind::ALL.iter().copied().filter(|_| rng.random_bool(0.6)).collect();
        if faults.is_empty() {
            faults.push(FaultKind::ALL[rng.random_range(0..FaultKind::ALL.len())]);
        }
        // Each canary needs the fault that exposes it.
        let exposing = match canary {
            Canary::AckBeforeFsync => Some(FaultKind::PowerLoss),
            Canary::FollowerSequentialRead => Some(FaultKind::IsolateLeader),
            Canary::YesVoterAbortsAlone => Some(FaultKind::PartitionHalves),
            Canary::SkipSafeTimeWait => Some(FaultKind::Latency),
            _ => None,
        };
        // A canary run aims: the fault that exposes the canary, often.
        if let Some(kind) = exposing {
            faults = vec![kind];
        }
        let fast = canary != Canary::None || rng.random_bool(0.5);
        let fault_gap = if fast {
            (Duration::from_millis(500), Duration::from_secs(2))
        } else {
            (Duration::from_secs(1), Duration::from_secs(5))
        };
        let mut plan = Plan {
            seed,
            nodes,
            clients: rng.random_range(3..=6),
            safety: Duration::from_secs(safety_secs),
            faults,
            fault_gap,
            bank: rng.random_bool(0.7),
            causal_clients: match canary {
                Canary::SkipSafeTimeWait => 6,
                Canary::FracturedSnapshot => 4,
                _ => rng.random_range(0..=2),
            },
            canary,
            duplicate_every: 0,
            duplicate_late_ms: 0,
            fsync: Duration::from_micros(if canary == Canary::AckBeforeFsync {
                rng.random_range(5_000..=12_000)
            } else {
                rng.random_range(300..=12_000)
            }),
            lease_reads: true,
        };
        if exposing.is_none() && rng.random_bool(DISK_FAILURE_SHARE) {
            plan.faults.push(FaultKind::DiskFailure);
        }
        // Drawn last, so that every earlier draw of a seed stays what it was.
        if exposing.is_none() && rng.random_bool(PAUSE_SHARE) {
            plan.faults.push(FaultKind::Pause);
        }
        if exposing.is_none() && rng.random_bool(DISK_LOSS_SHARE) {
            plan.faults.push(FaultKind::DiskLoss);
        }
        if exposing.is_none() && rng.random_bool(BITFLIP_SHARE) {
            plan.faults.push(FaultKind::Bitflip);
        }
        if exposing.is_none() && rng.random_bool(KILL_SHARE) {
            plan.faults.push(FaultKind::Kill);
        }
        if exposing.is_none() && rng.random_bool(RESTART_SHARE) {
            plan.faults.push(FaultKind::Restart);
        }
        plan.lease_reads = !rng.random_bool(LEASE_READS_OFF_SHARE);
        plan
    }
}
