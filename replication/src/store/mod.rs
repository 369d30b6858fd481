//! Durable storage of a node: the Raft logs in a write-ahead log, the state machines and the
//! node's identity in redb databases, each written by one batching [`Writer`].
//!
//! ```text
//!   wal/         every shard's Raft log, vote, committed id       durable appends (fdatasync)
//!   state.redb   every shard's state machine and applied id                  volatile commits
//!   node.redb    identity: node id, shard count, incarnation          one commit per start
//! ```
//!
//! Why one log for all shards rather than one per shard: a durable append costs an fsync, so the
//! appends of every shard share each fsync (group commit across shards). Why an append-only log
//! rather than a B-tree (the log lived in redb until 2026-12): the log never needs a B-tree's
//! random access, and a durable commit of the redb log took 510-550 us here against 200-220 us
//! for a WAL append and fdatasync into reserved space (docs/benchmarks.md, sitting I); see
//! [`wal`].
//!
//! Why the state machines live in a database of their own (as etcd keeps its WAL apart from
//! bbolt, and TiKV its raft-engine apart from the KV engine): applies need no fsync (the log is
//! durable and is replayed from the applied id after a crash), so they commit with
//! `Durability::None` on their own writer, never queued behind an fsync of the log. The state
//! database is made durable by a checkpoint every [`STATE_CHECKPOINT_EVERY`] commits, by
//! every snapshot, and by [`Store::checkpoint_state_if_idle`] when the node asks (an idle
//! node commits too rarely to reach the count).
//!
//! Crash consistency across the two: a shard's data, applied id and membership change in one
//! state transaction, so they always agree (a batch that only closes is applied in memory and
//! reaches the tables with the shard's next transaction; see [`state_machine`]). After a crash the state may be behind the log
//! (openraft re-applies the log from the applied id up to the stored committed id); it may also
//! be ahead of a follower's log, whose unflushed tail was lost: those entries are committed (a
//! majority has them durably), and openraft treats the log as purged up to the applied id. It
//! may also be ahead of a log that ends in a deposed leader's uncommitted entries at lower
//! indexes (a snapshot installed, and a crash before the purge that follows): openraft orders
//! log ids by term first and would keep that tail, so [`Store::open_shard`] purges the log up
//! to the applied id whenever the log ends at a lower index. The
//! log is purged only up to a snapshot, and building a snapshot is a durable commit of the state
//! database (its applied id is the snapshot's), so the state never needs an entry that the log
//! has dropped.
//!
//! - [`writer`]: the batching writer, its sinks and its executor seam (thread or task).
//! - [`disk`]: the files under the WAL (real, simulated or in memory).
//! - [`wal`]: the write-ahead log: records, segments, replay.
//! - [`identity`]: node id, shard count and incarnation, checked at every start.
//! - [`log_store`]: a shard's Raft log and vote.
//! - [`stall`]: the watchdog that stops a node whose disk stalls.
//! - [`state_machine`]: a shard's state machine and snapshots.
//! - [`snapshot_data`]: a snapshot's data, exported only when sent.
//! - [`reader`]: read-only access for the server.
//! - [`safe_parts`]: a shard's safe-time parts, cached between applies.

pub mod disk;
pub mod identity;
pub mod log_store;
pub mod presence;
pub mod reader;
pub mod safe_parts;
pub mod snapshot_data;
pub mod stall;
pub mod state_machine;
pub mod wal;
pub mod writer;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering as AtomicOrdering;

use redb::Database;
use txn::types::NodeId;
use txn::types::ShardId;

pub use disk::FsDir;
pub use disk::LogDir;
pub use disk::LogFile;
pub use disk::MemDir;
pub use identity::Identity;
pub use identity::IdentityError;
pub use log_store::LogStore;
pub use reader::ShardReader;
pub use safe_parts::SafeParts;
pub use snapshot_data::SnapshotData;
pub use state_machine::StateMachine;
pub use wal::WAL_DIR;
pub use wal::Wal;
pub use wal::WalPressure;
pub use writer::Executor;
pub use writer::RedbSink;
pub use writer::Writer;
pub use writer::WriterStats;

/// redb's page cache size for the state database.
pub const STATE_CACHE_BYTES: usize = 256 << 20;
/// The identity database inside a node's data directory.
pub const NODE_FILE: &str = "node.redb";
/// The state database inside a node's data directory.
pub const STATE_FILE: &str = "state.redb";
/// The log database of versions before the WAL: a data directory holding it is refused.
pub const OLD_LOG_FILE: &str = "log.redb";
/// Every this many commits of the state database, one is durable (a checkpoint). A checkpoint
/// stalls applies for its duration (5-15 ms here, whatever the number of dirty pages: it is
/// mostly redb's syncs), so fewer is better for tail latency: 2,048 against 512 took `put` p99
/// from 34 to 26-28 ms at 64 clients (docs/benchmarks.md, sitting I). The cost: a crash
/// replays up to this many commits' entries from the log, and redb reuses pages freed by
/// volatile commits only after a durable one (the file grows a little more between them).
pub const STATE_CHECKPOINT_EVERY: u64 = 2048;

/// A node's storage, opened: two databases and the WAL's directory.
pub struct Databases {
    /// The node's identity.
    pub node: Database,
    /// State machines and snapshots.
    pub state: Database,
    /// The WAL's segments.
    pub wal: Arc<dyn LogDir>,
    /// The size of a WAL segment ([`wal::SEGMENT_BYTES`]; the simulation uses small ones).
    pub wal_segment_bytes: u64,
    /// The byte budget of one AppendEntries ([`log_store::APPEND_BYTES_MAX`]; the simulation
    /// uses a small one, so that its catching-up followers get their entries in many messages).
    pub append_bytes_max: usize,
    /// The data directory's identity file as opened, checked while the node runs (`None` in
    /// the simulation, whose disk nobody deletes).
    pub presence: Option<presence::DirPresence>,
    /// The incarnation of a first start on these databases ([`identity::claim`]); a node sets
    /// its physical clock's milliseconds.
    pub first_incarnation: u64,
}

impl Databases {
    /// Opens (or creates) the storage in `dir`; refuses a directory written by a version that
    /// kept the Raft log in redb (its votes and log would be ignored, which is unsafe).
    pub fn open_dir(dir: &Path) -> Result<Databases, IdentityError> {
        if dir.join(OLD_LOG_FILE).exists() {
            return Err(IdentityError::OldFormat(dir.join(OLD_LOG_FILE).display().to_string()));
        }
        // Errors name the file: "Permission denied" or "already open" alone named nothing (a
        // review of bad input, 2026-12-05).
        let open = |file: &str, builder: &mut redb::Builder| {
            let path = dir.join(file);
            // Read from the disk, not from pages a failed fsync left cached.
            if let Ok(existing) = std::fs::File::open(&path) {
                disk::drop_cached_pages(&existing, &path);
            }
            builder.create(&path).map_err(|error| match error {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    IdentityError::InUse(path.display().to_string())
                }
                error => {
                    IdentityError::Open { path: path.display().to_string(), error: error.into() }
                }
            })
        };
        let node = open(NODE_FILE, &mut Database::builder())?;
        let state = open(STATE_FILE, Database::builder().set_cache_size(STATE_CACHE_BYTES))?;
        // Created after the two databases: it syncs `dir`, its parent, which makes their
        // entries durable too before the identity commit inside them counts as a first start.
        let wal = FsDir::create(dir.join(WAL_DIR)).map_err(IdentityError::Log)?;
        Ok(Databases {
            node,
            state,
            wal: Arc::new(wal),
            wal_segment_bytes: wal::SEGMENT_BYTES,
            append_bytes_max: log_store::APPEND_BYTES_MAX,
            first_incarnation: 1,
            presence: Some(
                presence::DirPresence::of(&dir.join(NODE_FILE))
                    .map_err(|error| IdentityError::Storage(redb::Error::Io(error)))?,
            ),
        })
    }
}

/// Records, durably, that a shard's vote gate is open with the given floor.
pub type GateOpener = Box<dyn FnOnce(u64) -> Result<(), redb::Error> + Send>;

/// The node's storage and its writers.
#[derive(Clone)]
pub struct Store {
    log_writer: Writer<Wal>,
    wal_reader: wal::WalReader,
    recovered: Arc<std::sync::Mutex<BTreeMap<ShardId, wal::RecoveredLog>>>,
    state_db: Arc<Database>,
    state_writer: Writer<RedbSink>,
    identity: Identity,
    /// The identity's database (node id, incarnation, vote gates).
    node_db: Arc<Database>,
    wal_pressure: Arc<std::sync::Mutex<WalPressure>>,
    safe_parts: Arc<std::sync::Mutex<BTreeMap<ShardId, Arc<SafeParts>>>>,
    /// Per shard: how many snapshots its state machine has exported (to send to a follower).
    exports: Arc<std::sync::Mutex<BTreeMap<ShardId, Arc<AtomicU64>>>>,
    /// The state writer's (durable, volatile) commit counts at the last idle check.
    state_seen: Arc<std::sync::Mutex<(u64, u64)>>,
    append_bytes_max: usize,
    presence: Option<Arc<presence::PresenceWatch>>,
}

impl Store {
    /// Opens (or creates) the storage in `dir`.
    pub fn open_dir(
        dir: &Path,
        executor: Executor,
        node_id: NodeId,
        shards: u32,
        members: &[NodeId],
    ) -> Result<Store, IdentityError> {
        Store::open(Databases::open_dir(dir)?, executor, node_id, shards, members)
    }

    /// Takes opened storage (the simulation opens it over its simulated disk), checks the
    /// identity, bumps the incarnation, replays the WAL and starts the writers.
    pub fn open(
        databases: Databases,
        executor: Executor,
        node_id: NodeId,
        shards: u32,
        members: &[NodeId],
    ) -> Result<Store, IdentityError> {
        let first = databases.first_incarnation;
        let identity = identity::claim(&databases.node, node_id, shards, members, first)?;
        let mut open_gates = Vec::new();
        for shard in 0..shards {
            if !identity.fresh && identity::vote_gate(&databases.node, shard)?.is_some() {
                open_gates.push(shard);
            }
        }
        wal::check_not_lost(databases.wal.as_ref(), &open_gates).map_err(IdentityError::of_log)?;
        let append_bytes_max = databases.append_bytes_max;
        let presence = databases
            .presence
            .map(|presence| Arc::new(presence.watch(presence::PRESENCE_CHECK_EVERY)));
        let (wal, wal_reader, recovered) =
            Wal::open_with(databases.wal, databases.wal_segment_bytes)
                .map_err(IdentityError::of_log)?;
        let wal_pressure = wal.pressure();
        let log_writer = Writer::start(wal, executor, "log", None);
        let state_db = Arc::new(databases.state);
        let state_writer = Writer::start(
            RedbSink(state_db.clone()),
            executor,
            "state",
            Some(STATE_CHECKPOINT_EVERY),
        );
        // Every shard of the node gets its log, even one the WAL has never seen.
        let mut recovered = recovered;
        for shard in 0..shards {
            recovered.entry(ShardId(shard)).or_default();
        }
        let recovered = Arc::new(std::sync::Mutex::new(recovered));
        Ok(Store {
            log_writer,
            wal_reader,
            recovered,
            state_db,
            state_writer,
            identity,
            node_db: Arc::new(databases.node),
            wal_pressure,
            safe_parts: Arc::default(),
            exports: Arc::default(),
            state_seen: Arc::default(),
            append_bytes_max,
            presence,
        })
    }

    /// Makes the state database durable if it has committed since the last call, but never
    /// durably. Called periodically by the node: at a few commits a second (an idle cluster's
    /// closes) [`STATE_CHECKPOINT_EVERY`] takes long to come, and until a durable commit redb
    /// reuses none of the pages that the volatile ones freed, so after a burst of writes and
    /// its garbage collection the file and the memory stayed at their peak (a helper's soak
    /// test saw 500 MiB held for minutes at idle, released within seconds of new writes).
    pub async fn checkpoint_state_if_idle(&self) -> io::Result<()> {
        let stats = self.state_writer.stats();
        let now = (
            stats.durable_commits.load(AtomicOrdering::Relaxed),
            stats.volatile_commits.load(AtomicOrdering::Relaxed),
        );
        let seen = std::mem::replace(&mut *self.state_seen.lock().expect("seen lock"), now);
        if now.0 == seen.0 && now.1 != seen.1 {
            self.state_writer.run(true, |_| Ok(())).await?;
        }
        Ok(())
    }

    /// How many segments the WAL holds and which shards keep the oldest one.
    pub fn wal_pressure(&self) -> WalPressure {
        self.wal_pressure.lock().expect("pressure lock").clone()
    }

    /// Whose databases these are.
    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// The vote gate of `shard` as stored ([`crate::vote_gate`]): `None` while closed, else
    /// its floor.
    pub fn vote_gate(&self, shard: ShardId) -> Result<Option<u64>, redb::Error> {
        identity::vote_gate(&self.node_db, shard.0)
    }

    /// What records, durably, that the vote gate of `shard` is open with a floor.
    pub fn vote_gate_opener(&self, shard: ShardId) -> GateOpener {
        let db = self.node_db.clone();
        Box::new(move |floor| identity::open_vote_gate(&db, shard.0, floor))
    }

    /// True once a commit of either database failed (the node must stop).
    pub fn has_failed(&self) -> bool {
        self.log_writer.has_failed() || self.state_writer.has_failed()
    }

    /// Which store failed and its error: `Some` exactly when [`Store::has_failed`] (a writer
    /// keeps its error before it marks itself failed).
    pub fn failure(&self) -> Option<String> {
        let log = self.log_writer.failure().map(|why| format!("the Raft log: {why}"));
        log.or_else(|| self.state_writer.failure().map(|why| format!("the state database: {why}")))
    }

    /// Starts the disk-stall watchdog ([`stall`]): `on_stall` is called once a commit of the
    /// Raft log has not ended for longer than `limit`.
    pub fn watch_stalls(
        &self,
        limit: std::time::Duration,
        on_stall: impl FnOnce(String) + Send + 'static,
    ) {
        stall::watch(self.log_writer.progress(), "the Raft log", limit, on_stall);
    }

    /// Why the data directory is no longer the one opened (deleted, moved or replaced under
    /// the running node: [`presence`]), if it is not.
    pub fn directory_lost(&self) -> Option<String> {
        self.presence.as_ref()?.lost()
    }

    /// What the writers have done: one line each, log first.
    pub fn summary(&self) -> [String; 2] {
        let segments = self.wal_pressure().segments;
        let log = format!("{}; WAL segments: {segments}", self.log_writer.stats().summary());
        [log, self.state_writer.stats().summary()]
    }

    /// The log store and state machine of one shard, for its Raft instance.
    pub async fn open_shard(&self, shard: ShardId) -> io::Result<(LogStore, StateMachine)> {
        let db = self.state_db.clone();
        let writer = self.state_writer.clone();
        let mut state_machine =
            StateMachine::open(shard, db, writer, self.safe_parts(shard), self.exports(shard))
                .await?;
        let recovered = self.recovered.lock().expect("recovered logs lock").remove(&shard);
        let recovered =
            recovered.ok_or_else(|| io::Error::other(format!("{shard} opened twice")))?;
        let (writer, reader) = (self.log_writer.clone(), self.wal_reader.clone());
        let mut log = LogStore::open(shard, recovered, writer, reader, self.append_bytes_max);
        Self::purge_below_applied(&mut log, &mut state_machine).await?;
        Ok((log, state_machine))
    }

    /// Purges the log up to the state's applied id when the log ends at a lower index: a
    /// snapshot installed over a log whose tail came from a later, deposed leader (entries
    /// at lower indexes, of a higher term, never committed: openraft truncates only an entry
    /// at the snapshot's own index) leaves that tail in place until the purge that follows
    /// the install, and a crash between the two left it for good. openraft's start-up
    /// purges such a gap only when the last log id is below the applied one, and log ids
    /// order by term first, so it kept the stale tail, and the next append (at the applied
    /// index + 1) failed the log's no-hole check at every start (found by a review,
    /// 2026-12-07). Everything up to the applied id is committed and in the state, so
    /// nothing needed is dropped.
    async fn purge_below_applied(
        log: &mut LogStore,
        state_machine: &mut StateMachine,
    ) -> io::Result<()> {
        use openraft::storage::RaftLogStorage;
        use openraft::storage::RaftStateMachine;
        let (applied, _) = state_machine.applied_state().await?;
        let Some(applied) = applied else { return Ok(()) };
        let last = log.get_log_state().await?.last_log_id;
        if last.is_none_or(|last| last.index < applied.index) {
            log.purge(applied).await?;
        }
        Ok(())
    }

    /// Read-only access to one shard's state.
    pub fn reader(&self, shard: ShardId) -> ShardReader {
        ShardReader::new(self.state_db.clone(), shard, self.safe_parts(shard), self.exports(shard))
    }

    /// The one cache of `shard`'s safe-time parts, shared by its state machine and readers.
    fn safe_parts(&self, shard: ShardId) -> Arc<SafeParts> {
        self.safe_parts.lock().expect("safe parts lock").entry(shard).or_default().clone()
    }

    /// The count of `shard`'s snapshot exports, shared by its state machine and readers.
    fn exports(&self, shard: ShardId) -> Arc<AtomicU64> {
        self.exports.lock().expect("exports lock").entry(shard).or_default().clone()
    }
}

/// An entry at `index` that writes `bytes` bytes of value (tests of the log).
#[cfg(test)]
pub(crate) fn sized_entry(index: u64, bytes: usize) -> crate::types::Entry {
    filled_entry(index, bytes, 7)
}

/// [`sized_entry`] with every byte of the value `fill`.
#[cfg(test)]
pub(crate) fn filled_entry(index: u64, bytes: usize, fill: u8) -> crate::types::Entry {
    let txn = txn::types::TxnId {
        start_ts: txn::types::Timestamp(index + 1),
        coordinator: 1,
        incarnation: 1,
        seq: index,
    };
    let writes = vec![txn::command::Write { key: b"k".to_vec(), value: Some(vec![fill; bytes]) }];
    let command = txn::command::Command::CommitOnePhase {
        txn,
        writes,
        commit_ts: txn::types::Timestamp(index + 1),
        lock_term: 1,
    };
    let log_id = openraft::testing::log_id::<crate::types::TypeConfig>(1, 1, index);
    crate::types::Entry { log_id, payload: openraft::EntryPayload::Normal(command) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_with_the_old_redb_log_is_refused_untouched() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(OLD_LOG_FILE), b"old").expect("old log");
        let error = Databases::open_dir(dir.path()).err().expect("refused");
        assert!(matches!(error, IdentityError::OldFormat(_)), "{error}");
        assert!(error.to_string().contains("start with an empty --data directory"), "{error}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![OLD_LOG_FILE], "nothing was created next to it");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_idle_check_makes_volatile_state_commits_durable_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let executor = Executor::Task { sync_delay: std::time::Duration::ZERO };
        let store = Store::open_dir(dir.path(), executor, 1, 1, &[1]).expect("open");
        let durable = || store.state_writer.stats().durable_commits.load(AtomicOrdering::Relaxed);
        store.checkpoint_state_if_idle().await.expect("check");
        let before = durable();
        for _ in 0..3 {
            store.state_writer.run(false, |_| Ok(())).await.expect("a volatile commit");
        }
        assert_eq!(durable(), before, "volatile commits");
        store.checkpoint_state_if_idle().await.expect("check");
        assert_eq!(durable(), before + 1, "made durable once");
        store.checkpoint_state_if_idle().await.expect("check");
        assert_eq!(durable(), before + 1, "nothing new: no commit");
        store.state_writer.run(true, |_| Ok(())).await.expect("a durable commit");
        store.state_writer.run(false, |_| Ok(())).await.expect("a volatile commit");
        store.checkpoint_state_if_idle().await.expect("check");
        assert_eq!(durable(), before + 2, "a durable commit since the last check: none added");
    }

    /// [`Store::open_dir`] again once the writers of the dropped store let go of its files
    /// (they do once they see their queues closed).
    async fn reopen(dir: &Path, executor: Executor, shards: u32) -> Store {
        let mut reopened = Store::open_dir(dir, executor, 1, shards, &[1]);
        for _ in 0..100 {
            if !matches!(reopened, Err(IdentityError::InUse(_))) {
                break;
            }
            tokio::task::yield_now().await;
            reopened = Store::open_dir(dir, executor, 1, shards, &[1]);
        }
        reopened.expect("reopen")
    }

    /// A follower's log ends with entries of a deposed leader at indexes 0-5 (term 3, never
    /// committed) when a snapshot of the committed log up to index 10 (term 1) is installed,
    /// and the node stops before the purge that follows. Its next start must purge the log up
    /// to the snapshot, so that the leader's next entry (11) appends; before, the stale tail
    /// (ordered after the snapshot by its term) stayed, and that append failed the log's
    /// no-hole check at every start.
    #[tokio::test(flavor = "current_thread")]
    async fn a_stale_log_tail_below_an_installed_snapshot_is_purged_at_the_next_start() {
        use openraft::storage::RaftLogStorage;
        use openraft::storage::RaftLogStorageExt;
        use openraft::storage::RaftSnapshotBuilder;
        use openraft::storage::RaftStateMachine;

        let executor = Executor::Task { sync_delay: std::time::Duration::ZERO };
        let leader_dir = tempfile::tempdir().expect("temp dir");
        let leader = Store::open_dir(leader_dir.path(), executor, 1, 1, &[1]).expect("open");
        let (_log, mut leader_sm) = leader.open_shard(ShardId(0)).await.expect("shard");
        let entries: Vec<crate::types::Entry> =
            (1..=10).map(|index| sized_entry(index, 8)).collect();
        let stream = futures::stream::iter(entries.into_iter().map(|entry| Ok((entry, None))));
        leader_sm.apply(stream).await.expect("apply");
        leader_sm.get_snapshot_builder().await.build_snapshot().await.expect("build");
        let snapshot = leader_sm.get_current_snapshot().await.expect("read").expect("snapshot");
        let data = snapshot.snapshot.encode().await.expect("export");
        let applied = snapshot.meta.last_log_id.expect("a snapshot of index 10");

        let dir = tempfile::tempdir().expect("temp dir");
        {
            let store = Store::open_dir(dir.path(), executor, 1, 1, &[1]).expect("open");
            let (mut log, mut sm) = store.open_shard(ShardId(0)).await.expect("shard");
            let stale: Vec<crate::types::Entry> = (0..=5)
                .map(|index| openraft::testing::blank_ent::<crate::types::TypeConfig>(3, 2, index))
                .collect();
            log.blocking_append(stale).await.expect("append");
            let received = snapshot_data::SnapshotData::Encoded(data);
            sm.install_snapshot(&snapshot.meta, received).await.expect("install");
        }
        let store = reopen(dir.path(), executor, 1).await;
        let (mut log, _) = store.open_shard(ShardId(0)).await.expect("shard");
        let state = log.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id, Some(applied), "purged up to the snapshot");
        assert_eq!(state.last_log_id, Some(applied));
        let next = openraft::testing::blank_ent::<crate::types::TypeConfig>(4, 1, 11);
        log.blocking_append(vec![next]).await.expect("the leader's next entry appends");
        assert_eq!(
            log.get_log_state().await.expect("state").last_log_id.map(|id| id.index),
            Some(11)
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_store_reopened_from_its_directory_has_its_log_and_vote() {
        use openraft::RaftLogReader;
        use openraft::storage::RaftLogStorage;

        let dir = tempfile::tempdir().expect("temp dir");
        let executor = Executor::Task { sync_delay: std::time::Duration::ZERO };
        let vote = crate::types::Vote::new(3, 2);
        {
            let store = Store::open_dir(dir.path(), executor, 1, 2, &[1]).expect("open");
            let (mut log, _) = store.open_shard(ShardId(1)).await.expect("shard");
            log.save_vote(&vote).await.expect("vote");
            let entries: Vec<crate::types::Entry> = (0..3)
                .map(|index| openraft::testing::blank_ent::<crate::types::TypeConfig>(3, 2, index))
                .collect();
            openraft::storage::RaftLogStorageExt::blocking_append(&mut log, entries)
                .await
                .expect("append");
        }
        let store = reopen(dir.path(), executor, 2).await;
        assert_eq!(store.identity().incarnation, 2);
        let (mut log, _) = store.open_shard(ShardId(1)).await.expect("shard");
        assert_eq!(log.read_vote().await.expect("vote"), Some(vote));
        let read = log.try_get_log_entries(0..3).await.expect("entries");
        assert_eq!(read.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), vec![0, 1, 2]);
        let (mut other, _) = store.open_shard(ShardId(0)).await.expect("shard 0");
        assert_eq!(other.get_log_state().await.expect("state").last_log_id, None);
        assert!(store.open_shard(ShardId(1)).await.is_err(), "a shard's log is opened once");
    }
}
