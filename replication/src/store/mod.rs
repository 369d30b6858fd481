//! Durable storage of a node: one redb database for every shard's Raft log, vote, state machine
//! and snapshots, written by one batching writer.
//!
//! Why one database per node rather than one per shard: redb commits one write transaction at a
//! time and a durable commit is an fsync, so with one database the appends of every shard share
//! each fsync (group commit across shards), and a crash leaves all shards' tables consistent
//! with each other. The cost is that writes of all shards are serialized through one writer,
//! which is cheap next to the fsync it amortizes.
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

/// redb's page cache size.
pub const DATABASE_CACHE_BYTES: usize = 256 << 20;
/// The database file inside a node's data directory.
pub const DATABASE_FILE: &str = "node.redb";

/// The node's database and its writer.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    writer: Writer,
    identity: Identity,
}

impl Store {
    /// Opens (or creates) the database file in `dir`.
    pub fn open_dir(
        dir: &Path,
        executor: Executor,
        node_id: NodeId,
        shards: u32,
    ) -> Result<Store, IdentityError> {
        let db = Database::builder()
            .set_cache_size(DATABASE_CACHE_BYTES)
            .create(dir.join(DATABASE_FILE))
            .map_err(redb::Error::from)?;
        Store::open(db, executor, node_id, shards)
    }

    /// Takes an opened database (the simulation opens it over its simulated disk), checks its
    /// identity, bumps the incarnation and starts the writer.
    pub fn open(
        db: Database,
        executor: Executor,
        node_id: NodeId,
        shards: u32,
    ) -> Result<Store, IdentityError> {
        let identity = identity::claim(&db, node_id, shards)?;
        let db = Arc::new(db);
        let writer = Writer::start(db.clone(), executor);
        Ok(Store { db, writer, identity })
    }

    /// Whose database this is.
    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// The writer (its failure means the node must stop).
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// The log store and state machine of one shard, for its Raft instance.
    pub async fn open_shard(&self, shard: ShardId) -> io::Result<(LogStore, StateMachine)> {
        let state_machine = StateMachine::open(shard, self.db.clone(), self.writer.clone()).await?;
        let log = LogStore::open(shard, self.db.clone(), self.writer.clone())?;
        Ok((log, state_machine))
    }

    /// Read-only access to one shard's state.
    pub fn reader(&self, shard: ShardId) -> ShardReader {
        ShardReader::new(self.db.clone(), shard)
    }
}
