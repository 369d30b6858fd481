//! The Raft log of every shard of a node: one append-only write-ahead log, as etcd's WAL and
//! TiKV's raft-engine are, instead of a B-tree.
//!
//! ```text
//!   DATA/wal/00000000000000000001.wal     segments, written in order, each closed once it
//!                                         reaches SEGMENT_BYTES (its last batch may pass it)
//!   DATA/wal/00000000000000000002.wal     the active segment: batches are appended to its end
//!
//!   segment = header | record* | zeros                (layout and format versions: `record`)
//!   record  = tag | len | crc32 | shard | index | body | tag
//!   kinds   = Entry (index, postcard Entry)        Truncate (first index dropped, Option<LogId>)
//!             Purge (last index purged, LogId)      Vote (Vote)      Committed (Option<LogId>)
//! ```
//!
//! A batch of the [`Writer`](crate::store::Writer) is one positioned write at the end of the
//! active segment and, if durable, one `fdatasync`: one sync covers the appends of every shard
//! (group commit), and costs what the disk's sync costs, not a B-tree's copy-on-write pages.
//!
//! Recovery replays every segment in order, applying each record to its shard as the log store
//! did when it wrote it (an entry after a truncation replaces the old one; a purge drops what it
//! covers), and remembers where each live entry is, so a read below the in-memory tail is one
//! positioned read. A record that is cut short or fails its crc ends the log. In any segment but the
//! last it is corruption, and the node refuses to start. In the last segment it may be a write
//! torn by a crash (never acknowledged, since acknowledgement waits for the sync), and the
//! segment is cut there, but only if it looks torn: a disk writes whole sectors, so a torn
//! record has a sector that reads as zeros (the segment's space is reserved as zeros), or is
//! cut short by the end of the file. A damaged record with every sector written is bit rot in
//! a record that was synced, perhaps acknowledged, perhaps a vote: the node refuses to start
//! rather than forget it (etcd's WAL draws the same line). The record format makes sure that no
//! one flipped bit makes a written sector look unwritten (`record`'s invariant).
//!
//! The writer publishes a [`WalPressure`] (segment count, and the shards whose unpurged entries
//! keep the oldest segment): the node's compaction loop makes those shards snapshot and purge
//! when the WAL grows past its budget.
//!
//! Invariants:
//! 1. Every segment but the active one was synced in full before the next one was created, so
//!    only the last segment can end in a torn record.
//! 2. A new segment starts with the newest Vote, Purge and Committed record of every shard (a
//!    checkpoint), so the segments before it matter only for their entries.
//! 3. Segments are deleted oldest first, and only when every entry in them is purged; so a
//!    truncation record in a deleted segment only ever touched entries that are gone too.
//!    The purge that allowed a deletion may sit in the active segment *after* entries that
//!    followed the deleted ones; so replay first finds each shard's last purge (its horizon)
//!    and skips every entry at or below it: what survives is decided by live segments only.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::sync::Mutex;

use openraft::entry::RaftEntry;
use txn::types::ShardId;

use crate::codec;
use crate::store::disk::LogDir;
use crate::store::disk::LogFile;
use crate::store::writer::Sink;
use crate::store::writer::Work;
use crate::types::Entry;
use crate::types::LogId;
use crate::types::Vote;

mod record;

use record::BadStart;
use record::Format;
pub use record::Kind;
pub use record::RECORD_BYTES_MAX;
use record::Record;
use record::SEGMENT_HEADER;

/// The directory of the WAL inside a node's data directory.
pub const WAL_DIR: &str = "wal";
/// A segment that has grown past this many bytes is closed and a new one started.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// A segment file longer than this is not one: a segment ends after the first batch that
/// crosses its size, and a batch stays far below this under the node's limits (its entries
/// carry at most one proposer batch or one command each, bounded by the transaction limits).
const SEGMENT_FILE_BYTES_MAX: u64 = 4 << 30;
/// Segment file names end with this.
pub const SEGMENT_SUFFIX: &str = ".wal";
/// Where a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    segment: u64,
    offset: u64,
    len: u32,
    format: Format,
}

impl Location {
    /// The record's size in bytes.
    pub fn bytes(&self) -> usize {
        self.len as usize
    }
}

/// A batch being written: records laid out after the end of the active segment.
pub struct WalBatch {
    segment: u64,
    base: u64,
    buf: Vec<u8>,
    /// Each record's kind, shard and index, with its body if the writer keeps it (a vote, a
    /// purge, a committed id: what a new segment's checkpoint repeats).
    records: Vec<(Kind, u32, u64, Vec<u8>)>,
}

impl WalBatch {
    fn new(segment: u64, base: u64) -> WalBatch {
        WalBatch { segment, base, buf: Vec::new(), records: Vec::new() }
    }

    /// Adds a record; returns where it will be.
    pub fn push(&mut self, kind: Kind, shard: ShardId, index: u64, body: &[u8]) -> Location {
        let start = self.buf.len();
        let len = Format::V2.push(&mut self.buf, kind, shard.0, index, body);
        let kept = match kind {
            Kind::Vote | Kind::Purge | Kind::Committed => body.to_vec(),
            Kind::Entry | Kind::Truncate => Vec::new(),
        };
        self.records.push((kind, shard.0, index, kept));
        Location {
            segment: self.segment,
            offset: self.base + start as u64,
            len: len as u32,
            format: Format::V2,
        }
    }
}

/// One shard's log as recovered from the WAL.
#[derive(Debug, Default)]
pub struct RecoveredLog {
    /// The vote.
    pub vote: Option<Vote>,
    /// The last purged log id.
    pub purged: Option<LogId>,
    /// The committed log id last saved.
    pub committed: Option<LogId>,
    /// The last log id (the last purged one if no entry is left).
    pub last_log: Option<LogId>,
    /// Where each live entry is.
    pub entries: BTreeMap<u64, Location>,
    /// The highest index any Purge record of the WAL purges: entries up to it are skipped.
    horizon: Option<u64>,
}

impl RecoveredLog {
    fn apply(&mut self, kind: Kind, index: u64, body: &[u8], at: Location) -> io::Result<()> {
        match kind {
            Kind::Entry => {
                if self.purged.is_some_and(|purged| index <= purged.index)
                    || self.horizon.is_some_and(|horizon| index <= horizon)
                {
                    return Ok(());
                }
                // The entries before this one may be in deleted segments if a later record
                // purges them: then the log resumes right after that purge.
                let resume = self.horizon.map_or(0, |horizon| horizon + 1);
                let expected = self.last_log.map_or(0, |last| last.index + 1).max(resume);
                if index > expected {
                    return Err(corrupt(format!(
                        "entry {index} follows entry {}",
                        expected as i64 - 1
                    )));
                }
                // The writer appends only the next index, and openraft truncates before it
                // writes an index again (a Truncate record): an entry at or below the last one
                // without it is damage (a segment lost from the middle, a misdirected write),
                // and taking it as a truncation would join two terms' logs (found by a review,
                // 2026-12-08).
                if index < expected {
                    return Err(corrupt(format!(
                        "entry {index} follows entry {} with no truncation between them",
                        expected - 1
                    )));
                }
                let entry: Entry = codec::decode(body)?;
                if entry.log_id().index != index {
                    return Err(corrupt(format!("entry {} stored as {index}", entry.log_id())));
                }
                debug_assert!(
                    self.entries.range(index..).next().is_none(),
                    "nothing at or past it"
                );
                self.entries.insert(index, at);
                self.last_log = Some(entry.log_id());
            }
            Kind::Truncate => {
                let after: Option<LogId> = codec::decode(body)?;
                self.entries.split_off(&index);
                if self.last_log.is_some_and(|last| last.index >= index) {
                    self.last_log = after.or(self.purged);
                }
            }
            Kind::Purge => {
                let upto: LogId = codec::decode(body)?;
                if self.purged.is_some_and(|purged| purged.index >= upto.index) {
                    return Ok(());
                }
                self.entries = self.entries.split_off(&(upto.index + 1));
                self.purged = Some(upto);
                if self.last_log.is_none_or(|last| last.index < upto.index) {
                    self.last_log = Some(upto);
                }
            }
            Kind::Vote => self.vote = Some(codec::decode(body)?),
            Kind::Committed => self.committed = codec::decode(body)?,
        }
        Ok(())
    }
}

fn corrupt(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("the Raft log is corrupt: {what}"))
}

/// Damage to records that were written whole (bit rot), as told apart from torn writes: the
/// node's data cannot be trusted. Other `InvalidData` errors of the log (a record of another
/// format version, a replay that does not add up) are not this: they would hit every node
/// alike, and an empty data directory is no remedy for them.
#[derive(Debug, thiserror::Error)]
#[error("the Raft log is damaged: {0}")]
pub struct Damaged(String);

fn damaged(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Damaged(what))
}

/// Refuses a log directory with no segment at all when the node's `open_gates` (shards whose
/// vote gate is open) say it has taken part in votes: every start creates a segment, durably,
/// before any vote, so none means the log was lost (its files deleted, a mount that came up
/// empty) while the node's identity survived. Started anyway, it would come back with no vote
/// and none of the entries it acknowledged, free to vote twice in a term and to elect a leader
/// that lacks them (a review found this unguarded, 2026-12-05). [`Damaged`]: the remedy is a
/// lost disk's.
pub fn check_not_lost(dir: &dyn LogDir, open_gates: &[u32]) -> io::Result<()> {
    if open_gates.is_empty() {
        return Ok(());
    }
    let segments = dir.list()?.iter().filter(|name| name.ends_with(SEGMENT_SUFFIX)).count();
    if segments > 0 {
        return Ok(());
    }
    Err(damaged(format!(
        "the Raft log is gone: its directory holds no segment, yet this node has taken part in \
         the votes of shards {open_gates:?}"
    )))
}

/// Whether `error` is [`Damaged`].
pub fn is_damage(error: &io::Error) -> bool {
    error.get_ref().is_some_and(|inner| inner.is::<Damaged>())
}

/// The open segments, shared by the writer and the readers.
type Segments = Arc<Mutex<BTreeMap<u64, Arc<dyn LogFile>>>>;

/// Reads entries back from the WAL; cheap to clone.
#[derive(Clone)]
pub struct WalReader {
    segments: Segments,
}

impl WalReader {
    /// The entry at `at`; `None` if its segment is gone: the entry was purged since its
    /// location was taken (a reader takes locations under the log's lock and reads after
    /// releasing it, while the writer thread may delete purged segments).
    pub fn read(&self, at: Location) -> io::Result<Option<Entry>> {
        let file = self.segments.lock().expect("segments lock").get(&at.segment).cloned();
        let Some(file) = file else { return Ok(None) };
        let mut record = vec![0; at.len as usize];
        file.read_at(at.offset, &mut record)?;
        match at.format.parse_in_place(&mut record) {
            Some(plain) if plain.kind == Kind::Entry => {
                codec::decode(&record[plain.body]).map(Some)
            }
            _ => Err(corrupt(format!("no entry at segment {} offset {}", at.segment, at.offset))),
        }
    }
}

/// The whole of a segment file.
fn read_whole(file: &dyn LogFile) -> io::Result<Vec<u8>> {
    let size = file.size()?;
    if size > SEGMENT_FILE_BYTES_MAX {
        return Err(corrupt(format!("a segment of {size} bytes")));
    }
    let mut bytes = vec![0; size as usize];
    file.read_at(0, &mut bytes)?;
    Ok(bytes)
}

fn segment_name(id: u64) -> String {
    format!("{id:020}{SEGMENT_SUFFIX}")
}

/// How much the WAL holds, and which shards keep its oldest segment (for the node's compaction
/// loop: a shard that appends little snapshots rarely, and until it purges, every segment since
/// its oldest live entry stays, whatever the other shards purged).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalPressure {
    /// Segment files, the active one included.
    pub segments: usize,
    /// The shards with unpurged entries in the oldest closed segment.
    pub pinning: Vec<ShardId>,
}

/// What the writer keeps about a closed or active segment, to know when it can go.
#[derive(Default)]
struct SegmentInfo {
    /// The highest entry index written to it, per shard.
    max_index: BTreeMap<u32, u64>,
}

/// The newest Vote, Purge and Committed record body of each shard, with its index.
type Latest = BTreeMap<(u32, Kind), (u64, Vec<u8>)>;

impl SegmentInfo {
    /// Takes note of a record written to (or replayed from) this segment: an entry raises the
    /// shard's highest index here, a vote, purge or committed id becomes the shard's newest.
    fn note(&mut self, latest: &mut Latest, kind: Kind, shard: u32, index: u64, body: Cow<[u8]>) {
        match kind {
            Kind::Entry => {
                let max = self.max_index.entry(shard).or_default();
                *max = (*max).max(index);
            }
            Kind::Vote | Kind::Purge | Kind::Committed => {
                latest.insert((shard, kind), (index, body.into_owned()));
            }
            Kind::Truncate => {}
        }
    }
}

/// The WAL as the log writer's [`Sink`].
pub struct Wal {
    dir: Arc<dyn LogDir>,
    segments: Segments,
    info: BTreeMap<u64, SegmentInfo>,
    active: u64,
    active_file: Arc<dyn LogFile>,
    active_len: u64,
    /// The newest Vote, Purge and Committed record body of each shard (with its index).
    latest: Latest,
    /// Bytes written and not yet synced.
    unsynced: bool,
    /// The active segment is closed once it has this many bytes.
    segment_bytes: u64,
    /// Published after every rotation and purge.
    pressure: Arc<Mutex<WalPressure>>,
    /// A batch written by [`Sink::write`] and not yet synced by [`Sink::sync`], and whether
    /// its write rotated the segment.
    written: Option<(WalBatch, bool)>,
}

impl Wal {
    /// Replays the WAL in `dir` and starts a new segment for what comes next.
    pub fn open(
        dir: Arc<dyn LogDir>,
    ) -> io::Result<(Wal, WalReader, BTreeMap<ShardId, RecoveredLog>)> {
        Wal::open_with(dir, SEGMENT_BYTES)
    }

    /// [`Wal::open`] with segments of `segment_bytes` (tests use small ones).
    pub fn open_with(
        dir: Arc<dyn LogDir>,
        segment_bytes: u64,
    ) -> io::Result<(Wal, WalReader, BTreeMap<ShardId, RecoveredLog>)> {
        let mut ids: Vec<u64> = dir
            .list()?
            .iter()
            .filter_map(|name| name.strip_suffix(SEGMENT_SUFFIX)?.parse().ok())
            .collect();
        ids.sort_unstable();
        // First pass: read each segment (one at a time: memory is one segment), cut a torn
        // tail, find each shard's last purge.
        let mut logs: BTreeMap<ShardId, RecoveredLog> = BTreeMap::new();
        let mut files = BTreeMap::new();
        // The torn tail to cut from the last segment, once the whole log has replayed.
        let mut cut = None;
        for (position, &id) in ids.iter().enumerate() {
            let file = dir.open(&segment_name(id))?;
            // Read from the disk, not from pages a failed fsync left cached (disk::drop_cached_pages).
            file.drop_cached();
            let bytes = read_whole(file.as_ref())?;
            let (format, start) = record::segment_format(&bytes).map_err(|bad| match bad {
                BadStart::Damaged(why) => damaged(format!("segment {id} cannot be read: {why}")),
                // Not damage: every node of a cluster rolled back to this build would say it.
                BadStart::Unknown(version) => corrupt(format!(
                    "segment {id} is of WAL format {version}, which a later build wrote; this \
                     build reads formats 1 and 2"
                )),
            })?;
            let mut offset = start;
            while let Some(record) = format.parse(&bytes[offset..]) {
                if record.kind == Kind::Purge {
                    let horizon = &mut logs.entry(ShardId(record.shard)).or_default().horizon;
                    *horizon = (*horizon).max(Some(record.index));
                }
                offset += record.len;
            }
            let last = position + 1 == ids.len();
            if offset < bytes.len() {
                if !last {
                    return Err(damaged(format!(
                        "segment {id} has a bad record at offset {offset} and is not the last"
                    )));
                }
                // The active segment's unused space reads as zeros; anything else is a write
                // torn by a crash, or damage.
                let torn = bytes[offset..].iter().any(|&byte| byte != 0);
                if torn && !format.may_be_torn(&bytes, offset) {
                    return Err(damaged(format!(
                        "segment {id} has a damaged record at offset {offset}: every sector \
                         of it was written, so no crash tore it"
                    )));
                }
                cut = Some((id, offset, torn));
            }
            files.insert(id, (file, format, start, offset));
        }
        // Second pass: apply every record in order, up to each segment's valid end.
        let mut latest = BTreeMap::new();
        let mut info = BTreeMap::new();
        for (&id, &(ref file, format, start, end)) in &files {
            let bytes = read_whole(file.as_ref())?;
            let bytes = &bytes[..end];
            let mut segment = SegmentInfo::default();
            let mut offset = start;
            while let Some(record) = format.parse(&bytes[offset..]) {
                let Record { kind, shard, index, len, .. } = record;
                let body = record.body();
                let at = Location { segment: id, offset: offset as u64, len: len as u32, format };
                logs.entry(ShardId(shard))
                    .or_default()
                    .apply(kind, index, &body, at)
                    .map_err(|error| corrupt(format!("segment {id} offset {offset}: {error}")))?;
                segment.note(&mut latest, kind, shard, index, body);
                offset += len;
            }
            info.insert(id, segment);
        }
        // Only a log that replayed whole is cut: one refused above keeps every byte for the
        // operator (a review, 2026-12-07: the cut came first, so the next start found a log
        // that looked clean).
        if let Some((id, offset, torn)) = cut {
            if torn {
                tracing::warn!(segment = id, offset, "cutting a torn write at the end of the log");
            }
            files[&id].0.set_len(offset as u64)?;
        }
        if let Some((file, ..)) = files.values().next_back() {
            // What a killed process wrote without syncing is in the page cache and replays
            // as if durable: sync it before anything relies on it.
            file.sync_data()?;
        }
        let files: BTreeMap<u64, Arc<dyn LogFile>> =
            files.into_iter().map(|(id, (file, ..))| (id, file)).collect();
        let segments: Segments = Arc::new(Mutex::new(files));
        let next = ids.last().map_or(1, |last| last + 1);
        let active_file = dir.open(&segment_name(next))?;
        let mut wal = Wal {
            dir,
            segments: segments.clone(),
            info,
            active: next,
            active_file: active_file.clone(),
            active_len: 0,
            latest,
            unsynced: false,
            segment_bytes,
            pressure: Arc::new(Mutex::new(WalPressure::default())),
            written: None,
        };
        wal.start_segment(next, active_file)?;
        wal.publish();
        Ok((wal, WalReader { segments }, logs))
    }

    /// Makes `file` (empty, segment `id`) the active segment: reserves its space and writes the
    /// checkpoint into it.
    fn start_segment(&mut self, id: u64, file: Arc<dyn LogFile>) -> io::Result<()> {
        file.set_len(0)?;
        file.allocate(self.segment_bytes)?;
        let mut checkpoint = WalBatch::new(id, 0);
        checkpoint.buf.extend_from_slice(&SEGMENT_HEADER);
        for ((shard, kind), (index, body)) in &self.latest {
            checkpoint.push(*kind, ShardId(*shard), *index, body);
        }
        file.write_at(0, &checkpoint.buf)?;
        file.sync_data()?;
        self.segments.lock().expect("segments lock").insert(id, file.clone());
        self.info.insert(id, SegmentInfo::default());
        self.active = id;
        self.active_file = file;
        self.active_len = checkpoint.buf.len() as u64;
        self.unsynced = false;
        Ok(())
    }

    /// Closes the active segment (cut to what was written, synced in full: invariant 1) and
    /// starts the next.
    fn rotate(&mut self) -> io::Result<()> {
        self.active_file.set_len(self.active_len)?;
        self.active_file.sync_data()?;
        let next = self.active + 1;
        tracing::debug!(segment = next, "starting a WAL segment");
        let file = self.dir.open(&segment_name(next))?;
        self.start_segment(next, file)
    }

    /// What the node's compaction loop reads.
    pub fn pressure(&self) -> Arc<Mutex<WalPressure>> {
        self.pressure.clone()
    }

    fn purged_index(&self, shard: u32) -> Option<u64> {
        self.latest.get(&(shard, Kind::Purge)).map(|(index, _)| *index)
    }

    fn publish(&self) {
        let oldest = self.info.iter().find(|(id, _)| **id != self.active);
        let pinning = oldest
            .map(|(_, segment)| {
                segment
                    .max_index
                    .iter()
                    .filter(|(shard, max)| self.purged_index(**shard) < Some(**max))
                    .map(|(shard, _)| ShardId(*shard))
                    .collect()
            })
            .unwrap_or_default();
        let pressure = WalPressure { segments: self.info.len(), pinning };
        *self.pressure.lock().expect("pressure lock") = pressure;
    }

    /// Deletes the oldest segments while every entry in them is purged (invariant 3).
    fn delete_purged(&mut self) {
        let purged = |shard: u32| self.latest.get(&(shard, Kind::Purge)).map(|(index, _)| *index);
        let mut doomed = Vec::new();
        for (&id, segment) in &self.info {
            let gone = id != self.active
                && segment.max_index.iter().all(|(&shard, &max)| purged(shard) >= Some(max));
            if !gone {
                break;
            }
            doomed.push(id);
        }
        for id in doomed {
            self.info.remove(&id);
            self.segments.lock().expect("segments lock").remove(&id);
            match self.dir.remove(&segment_name(id)) {
                Ok(()) => tracing::debug!(segment = id, "deleted a purged WAL segment"),
                Err(error) => {
                    tracing::warn!(segment = id, %error, "could not delete a purged WAL segment")
                }
            }
        }
    }
}

impl Sink for Wal {
    type Batch = WalBatch;
    type Error = io::Error;

    const SPLITS: bool = true;

    fn commit(&mut self, durable: bool, works: Vec<Work<Self>>) -> io::Result<()> {
        self.write(durable, works)?;
        self.sync(durable)
    }

    fn write(&mut self, _durable: bool, works: Vec<Work<Self>>) -> io::Result<()> {
        // One batch between a write and its sync: a rotation, which carries the newest
        // records into the next segment, must not miss the records of one not noted yet.
        assert!(self.written.is_none(), "a WAL batch written before the last one was synced");
        // (A batch that crosses the end grows the file past its reserved space.)
        let rotated = self.active_len >= self.segment_bytes;
        if rotated {
            self.rotate()?;
        }
        let mut batch = WalBatch::new(self.active, self.active_len);
        for work in works {
            work(&mut batch)?;
        }
        if !batch.buf.is_empty() {
            let end = self.active_len + batch.buf.len() as u64;
            if end > self.segment_bytes {
                // Reserved too, so that a crash tearing this write leaves zeros where it did
                // not write, as inside the reserved space (what tells a tear from damage).
                self.active_file.allocate(end)?;
            }
            self.active_file.write_at(self.active_len, &batch.buf)?;
            self.active_len += batch.buf.len() as u64;
            self.unsynced = true;
        }
        self.written = Some((batch, rotated));
        Ok(())
    }

    fn sync(&mut self, durable: bool) -> io::Result<()> {
        let (batch, rotated) = self.written.take().expect("a WAL batch written before its sync");
        if durable && self.unsynced {
            self.active_file.sync_data()?;
            self.unsynced = false;
        }
        let mut purged = false;
        let segment = self.info.entry(batch.segment).or_default();
        for (kind, shard, index, body) in batch.records {
            purged |= kind == Kind::Purge;
            segment.note(&mut self.latest, kind, shard, index, Cow::Owned(body));
        }
        if purged {
            self.delete_purged();
        }
        if purged || rotated {
            self.publish();
        }
        Ok(())
    }
}

/// Every whole record of a segment file in order: kind, shard, index, body (tests).
#[cfg(test)]
pub(crate) fn records_of(file: &dyn LogFile) -> Vec<(Kind, u32, u64, Vec<u8>)> {
    let bytes = read_whole(file).expect("segment");
    let (format, mut offset) = record::segment_format(&bytes).expect("a segment's start");
    let mut out = Vec::new();
    while let Some(record) = format.parse(&bytes[offset..]) {
        out.push((record.kind, record.shard, record.index, record.body().into_owned()));
        offset += record.len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::disk::MemDir;
    use crate::store::filled_entry;
    use crate::store::sized_entry;
    use record::HEADER_BYTES;
    use record::SECTOR_BYTES;

    /// The bytes of a format 2 record with a body of `body_bytes`.
    fn record_len(body_bytes: usize) -> usize {
        HEADER_BYTES + body_bytes + 1
    }

    #[test]
    fn a_torn_tail_is_cut_and_a_bad_older_segment_is_refused() {
        let dir = Arc::new(MemDir::default());
        let vote = |term| codec::encode(&Vote::new(term, 1));
        {
            let (mut wal, _, _) = Wal::open_with(dir.clone(), 4096).expect("open");
            let works: Vec<Work<Wal>> = vec![Box::new(move |batch: &mut WalBatch| {
                batch.push(Kind::Vote, ShardId(0), 0, &vote(5));
                Ok(())
            })];
            wal.commit(true, works).expect("commit");
        }
        let segment = dir.file(&segment_name(1)).expect("segment 1");
        assert_eq!(segment.size().expect("len"), 4096, "the segment's space is reserved");
        let header = SEGMENT_HEADER.len() as u64;
        segment.set_len(header + HEADER_BYTES as u64 + 2).expect("tear the vote record");
        let (_, _, logs) = Wal::open_with(dir.clone(), 4096).expect("a torn tail is cut");
        assert_eq!(logs.get(&ShardId(0)).and_then(|log| log.vote), None, "the torn vote is gone");
        assert_eq!(segment.size().expect("len"), header, "cut back to the last whole record");
        // Segment 1 is now followed by segment 2: damage in it is corruption, not a torn tail.
        segment.write_at(header, &[0xff; HEADER_BYTES]).expect("damage");
        let error = Wal::open_with(dir.clone(), 4096).err().expect("refused");
        assert!(error.to_string().contains("not the last"), "{error}");
    }

    #[test]
    fn a_log_refused_at_replay_keeps_its_torn_tail() {
        // Entry 0, then entry 5 (entries 1-4 missing: corruption the replay refuses), then
        // half of one more record: a tail that looks torn.
        let mut batch = WalBatch::new(1, 0);
        batch.buf.extend_from_slice(&SEGMENT_HEADER);
        batch.push(Kind::Entry, ShardId(0), 0, &codec::encode(&sized_entry(0, 10)));
        batch.push(Kind::Entry, ShardId(0), 5, &codec::encode(&sized_entry(5, 10)));
        let whole = batch.buf.len();
        batch.push(Kind::Entry, ShardId(0), 6, &codec::encode(&sized_entry(6, 10)));
        let torn = whole + HEADER_BYTES + 2;
        let dir = dir_with_segment(&batch.buf[..torn]);
        let error = Wal::open_with(dir.clone(), 4096).err().expect("refused");
        assert!(error.to_string().contains("entry 5 follows entry 0"), "{error}");
        let segment = dir.file(&segment_name(1)).expect("segment 1");
        assert_eq!(segment.size().expect("len"), torn as u64, "nothing cut from a refused log");
    }

    #[test]
    fn an_entry_written_again_without_a_truncation_is_refused() {
        // Entries 0 and 1, then entry 1 again with no Truncate record before it: what a
        // segment missing from the middle (holding the truncation) would leave.
        let mut batch = WalBatch::new(1, 0);
        batch.buf.extend_from_slice(&SEGMENT_HEADER);
        batch.push(Kind::Entry, ShardId(0), 0, &codec::encode(&sized_entry(0, 10)));
        batch.push(Kind::Entry, ShardId(0), 1, &codec::encode(&sized_entry(1, 10)));
        batch.push(Kind::Entry, ShardId(0), 1, &codec::encode(&sized_entry(1, 10)));
        let error = Wal::open_with(dir_with_segment(&batch.buf), 4096).err().expect("refused");
        assert!(
            error.to_string().contains("entry 1 follows entry 1 with no truncation"),
            "{error}"
        );
        // With the truncation, the same entries replay.
        let mut batch = WalBatch::new(1, 0);
        batch.buf.extend_from_slice(&SEGMENT_HEADER);
        batch.push(Kind::Entry, ShardId(0), 0, &codec::encode(&sized_entry(0, 10)));
        batch.push(Kind::Entry, ShardId(0), 1, &codec::encode(&sized_entry(1, 10)));
        let after: Option<LogId> = Some(sized_entry(0, 10).log_id());
        batch.push(Kind::Truncate, ShardId(0), 1, &codec::encode(&after));
        batch.push(Kind::Entry, ShardId(0), 1, &codec::encode(&sized_entry(1, 10)));
        let (_, _, logs) = Wal::open_with(dir_with_segment(&batch.buf), 4096).expect("replays");
        assert_eq!(logs[&ShardId(0)].entries.len(), 2);
    }

    /// Segment 1 of a fresh directory holding `bytes` (a crash left it as the last segment).
    fn dir_with_segment(bytes: &[u8]) -> Arc<MemDir> {
        let dir = Arc::new(MemDir::default());
        let file = dir.open(&segment_name(1)).expect("create");
        file.write_at(0, bytes).expect("write");
        dir
    }

    /// The records of `layout` (shard, index or `u64::MAX` for a committed id, body) written
    /// as two durable batches to a fresh WAL; its first segment's bytes, and where each record
    /// ends (the header's end first).
    fn written(layout: &[(u32, u64, Vec<u8>)], split: usize) -> (Vec<u8>, Vec<usize>) {
        let dir = Arc::new(MemDir::default());
        {
            let (mut wal, _, _) = Wal::open_with(dir.clone(), 8192).expect("open");
            for (from, to) in [(0, split), (split, layout.len())] {
                let records = layout[from..to].to_vec();
                let works: Vec<Work<Wal>> = vec![Box::new(move |batch: &mut WalBatch| {
                    for (shard, index, body) in records {
                        let (kind, index) = match index {
                            u64::MAX => (Kind::Committed, 0),
                            index => (Kind::Entry, index),
                        };
                        batch.push(kind, ShardId(shard), index, &body);
                    }
                    Ok(())
                })];
                wal.commit(true, works).expect("commit");
            }
        }
        let segment = read_whole(dir.file(&segment_name(1)).expect("segment 1").as_ref());
        let segment = segment.expect("read");
        let mut ends = vec![SEGMENT_HEADER.len()];
        while let Some(record) = Format::V2.parse(&segment[*ends.last().expect("an end")..]) {
            ends.push(ends.last().expect("an end") + record.len);
        }
        assert_eq!(ends.len(), 1 + layout.len(), "every record parses");
        (segment, ends)
    }

    #[test]
    fn damage_in_the_last_segment_is_refused_unless_a_crash_could_have_torn_it() {
        // Entries that span sectors, one whose value is 1,100 zero bytes (whole sectors of
        // zeros but for the scrambling), a committed id that ends in a zero byte (`None`), and
        // a last entry padded so that only its last byte is in the last sector (with format 1,
        // one flip there read as a tear: chaos seed 349). Then the reserved zeros.
        let entry = |index: u64, bytes: usize| codec::encode(&sized_entry(index, bytes));
        let none = codec::encode(&None::<LogId>);
        assert_eq!(none.last(), Some(&0), "a committed id of None ends in a zero byte");
        let mut layout = vec![(0, 0, entry(0, 40)), (0, 1, entry(1, 700)), (0, 2, entry(2, 90))];
        layout.extend([(1, 0, entry(0, 1300)), (1, 1, entry(1, 5))]);
        layout.push((1, 2, codec::encode(&filled_entry(2, 1100, 0))));
        layout.push((1, u64::MAX, none));
        let so_far: usize = SEGMENT_HEADER.len()
            + layout.iter().map(|(.., body)| record_len(body.len())).sum::<usize>();
        let pad = (0..2000)
            .map(|bytes| entry(3, bytes))
            .find(|pad| (so_far + record_len(pad.len())) % SECTOR_BYTES == 1)
            .expect("a last entry whose last byte is alone in its sector");
        layout.push((1, 3, pad));
        let (segment, ends) = written(&layout, 3);
        let (last_start, end) = (ends[ends.len() - 2], *ends.last().expect("an end"));
        assert_eq!(end % SECTOR_BYTES, 1, "the last record's last byte is alone in its sector");
        assert!(segment[end..].iter().all(|&byte| byte == 0), "reserved space reads as zeros");

        // Any one flipped bit in a synced record or the segment's header, a record's length
        // field included, is refused.
        for at in 0..end {
            for bit in 0..8 {
                let mut damaged = segment.clone();
                damaged[at] ^= 1 << bit;
                let error = Wal::open_with(dir_with_segment(&damaged), 8192).err();
                let error = error.unwrap_or_else(|| panic!("bit {bit} at {at} went unnoticed"));
                assert!(is_damage(&error), "at {at}: damage is told apart: {error}");
                let what = if at < SEGMENT_HEADER.len() { "header" } else { "damaged record" };
                assert!(error.to_string().contains(what), "at {at}: {error}");
            }
        }

        // A crash that wrote some sectors of the last batch and not others cuts its records.
        let first_unwritten = last_start.next_multiple_of(SECTOR_BYTES);
        assert!(first_unwritten < end, "the last record spans sectors");
        let mut torn = segment.clone();
        torn[first_unwritten..first_unwritten + SECTOR_BYTES].fill(0);
        let dir = dir_with_segment(&torn);
        let (_, _, logs) = Wal::open_with(dir.clone(), 8192).expect("a tear is cut");
        let last = logs[&ShardId(1)].last_log.map(|id| id.index);
        assert_eq!(last, Some(2), "shard 1's last entry was torn");
        let kept = records_of(dir.file(&segment_name(1)).expect("segment 1").as_ref());
        assert_eq!(kept.len(), ends.len() - 2, "every record but the torn one is kept");
        // So does one whose file ends inside the last record (no space was reserved).
        let dir = dir_with_segment(&segment[..end - 3]);
        Wal::open_with(dir.clone(), 8192).expect("a record cut short is cut");
        let kept = records_of(dir.file(&segment_name(1)).expect("segment 1").as_ref());
        assert_eq!(kept.len(), ends.len() - 2);
        // And a segment whose header never reached the disk (a crash as it was started).
        let mut unstarted = segment.clone();
        unstarted[..SECTOR_BYTES].fill(0);
        let dir = dir_with_segment(&unstarted);
        let (_, _, logs) = Wal::open_with(dir.clone(), 8192).expect("an unstarted segment is cut");
        assert!(logs.is_empty(), "nothing of it replays");
        assert_eq!(dir.file(&segment_name(1)).expect("segment 1").size().expect("size"), 0);
    }

    /// A segment of a later build's format is refused, and not as damage: every node of a
    /// cluster rolled back would say the same, and moving its data aside is no remedy.
    #[test]
    fn a_segment_of_a_later_format_is_refused_as_not_damage() {
        let mut later = SEGMENT_HEADER.to_vec();
        later[7] = 0x05;
        later.extend_from_slice(&[0xab; 100]);
        let error = Wal::open_with(dir_with_segment(&later), 8192).err().expect("refused");
        assert!(error.to_string().contains("WAL format 5"), "{error}");
        assert!(!is_damage(&error), "{error}");
    }

    /// A data directory of a build before format 2: its segments replay, entries in them read
    /// back, a torn tail in its last segment is cut by format 1's rules, and the segment the
    /// node starts next is format 2.
    #[test]
    fn segments_of_format_1_replay_beside_format_2() {
        let mut old = Vec::new();
        let entry = |index: u64| codec::encode(&sized_entry(index, 300));
        for index in 0..4 {
            Format::V1.push(&mut old, Kind::Entry, 0, index, &entry(index));
        }
        Format::V1.push(&mut old, Kind::Vote, 0, 0, &codec::encode(&Vote::new(3, 1)));
        let whole = old.len();
        Format::V1.push(&mut old, Kind::Entry, 0, 4, &entry(4));
        let torn = &old[..whole + HEADER_BYTES + 5];
        let dir = dir_with_segment(torn);
        let check = |dir: Arc<MemDir>, last: u64| {
            let (wal, reader, logs) = Wal::open_with(dir, 8192).expect("replays");
            let log = &logs[&ShardId(0)];
            assert_eq!(log.vote.map(|vote| vote.leader_id().term), Some(3));
            assert_eq!(log.last_log.map(|id| id.index), Some(last));
            for (&index, &at) in &log.entries {
                let read = reader.read(at).expect("read").expect("kept");
                assert_eq!(read.log_id().index, index);
            }
            wal
        };
        let mut wal = check(dir.clone(), 3);
        assert_eq!(dir.file(&segment_name(1)).expect("1").size().expect("size"), whole as u64);
        let works: Vec<Work<Wal>> = vec![Box::new(move |batch: &mut WalBatch| {
            batch.push(Kind::Entry, ShardId(0), 4, &entry(4));
            Ok(())
        })];
        wal.commit(true, works).expect("commit");
        drop(wal);
        let next = read_whole(dir.file(&segment_name(2)).expect("2").as_ref()).expect("read");
        assert_eq!(record::segment_format(&next), Ok((Format::V2, SEGMENT_HEADER.len())));
        check(dir, 4);
    }

    /// What the log store would hold for one shard, kept by hand.
    #[derive(Default)]
    struct Model {
        vote: Option<u64>,
        purged: Option<u64>,
        last: Option<(u64, u64)>,
        entries: BTreeMap<u64, u64>,
    }

    fn log_id(term: u64, index: u64) -> LogId {
        openraft::testing::log_id::<crate::types::TypeConfig>(term, 1, index)
    }

    /// Random appends, truncations, purges and votes on two shards, with tiny segments and a
    /// reopen every few steps: replay always gives back what was written, and purged segments
    /// are deleted.
    #[test]
    fn replay_matches_a_model_through_rotations_and_deletions() {
        let dir = Arc::new(MemDir::default());
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound.max(1)
        };
        let mut models = [Model::default(), Model::default()];
        let (mut wal, _, _) = Wal::open_with(dir.clone(), 2048).expect("open");
        let mut term = 1;
        for step in 0..3000 {
            let shard = next(2) as usize;
            let model = &mut models[shard];
            let id = ShardId(shard as u32);
            let mut batch: Vec<(Kind, u64, Vec<u8>)> = Vec::new();
            match next(10) {
                0..=5 => {
                    for _ in 0..=next(4) {
                        let index = model.last.map_or(0, |(_, index)| index + 1);
                        let entry: Entry = openraft::testing::blank_ent::<crate::types::TypeConfig>(
                            term, 1, index,
                        );
                        batch.push((Kind::Entry, index, codec::encode(&entry)));
                        model.entries.insert(index, term);
                        model.last = Some((term, index));
                    }
                }
                6 => {
                    let low = model.purged.map_or(0, |p| p + 1);
                    let high = model.last.map_or(0, |(_, index)| index + 1);
                    let from = low + next(high.saturating_sub(low) + 1);
                    let after = from.checked_sub(1).map(|index| {
                        let term = model.entries.get(&index).copied();
                        log_id(term.unwrap_or(0), index)
                    });
                    if model.last.is_some_and(|(_, last)| last >= from) {
                        let kept = after.filter(|a| model.entries.contains_key(&a.index));
                        model.last = kept.map(|a| (a.leader_id.term, a.index)).or(model
                            .purged
                            .map(|p| (model.entries.get(&p).copied().unwrap_or(0), p)));
                    }
                    model.entries.split_off(&from);
                    batch.push((Kind::Truncate, from, codec::encode(&after)));
                    term += 1;
                }
                7 | 8 => {
                    let Some((_, last)) = model.last else { continue };
                    let upto = last.saturating_sub(next(3));
                    if model.purged.is_some_and(|p| p >= upto) || !model.entries.contains_key(&upto)
                    {
                        continue;
                    }
                    let upto_id = log_id(model.entries[&upto], upto);
                    model.entries = model.entries.split_off(&(upto + 1));
                    model.purged = Some(upto);
                    batch.push((Kind::Purge, upto, codec::encode(&upto_id)));
                }
                _ => {
                    term += 1;
                    model.vote = Some(term);
                    batch.push((Kind::Vote, 0, codec::encode(&Vote::new(term, 1))));
                }
            }
            let works: Vec<Work<Wal>> = vec![Box::new(move |wal_batch: &mut WalBatch| {
                for (kind, index, body) in batch {
                    wal_batch.push(kind, id, index, &body);
                }
                Ok(())
            })];
            wal.commit(true, works).expect("commit");
            if step % 97 == 96 {
                drop(wal);
                let (reopened, reader, logs) = Wal::open_with(dir.clone(), 2048).expect("reopen");
                wal = reopened;
                for (shard, model) in models.iter().enumerate() {
                    let empty = RecoveredLog::default();
                    let log = logs.get(&ShardId(shard as u32)).unwrap_or(&empty);
                    assert_eq!(log.vote.map(|v| v.leader_id().term), model.vote, "step {step}");
                    assert_eq!(log.purged.map(|p| p.index), model.purged, "step {step}");
                    assert_eq!(
                        log.last_log.map(|l| l.index),
                        model.last.map(|l| l.1),
                        "step {step}"
                    );
                    let terms: BTreeMap<u64, u64> = log
                        .entries
                        .iter()
                        .map(|(&index, &at)| {
                            let entry = reader.read(at).expect("read back").expect("kept");
                            assert_eq!(entry.log_id().index, index);
                            (index, entry.log_id().leader_id.term)
                        })
                        .collect();
                    assert_eq!(terms, model.entries, "shard {shard} step {step}");
                }
                let files = dir.list().expect("list").len();
                assert!(files < 40, "purged segments are deleted: {files} files at step {step}");
            }
        }
        assert!(wal.active > 40, "the run went through many segments: {}", wal.active);
    }

    /// A shard that appends once and never purges keeps every segment since; the pressure
    /// names it, and once it purges, the segments go.
    #[test]
    fn an_idle_shard_pins_the_oldest_segment_until_it_purges() {
        let dir = Arc::new(MemDir::default());
        let (mut wal, _, _) = Wal::open_with(dir.clone(), 1024).expect("open");
        let push = |wal: &mut Wal, shard: u32, kind: Kind, index: u64, body: Vec<u8>| {
            let works: Vec<Work<Wal>> = vec![Box::new(move |batch: &mut WalBatch| {
                batch.push(kind, ShardId(shard), index, &body);
                Ok(())
            })];
            wal.commit(true, works).expect("commit");
        };
        let entry = |index| {
            codec::encode(&openraft::testing::blank_ent::<crate::types::TypeConfig>(1, 1, index))
        };
        push(&mut wal, 1, Kind::Entry, 0, entry(0));
        for index in 0..200 {
            push(&mut wal, 0, Kind::Entry, index, entry(index));
            if index % 20 == 19 {
                push(&mut wal, 0, Kind::Purge, index, codec::encode(&log_id(1, index)));
            }
        }
        let pressure = wal.pressure().lock().expect("pressure").clone();
        assert!(pressure.segments > 4, "shard 1 keeps them all: {pressure:?}");
        assert_eq!(pressure.pinning, vec![ShardId(1)]);
        push(&mut wal, 1, Kind::Purge, 0, codec::encode(&log_id(1, 0)));
        let pressure = wal.pressure().lock().expect("pressure").clone();
        assert!(pressure.segments <= 2, "the purged segments went: {pressure:?}");
        assert_eq!(dir.list().expect("list").len(), pressure.segments);
    }

    /// A purge past the end of the log (a snapshot installed), and deleted segments that come
    /// back (an unlink that a crash undid): replay still gives exactly the live log.
    #[test]
    fn a_purge_past_the_log_and_undeleted_segments_replay_right() {
        let dir = Arc::new(MemDir::default());
        let (mut wal, _, _) = Wal::open_with(dir.clone(), 1024).expect("open");
        let put = |wal: &mut Wal, records: Vec<(Kind, u64, Vec<u8>)>| {
            let works: Vec<Work<Wal>> = vec![Box::new(move |batch: &mut WalBatch| {
                for (kind, index, body) in records {
                    batch.push(kind, ShardId(0), index, &body);
                }
                Ok(())
            })];
            wal.commit(true, works).expect("commit");
        };
        let entry = |term, index| {
            let entry = openraft::testing::blank_ent::<crate::types::TypeConfig>(term, 1, index);
            (Kind::Entry, index, codec::encode(&entry))
        };
        for index in 0..60 {
            put(&mut wal, vec![entry(1, index)]);
        }
        put(&mut wal, vec![(Kind::Truncate, 30, codec::encode(&Some(log_id(1, 29))))]);
        for index in 30..40 {
            put(&mut wal, vec![entry(2, index)]);
        }
        let mut closed: Vec<(String, Vec<u8>)> = dir
            .list()
            .expect("list")
            .into_iter()
            .map(|name| {
                let bytes = read_whole(dir.file(&name).expect("file").as_ref()).expect("read");
                (name, bytes)
            })
            .collect();
        closed.sort();
        closed.pop(); // the active segment
        put(&mut wal, vec![(Kind::Purge, 100, codec::encode(&log_id(3, 100)))]);
        for index in 101..140 {
            put(&mut wal, vec![entry(3, index)]);
        }
        put(&mut wal, vec![(Kind::Purge, 120, codec::encode(&log_id(3, 120)))]);
        drop(wal);
        let check = |dir: Arc<MemDir>| {
            let (_, reader, logs) = Wal::open_with(dir, 1024).expect("reopen");
            let log = &logs[&ShardId(0)];
            assert_eq!(log.purged.map(|p| p.index), Some(120));
            assert_eq!(log.last_log.map(|l| (l.leader_id.term, l.index)), Some((3, 139)));
            let entries: Vec<(u64, u64)> = log
                .entries
                .iter()
                .map(|(&index, &at)| {
                    (index, reader.read(at).expect("read").expect("kept").log_id().leader_id.term)
                })
                .collect();
            assert_eq!(entries, (121..140).map(|index| (index, 3)).collect::<Vec<_>>());
        };
        check(dir.clone());
        let mut undeleted = 0;
        for (name, bytes) in &closed {
            if dir.file(name).is_none() {
                dir.open(name).expect("recreate").write_at(0, bytes).expect("write");
                undeleted += 1;
            }
        }
        assert!(undeleted > 0, "the purges deleted segments");
        check(dir);
    }
}
