//! What every part of a node shares: identity, configuration, clock, peers, counters, and the
//! registry of transactions this node coordinates.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use txn::types::NodeId;
use txn::types::ShardId;
use txn::types::TxnId;

use crate::clock::NodeClock;
use crate::config::NodeConfig;
use crate::peer::caller::Peers;
use crate::topology::Topology;

/// Counters shown by STATUS.
#[derive(Debug, Default)]
pub struct Counters {
    /// Deadlock probes this node sent.
    pub probes_sent: AtomicU64,
    /// Deadlock cycles this node detected.
    pub deadlocks_found: AtomicU64,
    /// Deadlock victims aborted at this node's shards.
    pub victims: AtomicU64,
    /// Lock holders evicted because their coordinator was gone.
    pub evictions: AtomicU64,
    /// Prepared transactions resolved through their record.
    pub resolved: AtomicU64,
    /// Transactions committed by this node as coordinator.
    pub committed: AtomicU64,
    /// Transactions aborted by this node as coordinator.
    pub aborted: AtomicU64,
    /// One-statement transactions run again by this node after a deadlock chose them.
    pub runs_again: AtomicU64,
    /// Reads whose leader confirmed its leadership by its lease (no message): one-statement
    /// reads and read-only participants' votes (`Shard::confirmed_term`), confirmed.
    pub lease_reads: AtomicU64,
    /// The same, confirmed by a ReadIndex round (the lease had lapsed, or lease reads are off:
    /// `lease_read_percent = 0`). A new leader's and a record lookup's own rounds not counted.
    pub read_index_reads: AtomicU64,
}

impl Counters {
    /// Adds one.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads one.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The transactions this node coordinates that are still running, and the shards where each
/// currently waits for a lock: what a deadlock probe or a liveness check asks the coordinator.
#[derive(Debug, Default)]
pub struct Registry {
    live: Mutex<BTreeMap<TxnId, BTreeSet<ShardId>>>,
}

impl Registry {
    /// Records a running transaction.
    pub fn begin(&self, txn: TxnId) {
        self.live.lock().expect("registry lock").entry(txn).or_default();
    }

    /// Forgets an ended transaction.
    pub fn end(&self, txn: TxnId) {
        self.live.lock().expect("registry lock").remove(&txn);
    }

    /// Marks `txn` as waiting (or no longer waiting) for a lock at `shard`.
    pub fn set_waiting(&self, txn: TxnId, shard: ShardId, waiting: bool) {
        let mut live = self.live.lock().expect("registry lock");
        if let Some(shards) = live.get_mut(&txn) {
            if waiting {
                shards.insert(shard);
            } else {
                shards.remove(&shard);
            }
        }
    }

    /// `None` if `txn` is not running here; else the shards where it waits.
    pub fn waits_of(&self, txn: &TxnId) -> Option<Vec<ShardId>> {
        self.live.lock().expect("registry lock").get(txn).map(|s| s.iter().copied().collect())
    }

    /// True if `txn` is running here.
    pub fn is_live(&self, txn: &TxnId) -> bool {
        self.live.lock().expect("registry lock").contains_key(txn)
    }

    /// How many transactions are running here.
    pub fn len(&self) -> usize {
        self.live.lock().expect("registry lock").len()
    }

    /// True when none is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Node-wide shared state.
pub struct NodeContext {
    /// This node.
    pub me: NodeId,
    /// This start of the node (transaction ids include it).
    pub incarnation: u64,
    /// The configuration.
    pub config: Arc<NodeConfig>,
    /// The shard map.
    pub topology: Arc<Topology>,
    /// The hybrid logical clock.
    pub clock: NodeClock,
    /// The other nodes.
    pub peers: Arc<Peers>,
    /// Counters.
    pub counters: Counters,
    /// Transactions coordinated here.
    pub registry: Registry,
    /// Counter for transaction ids.
    next_seq: AtomicU64,
}

impl NodeContext {
    /// Builds the context.
    pub fn new(
        incarnation: u64,
        config: Arc<NodeConfig>,
        topology: Arc<Topology>,
        clock: NodeClock,
        peers: Arc<Peers>,
    ) -> NodeContext {
        NodeContext {
            me: config.id,
            incarnation,
            config,
            topology,
            clock,
            peers,
            counters: Counters::default(),
            registry: Registry::default(),
            next_seq: AtomicU64::new(1),
        }
    }

    /// A new transaction id, coordinated by this node, registered as running.
    pub fn mint_txn(&self) -> TxnId {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let txn = TxnId {
            start_ts: self.clock.now(),
            coordinator: self.me,
            incarnation: self.incarnation,
            seq,
        };
        self.registry.begin(txn);
        txn
    }

    /// True if `txn` was begun by this very incarnation of this node.
    pub fn is_mine(&self, txn: &TxnId) -> bool {
        txn.coordinator == self.me && txn.incarnation == self.incarnation
    }
}
