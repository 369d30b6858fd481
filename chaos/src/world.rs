//! What the simulated clients and the driver share during one run: the phase, the history
//! being recorded, the key pool, statistics, and the findings of the final checks.
//!
//! turmoil runs every host on one thread, so the state lives in an `Rc<RefCell<World>>`; no
//! borrow is ever held across an `.await`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use check::history::History;
use check::history::MicroOp;
use check::history::Recorder;
use check::register::RegisterHistory;
use proto::kv::TxnHandle;
use rand::Rng;
use rand::rngs::SmallRng;
use txn::types::NodeId;

/// Where the run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Faults and workload.
    Safety,
    /// Everything healed; every client must commit a few more transactions.
    Liveness,
    /// Clients stopped; the checker reads the final state.
    Final,
    /// The checker is done.
    Done,
}

/// Keys of the list-append workload in use at once (Elle uses about ten).
pub const ACTIVE_KEYS: usize = 10;
/// A key is retired after this many appends at most (short lists keep checks cheap).
pub const APPENDS_PER_KEY_MAX: i64 = 40;
/// Fresh keys to come whose rows a SCAN records ([`World::upcoming_keys`]): more than the keys
/// the other clients can make while a scan runs.
pub const UPCOMING_KEYS: u64 = 16;

/// The name of the list key numbered `id`: its first character spreads keys over shards.
fn key_name(id: u64) -> String {
    format!("{}{id}", ALNUM[(id as usize * 17) % ALNUM.len()] as char)
}

/// The alphanumerics, whose first character spreads keys over shards.
pub const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A list-append key: its name and how many appends it has handed out.
#[derive(Clone, Debug)]
struct ActiveKey {
    name: String,
    appended: i64,
    retire_at: i64,
}

/// A transaction whose commit outcome was unknown to its client.
#[derive(Clone, Debug)]
pub struct Unknown {
    /// Its invoke index in the history.
    pub index: u64,
    /// Its handle, for TxnStatus.
    pub handle: TxnHandle,
    /// Its home shard, if it wrote a WRITE statement.
    pub home: Option<u32>,
    /// Else the first key it sent with END (its shard is the home), if any.
    pub first_key: Option<Vec<u8>>,
}

/// Counts for the run summary.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Committed transactions (list-append and bank).
    pub committed: u64,
    /// Aborted ones, by reason.
    pub aborted: BTreeMap<String, u64>,
    /// Ones whose outcome stayed unknown.
    pub unknown: u64,
    /// Unknown ones that TxnStatus never settled, during the run or at the end: their records
    /// were collected first (set at the end of the run).
    pub forgotten: u64,
}

impl Stats {
    /// All aborts.
    pub fn aborted_total(&self) -> u64 {
        self.aborted.values().sum()
    }
}

/// The list-append histories of a run: every transaction in `all` (checked for causal
/// consistency), and the locking ones also in `locking` (checked for strict serializability).
/// Snapshot reads of causal sessions may be stale by design, so they are left out of `locking`.
#[derive(Default)]
pub struct Histories {
    /// Every transaction.
    pub all: Recorder,
    /// The transactions that took locks (everything but causal snapshot reads).
    pub locking: Recorder,
    /// A locking transaction's invoke index in `all` -> its invoke index in `locking`.
    locking_index: BTreeMap<u64, u64>,
    /// The invoke indexes in `all` of the snapshot reads (the transactions left out of
    /// `locking`): each reads at one timestamp (`check::snapshot_order`).
    pub snapshots: BTreeSet<u64>,
}

impl Histories {
    /// Records an invoke; returns its index in `all`.
    pub fn invoke(&mut self, process: u64, time: u64, ops: Vec<MicroOp>, locking: bool) -> u64 {
        let in_locking = locking.then(|| self.locking.invoke(process, time, ops.clone()));
        let index = self.all.invoke(process, time, ops);
        if let Some(in_locking) = in_locking {
            self.locking_index.insert(index, in_locking);
        } else {
            self.snapshots.insert(index);
        }
        index
    }

    /// The two histories with the unknown outcomes that `TxnStatus` later said ABORTED
    /// (invoke indexes in `all`) settled as failed ([`History::settle_aborted`]): `(all,
    /// locking)`.
    pub fn settled(&self, aborted: &BTreeSet<u64>) -> (History, History) {
        let mut all = self.all.history();
        all.settle_aborted(aborted);
        let mut locking = self.locking.history();
        let in_locking = aborted.iter().filter_map(|index| self.locking_index.get(index)).copied();
        locking.settle_aborted(&in_locking.collect());
        (all, locking)
    }

    /// Records a commit with what was read.
    pub fn ok(&mut self, process: u64, time: u64, ops: Vec<MicroOp>, locking: bool) {
        if locking {
            self.locking.ok(process, time, ops.clone());
        }
        self.all.ok(process, time, ops);
    }

    /// Records a certain failure.
    pub fn fail(&mut self, process: u64, time: u64, locking: bool) {
        self.fail_after(process, time, locking, Vec::new());
    }

    /// Records a certain failure, with the reads completed before it (`Recorder::fail_after`).
    pub fn fail_after(&mut self, process: u64, time: u64, locking: bool, completed: Vec<MicroOp>) {
        if locking {
            self.locking.fail_after(process, time, completed.clone());
        }
        self.all.fail_after(process, time, completed);
    }

    /// Records an unknown outcome with what the reads saw (the process is then retired).
    pub fn info_after(&mut self, process: u64, time: u64, locking: bool, completed: Vec<MicroOp>) {
        if locking {
            self.locking.info_after(process, time, completed.clone());
        }
        self.all.info_after(process, time, completed);
    }

    /// Records an unknown outcome (the process is then retired).
    pub fn info(&mut self, process: u64, time: u64, locking: bool) {
        self.info_after(process, time, locking, Vec::new());
    }
}

/// The shared state of a run.
pub struct World {
    /// Where the run is.
    pub phase: Phase,
    /// The list-append histories.
    pub histories: Histories,
    /// The one-statement writes and reads of the registers (`workload::register_op`).
    pub registers: RegisterHistory,
    next_register_value: u64,
    next_process: u64,
    active: Vec<ActiveKey>,
    next_key: u64,
    /// Every list-append key ever used.
    pub keys: BTreeSet<String>,
    /// Counts.
    pub stats: Stats,
    /// Transactions to settle with TxnStatus (during the run and at the end).
    pub unknown: Vec<Unknown>,
    /// What the resolver host learned of them during the run, by invoke index.
    pub resolved: BTreeMap<u64, crate::resolver::Asked>,
    /// The latest leader seen per shard.
    pub leaders: BTreeMap<u32, NodeId>,
    /// Clients that finished their liveness quota.
    pub live_clients: BTreeSet<usize>,
    /// Causal clients whose snapshot read after healing has not completed yet, and since when
    /// (simulated time): reported if the liveness phase ends first.
    pub causal_reads_pending: BTreeMap<usize, Duration>,
    /// True once the bank accounts are funded.
    pub bank_ready: bool,
    /// Problems found while running (bank audits, failed setup...).
    pub problems: Vec<String>,
    /// The final checks' findings (set by the checker host).
    pub findings: Option<Findings>,
}

/// What the checker host found at the end.
#[derive(Clone, Debug, Default)]
pub struct Findings {
    /// The final list of every list-append key.
    pub final_reads: BTreeMap<check::history::Key, Vec<i64>>,
    /// TxnStatus of each unknown transaction: invoke index -> committed?
    pub statuses: BTreeMap<u64, Option<bool>>,
    /// Unknown transactions whose outcome TxnStatus no longer knew, during the run and at the
    /// end.
    pub forgotten: u64,
    /// Problems: replicas not converged, leaked locks or prepares, bank total...
    pub problems: Vec<String>,
    /// One line per shard: applied index and digest of its replicas.
    pub digests: Vec<String>,
}

/// The world, shared.
pub type Shared = Rc<RefCell<World>>;

impl World {
    /// A fresh world.
    pub fn new() -> Shared {
        let mut world = World {
            phase: Phase::Safety,
            histories: Histories::default(),
            registers: RegisterHistory::new(),
            next_register_value: 0,
            next_process: 0,
            active: Vec::new(),
            next_key: 0,
            keys: BTreeSet::new(),
            stats: Stats::default(),
            unknown: Vec::new(),
            resolved: BTreeMap::new(),
            leaders: BTreeMap::new(),
            live_clients: BTreeSet::new(),
            causal_reads_pending: BTreeMap::new(),
            bank_ready: false,
            problems: Vec::new(),
            findings: None,
        };
        for _ in 0..ACTIVE_KEYS {
            world.fresh_key(40);
        }
        Rc::new(RefCell::new(world))
    }

    /// A process id never used before (a client gets a new one after an unknown outcome).
    pub fn new_process(&mut self) -> u64 {
        self.next_process += 1;
        self.next_process
    }

    /// [`World::new_process`], one of client `session`'s processes in both histories: the
    /// causal checks follow a session across the processes an `info` retires.
    pub fn new_process_of(&mut self, session: u64) -> u64 {
        let process = self.new_process();
        self.histories.all.join_session(process, session);
        self.histories.locking.join_session(process, session);
        self.registers.join_session(process, session);
        process
    }

    /// A value no register write used before.
    pub fn register_value(&mut self) -> String {
        self.next_register_value += 1;
        format!("v{}", self.next_register_value)
    }

    fn fresh_key(&mut self, retire_at: i64) {
        let id = self.next_key;
        self.next_key += 1;
        let name = key_name(id);
        self.keys.insert(name.clone());
        self.active.push(ActiveKey { name, appended: 0, retire_at });
    }

    /// The names the next [`UPCOMING_KEYS`] fresh keys will have: a SCAN records its rows of
    /// them too, so a row of a key made after the scan was planned is checked (a phantom of a
    /// new key went unseen before; found by a review of the checker, 2026-12-07).
    pub fn upcoming_keys(&self) -> Vec<String> {
        (self.next_key..self.next_key + UPCOMING_KEYS).map(key_name).collect()
    }

    /// One or two reads of active keys (a transaction that only reads).
    pub fn generate_reads(&mut self, rng: &mut SmallRng) -> Vec<MicroOp> {
        let count = rng.random_range(1..=2);
        (0..count)
            .map(|_| {
                let index = rng.random_range(0..self.active.len());
                MicroOp::read(self.active[index].name.as_str())
            })
            .collect()
    }

    /// A random list-append transaction: 1 to 4 micro-ops over the active keys (earlier keys
    /// likelier), each append value unique for its key.
    pub fn generate(&mut self, rng: &mut SmallRng) -> Vec<MicroOp> {
        let count = rng.random_range(1..=4);
        let mut ops = Vec::with_capacity(count);
        for _ in 0..count {
            let mut index = 0;
            while index + 1 < self.active.len() && rng.random_bool(0.4) {
                index += 1;
            }
            if rng.random_bool(0.5) {
                ops.push(MicroOp::read(self.active[index].name.as_str()));
            } else {
                let key = &mut self.active[index];
                key.appended += 1;
                ops.push(MicroOp::append(key.name.as_str(), key.appended));
                if key.appended >= key.retire_at {
                    self.active.remove(index);
                    let retire_at = rng.random_range(10..=APPENDS_PER_KEY_MAX);
                    self.fresh_key(retire_at);
                }
            }
        }
        ops
    }
}

/// Simulated nanoseconds since the start of the run (the history's clock).
pub fn now_ns() -> u64 {
    turmoil::sim_elapsed().map(|d| d.as_nanos() as u64).unwrap_or(0)
}
