//! One shard's state machine ([`openraft::storage::RaftStateMachine`]) over the node's database.
//!
//! Applying a batch of entries is one volatile job of the node's [`Writer`]: the commands change
//! the shard's tables (see `txn::state`) and the applied log id and membership are stored in the
//! same write transaction, so a crash always leaves data, applied index and membership
//! consistent; openraft replays the log from the stored applied index.
//!
//! ```text
//!   raft.S      "applied" -> log id, "membership" -> stored membership
//!   snapshot.S  "meta" -> snapshot meta, "data" -> encoded ShardSnapshot    the last snapshot
//! ```
//!
//! A snapshot is the shard's whole state (`txn::state::ShardSnapshot`) read in one redb read
//! transaction, together with the applied log id and membership read in that same transaction.
//! It is stored durably before openraft may purge the log it covers.

use std::io;
use std::sync::Arc;
use std::sync::Mutex;

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
use redb::TableDefinition;
use redb::WriteTransaction;
use txn::command::Applied;
use txn::state::ShardSnapshot;
use txn::state::ShardState;
use txn::types::ShardId;

use crate::codec;
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
const SNAPSHOT_META: &str = "meta";
const SNAPSHOT_DATA: &str = "data";

/// One shard's state machine.
pub struct StateMachine {
    inner: Arc<SmShared>,
}

struct SmShared {
    state: ShardState,
    db: Arc<Database>,
    writer: Writer<RedbSink>,
    meta_table: String,
    snapshot_table: String,
    mem: Mutex<SmMem>,
}

struct SmMem {
    applied: Option<LogId>,
    membership: StoredMembership,
    snapshot: Option<Snapshot>,
}

type MetaDef<'a> = TableDefinition<'a, &'static str, &'static [u8]>;

fn io_error<E: std::fmt::Display>(error: E) -> io::Error {
    io::Error::other(format!("storage: {error}"))
}

impl SmShared {
    fn meta_def(&self) -> MetaDef<'_> {
        TableDefinition::new(&self.meta_table)
    }

    fn snapshot_def(&self) -> MetaDef<'_> {
        TableDefinition::new(&self.snapshot_table)
    }

    fn read_applied(&self, rtx: &ReadTransaction) -> io::Result<(Option<LogId>, StoredMembership)> {
        let meta = match rtx.open_table(self.meta_def()) {
            Ok(meta) => meta,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Ok((None, StoredMembership::default()));
            }
            Err(e) => return Err(io_error(e)),
        };
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
}

impl StateMachine {
    /// Loads the shard's applied state and last snapshot; creates its tables if missing.
    pub(crate) async fn open(
        shard: ShardId,
        db: Arc<Database>,
        writer: Writer<RedbSink>,
    ) -> io::Result<StateMachine> {
        let state = ShardState::new(shard);
        let creator = state.clone();
        let snapshot_table = format!("snapshot.{}", shard.0);
        let created = snapshot_table.clone();
        writer
            .run(true, move |tx| {
                creator.create_tables(tx)?;
                tx.open_table(MetaDef::new(&created))?;
                Ok(())
            })
            .await?;
        let shared = SmShared {
            state,
            db,
            writer,
            meta_table: format!("raft.{}", shard.0),
            snapshot_table,
            mem: Mutex::new(SmMem {
                applied: None,
                membership: StoredMembership::default(),
                snapshot: None,
            }),
        };
        let rtx = shared.db.begin_read().map_err(io_error)?;
        let (applied, membership) = shared.read_applied(&rtx)?;
        let snapshot_table = rtx.open_table(shared.snapshot_def()).map_err(io_error)?;
        let snapshot = match (
            snapshot_table.get(SNAPSHOT_META).map_err(io_error)?,
            snapshot_table.get(SNAPSHOT_DATA).map_err(io_error)?,
        ) {
            (Some(meta), Some(data)) => Some(Snapshot {
                meta: codec::decode(meta.value())?,
                snapshot: data.value().to_vec(),
            }),
            _ => None,
        };
        drop(snapshot_table);
        drop(rtx);
        {
            let mut mem = shared.mem.lock().expect("state machine memory lock");
            mem.applied = applied;
            mem.membership = membership;
            mem.snapshot = snapshot;
        }
        Ok(StateMachine { inner: Arc::new(shared) })
    }
}

/// Builds snapshots of one shard.
pub struct SnapshotBuilder {
    inner: Arc<SmShared>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let inner = self.inner.clone();
        let (meta, data) = {
            let rtx = inner.db.begin_read().map_err(io_error)?;
            let (applied, membership) = inner.read_applied(&rtx)?;
            let exported = inner.state.export(&rtx).map_err(io_error)?;
            let meta = SnapshotMeta { last_log_id: applied, last_membership: membership };
            (meta, codec::encode(&exported))
        };
        let stored_meta = codec::encode(&meta);
        let stored_data = data.clone();
        let table = inner.snapshot_table.clone();
        inner
            .writer
            .run(true, move |tx| {
                let mut snapshots = tx.open_table(MetaDef::new(&table))?;
                snapshots.insert(SNAPSHOT_META, stored_meta.as_slice())?;
                snapshots.insert(SNAPSHOT_DATA, stored_data.as_slice())?;
                Ok(())
            })
            .await?;
        let snapshot = Snapshot { meta, snapshot: data };
        inner.mem.lock().expect("state machine memory lock").snapshot = Some(snapshot.clone());
        Ok(snapshot)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = Vec<u8>;
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
        let inner = self.inner.clone();
        let membership = inner.mem.lock().expect("state machine memory lock").membership.clone();
        let (applied, membership, results) = self
            .inner
            .writer
            .run(false, move |tx| {
                let mut membership = membership;
                let mut applied = None;
                let mut results = Vec::with_capacity(entries.len());
                for entry in &entries {
                    let log_id = entry.log_id();
                    let result = match &entry.payload {
                        EntryPayload::Blank => Applied::Done,
                        EntryPayload::Normal(command) => {
                            inner.state.apply(tx, command, term_of(&log_id))?
                        }
                        EntryPayload::Membership(config) => {
                            membership = StoredMembership::new(Some(log_id), config.clone());
                            Applied::Done
                        }
                    };
                    applied = Some(log_id);
                    results.push(result);
                }
                inner.write_applied(tx, &applied, &membership)?;
                Ok((applied, membership, results))
            })
            .await?;
        {
            let mut mem = self.inner.mem.lock().expect("state machine memory lock");
            assert!(
                applied > mem.applied,
                "applied went backwards: {applied:?} after {:?}",
                mem.applied
            );
            mem.applied = applied;
            mem.membership = membership;
        }
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
        snapshot: Vec<u8>,
    ) -> Result<(), io::Error> {
        let content: ShardSnapshot = codec::decode(&snapshot)?;
        let inner = self.inner.clone();
        let meta_owned = meta.clone();
        let stored_meta = codec::encode(meta);
        let stored_data = snapshot.clone();
        self.inner
            .writer
            .run(true, move |tx| {
                inner.state.import(tx, &content)?;
                inner.write_applied(tx, &meta_owned.last_log_id, &meta_owned.last_membership)?;
                let mut snapshots = tx.open_table(inner.snapshot_def())?;
                snapshots.insert(SNAPSHOT_META, stored_meta.as_slice())?;
                snapshots.insert(SNAPSHOT_DATA, stored_data.as_slice())?;
                Ok(())
            })
            .await?;
        let mut mem = self.inner.mem.lock().expect("state machine memory lock");
        mem.applied = meta.last_log_id;
        mem.membership = meta.last_membership.clone();
        mem.snapshot = Some(Snapshot { meta: meta.clone(), snapshot });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        Ok(self.inner.mem.lock().expect("state machine memory lock").snapshot.clone())
    }
}
