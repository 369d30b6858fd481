//! Durable storage of a node: two redb databases, each written by one batching [`Writer`].
//!
//! ```text
//!   log.redb     identity, and every shard's Raft log, vote, committed id    durable commits
//!   state.redb   every shard's state machine, applied id, snapshots          volatile commits
//! ```
//!
//! Why one log database for all shards rather than one per shard: redb commits one write
//! transaction at a time and a durable commit is an fsync, so the appends of every shard share
//! each fsync (group commit across shards).
//!
//! Why the state machines live in a database of their own (as etcd keeps its WAL apart from
//! bbolt, and TiKV its raft-engine apart from the KV engine): applies need no fsync (the log is
//! durable and is replayed from the applied id after a crash), so they commit with
//! `Durability::None` on their own writer, never queued behind an fsync of the log; and a
//! durable log commit writes only log pages, not the data pages the applies dirtied. The state
//! database is made durable by a checkpoint every [`STATE_CHECKPOINT_EVERY`] commits and by
//! every snapshot.
//!
//! Crash consistency across the two files: a shard's data, applied id and membership change in
//! one state transaction, so they always agree. After a crash the state may be behind the log
//! (openraft re-applies the log from the applied id up to the stored committed id); it may also
//! be ahead of a follower's log, whose unflushed tail was lost: those entries are committed (a
//! majority has them durably), and openraft treats the log as purged up to the applied id. The
//! log is purged only up to a snapshot, and a snapshot is durable in the state database before
//! openraft purges, so the state never needs an entry that the log has dropped.
//!
//! - [`writer`]: the batching writer and its executor seam (thread or task).
//! - [`identity`]: node id, shard count and incarnation, checked at every start.
//! - [`log_store`]: a shard's Raft log and vote.
//! - [`state_machine`]: a shard's state machine and snapshots.
//! - [`reader`]: read-only access for the server.

pub mod identity;
pub mod log_store;
pub mod reader;
pub mod state_machine;
pub mod writer;

use std::io;
use std::path::Path;
use std::sync::Arc;

use redb::Database;
use txn::types::NodeId;
use txn::types::ShardId;

pub use identity::Identity;
pub use identity::IdentityError;
pub use log_store::LogStore;
pub use reader::ShardReader;
pub use state_machine::StateMachine;
pub use writer::Executor;
pub use writer::Writer;
pub use writer::WriterStats;

/// redb's page cache size for the log database (it holds the unpurged log tails).
pub const LOG_CACHE_BYTES: usize = 64 << 20;
/// redb's page cache size for the state database.
pub const STATE_CACHE_BYTES: usize = 256 << 20;
/// The log database inside a node's data directory.
pub const LOG_FILE: &str = "log.redb";
/// The state database inside a node's data directory.
pub const STATE_FILE: &str = "state.redb";
/// Every this many commits of the state database, one is durable (a checkpoint).
pub const STATE_CHECKPOINT_EVERY: u64 = 512;

/// A node's two databases, opened.
pub struct Databases {
    /// Identity and Raft logs.
    pub log: Database,
    /// State machines and snapshots.
    pub state: Database,
}

impl Databases {
    /// Opens (or creates) both database files in `dir`.
    pub fn open_dir(dir: &Path) -> Result<Databases, redb::Error> {
        let open = |file: &str, cache: usize| {
            Database::builder().set_cache_size(cache).create(dir.join(file))
        };
        Ok(Databases {
            log: open(LOG_FILE, LOG_CACHE_BYTES)?,
            state: open(STATE_FILE, STATE_CACHE_BYTES)?,
        })
    }
}

/// The node's databases and their writers.
#[derive(Clone)]
pub struct Store {
    log_db: Arc<Database>,
    log_writer: Writer,
    state_db: Arc<Database>,
    state_writer: Writer,
    identity: Identity,
}

impl Store {
    /// Opens (or creates) the databases in `dir`.
    pub fn open_dir(
        dir: &Path,
        executor: Executor,
        node_id: NodeId,
        shards: u32,
    ) -> Result<Store, IdentityError> {
        Store::open(Databases::open_dir(dir)?, executor, node_id, shards)
    }

    /// Takes opened databases (the simulation opens them over its simulated disk), checks the
    /// identity, bumps the incarnation and starts the writers.
    pub fn open(
        databases: Databases,
        executor: Executor,
        node_id: NodeId,
        shards: u32,
    ) -> Result<Store, IdentityError> {
        let identity = identity::claim(&databases.log, node_id, shards)?;
        let log_db = Arc::new(databases.log);
        let state_db = Arc::new(databases.state);
        let log_writer = Writer::start(log_db.clone(), executor, "log", None);
        let state_writer =
            Writer::start(state_db.clone(), executor, "state", Some(STATE_CHECKPOINT_EVERY));
        Ok(Store { log_db, log_writer, state_db, state_writer, identity })
    }

    /// Whose databases these are.
    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// True once a commit of either database failed (the node must stop).
    pub fn has_failed(&self) -> bool {
        self.log_writer.has_failed() || self.state_writer.has_failed()
    }

    /// What the writers have done: one line each, log first.
    pub fn summary(&self) -> [String; 2] {
        [self.log_writer.stats().summary(), self.state_writer.stats().summary()]
    }

    /// The log store and state machine of one shard, for its Raft instance.
    pub async fn open_shard(&self, shard: ShardId) -> io::Result<(LogStore, StateMachine)> {
        let state_machine =
            StateMachine::open(shard, self.state_db.clone(), self.state_writer.clone()).await?;
        let log = LogStore::open(shard, self.log_db.clone(), self.log_writer.clone())?;
        Ok((log, state_machine))
    }

    /// Read-only access to one shard's state.
    pub fn reader(&self, shard: ShardId) -> ShardReader {
        ShardReader::new(self.state_db.clone(), shard)
    }
}
