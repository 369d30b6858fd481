//! One shard's Raft log and vote, in the node's redb database ([`openraft::storage::RaftLogStorage`]).
//!
//! ```text
//!   log.S    index -> entry (postcard)        the log, from last_purged+1 to last_log
//!   raft.S   "vote" -> vote, "purged" -> log id
//! ```
//!
//! Appends go to the node's [`Writer`] as durable jobs, so one fsync covers the appends of every
//! shard of the node; openraft's `IOFlushed` callback fires only after that fsync. The committed
//! log id openraft saves is kept in memory and written by the next append's job, in the same
//! commit: a commit of its own for it cost the log writer a redb commit per committed batch, and
//! it only saves re-learning the commit point after a restart (a stale one is safe). openraft also
//! needs appended entries to be readable at once (replication reads them before they are
//! durable), so every appended entry also goes into an in-memory tail, which readers consult
//! before the database.
//!
//! Invariants (held under the `mem` lock):
//! 1. Every entry in `[last_purged+1, last_log]` is in `tail` or already durable in `log.S`.
//! 2. `tail` only loses an entry from its low end, and only one at or below `durable`, the
//!    highest index known durable since the last truncation; so an entry missing from `tail`
//!    below its lowest index is durable in `log.S`.
//! 3. A truncation bumps `generation`; an append completing for an older generation does not
//!    raise `durable` (its entries may have been truncated and replaced).

use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::ops::RangeBounds;
use std::sync::Arc;
use std::sync::Mutex;

use openraft::LogState;
use openraft::RaftLogReader;
use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use redb::Database;
use redb::ReadableDatabase;
use redb::ReadableTable;
use redb::TableDefinition;
use redb::WriteTransaction;
use txn::types::ShardId;

use crate::codec;
use crate::store::writer::Job;
use crate::store::writer::Writer;
use crate::types::Entry;
use crate::types::LogId;
use crate::types::TypeConfig;
use crate::types::Vote;

/// Entries kept in memory beyond those not yet durable (they serve followers that lag a little).
pub const LOG_TAIL_CACHED_ENTRIES: usize = 4096;

const META_VOTE: &str = "vote";
const META_PURGED: &str = "purged";
const META_COMMITTED: &str = "committed";

/// One shard's log store; clones share state (the log reader is a clone).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<ShardLog>,
}

struct ShardLog {
    shard: ShardId,
    db: Arc<Database>,
    writer: Writer,
    log_table: String,
    meta_table: String,
    mem: Mutex<LogMem>,
    /// The newest committed log id saved and not yet written (postcard), for the next append.
    committed: Arc<Mutex<Option<Vec<u8>>>>,
}

#[derive(Default)]
struct LogMem {
    vote: Option<Vote>,
    last_purged: Option<LogId>,
    last_log: Option<LogId>,
    tail: BTreeMap<u64, Entry>,
    durable: u64,
    generation: u64,
}

impl LogStore {
    /// Loads the shard's log state from the database.
    pub(crate) fn open(shard: ShardId, db: Arc<Database>, writer: Writer) -> io::Result<LogStore> {
        let log_table = format!("log.{}", shard.0);
        let meta_table = format!("raft.{}", shard.0);
        let mut mem = LogMem::default();
        {
            let rtx = db.begin_read().map_err(io_error)?;
            match rtx.open_table(TableDefinition::<&str, &[u8]>::new(&meta_table)) {
                Ok(meta) => {
                    if let Some(v) = meta.get(META_VOTE).map_err(io_error)? {
                        mem.vote = Some(codec::decode(v.value())?);
                    }
                    if let Some(v) = meta.get(META_PURGED).map_err(io_error)? {
                        mem.last_purged = Some(codec::decode(v.value())?);
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(io_error(e)),
            }
            match rtx.open_table(TableDefinition::<u64, &[u8]>::new(&log_table)) {
                Ok(log) => {
                    if let Some((index, entry)) = log.last().map_err(io_error)? {
                        let entry: Entry = codec::decode(entry.value())?;
                        mem.durable = index.value();
                        mem.last_log = Some(entry.log_id());
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        if mem.last_log.is_none() {
            mem.last_log = mem.last_purged;
        }
        let committed = Arc::new(Mutex::new(None));
        let mem = Mutex::new(mem);
        let inner = ShardLog { shard, db, writer, log_table, meta_table, mem, committed };
        Ok(LogStore { inner: Arc::new(inner) })
    }

    /// The shard.
    pub fn shard(&self) -> ShardId {
        self.inner.shard
    }

    fn mem(&self) -> std::sync::MutexGuard<'_, LogMem> {
        self.inner.mem.lock().expect("log memory lock")
    }

    async fn write_meta(&self, name: &'static str, bytes: Vec<u8>) -> io::Result<()> {
        let table = self.inner.meta_table.clone();
        self.inner
            .writer
            .run(true, move |tx| {
                tx.open_table(TableDefinition::<&str, &[u8]>::new(&table))?
                    .insert(name, bytes.as_slice())?;
                Ok(())
            })
            .await
    }

    fn read_durable(&self, start: u64, end: u64) -> io::Result<Vec<Entry>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let rtx = self.inner.db.begin_read().map_err(io_error)?;
        let table = match rtx.open_table(TableDefinition::<u64, &[u8]>::new(&self.inner.log_table))
        {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(io_error(e)),
        };
        let mut out = Vec::new();
        for item in table.range(start..end).map_err(io_error)? {
            let (_, bytes) = item.map_err(io_error)?;
            out.push(codec::decode(bytes.value())?);
        }
        Ok(out)
    }
}

fn io_error<E: std::fmt::Display>(error: E) -> io::Error {
    io::Error::other(format!("storage: {error}"))
}

fn bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s + 1,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB>(&mut self, range: RB) -> Result<Vec<Entry>, io::Error>
    where
        RB: RangeBounds<u64> + Clone + std::fmt::Debug + openraft::OptionalSend,
    {
        let (start, end) = bounds(&range);
        let (cached, cache_low) = {
            let mem = self.mem();
            let cache_low = mem.tail.keys().next().copied().unwrap_or(u64::MAX).max(start);
            let cached: Vec<Entry> = if cache_low < end {
                mem.tail.range(cache_low..end).map(|(_, e)| e.clone()).collect()
            } else {
                Vec::new()
            };
            (cached, cache_low)
        };
        let mut entries = self.read_durable(start, end.min(cache_low))?;
        entries.extend(cached);
        Ok(entries)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.mem().vote)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let mem = self.mem();
        Ok(LogState {
            last_purged_log_id: mem.last_purged,
            last_log_id: mem.last_log.or(mem.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    /// Records the committed log id with the next batch (no wait), in a volatile commit: it
    /// becomes durable with the next durable commit (the next append), not by an fsync of its
    /// own. After a clean restart openraft re-applies the log up to it before serving. It is an
    /// optimisation, not a safety property: after a power loss it may be older than what the
    /// replica applied, and nothing depends on that: leader restore is disabled (a restarted
    /// replica leads only after an election and its blank entry, applied before it serves), and
    /// a follower's causal reads are bounded by the closed timestamp of the state it has. It is
    /// written after the entries it covers (the writer is FIFO), so it never points past the
    /// durable log. (Durable, it cost one fsync per committed batch: a second fsync per write
    /// on every replica.)
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        *self.inner.committed.lock().expect("committed lock") = Some(codec::encode(&committed));
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        if let Some(bytes) = self.inner.committed.lock().expect("committed lock").as_ref() {
            return codec::decode(bytes);
        }
        let rtx = self.inner.db.begin_read().map_err(io_error)?;
        match rtx.open_table(TableDefinition::<&str, &[u8]>::new(&self.inner.meta_table)) {
            Ok(meta) => match meta.get(META_COMMITTED).map_err(io_error)? {
                Some(bytes) => codec::decode(bytes.value()),
                None => Ok(None),
            },
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(io_error(e)),
        }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.mem().vote = Some(*vote);
        self.write_meta(META_VOTE, codec::encode(vote)).await
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut encoded: Vec<(u64, Vec<u8>)> = Vec::new();
        let (generation, last_index) = {
            let mut mem = self.mem();
            for entry in entries {
                let log_id = entry.log_id();
                if let Some(last) = mem.last_log {
                    assert_eq!(
                        log_id.index,
                        last.index + 1,
                        "log hole in {}: {last} then {log_id}",
                        self.inner.shard
                    );
                }
                encoded.push((log_id.index, codec::encode(&entry)));
                mem.tail.insert(log_id.index, entry);
                mem.last_log = Some(log_id);
            }
            (mem.generation, encoded.last().map(|(index, _)| *index))
        };
        let Some(last_index) = last_index else {
            callback.io_completed(Ok(()));
            return Ok(());
        };
        let table = self.inner.log_table.clone();
        let (meta_table, committed) = (self.inner.meta_table.clone(), self.inner.committed.clone());
        let store = self.clone();
        // Canary: acknowledge at once and leave the entries to be flushed "later" (by whatever
        // durable commit comes next): a crash loses acknowledged entries.
        let mut callback = Some(callback);
        let early = crate::canary::is(crate::canary::Canary::AckBeforeFsync);
        if early && let Some(callback) = callback.take() {
            callback.io_completed(Ok(()));
        }
        self.inner.writer.submit(Job {
            durable: !early,
            work: Box::new(move |tx: &WriteTransaction| {
                let mut log = tx.open_table(TableDefinition::<u64, &[u8]>::new(&table))?;
                for (index, bytes) in &encoded {
                    log.insert(*index, bytes.as_slice())?;
                }
                if let Some(bytes) = committed.lock().expect("committed lock").take() {
                    tx.open_table(TableDefinition::<&str, &[u8]>::new(&meta_table))?
                        .insert(META_COMMITTED, bytes.as_slice())?;
                }
                Ok(())
            }),
            done: Box::new(move |result| {
                if result.is_ok() {
                    let mut mem = store.mem();
                    if mem.generation == generation && last_index > mem.durable {
                        mem.durable = last_index;
                    }
                    while mem.tail.len() > LOG_TAIL_CACHED_ENTRIES {
                        let Some((&lowest, _)) = mem.tail.first_key_value() else { break };
                        if lowest > mem.durable {
                            break;
                        }
                        mem.tail.pop_first();
                    }
                }
                if let Some(callback) = callback {
                    callback.io_completed(result);
                }
            }),
        })
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map(|id| id.index + 1).unwrap_or(0);
        {
            let mut mem = self.mem();
            mem.tail.split_off(&from);
            // Truncating after an index beyond the end changes nothing.
            if mem.last_log.is_some_and(|last| last.index >= from) {
                mem.last_log = last_log_id.or(mem.last_purged);
            }
            mem.generation += 1;
            mem.durable = mem.durable.min(from.saturating_sub(1));
        }
        let table = self.inner.log_table.clone();
        self.inner
            .writer
            .run(true, move |tx| {
                let mut log = tx.open_table(TableDefinition::<u64, &[u8]>::new(&table))?;
                log.retain_in(from.., |_, _| false)?;
                Ok(())
            })
            .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        {
            let mut mem = self.mem();
            mem.tail = mem.tail.split_off(&(log_id.index + 1));
            mem.last_purged = Some(log_id);
            if mem.last_log.is_none_or(|last| last.index < log_id.index) {
                mem.last_log = Some(log_id);
            }
        }
        let table = self.inner.log_table.clone();
        let meta = self.inner.meta_table.clone();
        let purged = codec::encode(&log_id);
        self.inner
            .writer
            .run(true, move |tx| {
                let mut log = tx.open_table(TableDefinition::<u64, &[u8]>::new(&table))?;
                log.retain_in(..=log_id.index, |_, _| false)?;
                tx.open_table(TableDefinition::<&str, &[u8]>::new(&meta))?
                    .insert(META_PURGED, purged.as_slice())?;
                Ok(())
            })
            .await
    }
}
