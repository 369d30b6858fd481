//! One shard's Raft log and vote, in the node's WAL ([`openraft::storage::RaftLogStorage`]).
//!
//! Appends, truncations, purges and votes go to the node's log [`Writer`] as records of the
//! [`Wal`], so one fsync covers the appends of every shard of the node; openraft's `IOFlushed`
//! callback fires only after that fsync. The committed log id openraft saves is kept in memory
//! and written into the WAL by a later append's job, the first whose batch lays out (or follows
//! the purge of) the entry it names: it only saves re-learning the commit point after a restart
//! (a stale one is safe). openraft also needs appended entries to be
//! readable at once (replication reads them before they are durable), so every appended entry
//! also goes into an in-memory tail, which readers consult before the WAL.
//!
//! Invariants (held under the `mem` lock):
//! 1. Every entry in `[last_purged+1, last_log]` is in `tail` or has a `location` in the WAL.
//! 2. `tail` only loses an entry from its low end, and only one at or below `durable`, the
//!    highest index known durable since the last truncation; an entry's location is recorded
//!    when its batch is laid out, before that batch completes, so an entry missing from `tail`
//!    below its lowest index has a location.
//! 3. A truncation bumps `generation`; an append completing for an older generation does not
//!    raise `durable` (its entries may have been truncated and replaced).
//! 4. `locations` changes in the writer's order (the jobs' works run in submission order): an
//!    append records its entries' locations, a truncation drops those after it.

use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::ops::RangeBounds;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use openraft::LogState;
use openraft::RaftLogReader;
use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use txn::types::ShardId;

use crate::codec;
use crate::store::wal::Kind;
use crate::store::wal::Location;
use crate::store::wal::RecoveredLog;
use crate::store::wal::Wal;
use crate::store::wal::WalBatch;
use crate::store::wal::WalReader;
use crate::store::writer::Job;
use crate::store::writer::Writer;
use crate::types::Entry;
use crate::types::LogId;
use crate::types::TypeConfig;
use crate::types::Vote;

/// Entries kept in memory beyond those not yet durable (they serve followers that lag a little).
pub const LOG_TAIL_CACHED_ENTRIES: usize = 4096;
/// Bytes of (encoded) entries kept in memory beyond those not yet durable: with large values,
/// [`LOG_TAIL_CACHED_ENTRIES`] entries could otherwise hold gigabytes per shard.
pub const LOG_TAIL_CACHED_BYTES: usize = 64 << 20;
/// The most bytes of entries that one read for replication returns, unless its first entry
/// alone is larger: the size budget of one AppendEntries message. A follower that missed more
/// gets it in several messages, each far below the transport's message limit
/// (`client::connector::MESSAGE_BYTES_MAX`) and quick enough to travel and be made durable
/// within its deadline (`network`), and no message holds the node pair's shared stream long.
pub const APPEND_BYTES_MAX: usize = 8 << 20;

/// One shard's log store; clones share state (the log reader is a clone).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<ShardLog>,
}

struct ShardLog {
    shard: ShardId,
    writer: Writer<Wal>,
    reader: WalReader,
    mem: Mutex<LogMem>,
    /// The byte budget of a replication read ([`APPEND_BYTES_MAX`] but in the simulation).
    append_bytes_max: usize,
    /// One past the start of the last replication read that found its first entry purged (0:
    /// none since the last [`LogStore::take_purged_read`]; one past, because a read from
    /// index 0, the first entry of a new group, is a read like any other).
    purged_read: AtomicU64,
}

/// An entry of the in-memory tail, with its encoded size.
struct Cached {
    entry: Entry,
    bytes: usize,
}

#[derive(Default)]
struct LogMem {
    vote: Option<Vote>,
    last_purged: Option<LogId>,
    last_log: Option<LogId>,
    tail: BTreeMap<u64, Cached>,
    /// The sum of `tail`'s entries' sizes.
    tail_bytes: usize,
    locations: BTreeMap<u64, Location>,
    durable: u64,
    generation: u64,
    /// The newest committed log id saved, and whether the WAL still lacks it.
    committed: Option<LogId>,
    committed_unwritten: bool,
}

impl LogMem {
    /// Puts an appended entry in the tail.
    fn cache(&mut self, index: u64, cached: Cached) {
        self.tail_bytes += cached.bytes;
        if let Some(replaced) = self.tail.insert(index, cached) {
            self.tail_bytes -= replaced.bytes;
        }
    }

    /// Drops the tail's lowest entries, durable ones only, while it is over either limit.
    fn trim_tail(&mut self) {
        while self.tail.len() > LOG_TAIL_CACHED_ENTRIES || self.tail_bytes > LOG_TAIL_CACHED_BYTES {
            let Some((&lowest, _)) = self.tail.first_key_value() else { break };
            if lowest > self.durable {
                break;
            }
            let (_, dropped) = self.tail.pop_first().expect("a lowest entry");
            self.tail_bytes -= dropped.bytes;
        }
    }

    /// Drops the tail's entries from index `from` on (a truncation).
    fn drop_tail_from(&mut self, from: u64) {
        let dropped = self.tail.split_off(&from);
        self.tail_bytes -= dropped.values().map(|cached| cached.bytes).sum::<usize>();
    }

    /// Drops the tail's entries below index `from` (a purge).
    fn keep_tail_from(&mut self, from: u64) {
        self.tail = self.tail.split_off(&from);
        self.tail_bytes = self.tail.values().map(|cached| cached.bytes).sum();
    }

    /// The end of the longest run of `[start, end)` whose entries take at most `budget` bytes,
    /// but at least one entry: entries below the tail are sized by their WAL records, the
    /// tail's by their encoding. An entry the log does not have ends the count (the read then
    /// reports what it finds).
    fn prefix_end(&self, start: u64, end: u64, budget: usize) -> u64 {
        if start >= end {
            return end;
        }
        let cache_low = self.tail.keys().next().copied().unwrap_or(u64::MAX);
        let split = cache_low.clamp(start, end);
        let in_wal = self.locations.range(start..split).map(|(&index, at)| (index, at.bytes()));
        let in_tail = self.tail.range(split..end).map(|(&index, cached)| (index, cached.bytes));
        let mut bytes = 0usize;
        for (index, size) in in_wal.chain(in_tail) {
            bytes = bytes.saturating_add(size);
            if bytes > budget && index > start {
                return index;
            }
        }
        end
    }
}

impl LogStore {
    /// The shard's log as the WAL's replay left it.
    pub(crate) fn open(
        shard: ShardId,
        recovered: RecoveredLog,
        writer: Writer<Wal>,
        reader: WalReader,
        append_bytes_max: usize,
    ) -> LogStore {
        let durable = recovered.entries.last_key_value().map_or(0, |(&index, _)| index);
        let last_log = recovered.last_log.or(recovered.purged);
        // Never report a commit point past the log (written behind its entries, it cannot be;
        // checked again here because openraft would re-apply up to it at start-up).
        let committed =
            recovered.committed.filter(|c| last_log.is_some_and(|last| c.index <= last.index));
        let mem = LogMem {
            vote: recovered.vote,
            last_purged: recovered.purged,
            last_log,
            locations: recovered.entries,
            durable,
            committed,
            ..LogMem::default()
        };
        let mem = Mutex::new(mem);
        let purged_read = AtomicU64::new(0);
        let log = ShardLog { shard, writer, reader, mem, append_bytes_max, purged_read };
        LogStore { inner: Arc::new(log) }
    }

    /// The shard.
    pub fn shard(&self) -> ShardId {
        self.inner.shard
    }

    /// The id of the last entry in the log (or of the last purged one), durable or not.
    pub fn last_log_id(&self) -> Option<LogId> {
        self.mem().last_log
    }

    /// Whether every entry up to `index` is durable here (or purged: in a durable snapshot).
    pub fn durable_through(&self, index: u64) -> bool {
        let mem = self.mem();
        mem.durable >= index || mem.last_purged.is_some_and(|purged| purged.index >= index)
    }

    /// Whether the log holds the entry `log_id` now (in the tail, or in the WAL); false when
    /// unsure (purged, or unreadable).
    pub fn holds(&self, log_id: &LogId) -> bool {
        let location = {
            let mem = self.mem();
            if mem.last_purged.is_some_and(|purged| log_id.index <= purged.index) {
                return false;
            }
            if let Some(cached) = mem.tail.get(&log_id.index) {
                return cached.entry.log_id == *log_id;
            }
            match mem.locations.get(&log_id.index) {
                Some(location) => *location,
                None => return false,
            }
        };
        // Read outside the lock; an entry truncated meanwhile was in the log when asked.
        matches!(self.inner.reader.read(location), Ok(Some(entry)) if entry.log_id == *log_id)
    }

    /// True, once, if the last replication read that found its first entry purged started at
    /// `index`: the heartbeat openraft sends after such an empty read (`prev_log_id` just
    /// before `index`) should fail instead (`network::ShardPeer::append_entries`), so that
    /// openraft looks again at the follower's progress and sends a snapshot.
    pub fn take_purged_read(&self, index: u64) -> bool {
        self.inner
            .purged_read
            .compare_exchange(index.saturating_add(1), 0, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    fn mem(&self) -> std::sync::MutexGuard<'_, LogMem> {
        self.inner.mem.lock().expect("log memory lock")
    }

    /// Writes one record durably and waits for the sync; `then` runs in the writer's order.
    async fn write_record(
        &self,
        kind: Kind,
        index: u64,
        body: Vec<u8>,
        then: impl FnOnce(&mut LogMem) + Send + 'static,
    ) -> io::Result<()> {
        let (shard, store) = (self.inner.shard, self.clone());
        self.inner
            .writer
            .run(true, move |batch: &mut WalBatch| {
                batch.push(kind, shard, index, &body);
                then(&mut store.mem());
                Ok(())
            })
            .await
    }

    /// The entries of `[start, end)` that the WAL has, from the first one on, stopping at a gap
    /// or at an entry purged since its location was taken (its segment deleted by the writer
    /// meanwhile: segments go oldest first, so what was read before it is a whole prefix).
    /// Failing there instead would be a storage error, which stops the shard's Raft group and
    /// the node with it (found in review, 2026-12-05).
    fn read_durable(&self, start: u64, end: u64) -> io::Result<Vec<Entry>> {
        if start >= end {
            return Ok(Vec::new());
        }
        let locations: Vec<(u64, Location)> =
            self.mem().locations.range(start..end).map(|(&index, &at)| (index, at)).collect();
        let mut out = Vec::with_capacity(locations.len());
        let first = locations.first().map_or(start, |(index, _)| *index);
        for (expected, (index, at)) in (first..).zip(locations) {
            if index != expected {
                break;
            }
            match self.inner.reader.read(at)? {
                Some(entry) => out.push(entry),
                None => break,
            }
        }
        Ok(out)
    }
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
                mem.tail.range(cache_low..end).map(|(_, cached)| cached.entry.clone()).collect()
            } else {
                Vec::new()
            };
            (cached, cache_low)
        };
        let durable_end = end.min(cache_low);
        let mut entries = self.read_durable(start, durable_end)?;
        // A result is contiguous: the tail joins unless the WAL's part stopped short of it.
        let joins = entries.last().is_none_or(|last| last.log_id.index + 1 == durable_end);
        if joins {
            entries.extend(cached);
        }
        Ok(entries)
    }

    /// At most [`APPEND_BYTES_MAX`] bytes of entries (or the first entry alone): what
    /// replication sends in one AppendEntries. openraft asks for up to `max_payload_entries`
    /// entries, whatever their size.
    ///
    /// Nothing if the entry at `start` is gone (purged while a replication stream still meant to
    /// send from before the purge, as after a follower's log went back: a replaced disk). The
    /// entries after it would go out behind a `prev_log_id` they do not follow, a gap in the
    /// follower's log (openraft asserts against it in debug builds). openraft takes the empty
    /// answer as a heartbeat and reads the same range again; the stream would loop so for as
    /// long as it lives (chaos seed 98 with the backoff of 2026-12-05: a replica 700 entries
    /// behind for the whole settle phase). So the read is remembered, the heartbeat that
    /// follows fails ([`LogStore::take_purged_read`]), and openraft, looking at the follower's
    /// progress anew after the error, finds what it lacks purged and sends a snapshot.
    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> io::Result<Vec<Entry>> {
        let end = self.mem().prefix_end(start, end, self.inner.append_bytes_max);
        let entries = self.try_get_log_entries(start..end).await?;
        if entries.first().is_none_or(|first| first.log_id.index != start) {
            tracing::debug!(start, "entries purged under a replication read; nothing sent");
            self.inner.purged_read.store(start.saturating_add(1), Ordering::Relaxed);
            return Ok(Vec::new());
        }
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

    /// Records the committed log id with the next append (no wait, no sync of its own): it is
    /// durable with that append's sync. After a clean restart openraft re-applies the log up to
    /// it before serving. It is an optimisation, not a safety property: after a power loss it
    /// may be older than what the replica applied, and nothing depends on that: leader restore
    /// is disabled (a restarted replica leads only after an election and its blank entry,
    /// applied before it serves), and a follower's causal reads are bounded by the closed
    /// timestamp of the state it has. It is written after the entries it covers (the writer is
    /// FIFO, and an append writes it only behind entries already laid out), so it never points
    /// past the durable log. (Durable, it cost one fsync per committed batch: a second fsync per
    /// write on every replica.)
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        let mut mem = self.mem();
        mem.committed = committed;
        mem.committed_unwritten = true;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.mem().committed)
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.mem().vote = Some(*vote);
        self.write_record(Kind::Vote, 0, codec::encode(vote), |_| {}).await
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
                let bytes = codec::encode(&entry);
                mem.cache(log_id.index, Cached { entry, bytes: bytes.len() });
                encoded.push((log_id.index, bytes));
                mem.last_log = Some(log_id);
            }
            (mem.generation, encoded.last().map(|(index, _)| *index))
        };
        let Some(last_index) = last_index else {
            callback.io_completed(Ok(()));
            return Ok(());
        };
        let shard = self.inner.shard;
        let (laid_out, completed) = (self.clone(), self.clone());
        // Canary: acknowledge at once and leave the entries to be flushed "later" (by whatever
        // durable commit comes next): a crash loses acknowledged entries.
        let mut callback = Some(callback);
        let early = crate::canary::is(crate::canary::Canary::AckBeforeFsync);
        if early && let Some(callback) = callback.take() {
            callback.io_completed(Ok(()));
        }
        self.inner.writer.submit(Job {
            durable: !early,
            work: Box::new(move |batch: &mut WalBatch| {
                let mut mem = laid_out.mem();
                for (index, bytes) in &encoded {
                    let at = batch.push(Kind::Entry, shard, *index, bytes);
                    mem.locations.insert(*index, at);
                }
                // openraft saves a committed id once its entries are submitted, not flushed: write
                // it only behind entries laid out already (in this batch or an earlier one) or
                // purged in memory (a snapshot covers them); otherwise a later append writes it.
                // So it can be durable ahead of its entries only when such a purge is not yet
                // durable either; after a crash, `LogStore::open` drops a committed id past the
                // log's end, and openraft purges up to the applied id at startup.
                let highest = mem.locations.last_key_value().map(|(&index, _)| index);
                let covered = highest.max(mem.last_purged.map(|purged| purged.index));
                let behind = mem.committed.is_none_or(|c| covered.is_some_and(|i| c.index <= i));
                if mem.committed_unwritten && behind {
                    mem.committed_unwritten = false;
                    batch.push(Kind::Committed, shard, 0, &codec::encode(&mem.committed));
                }
                Ok(())
            }),
            done: Box::new(move |result| {
                if result.is_ok() {
                    let mut mem = completed.mem();
                    if mem.generation == generation && last_index > mem.durable {
                        mem.durable = last_index;
                    }
                    mem.trim_tail();
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
            mem.drop_tail_from(from);
            // Truncating after an index beyond the end changes nothing.
            if mem.last_log.is_some_and(|last| last.index >= from) {
                mem.last_log = last_log_id.or(mem.last_purged);
            }
            mem.generation += 1;
            mem.durable = mem.durable.min(from.saturating_sub(1));
        }
        self.write_record(Kind::Truncate, from, codec::encode(&last_log_id), move |mem| {
            mem.locations.split_off(&from);
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        {
            let mut mem = self.mem();
            mem.keep_tail_from(log_id.index + 1);
            mem.last_purged = Some(log_id);
            if mem.last_log.is_none_or(|last| last.index < log_id.index) {
                mem.last_log = Some(log_id);
            }
        }
        self.write_record(Kind::Purge, log_id.index, codec::encode(&log_id), move |mem| {
            mem.locations = mem.locations.split_off(&(log_id.index + 1));
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::disk::MemDir;
    use crate::store::sized_entry;
    use crate::store::wal::records_of;
    use crate::store::writer::Executor;

    /// Shard 0's log over an in-memory WAL of `segment_bytes` segments, whose writer commits
    /// at once; replication reads get `append_bytes_max`.
    fn memory_log(segment_bytes: u64, append_bytes_max: usize) -> (LogStore, Writer<Wal>) {
        let dir = Arc::new(MemDir::default());
        let (wal, reader, mut logs) = Wal::open_with(dir, segment_bytes).expect("open");
        let writer = Writer::start(wal, Executor::Task { sync_delay: Duration::ZERO }, "log", None);
        let recovered = logs.remove(&ShardId(0)).unwrap_or_default();
        let log = LogStore::open(ShardId(0), recovered, writer.clone(), reader, append_bytes_max);
        (log, writer)
    }

    /// openraft saves a committed id once its entries are submitted, not flushed. Here the
    /// writer has written entries 0..9 (and waits out its simulated fsync before syncing them)
    /// when entries 10..19 arrive with committed id 19: those form the next batch together,
    /// and the committed id must land behind entry 19 in the file, or a crash could keep it
    /// without them.
    #[tokio::test(flavor = "current_thread")]
    async fn the_committed_id_is_never_written_ahead_of_its_entries() {
        let dir = Arc::new(MemDir::default());
        let (wal, reader, mut logs) = Wal::open_with(dir.clone(), 1 << 20).expect("open");
        let fsync = Duration::from_millis(20);
        let writer = Writer::start(wal, Executor::Task { sync_delay: fsync }, "log", None);
        let recovered = logs.remove(&ShardId(0)).unwrap_or_default();
        let mut log =
            LogStore::open(ShardId(0), recovered, writer.clone(), reader, APPEND_BYTES_MAX);
        let entry = |index| openraft::testing::blank_ent::<TypeConfig>(1, 1, index);
        log.append((0..10).map(entry), IOFlushed::noop()).await.expect("append 0..9");
        // The writer task takes the first batch and starts its fsync.
        tokio::task::yield_now().await;
        log.append((10..20).map(entry), IOFlushed::noop()).await.expect("append 10..19");
        let committed = openraft::testing::log_id::<TypeConfig>(1, 1, 19);
        log.save_committed(Some(committed)).await.expect("save committed");
        writer.run(true, |_| Ok(())).await.expect("everything before is written");
        let mut highest = None;
        let mut written = 0;
        for (kind, _, index, body) in
            records_of(dir.file("00000000000000000001.wal").as_deref().expect("segment"))
        {
            match kind {
                Kind::Entry => highest = highest.max(Some(index)),
                Kind::Committed => {
                    let at: Option<LogId> = codec::decode(&body).expect("committed id");
                    let at = at.map(|id| id.index);
                    assert!(at <= highest, "committed {at:?} written behind only {highest:?}");
                    written += 1;
                }
                _ => {}
            }
        }
        assert_eq!(highest, Some(19));
        assert_eq!(written, 1, "the committed id is written once, behind entry 19");
    }

    /// A read for replication stops at `APPEND_BYTES_MAX` bytes, but returns at least one
    /// entry however large, from the WAL as from the in-memory tail; and the tail keeps at
    /// most `LOG_TAIL_CACHED_BYTES` of durable entries.
    #[tokio::test(flavor = "current_thread")]
    async fn replication_reads_and_the_tail_are_bounded_in_bytes() {
        let (mut log, writer) = memory_log(256 << 20, APPEND_BYTES_MAX);
        let third = APPEND_BYTES_MAX / 3 + 1;
        let entries = LOG_TAIL_CACHED_BYTES / third + 4;
        log.append((0..entries as u64).map(|i| sized_entry(i, third)), IOFlushed::noop())
            .await
            .expect("append");
        let big = entries as u64;
        log.append([sized_entry(big, APPEND_BYTES_MAX * 2)], IOFlushed::noop())
            .await
            .expect("append a big entry");
        writer.run(true, |_| Ok(())).await.expect("everything before is durable");
        {
            let mem = log.mem();
            assert!(mem.tail_bytes <= LOG_TAIL_CACHED_BYTES, "tail holds {}", mem.tail_bytes);
            let counted: usize = mem.tail.values().map(|cached| cached.bytes).sum();
            assert_eq!(mem.tail_bytes, counted);
            assert!(mem.tail.keys().next() > Some(&0), "the oldest entries left the tail");
        }
        let indexes =
            |entries: Vec<Entry>| entries.iter().map(|e| e.log_id.index).collect::<Vec<_>>();
        // From the WAL: two entries of a third of the budget fit, a third would pass it.
        assert_eq!(indexes(log.limited_get_log_entries(0, 10).await.expect("read")), vec![0, 1]);
        // From the tail likewise; the run stops at the big entry, which then goes alone.
        let last = big - 1;
        let from_tail = indexes(log.limited_get_log_entries(last, big + 1).await.expect("read"));
        assert_eq!(from_tail, vec![last]);
        let alone = indexes(log.limited_get_log_entries(big, big + 1).await.expect("read"));
        assert_eq!(alone, vec![big]);
        // Below the budget, the whole range.
        let all = indexes(log.limited_get_log_entries(3, 5).await.expect("read"));
        assert_eq!(all, vec![3, 4]);
    }

    /// A replication read whose first entry was purged answers nothing, and remembers where it
    /// started, once: the heartbeat that follows it (behind the entry before) is the one to
    /// fail, so that openraft sends a snapshot instead of reading the same range forever.
    #[tokio::test(flavor = "current_thread")]
    async fn a_read_of_purged_entries_answers_nothing_and_is_remembered_once() {
        let (mut log, _) = memory_log(1 << 20, APPEND_BYTES_MAX);
        let entry = |index| openraft::testing::blank_ent::<TypeConfig>(1, 1, index);
        log.append((0..20).map(entry), IOFlushed::noop()).await.expect("append");
        log.purge(openraft::testing::log_id::<TypeConfig>(1, 1, 9)).await.expect("purge");
        assert!(!log.take_purged_read(5), "nothing read yet");
        let read = log.limited_get_log_entries(5, 15).await.expect("read");
        assert!(read.is_empty(), "entries 10.. went out behind a purged 4: {}", read.len());
        assert!(!log.take_purged_read(6), "another start");
        assert!(log.take_purged_read(5), "the read from 5");
        assert!(!log.take_purged_read(5), "only once");
        // A read from the group's first entry (index 0) is remembered as well (0 meant "none"
        // before 2026-12-07, so a purge under a read from 0 left openraft reading it again).
        let read = log.limited_get_log_entries(0, 15).await.expect("read");
        assert!(read.is_empty(), "entries went out behind a purged 0: {}", read.len());
        assert!(log.take_purged_read(0), "the read from 0");
        assert!(!log.take_purged_read(0), "only once");
        let read = log.limited_get_log_entries(10, 15).await.expect("read");
        assert_eq!(read.len(), 5, "from the first kept entry on");
        assert!(!log.take_purged_read(10), "a whole read is not remembered");
    }

    /// A read that took an entry's location before a purge deleted its segment finds it gone:
    /// `None`, not an I/O error (which would stop the group, and the node).
    #[tokio::test(flavor = "current_thread")]
    async fn an_entry_whose_segment_a_purge_deleted_reads_as_purged() {
        let (mut log, writer) = memory_log(2048, 2048);
        // A batch stays in one segment: several batches, to fill several segments.
        for batch in 0..5 {
            let entries = (batch * 8..batch * 8 + 8).map(|i| sized_entry(i, 200));
            log.append(entries, IOFlushed::noop()).await.expect("append");
            writer.run(true, |_| Ok(())).await.expect("durable");
        }
        let first = *log.mem().locations.get(&0).expect("entry 0's location");
        assert_eq!(log.inner.reader.read(first).expect("read").map(|e| e.log_id.index), Some(0));
        log.purge(openraft::testing::log_id::<TypeConfig>(1, 1, 35)).await.expect("purge");
        writer.run(true, |_| Ok(())).await.expect("durable");
        assert!(log.inner.reader.read(first).expect("no I/O error").is_none(), "entry 0 read back");
    }
}
