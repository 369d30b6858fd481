//! Read-only access to one shard's replicated state, for the server: reads under locks at the
//! leader, snapshot reads on any replica, recovery scans and digests.
//!
//! Each call opens its own redb read transaction: a consistent view of everything committed so
//! far by the writer (volatile commits included).

use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use redb::Database;
use redb::ReadableDatabase;
use redb::TableDefinition;
use txn::command::PreparedTxn;
use txn::command::VersionPos;
use txn::state::Record;
use txn::state::ShardState;
use txn::state::Version;
use txn::state::VersionedRow;
use txn::types::Key;
use txn::types::ShardId;
use txn::types::Timestamp;
use txn::types::TxnId;
use txn::types::Value;

use crate::codec;
use crate::store::SafeParts;
use crate::store::safe_parts::Parts;
use crate::types::LogId;

fn io_error<E: std::fmt::Display>(error: E) -> io::Error {
    io::Error::other(format!("storage: {error}"))
}

/// Reads one shard's state.
#[derive(Clone)]
pub struct ShardReader {
    db: Arc<Database>,
    state: ShardState,
    meta_table: String,
    safe_parts: Arc<SafeParts>,
    exports: Arc<AtomicU64>,
}

impl ShardReader {
    pub(crate) fn new(
        db: Arc<Database>,
        shard: ShardId,
        safe_parts: Arc<SafeParts>,
        exports: Arc<AtomicU64>,
    ) -> ShardReader {
        let meta_table = format!("raft.{}", shard.0);
        ShardReader { db, state: ShardState::new(shard), meta_table, safe_parts, exports }
    }

    /// How many snapshots of the shard this node has read to send to followers since it
    /// started (each is exported as it is sent).
    pub fn snapshots_exported(&self) -> u64 {
        self.exports.load(Ordering::Relaxed)
    }

    /// The shard.
    pub fn shard(&self) -> ShardId {
        self.state.shard()
    }

    fn rtx(&self) -> io::Result<redb::ReadTransaction> {
        self.db.begin_read().map_err(io_error)
    }

    /// The value of `key` as of `ts` (`Timestamp::MAX`: the newest).
    pub fn read(&self, key: &[u8], ts: Timestamp) -> io::Result<Option<Value>> {
        self.state.read_at(&self.rtx()?, key, ts).map_err(io_error)
    }

    /// Up to `limit` live rows of `[from, to)` as of `ts`.
    pub fn scan(
        &self,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
        ts: Timestamp,
    ) -> io::Result<Vec<(Key, Value)>> {
        self.state.scan(&self.rtx()?, from, to, limit, ts).map_err(io_error)
    }

    /// The newest version of `key` at or below `ts`: commit timestamp and value (`None` for a
    /// tombstone).
    pub fn read_version(
        &self,
        key: &[u8],
        ts: Timestamp,
    ) -> io::Result<Option<(Timestamp, Option<Value>)>> {
        self.state.read_version(&self.rtx()?, key, ts).map_err(io_error)
    }

    /// Like [`ShardReader::scan`], with each row's commit timestamp.
    pub fn scan_versions(
        &self,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
        ts: Timestamp,
    ) -> io::Result<Vec<(Key, Timestamp, Value)>> {
        self.state.scan_versions(&self.rtx()?, from, to, limit, ts).map_err(io_error)
    }

    /// A snapshot read of `key` as of `ts` ([`ShardReader::read_version`]), with the collected
    /// watermark of the same state. Versions at or below the watermark may be gone, so a read
    /// at or below it must be refused, and checked against the state it read: a collection
    /// pass may commit between two read transactions (a review found the check and the read
    /// apart, 2026-12-05).
    pub fn read_version_at_snapshot(
        &self,
        key: &[u8],
        ts: Timestamp,
    ) -> io::Result<(Option<Version>, Timestamp)> {
        let rtx = self.rtx()?;
        let (_, collected) = self.state.watermarks(&rtx).map_err(io_error)?;
        let version = self.state.read_version(&rtx, key, ts).map_err(io_error)?;
        Ok((version, collected))
    }

    /// A snapshot scan as of `ts` ([`ShardState::scan_versions_seen`]: the rows, and the
    /// newest version read, deletes included), with the collected watermark of the same state
    /// (see [`ShardReader::read_version_at_snapshot`]).
    pub fn scan_at_snapshot(
        &self,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
        ts: Timestamp,
    ) -> io::Result<(Vec<VersionedRow>, Timestamp, Timestamp)> {
        let rtx = self.rtx()?;
        let (_, collected) = self.state.watermarks(&rtx).map_err(io_error)?;
        let (rows, newest) =
            self.state.scan_versions_seen(&rtx, from, to, limit, ts).map_err(io_error)?;
        Ok((rows, newest, collected))
    }

    /// The position of the version `n` rows after `from` (see
    /// [`ShardState::version_after`]).
    pub fn version_after(
        &self,
        from: Option<&VersionPos>,
        n: usize,
    ) -> io::Result<Option<VersionPos>> {
        self.state.version_after(&self.rtx()?, from, n).map_err(io_error)
    }

    /// The transaction whose record is `n` rows after `from`'s (see
    /// [`ShardState::record_after`]).
    pub fn record_after(&self, from: Option<&TxnId>, n: usize) -> io::Result<Option<TxnId>> {
        self.state.record_after(&self.rtx()?, from, n).map_err(io_error)
    }

    /// Committed records still unfinished, decided (committed) at or below `before`
    /// (see [`ShardState::unfinished_records`]).
    pub fn unfinished_records(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> io::Result<Vec<(TxnId, Timestamp)>> {
        self.state.unfinished_records(&self.rtx()?, before, limit).map_err(io_error)
    }

    /// Undecided prepared transactions.
    pub fn prepared(&self) -> io::Result<Vec<(TxnId, PreparedTxn)>> {
        self.state.prepared(&self.rtx()?).map_err(io_error)
    }

    /// The undecided YES vote of `txn`, if it prepared here.
    pub fn prepared_txn(&self, txn: &TxnId) -> io::Result<Option<PreparedTxn>> {
        self.state.prepared_txn(&self.rtx()?, txn).map_err(io_error)
    }

    /// The record of a transaction homed here.
    pub fn record(&self, txn: &TxnId) -> io::Result<Option<Record>> {
        self.state.record(&self.rtx()?, txn).map_err(io_error)
    }

    /// The record of `txn` and the garbage-collection watermark, read in one transaction: a
    /// missing record and a watermark above its transaction then describe one state (read apart,
    /// a commit and a collection pass could apply between them, and the record look collected
    /// when it was just written).
    pub fn record_and_collected(&self, txn: &TxnId) -> io::Result<(Option<Record>, Timestamp)> {
        let rtx = self.rtx()?;
        let record = self.state.record(&rtx, txn).map_err(io_error)?;
        let (_, collected) = self.state.watermarks(&rtx).map_err(io_error)?;
        Ok((record, collected))
    }

    /// The closed timestamp (with the closes applied in memory, see [`SafeParts`]) and the
    /// garbage-collection watermark.
    pub fn watermarks(&self) -> io::Result<(Timestamp, Timestamp)> {
        self.safe_parts.with_closes_in_memory(
            || self.state.watermarks(&self.rtx()?).map_err(io_error),
            |(closed, _)| closed,
        )
    }

    /// The closed timestamp, the smallest prepare timestamp of an undecided transaction, and the
    /// GC watermark, read in one transaction (for a causal reader's safe time); cached until
    /// the next apply (see [`SafeParts`]).
    pub fn safe_time_parts(&self) -> io::Result<Parts> {
        let read_tables = || {
            self.safe_parts.get_or_read(|| {
                let rtx = self.rtx()?;
                let (closed, collected) = self.state.watermarks(&rtx).map_err(io_error)?;
                let prepared = self.state.prepared(&rtx).map_err(io_error)?;
                let min_prepared = prepared.iter().map(|(_, p)| p.prepare_ts).min();
                Ok((closed, min_prepared, collected))
            })
        };
        self.safe_parts.with_closes_in_memory(read_tables, |(closed, _, _)| closed)
    }

    /// The applied log index, the data digest (without the closed timestamp) and the number of
    /// prepared transactions, read in one transaction (so the digest is the state at that
    /// index).
    pub fn snapshot_summary(&self) -> io::Result<(u64, u64, usize)> {
        // Loaded before the read transaction: every entry up to it is committed (the batches
        // after the tables' index, up to it, only closed, which the digest leaves out).
        let in_memory = self.safe_parts.applied_in_memory();
        let rtx = self.rtx()?;
        let meta = TableDefinition::<&str, &[u8]>::new(&self.meta_table);
        let applied = match rtx.open_table(meta) {
            Ok(table) => match table.get("applied").map_err(io_error)? {
                Some(bytes) => {
                    codec::decode::<Option<LogId>>(bytes.value())?.map(|id| id.index).unwrap_or(0)
                }
                None => 0,
            },
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(error) => return Err(io_error(error)),
        };
        let digest = self.state.data_digest(&rtx).map_err(io_error)?;
        let prepared = self.state.prepared(&rtx).map_err(io_error)?.len();
        Ok((applied.max(in_memory), digest, prepared))
    }
}
