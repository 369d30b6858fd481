//! One shard's state machine ([`openraft::storage::RaftStateMachine`]) over the node's database.
//!
//! Applying a batch of entries is one volatile job of the node's [`Writer`]: the commands change
//! the shard's tables (see `txn::state`) and the applied log id and membership are stored in the
//! same write transaction, so a crash always leaves data, applied index and membership
//! consistent; openraft replays the log from the stored applied index.
//!
//! ```text
//!   raft.S      "applied" -> log id, "membership" -> stored membership
//! ```
//!
//! Snapshots are not copies. The shard's tables in the state database are its snapshot:
//!
//! - *Building* one (openraft asks every `snapshot_every_entries` entries, so that it may purge
//!   the log) is one durable commit of the writer: everything applied so far reaches the disk,
//!   and the applied log id read in that commit is the snapshot's. openraft keeps only the meta
//!   of a built snapshot (it purges the log up to it, minus `log_kept_behind_snapshot`), so no
//!   data is produced. The log is therefore purged only below a durable state.
//! - *Reading* one (a leader sending it to a follower that needs purged entries, or openraft at
//!   start-up) is also a durable commit, inside which a redb read transaction is opened; the
//!   applied log id and membership are read in it, and the network exports the shard's tables
//!   from it when it sends them ([`SnapshotData`]): a snapshot at or after the last one built,
//!   always consistent, and always durable (openraft takes the meta it reads at start-up as a
//!   point up to which it may purge the log).
//! - *Installing* one replaces the shard's tables and applied id in one durable commit, before
//!   openraft purges the follower's log.
//!
//! A batch that only closes (every entry a `Close`, or a blank) is applied in memory, without a
//! job of the writer: it changes nothing but the closed timestamp, which readers take from
//! [`SafeParts`], and the shard's next transaction (an apply, or building a snapshot) writes
//! it into the tables first, as if those closes had been applied there in order. So the tables
//! may lag the applied id by closes only, and what they hold is always a consistent state at
//! their own applied id (after a crash openraft re-applies the closes). While causal readers
//! are about, each leader closes a hundred times a second per shard; on every replica each of
//! those cost a volatile commit of the state database (100-400 us) and two thread hand-offs.
//!
//! Until 2026-12 a built snapshot was exported and stored as a blob in the same database: a
//! several-MB durable commit through the writer that every shard's applies share, which held
//! them for 43-48 ms at every snapshot (docs/benchmarks.md, sitting K).

use std::io;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use futures::Stream;
use futures::StreamExt;
use openraft::EntryPayload;
use openraft::RaftSnapshotBuilder;
use openraft::entry::RaftEntry;
use openraft::storage::EntryResponder;
use openraft::storage::RaftStateMachine;
use redb::Database;
use redb::ReadTransaction;
use redb::ReadableDatabase;
use redb::ReadableTable;
use redb::TableDefinition;
use redb::WriteTransaction;
use txn::command::Applied;
use txn::state::ShardSnapshot;
use txn::state::ShardState;
use txn::types::ShardId;
use txn::types::Timestamp;

use crate::codec;
use crate::store::SafeParts;
use crate::store::snapshot_data::SnapshotData;
use crate::store::snapshot_data::Tables;
use crate::store::writer::RedbSink;
use crate::store::writer::Writer;
use crate::types::LogId;
use crate::types::Snapshot;
use crate::types::SnapshotMeta;
use crate::types::StoredMembership;
use crate::types::TypeConfig;
use crate::types::term_of;

const META_APPLIED: &str = "applied";
const META_MEMBERSHIP: &str = "membership";
/// The table where snapshots were stored as blobs until 2026-12, dropped when a shard opens.
fn legacy_snapshot_table(shard: ShardId) -> String {
    format!("snapshot.{}", shard.0)
}

/// One shard's state machine.
pub struct StateMachine {
    inner: Arc<SmShared>,
}

struct SmShared {
    state: ShardState,
    db: Arc<Database>,
    writer: Writer<RedbSink>,
    meta_table: String,
    mem: Mutex<SmMem>,
    /// Bumped after every commit that changes the shard's tables.
    safe_parts: Arc<SafeParts>,
    /// Snapshots exported (`get_current_snapshot`), read by [`super::ShardReader`].
    exports: Arc<AtomicU64>,
    /// While set ([`StateMachine::meta_only_snapshots`]), `get_current_snapshot` answers the
    /// snapshot's meta with no data.
    meta_only: AtomicBool,
}

struct SmMem {
    applied: Option<LogId>,
    membership: StoredMembership,
    /// The highest closed timestamp applied, in the tables or in memory (module overview).
    closed: Timestamp,
}

/// Start-up's mode of a [`StateMachine`] ([`StateMachine::meta_only_snapshots`]): ends when
/// dropped.
pub struct MetaOnlySnapshots(Arc<SmShared>);

impl Drop for MetaOnlySnapshots {
    fn drop(&mut self) {
        self.0.meta_only.store(false, Ordering::SeqCst);
    }
}

impl SmMem {
    /// Records that a batch ending at `applied` was applied (in the tables or in memory).
    /// Invariant: the applied id only moves forward.
    fn advance(&mut self, applied: Option<LogId>) {
        assert!(
            applied > self.applied,
            "applied went backwards: {applied:?} after {:?}",
            self.applied
        );
        self.applied = applied;
    }
}

type MetaDef<'a> = TableDefinition<'a, &'static str, &'static [u8]>;

fn io_error<E: std::fmt::Display>(error: E) -> io::Error {
    io::Error::other(format!("storage: {error}"))
}

impl SmShared {
    fn meta_def(&self) -> MetaDef<'_> {
        TableDefinition::new(&self.meta_table)
    }

    fn read_applied(&self, rtx: &ReadTransaction) -> io::Result<(Option<LogId>, StoredMembership)> {
        match rtx.open_table(self.meta_def()) {
            Ok(meta) => read_applied_from(&meta),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok((None, StoredMembership::default())),
            Err(e) => Err(io_error(e)),
        }
    }

    fn write_applied(
        &self,
        tx: &WriteTransaction,
        applied: &Option<LogId>,
        membership: &StoredMembership,
    ) -> Result<(), redb::Error> {
        let mut meta = tx.open_table(self.meta_def())?;
        meta.insert(META_APPLIED, codec::encode(applied).as_slice())?;
        meta.insert(META_MEMBERSHIP, codec::encode(membership).as_slice())?;
        Ok(())
    }

    /// Writes the closes applied in memory into the tables, in a transaction of the writer:
    /// the closed timestamp, and the applied id if it is ahead of the tables' (a job of the
    /// same shard earlier in the same transaction may have written a newer one). Returns the
    /// applied id and membership the tables then hold.
    fn write_closes_in_memory(
        &self,
        tx: &WriteTransaction,
    ) -> Result<(Option<LogId>, StoredMembership), redb::Error> {
        let (applied, closed) = {
            let mem = self.mem.lock().expect("state machine memory lock");
            (mem.applied, mem.closed)
        };
        self.state.raise_closed(tx, closed)?;
        let meta = tx.open_table(self.meta_def())?;
        let (stored, membership) = read_applied_from(&meta).map_err(redb::Error::Io)?;
        drop(meta);
        if applied > stored {
            self.write_applied(tx, &applied, &membership)?;
            return Ok((applied, membership));
        }
        Ok((stored, membership))
    }
}

/// The closed timestamp a batch of entries raises the shard's to, if closing is all it does
/// (blanks and closes only; [`Command::only_closes`]).
fn only_closes(entries: &[crate::types::Entry]) -> Option<Timestamp> {
    let mut closed = Timestamp::ZERO;
    for entry in entries {
        match &entry.payload {
            EntryPayload::Blank => {}
            EntryPayload::Normal(command) => closed = closed.max(command.only_closes()?),
            EntryPayload::Membership(_) => return None,
        }
    }
    Some(closed)
}

fn read_applied_from(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> io::Result<(Option<LogId>, StoredMembership)> {
    let applied = match meta.get(META_APPLIED).map_err(io_error)? {
        Some(v) => codec::decode(v.value())?,
        None => None,
    };
    let membership = match meta.get(META_MEMBERSHIP).map_err(io_error)? {
        Some(v) => codec::decode(v.value())?,
        None => StoredMembership::default(),
    };
    Ok((applied, membership))
}

impl StateMachine {
    /// Until the returned guard is dropped, `get_current_snapshot` answers the current
    /// snapshot's meta with no data. For `Raft::new`: openraft's start-up asks twice for the
    /// current snapshot and keeps only its meta (whose id equals the applied id, so it never
    /// installs it), and each answer was a durable commit plus an export and encoding of the
    /// whole shard, so a restart read every shard twice and held two copies of each at a time
    /// (a review found it, 2026-12-06). Nothing is sent to a follower before `Raft::new`
    /// returns (the group has no leader yet); were such empty data installed, it would fail to
    /// decode, not empty the shard.
    pub fn meta_only_snapshots(&self) -> MetaOnlySnapshots {
        self.inner.meta_only.store(true, Ordering::SeqCst);
        MetaOnlySnapshots(self.inner.clone())
    }

    /// Loads the shard's applied state; creates its tables if missing.
    pub(crate) async fn open(
        shard: ShardId,
        db: Arc<Database>,
        writer: Writer<RedbSink>,
        safe_parts: Arc<SafeParts>,
        exports: Arc<AtomicU64>,
    ) -> io::Result<StateMachine> {
        let state = ShardState::new(shard);
        let creator = state.clone();
        writer
            .run(true, move |tx| {
                creator.create_tables(tx)?;
                tx.delete_table(MetaDef::new(&legacy_snapshot_table(shard)))?;
                Ok(())
            })
            .await?;
        let shared = SmShared {
            state,
            db,
            writer,
            meta_table: format!("raft.{}", shard.0),
            mem: Mutex::new(SmMem {
                applied: None,
                membership: StoredMembership::default(),
                closed: Timestamp::ZERO,
            }),
            safe_parts,
            exports,
            meta_only: AtomicBool::new(false),
        };
        shared.safe_parts.bump();
        let rtx = shared.db.begin_read().map_err(io_error)?;
        let (applied, membership) = shared.read_applied(&rtx)?;
        let (closed, _) = shared.state.watermarks(&rtx).map_err(io_error)?;
        drop(rtx);
        {
            let mut mem = shared.mem.lock().expect("state machine memory lock");
            mem.applied = applied;
            mem.membership = membership;
            mem.closed = closed;
        }
        Ok(StateMachine { inner: Arc::new(shared) })
    }
}

/// Builds snapshots of one shard: makes its applied state durable (see the module's overview).
pub struct SnapshotBuilder {
    inner: Arc<SmShared>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    /// One durable commit; the snapshot's meta is the applied id it made durable. The data is
    /// left empty: openraft keeps only the meta of a built snapshot, and
    /// [`RaftStateMachine::get_current_snapshot`] exports the tables when one is sent.
    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let inner = self.inner.clone();
        let meta = self
            .inner
            .writer
            .run(true, move |tx| {
                let (applied, membership) = inner.write_closes_in_memory(tx)?;
                Ok(SnapshotMeta { last_log_id: applied, last_membership: membership })
            })
            .await?;
        Ok(Snapshot { meta, snapshot: SnapshotData::empty() })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let mem = self.inner.mem.lock().expect("state machine memory lock");
        Ok((mem.applied, mem.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>>
            + Unpin
            + openraft::OptionalSend,
    {
        let mut batch = Vec::new();
        while let Some(item) = entries.next().await {
            batch.push(item?);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let (entries, responders): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        if let Some(closed) = only_closes(&entries) {
            let last = entries.last().map(|entry| entry.log_id());
            {
                let mut mem = self.inner.mem.lock().expect("state machine memory lock");
                mem.advance(last);
                mem.closed = mem.closed.max(closed);
                let index = last.map(|id| id.index).unwrap_or(0);
                self.inner.safe_parts.closes_applied(index, mem.closed);
            }
            for responder in responders.into_iter().flatten() {
                responder.send(Applied::Done);
            }
            return Ok(());
        }
        let inner = self.inner.clone();
        let (membership, closed) = {
            let mem = inner.mem.lock().expect("state machine memory lock");
            (mem.membership.clone(), mem.closed)
        };
        let (applied, membership, results) = self
            .inner
            .writer
            .run(false, move |tx| {
                // The shard's tables are opened once for the batch. The closes applied in
                // memory since the last transaction come first.
                let mut tables = inner.state.open(tx)?;
                tables.raise_closed(closed)?;
                let mut membership = membership;
                let mut applied = None;
                let mut results = Vec::with_capacity(entries.len());
                for entry in &entries {
                    let log_id = entry.log_id();
                    let result = match &entry.payload {
                        EntryPayload::Blank => Applied::Done,
                        EntryPayload::Normal(command) => {
                            inner.state.apply_in(&mut tables, command, term_of(&log_id))?
                        }
                        EntryPayload::Membership(config) => {
                            membership = StoredMembership::new(Some(log_id), config.clone());
                            Applied::Done
                        }
                    };
                    applied = Some(log_id);
                    results.push(result);
                }
                drop(tables);
                inner.write_applied(tx, &applied, &membership)?;
                Ok((applied, membership, results))
            })
            .await?;
        {
            let mut mem = self.inner.mem.lock().expect("state machine memory lock");
            mem.advance(applied);
            mem.membership = membership;
            // Not raised by the batch's own closes: the next transaction need not write them
            // again, and the tables' closed timestamp is at least theirs.
        }
        self.inner.safe_parts.bump();
        for (responder, result) in responders.into_iter().zip(results) {
            if let Some(responder) = responder {
                responder.send(result);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { inner: self.inner.clone() }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        // Decoding a whole shard takes long for a large one: not on a runtime worker (as the
        // export). Data not received (openraft's storage suite installs one store's snapshot
        // in another) is exported first.
        let snapshot = snapshot.encode().await?;
        let decode = move || codec::decode::<ShardSnapshot>(&snapshot);
        let content = self.inner.writer.executor().run_blocking("snapshot-decode", decode).await?;
        let installed_closed = content.closed;
        let inner = self.inner.clone();
        let meta_owned = meta.clone();
        self.inner
            .writer
            .run(true, move |tx| {
                inner.state.import(tx, &content)?;
                inner.write_applied(tx, &meta_owned.last_log_id, &meta_owned.last_membership)?;
                Ok(())
            })
            .await?;
        let mut mem = self.inner.mem.lock().expect("state machine memory lock");
        mem.applied = meta.last_log_id;
        mem.membership = meta.last_membership.clone();
        mem.closed = installed_closed;
        self.inner.safe_parts.installed();
        self.inner.safe_parts.bump();
        Ok(())
    }

    /// The shard's tables at (about) the current applied id, as one read transaction opened
    /// inside a durable commit: the snapshot's meta is always durable. It must be, for
    /// openraft takes the meta of this call at start-up (after re-applying the log with
    /// volatile commits) as the snapshot up to which it may purge the log; a meta ahead of the
    /// disk would let a crash leave the state behind a purged log (the simulation found this).
    /// Nothing is exported here: the network exports the tables when it sends them
    /// ([`SnapshotData`]), so the shard's applies, which run on the same task, do not wait.
    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let db = self.inner.db.clone();
        // Opened before the commit, the read transaction sees no more than it makes durable.
        let rtx = self.inner.writer.run(true, move |_| Ok(db.begin_read()?)).await?;
        let (applied, membership) = self.inner.read_applied(&rtx)?;
        if applied.is_none() {
            return Ok(None);
        }
        let meta = SnapshotMeta { last_log_id: applied, last_membership: membership };
        if self.inner.meta_only.load(Ordering::SeqCst) {
            // No data: an install of it fails to decode rather than emptying a shard.
            return Ok(Some(Snapshot { meta, snapshot: SnapshotData::empty() }));
        }
        self.inner.exports.fetch_add(1, Ordering::Relaxed);
        let tables =
            Tables { rtx, state: self.inner.state.clone(), executor: self.inner.writer.executor() };
        Ok(Some(Snapshot { meta, snapshot: SnapshotData::Tables(Box::new(tables)) }))
    }
}

#[cfg(test)]
mod tests {
    use openraft::RaftSnapshotBuilder;
    use openraft::entry::RaftEntry;
    use openraft::storage::RaftStateMachine;
    use txn::command::Command;
    use txn::command::Write;
    use txn::state::ShardSnapshot;
    use txn::types::ShardId;
    use txn::types::Timestamp;
    use txn::types::TxnId;

    use crate::store::SnapshotData;
    use crate::store::Store;
    use crate::store::writer::Executor;
    use crate::types::Entry;
    use crate::types::TypeConfig;

    const SHARD: ShardId = ShardId(0);

    /// A one-shard transaction at log index `index` (term 1) writing `key` = `index`.
    fn put(index: u64, key: &str) -> Entry {
        put_at(index, key, 100 + index)
    }

    /// As [`put`], committing at `commit_ts`.
    fn put_at(index: u64, key: &str, commit_ts: u64) -> Entry {
        let txn = TxnId { start_ts: Timestamp(index), coordinator: 1, incarnation: 1, seq: index };
        let writes = vec![Write { key: key.as_bytes().to_vec(), value: Some(vec![index as u8]) }];
        let command =
            Command::CommitOnePhase { txn, writes, commit_ts: Timestamp(commit_ts), lock_term: 1 };
        Entry::new_normal(openraft::testing::log_id::<TypeConfig>(1, 1, index), command)
    }

    fn close(index: u64, ts: u64) -> Entry {
        let command = Command::Close { ts: Timestamp(ts) };
        Entry::new_normal(openraft::testing::log_id::<TypeConfig>(1, 1, index), command)
    }

    /// The closed timestamp the exported tables hold.
    async fn closed_in_tables(sm: &mut super::StateMachine) -> (u64, Timestamp) {
        let snapshot = sm.get_current_snapshot().await.expect("read").expect("a snapshot");
        let data = snapshot.snapshot.encode().await.expect("export");
        let content: ShardSnapshot = crate::codec::decode(&data).expect("decode");
        (snapshot.meta.last_log_id.map(|id| id.index).unwrap_or(0), content.closed)
    }

    async fn apply(sm: &mut super::StateMachine, entries: Vec<Entry>) {
        let stream = futures::stream::iter(entries.into_iter().map(|entry| Ok((entry, None))));
        sm.apply(stream).await.expect("apply");
    }

    fn open(dir: &std::path::Path) -> Store {
        let executor = Executor::Task { sync_delay: std::time::Duration::ZERO };
        Store::open_dir(dir, executor, 1, 1, &[1]).expect("open")
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_snapshot_is_read_at_the_current_applied_id_and_installs_elsewhere() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(dir.path());
        let (_log, mut sm) = store.open_shard(SHARD).await.expect("shard");
        assert!(sm.get_current_snapshot().await.expect("read").is_none(), "nothing applied yet");

        apply(&mut sm, vec![put(1, "a"), put(2, "b")]).await;
        let built = sm.get_snapshot_builder().await.build_snapshot().await.expect("build");
        assert_eq!(built.meta.last_log_id.map(|id| id.index), Some(2));
        assert!(built.snapshot.is_empty(), "building exports nothing");

        apply(&mut sm, vec![put(3, "c")]).await;
        let sent = sm.get_current_snapshot().await.expect("read").expect("a snapshot");
        assert_eq!(sent.meta.last_log_id.map(|id| id.index), Some(3), "read at the applied id");
        // Exported only when sent: what the shard applies meanwhile is not in it.
        apply(&mut sm, vec![put(4, "d")]).await;
        let data = sent.snapshot.encode().await.expect("export");

        let other_dir = tempfile::tempdir().expect("temp dir");
        let other = open(other_dir.path());
        let (_other_log, mut other_sm) = other.open_shard(SHARD).await.expect("shard");
        let received = SnapshotData::Encoded(data.clone());
        other_sm.install_snapshot(&sent.meta, received).await.expect("install");
        let (applied, _) = other_sm.applied_state().await.expect("applied");
        assert_eq!(applied, sent.meta.last_log_id);
        let reader = other.reader(SHARD);
        for (key, index) in [("a", 1u8), ("b", 2), ("c", 3)] {
            let value = reader.read(key.as_bytes(), Timestamp(1_000)).expect("read");
            assert_eq!(value, Some(vec![index]), "{key} came with the snapshot");
        }
        let later = reader.read(b"d", Timestamp(1_000)).expect("read");
        assert_eq!(later, None, "applied after the snapshot was read");
        let again = other_sm.get_current_snapshot().await.expect("read").expect("a snapshot");
        let again = again.snapshot.encode().await.expect("export");
        assert_eq!(again, data, "the installed state reads back the same");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn closes_alone_apply_in_memory_and_reach_the_tables_with_the_next_transaction() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(dir.path());
        let (_log, mut sm) = store.open_shard(SHARD).await.expect("shard");
        let reader = store.reader(SHARD);
        apply(&mut sm, vec![put(1, "a")]).await;
        apply(&mut sm, vec![close(2, 200), close(3, 300)]).await;

        let (applied, _) = sm.applied_state().await.expect("applied");
        assert_eq!(applied.map(|id| id.index), Some(3));
        assert_eq!(reader.watermarks().expect("watermarks").0, Timestamp(300));
        assert_eq!(reader.safe_time_parts().expect("parts").0, Timestamp(300));
        assert_eq!(reader.snapshot_summary().expect("summary").0, 3, "the index applied");
        assert_eq!(closed_in_tables(&mut sm).await, (1, Timestamp::ZERO), "tables untouched");

        // The closes in memory bind the next apply: a commit at 250 is refused, one at 350 is not.
        apply(&mut sm, vec![put_at(4, "b", 250)]).await;
        assert_eq!(reader.read(b"b", Timestamp(1_000)).expect("read"), None);
        apply(&mut sm, vec![put_at(5, "c", 350)]).await;
        assert_eq!(reader.read(b"c", Timestamp(1_000)).expect("read"), Some(vec![5]));
        assert_eq!(closed_in_tables(&mut sm).await, (5, Timestamp(300)), "written with it");

        // Building a snapshot writes them too, applied id included.
        apply(&mut sm, vec![close(6, 400)]).await;
        let built = sm.get_snapshot_builder().await.build_snapshot().await.expect("build");
        assert_eq!(built.meta.last_log_id.map(|id| id.index), Some(6));
        assert_eq!(closed_in_tables(&mut sm).await, (6, Timestamp(400)));
    }
}
