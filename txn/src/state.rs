//! A shard's replicated state in redb, and the deterministic apply of [`Command`]s to it.
//!
//! # Tables (one set per shard, names suffixed with the shard id)
//!
//! ```text
//!   data.S      (key, !commit_ts) -> tag byte + value    MVCC versions, newest first per key
//!                                                        tag 0 = tombstone, 1 = value
//!   prepared.S  txn id (32 bytes, age order) -> PreparedTxn      undecided YES votes
//!   records.S   txn id -> Record                         decisions of transactions homed here
//!   txnmeta.S   "closed" | "collected" -> u64            closed timestamp, GC watermark
//! ```
//!
//! Versions are keyed by the bitwise complement of the commit timestamp so that the newest
//! version of a key comes first in a range scan. A read "as of" timestamp `t` takes the first
//! version whose commit timestamp is at most `t`.
//!
//! # Invariants (asserted in [`ShardState::apply`]; the first in debug builds only)
//!
//! 1. No two prepared transactions write the same key, and a one-phase commit never writes a key
//!    a prepared transaction writes: the leader's exclusive locks guarantee it (a violation is a
//!    lock-table bug, and every replica would crash on it alike).
//! 2. Every prepare and commit timestamp is above the closed timestamp when applied; the closed
//!    timestamp never decreases. So a snapshot at or below the closed timestamp, taken after
//!    waiting out the prepared transactions, never changes again (causal reads rely on it).
//! 3. A phase-2 commit's timestamp is at least the participant's own prepare timestamp; a
//!    commit below it, or whose versions are already there, is the repeat of a commit applied
//!    before (a prepare delivered again after its commit prepared it again) and changes
//!    nothing.
//! 4. A record, once written, only changes from unfinished to finished; its decision never
//!    changes.
//! 5. The versions of a key sort in the order of its commits: each new version's timestamp is
//!    above the key's newest (proposers observe it before choosing a timestamp).
//!
//! Apply never reads the clock or anything outside these tables and the command, so every
//! replica applying the same log reaches the same state ([`ShardState::data_digest`] checks it).

use std::ops::Bound;

use redb::ReadTransaction;
use redb::ReadableTable;
use redb::Table;
use redb::TableDefinition;
use redb::WriteTransaction;
use serde::Deserialize;
use serde::Serialize;

use crate::command::AbortReason;
use crate::command::Applied;
use crate::command::Command;
use crate::command::Decision;
use crate::command::PreparedTxn;
use crate::command::VersionPos;
use crate::command::Write;
use crate::types::Key;
use crate::types::ShardId;
use crate::types::Timestamp;
use crate::types::TxnId;
use crate::types::Value;
use crate::types::display_key;

/// Storage errors from redb: the node cannot go on (not a property of the command).
pub type StoreError = redb::Error;

/// A version as a read finds it: its commit timestamp and its value (`None`: a delete).
pub type Version = (Timestamp, Option<Value>);

/// A row as a scan reads it: key, commit timestamp, value.
pub type VersionedRow = (Key, Timestamp, Value);

/// The record of a transaction homed on this shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Its fate.
    pub decision: Decision,
    /// True once no participant can still need the record (aborted, one-phase, or phase 2
    /// acknowledged everywhere): it may then be collected after the retention window.
    pub finished: bool,
}

/// One shard's tables, everything a snapshot carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSnapshot {
    /// Every version: key, commit timestamp, value (None = tombstone), in table order.
    pub versions: Vec<(Key, Timestamp, Option<Value>)>,
    /// Undecided YES votes.
    pub prepared: Vec<(TxnId, PreparedTxn)>,
    /// Records of transactions homed here.
    pub records: Vec<(TxnId, Record)>,
    /// The closed timestamp.
    pub closed: Timestamp,
    /// The garbage-collection watermark.
    pub collected: Timestamp,
}

/// Names the tables of one shard and applies commands to them.
#[derive(Clone, Debug)]
pub struct ShardState {
    shard: ShardId,
    data: String,
    prepared: String,
    records: String,
    meta: String,
}

type DataTable<'a> = TableDefinition<'a, (&'static [u8], u64), &'static [u8]>;
type BytesTable<'a> = TableDefinition<'a, &'static [u8], &'static [u8]>;
type MetaTable<'a> = TableDefinition<'a, &'static str, u64>;

/// A shard's four tables opened in one write transaction: a batch of commands opens them once
/// ([`ShardState::open`]) rather than at every lookup (opening a redb table searches the table
/// tree, and closing one writes its root back).
pub struct ShardTables<'t> {
    data: Table<'t, (&'static [u8], u64), &'static [u8]>,
    prepared: Table<'t, &'static [u8], &'static [u8]>,
    records: Table<'t, &'static [u8], &'static [u8]>,
    meta: Table<'t, &'static str, u64>,
}

impl ShardTables<'_> {
    /// Raises the closed timestamp to `ts` (never lowers it): what applying `Close { ts }`
    /// does.
    pub fn raise_closed(&mut self, ts: Timestamp) -> Result<(), StoreError> {
        let closed = meta_value(&self.meta, META_CLOSED)?;
        if ts.0 > closed {
            self.meta.insert(META_CLOSED, ts.0)?;
        }
        Ok(())
    }
}

const META_CLOSED: &str = "closed";
const META_COLLECTED: &str = "collected";
const TAG_TOMBSTONE: u8 = 0;
const TAG_VALUE: u8 = 1;
/// Bytes of an encoded [`TxnId`] used as a table key.
pub const TXN_KEY_LEN: usize = 32;
/// The most bytes (keys plus values) of rows one scan gathers: a scan stops at the first row
/// that takes its rows past this, so a reply holds at most this plus one row and always fits
/// one message. A caller that gets rows over it refuses the scan (see `rows_bytes`).
pub const SCAN_BYTES_MAX: usize = 32 << 20;

/// The bytes (keys plus values) of `rows`, as [`SCAN_BYTES_MAX`] counts them.
pub fn rows_bytes(rows: &[(Key, Value)]) -> usize {
    rows.iter().map(|(key, value)| key.len() + value.len()).sum()
}

impl ShardState {
    /// The tables of `shard` (nothing is created until [`ShardState::create_tables`]).
    pub fn new(shard: ShardId) -> ShardState {
        let n = shard.0;
        ShardState {
            shard,
            data: format!("data.{n}"),
            prepared: format!("prepared.{n}"),
            records: format!("records.{n}"),
            meta: format!("txnmeta.{n}"),
        }
    }

    /// The shard.
    pub fn shard(&self) -> ShardId {
        self.shard
    }

    fn data_def(&self) -> DataTable<'_> {
        TableDefinition::new(&self.data)
    }

    fn prepared_def(&self) -> BytesTable<'_> {
        TableDefinition::new(&self.prepared)
    }

    fn records_def(&self) -> BytesTable<'_> {
        TableDefinition::new(&self.records)
    }

    fn meta_def(&self) -> MetaTable<'_> {
        TableDefinition::new(&self.meta)
    }

    /// Creates the shard's tables if missing, so that read transactions can open them.
    pub fn create_tables(&self, tx: &WriteTransaction) -> Result<(), StoreError> {
        tx.open_table(self.data_def())?;
        tx.open_table(self.prepared_def())?;
        tx.open_table(self.records_def())?;
        tx.open_table(self.meta_def())?;
        Ok(())
    }

    /// Opens the shard's tables in `tx`, for a batch of [`ShardState::apply_in`].
    pub fn open<'t>(&self, tx: &'t WriteTransaction) -> Result<ShardTables<'t>, StoreError> {
        Ok(ShardTables {
            data: tx.open_table(self.data_def())?,
            prepared: tx.open_table(self.prepared_def())?,
            records: tx.open_table(self.records_def())?,
            meta: tx.open_table(self.meta_def())?,
        })
    }

    /// Applies one command in the write transaction `tx` (one command's batch). `entry_term` is
    /// the Raft term of the log entry that carries it.
    pub fn apply(
        &self,
        tx: &WriteTransaction,
        command: &Command,
        entry_term: u64,
    ) -> Result<Applied, StoreError> {
        self.apply_in(&mut self.open(tx)?, command, entry_term)
    }

    /// Applies one command to the tables of a batch. `entry_term` is the Raft term of the log
    /// entry that carries it.
    pub fn apply_in(
        &self,
        t: &mut ShardTables<'_>,
        command: &Command,
        entry_term: u64,
    ) -> Result<Applied, StoreError> {
        match command {
            Command::CommitOnePhase { txn, writes, commit_ts, lock_term } => {
                let finished = true;
                self.apply_one_phase(t, *txn, writes, *commit_ts, *lock_term, entry_term, finished)
            }
            Command::CommitAtHome { txn, writes, commit_ts, lock_term } => {
                // The other participants still need the record to learn the decision.
                let finished = false;
                self.apply_one_phase(t, *txn, writes, *commit_ts, *lock_term, entry_term, finished)
            }
            Command::Prepare { txn, home, writes, prepare_ts, lock_term } => {
                self.apply_prepare(t, *txn, *home, writes, *prepare_ts, *lock_term, entry_term)
            }
            Command::Commit { txn, commit_ts } => self.apply_commit(t, *txn, *commit_ts),
            Command::Abort { txn } => {
                t.prepared.remove(txn_key(txn).as_slice())?;
                Ok(Applied::Done)
            }
            Command::Decide { txn, decision } => self.apply_decide(t, *txn, *decision),
            Command::DecideOnePhase { txn, decision } => {
                if t.records.get(txn_key(txn).as_slice())?.is_none()
                    && let Some(detail) = forgotten(t, txn)?
                {
                    return Ok(Applied::Forgotten { detail });
                }
                self.apply_decide(t, *txn, *decision)
            }
            Command::Finish { txn } => {
                self.finish(t, txn)?;
                Ok(Applied::Done)
            }
            Command::Close { ts } => {
                t.raise_closed(*ts)?;
                Ok(Applied::Done)
            }
            Command::CloseAndFinish { ts, finished } => {
                t.raise_closed(*ts)?;
                for txn in finished {
                    self.finish(t, txn)?;
                }
                Ok(Applied::Done)
            }
            Command::Collect { before } => {
                let collected = meta_value(&t.meta, META_COLLECTED)?;
                if before.0 > collected {
                    collect_versions(t, *before, None, None)?;
                    collect_records(t, *before, None, None)?;
                }
                Ok(Applied::Done)
            }
            Command::CollectVersions { before, from, to } => {
                collect_versions(t, *before, from.as_ref(), to.as_ref())?;
                Ok(Applied::Done)
            }
            Command::CollectRecords { before, from, to } => {
                collect_records(t, *before, from.as_ref(), to.as_ref())?;
                Ok(Applied::Done)
            }
            Command::Batch(commands) => {
                let mut results = Vec::with_capacity(commands.len());
                for command in commands {
                    assert!(!matches!(command, Command::Batch(_)), "a batch holds a batch");
                    results.push(self.apply_in(t, command, entry_term)?);
                }
                Ok(Applied::Batch(results))
            }
        }
    }

    /// Marks a committed record finished (no-op if it is gone, or not COMMITTED: a correct
    /// coordinator finishes only what committed, but the command came from a peer's request,
    /// and an assertion here failed every replica at every replay of the entry; a review,
    /// 2026-12-07).
    fn finish(&self, t: &mut ShardTables<'_>, txn: &TxnId) -> Result<(), StoreError> {
        let key = txn_key(txn);
        let existing = t.records.get(key.as_slice())?.map(|v| decode_record(v.value()));
        if let Some(mut record) = existing
            && matches!(record.decision, Decision::Committed { .. })
        {
            record.finished = true;
            t.records.insert(key.as_slice(), encode(&record).as_slice())?;
        }
        Ok(())
    }

    /// Raises the closed timestamp to `ts` (never lowers it): what applying `Close { ts }`
    /// does. Public for a state machine that applied closes in memory and writes them with its
    /// next transaction.
    pub fn raise_closed(&self, tx: &WriteTransaction, ts: Timestamp) -> Result<(), StoreError> {
        self.open(tx)?.raise_closed(ts)
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_one_phase(
        &self,
        t: &mut ShardTables<'_>,
        txn: TxnId,
        writes: &[Write],
        commit_ts: Timestamp,
        lock_term: u64,
        entry_term: u64,
        finished: bool,
    ) -> Result<Applied, StoreError> {
        let key = txn_key(&txn);
        let existing = t.records.get(key.as_slice())?.map(|v| decode_record(v.value()));
        match existing {
            Some(Record { decision: Decision::Committed { commit_ts }, .. }) => {
                return Ok(Applied::Committed { commit_ts });
            }
            Some(Record { decision: Decision::Aborted { reason }, .. }) => {
                return Ok(refused(reason, format!("{txn} was already resolved as aborted")));
            }
            None => {}
        }
        // No record, but one may have been collected: records of transactions that started
        // at or below the watermark go once finished. A finished record is ABORTED, or the
        // COMMITTED one of a commit at home whose coordinator heard COMMITTED, or that home
        // finished itself once every shard applied it, older than the retention window
        // (`Shard::finish_orphans`), or of a one-phase commit, whose own retry can meet it
        // gone. So such an old transaction may have been resolved as aborted by a
        // participant, and must not commit now (chaos seed 90: a forward-skewed leader's
        // watermark passed a running transaction while a resolver aborted it). A commit at
        // home is refused (COORDINATOR_LOST); its coordinator trusts no refusal and settles
        // with `DecideOnePhase`, which answers "forgotten" here, since an orphan's retry can
        // meet its record gone. A one-phase commit answers "forgotten" at once.
        // (`finished` is true for a one-phase commit, false for a commit at home.)
        if let Some(detail) = forgotten(t, &txn)? {
            return Ok(if finished {
                Applied::Forgotten { detail }
            } else {
                refused(AbortReason::CoordinatorLost, detail)
            });
        }
        if lock_term != entry_term {
            return Ok(stale_term(txn, lock_term, entry_term));
        }
        let closed = closed_in(t)?;
        if commit_ts <= closed {
            return Ok(below_closed(txn, commit_ts, closed));
        }
        assert_no_prepared_conflict(t, txn, writes)?;
        put_versions(t, writes, commit_ts)?;
        let record = Record { decision: Decision::Committed { commit_ts }, finished };
        t.records.insert(key.as_slice(), encode(&record).as_slice())?;
        Ok(Applied::Committed { commit_ts })
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_prepare(
        &self,
        t: &mut ShardTables<'_>,
        txn: TxnId,
        home: ShardId,
        writes: &[Write],
        prepare_ts: Timestamp,
        lock_term: u64,
        entry_term: u64,
    ) -> Result<Applied, StoreError> {
        let key = txn_key(&txn);
        if let Some(existing) = t.prepared.get(key.as_slice())? {
            let existing: PreparedTxn = decode(existing.value());
            return Ok(Applied::Prepared { prepare_ts: existing.prepare_ts });
        }
        if lock_term != entry_term {
            return Ok(stale_term(txn, lock_term, entry_term));
        }
        let closed = closed_in(t)?;
        if prepare_ts <= closed {
            return Ok(below_closed(txn, prepare_ts, closed));
        }
        assert_no_prepared_conflict(t, txn, writes)?;
        let value = PreparedTxn { home, writes: writes.to_vec(), prepare_ts };
        t.prepared.insert(key.as_slice(), encode(&value).as_slice())?;
        Ok(Applied::Prepared { prepare_ts })
    }

    fn apply_commit(
        &self,
        t: &mut ShardTables<'_>,
        txn: TxnId,
        commit_ts: Timestamp,
    ) -> Result<Applied, StoreError> {
        let key = txn_key(&txn);
        let removed = t.prepared.remove(key.as_slice())?.map(|v| {
            let prepared: PreparedTxn = decode(v.value());
            prepared
        });
        // A commit for a transaction not prepared here is a repeated phase 2: already applied.
        // So is the commit of a transaction prepared again after its phase 2 applied here (a
        // late delivery of its prepare that took its locks afresh, having no statement locks
        // here; the resolver then commits it again). The first commit is recognised by what
        // it left: that prepare's timestamp is above the commit's (a vote's is never), or a
        // written key has a version at or above the commit timestamp (before a first commit
        // every version is below it: the transaction held the key's lock since it prepared).
        if let Some(prepared) = removed
            && prepared.prepare_ts <= commit_ts
            && !applied_before(t, &prepared.writes, commit_ts)?
        {
            put_versions(t, &prepared.writes, commit_ts)?;
        }
        Ok(Applied::Done)
    }

    fn apply_decide(
        &self,
        t: &mut ShardTables<'_>,
        txn: TxnId,
        decision: Decision,
    ) -> Result<Applied, StoreError> {
        let key = txn_key(&txn);
        if let Some(existing) = t.records.get(key.as_slice())? {
            return Ok(Applied::Decided(decode_record(existing.value()).decision));
        }
        let finished = matches!(decision, Decision::Aborted { .. });
        let record = Record { decision, finished };
        t.records.insert(key.as_slice(), encode(&record).as_slice())?;
        Ok(Applied::Decided(decision))
    }

    // ---- reads (any replica, any read transaction) -------------------------------------------

    /// The newest committed value of `key` (`None`: absent or deleted).
    pub fn read_latest(
        &self,
        rtx: &ReadTransaction,
        key: &[u8],
    ) -> Result<Option<Value>, StoreError> {
        self.read_at(rtx, key, Timestamp::MAX)
    }

    /// The value of `key` as of `ts`: the newest version committed at or below `ts`.
    pub fn read_at(
        &self,
        rtx: &ReadTransaction,
        key: &[u8],
        ts: Timestamp,
    ) -> Result<Option<Value>, StoreError> {
        let data = rtx.open_table(self.data_def())?;
        let mut range = data.range((key, !ts.0)..=(key, u64::MAX))?;
        match range.next() {
            Some(entry) => Ok(decode_value(entry?.1.value())),
            None => Ok(None),
        }
    }

    /// The newest version of `key` at or below `ts`: its commit timestamp and value (`None` for
    /// a tombstone); `None` if there is no such version.
    pub fn read_version(
        &self,
        rtx: &ReadTransaction,
        key: &[u8],
        ts: Timestamp,
    ) -> Result<Option<(Timestamp, Option<Value>)>, StoreError> {
        let data = rtx.open_table(self.data_def())?;
        let mut range = data.range((key, !ts.0)..=(key, u64::MAX))?;
        match range.next() {
            Some(entry) => {
                let (k, v) = entry?;
                Ok(Some((Timestamp(!k.value().1), decode_value(v.value()))))
            }
            None => Ok(None),
        }
    }

    /// The position of the version `n` rows after `from` (`None`: the first row) in the data
    /// table; `None` if fewer rows follow. A leader's garbage-collection passes end there.
    pub fn version_after(
        &self,
        rtx: &ReadTransaction,
        from: Option<&VersionPos>,
        n: usize,
    ) -> Result<Option<VersionPos>, StoreError> {
        let data = rtx.open_table(self.data_def())?;
        let lo = from.map_or(Bound::Unbounded, |p| Bound::Included(row(p)));
        let nth = data.range::<(&[u8], u64)>((lo, Bound::Unbounded))?.nth(n).transpose()?;
        Ok(nth.map(|(k, _)| {
            let (key, inverted) = k.value();
            VersionPos { key: key.to_vec(), ts: Timestamp(!inverted) }
        }))
    }

    /// The transaction whose record is `n` rows after `from`'s (`None`: the first row) in the
    /// records table (age order); `None` if fewer rows follow.
    pub fn record_after(
        &self,
        rtx: &ReadTransaction,
        from: Option<&TxnId>,
        n: usize,
    ) -> Result<Option<TxnId>, StoreError> {
        let records = rtx.open_table(self.records_def())?;
        let from = from.map(txn_key);
        let lo = from.as_ref().map_or(Bound::Unbounded, |k| Bound::Included(k.as_slice()));
        let nth = records.range::<&[u8]>((lo, Bound::Unbounded))?.nth(n).transpose()?;
        Ok(nth.map(|(k, _)| decode_txn_key(k.value())))
    }

    /// Up to `limit` committed records that are still unfinished and were decided at or below
    /// `before` (their commit timestamp), oldest first, with their commit timestamps. The age
    /// of the decision, not of the transaction: a record decided just now may be of an old
    /// transaction whose coordinator still waits for the answer, and finishing it would let
    /// collection remove it under that coordinator's settling `Decide` (found by a review,
    /// 2026-12-06). Records sort by the transaction's start and a commit is never below it, so
    /// the walk stops at the first transaction that started after `before`.
    pub fn unfinished_records(
        &self,
        rtx: &ReadTransaction,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<(TxnId, Timestamp)>, StoreError> {
        let records = rtx.open_table(self.records_def())?;
        let mut found = Vec::new();
        for entry in records.iter()? {
            let (k, v) = entry?;
            let txn = decode_txn_key(k.value());
            if txn.start_ts > before || found.len() >= limit {
                break;
            }
            let record = decode_record(v.value());
            if let (false, Decision::Committed { commit_ts }) = (record.finished, record.decision)
                && commit_ts <= before
            {
                found.push((txn, commit_ts));
            }
        }
        Ok(found)
    }

    /// Up to `limit` live keys in `[from, to)` (`to: None` = to the end), as of `ts`, stopping
    /// early at the first row that takes them past [`SCAN_BYTES_MAX`] bytes.
    pub fn scan(
        &self,
        rtx: &ReadTransaction,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
        ts: Timestamp,
    ) -> Result<Vec<(Key, Value)>, StoreError> {
        let rows = self.scan_versions(rtx, from, to, limit, ts)?;
        Ok(rows.into_iter().map(|(key, _, value)| (key, value)).collect())
    }

    /// Like [`ShardState::scan`], with each row's commit timestamp.
    pub fn scan_versions(
        &self,
        rtx: &ReadTransaction,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
        ts: Timestamp,
    ) -> Result<Vec<(Key, Timestamp, Value)>, StoreError> {
        self.scan_versions_seen(rtx, from, to, limit, ts).map(|(rows, _)| rows)
    }

    /// [`ShardState::scan_versions`], and the newest version the scan read, deletes included:
    /// a key found deleted was read (the delete is what the reader saw), so a causal reader's
    /// token must rise to it as to a row (a review found scans skipping it, 2026-12-05).
    pub fn scan_versions_seen(
        &self,
        rtx: &ReadTransaction,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
        ts: Timestamp,
    ) -> Result<(Vec<VersionedRow>, Timestamp), StoreError> {
        let data = rtx.open_table(self.data_def())?;
        let mut newest = Timestamp::ZERO;
        let mut rows = Vec::new();
        let mut bytes = 0;
        let mut last_key: Option<Vec<u8>> = None;
        let lower: (&[u8], u64) = (from, 0);
        for entry in data.range::<(&[u8], u64)>((Bound::Included(lower), Bound::Unbounded))? {
            if rows.len() >= limit || bytes > SCAN_BYTES_MAX {
                break;
            }
            let (k, v) = entry?;
            let (key, inverted) = k.value();
            if to.is_some_and(|to| key >= to) {
                break;
            }
            if last_key.as_deref() == Some(key) || !inverted > ts.0 {
                continue;
            }
            last_key = Some(key.to_vec());
            newest = newest.max(Timestamp(!inverted));
            if let Some(value) = decode_value(v.value()) {
                bytes += key.len() + value.len();
                rows.push((key.to_vec(), Timestamp(!inverted), value));
            }
        }
        Ok((rows, newest))
    }

    /// The undecided YES votes, oldest transaction first.
    pub fn prepared(&self, rtx: &ReadTransaction) -> Result<Vec<(TxnId, PreparedTxn)>, StoreError> {
        let table = rtx.open_table(self.prepared_def())?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            out.push((decode_txn_key(k.value()), decode(v.value())));
        }
        Ok(out)
    }

    /// The undecided YES vote of `txn`, if it prepared here.
    pub fn prepared_txn(
        &self,
        rtx: &ReadTransaction,
        txn: &TxnId,
    ) -> Result<Option<PreparedTxn>, StoreError> {
        let table = rtx.open_table(self.prepared_def())?;
        Ok(table.get(txn_key(txn).as_slice())?.map(|v| decode(v.value())))
    }

    /// The record of `txn`, if it is homed here and decided.
    pub fn record(&self, rtx: &ReadTransaction, txn: &TxnId) -> Result<Option<Record>, StoreError> {
        let table = rtx.open_table(self.records_def())?;
        Ok(table.get(txn_key(txn).as_slice())?.map(|v| decode_record(v.value())))
    }

    /// The closed timestamp and the garbage-collection watermark.
    pub fn watermarks(&self, rtx: &ReadTransaction) -> Result<(Timestamp, Timestamp), StoreError> {
        let meta = rtx.open_table(self.meta_def())?;
        let closed = meta_value(&meta, META_CLOSED)?;
        let collected = meta_value(&meta, META_COLLECTED)?;
        Ok((Timestamp(closed), Timestamp(collected)))
    }

    /// Everything, for a snapshot.
    pub fn export(&self, rtx: &ReadTransaction) -> Result<ShardSnapshot, StoreError> {
        let mut snapshot = ShardSnapshot::default();
        let data = rtx.open_table(self.data_def())?;
        for entry in data.iter()? {
            let (k, v) = entry?;
            let (key, inverted) = k.value();
            snapshot.versions.push((key.to_vec(), Timestamp(!inverted), decode_value(v.value())));
        }
        snapshot.prepared = self.prepared(rtx)?;
        let records = rtx.open_table(self.records_def())?;
        for entry in records.iter()? {
            let (k, v) = entry?;
            snapshot.records.push((decode_txn_key(k.value()), decode_record(v.value())));
        }
        (snapshot.closed, snapshot.collected) = self.watermarks(rtx)?;
        Ok(snapshot)
    }

    /// Replaces everything with a snapshot's content.
    pub fn import(
        &self,
        tx: &WriteTransaction,
        snapshot: &ShardSnapshot,
    ) -> Result<(), StoreError> {
        tx.delete_table(self.data_def())?;
        tx.delete_table(self.prepared_def())?;
        tx.delete_table(self.records_def())?;
        tx.delete_table(self.meta_def())?;
        self.create_tables(tx)?;
        let mut data = tx.open_table(self.data_def())?;
        for (key, ts, value) in &snapshot.versions {
            data.insert((key.as_slice(), !ts.0), encode_value(value.as_deref()).as_slice())?;
        }
        let mut prepared = tx.open_table(self.prepared_def())?;
        for (txn, value) in &snapshot.prepared {
            prepared.insert(txn_key(txn).as_slice(), encode(value).as_slice())?;
        }
        let mut records = tx.open_table(self.records_def())?;
        for (txn, record) in &snapshot.records {
            records.insert(txn_key(txn).as_slice(), encode(record).as_slice())?;
        }
        let mut meta = tx.open_table(self.meta_def())?;
        meta.insert(META_CLOSED, snapshot.closed.0)?;
        meta.insert(META_COLLECTED, snapshot.collected.0)?;
        Ok(())
    }

    /// A digest of the data (FNV-1a over the snapshot encoding: versions, prepared
    /// transactions, records, GC watermark), without the closed timestamp: equal on replicas
    /// that applied the same log prefix, and on replicas whose logs differ only by `Close`
    /// entries, which a leader appends every close interval even when nothing else happens.
    pub fn data_digest(&self, rtx: &ReadTransaction) -> Result<u64, StoreError> {
        let snapshot = ShardSnapshot { closed: Timestamp::ZERO, ..self.export(rtx)? };
        Ok(fnv1a(&encode(&snapshot)))
    }
}

/// A watermark of the meta table (0 until first written).
fn meta_value(meta: &impl ReadableTable<&'static str, u64>, name: &str) -> Result<u64, StoreError> {
    Ok(meta.get(name)?.map(|v| v.value()).unwrap_or(0))
}

/// Why `txn`'s record may have been collected (it started at or below the collected
/// watermark), or None when a missing record means it never had one.
fn forgotten(t: &ShardTables<'_>, txn: &TxnId) -> Result<Option<String>, StoreError> {
    let collected = Timestamp(meta_value(&t.meta, META_COLLECTED)?);
    Ok((txn.start_ts <= collected).then(|| {
        format!(
            "{txn} started at or below the collected watermark {collected}: its record may \
             have been collected"
        )
    }))
}

fn closed_in(t: &ShardTables<'_>) -> Result<Timestamp, StoreError> {
    Ok(Timestamp(meta_value(&t.meta, META_CLOSED)?))
}

/// Invariant 1: the keys `txn` writes carry no other transaction's prepared write.
///
/// Checked in debug builds only (the tests, the end-to-end runs and the simulation, where a
/// lock-table bug would show): it decodes every undecided transaction at every apply that
/// writes, 1.75% of the cluster's CPU under `txn2` in a release build (perf, 2026-12-03).
fn assert_no_prepared_conflict(
    t: &ShardTables<'_>,
    txn: TxnId,
    writes: &[Write],
) -> Result<(), StoreError> {
    if !cfg!(debug_assertions) {
        return Ok(());
    }
    for entry in t.prepared.iter()? {
        let (other_key, other) = entry?;
        let other_txn = decode_txn_key(other_key.value());
        if other_txn == txn {
            continue;
        }
        let other: PreparedTxn = decode(other.value());
        for write in writes {
            assert!(
                !other.writes.iter().any(|w| w.key == write.key),
                "{txn} writes {} which prepared {other_txn} also writes: lock table bug",
                display_key(&write.key)
            );
        }
    }
    Ok(())
}

/// Writes the new versions. Invariant 5: a key's versions sort in commit order, so each new
/// version's timestamp is above the key's newest (the proposer's clock observed it).
fn put_versions(
    t: &mut ShardTables<'_>,
    writes: &[Write],
    commit_ts: Timestamp,
) -> Result<(), StoreError> {
    for write in writes {
        let key = write.key.as_slice();
        if let Some(newest) = newest_version(t, key)? {
            assert!(
                newest < commit_ts,
                "version of {} at {commit_ts} is not above its newest version at {newest}",
                display_key(key)
            );
        }
        let encoded = encode_value(write.value.as_deref());
        t.data.insert((write.key.as_slice(), !commit_ts.0), encoded.as_slice())?;
    }
    Ok(())
}

/// Whether a commit of `writes` at `commit_ts` was applied before: some written key has a
/// version at or above `commit_ts` (its own, or a later one). Before a first commit, every
/// version of its keys is below it (invariant 5).
fn applied_before(
    t: &ShardTables<'_>,
    writes: &[Write],
    commit_ts: Timestamp,
) -> Result<bool, StoreError> {
    for write in writes {
        if newest_version(t, &write.key)?.is_some_and(|newest| newest >= commit_ts) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The timestamp of the newest version of `key`, if any.
fn newest_version(t: &ShardTables<'_>, key: &[u8]) -> Result<Option<Timestamp>, StoreError> {
    Ok(t.data
        .range((key, 0u64)..=(key, u64::MAX))?
        .next()
        .transpose()?
        .map(|(k, _)| Timestamp(!k.value().1)))
}

/// Raises the garbage-collection watermark to `before` (never lowers it): reads at or below
/// it are refused from then on, so the rows a pass removes are never needed again.
fn raise_collected(t: &mut ShardTables<'_>, before: Timestamp) -> Result<(), StoreError> {
    let collected = meta_value(&t.meta, META_COLLECTED)?;
    if before.0 > collected {
        t.meta.insert(META_COLLECTED, before.0)?;
    }
    Ok(())
}

/// A version's row key in the data table.
fn row(pos: &VersionPos) -> (&[u8], u64) {
    (pos.key.as_slice(), !pos.ts.0)
}

/// One pass of garbage collection over the versions in the rows `[from, to)`.
///
/// Per key, every version above `before` stays, and so does the newest one at or below it (the
/// *base*: reads above `before` may need it) unless it is a tombstone; everything older goes.
/// The base is found in the table, not in the pass, so a pass that starts inside a key's rows
/// treats them alike. A tombstone base goes only if every older version of its key goes in
/// the same pass (the key's last row is before `to`): removed alone, it would let the next
/// older version show through, resurrecting a deleted value. Such a base stays until a later
/// round finds its key within one pass.
fn collect_versions(
    t: &mut ShardTables<'_>,
    before: Timestamp,
    from: Option<&VersionPos>,
    to: Option<&VersionPos>,
) -> Result<(), StoreError> {
    raise_collected(t, before)?;
    let lo = from.map_or(Bound::Unbounded, |p| Bound::Included(row(p)));
    let hi = to.map_or(Bound::Unbounded, |p| Bound::Excluded(row(p)));
    let mut doomed: Vec<(Key, u64)> = Vec::new();
    let mut current: Option<KeyBase> = None;
    for entry in t.data.range::<(&[u8], u64)>((lo, hi))? {
        let (k, _) = entry?;
        let (key, inverted) = k.value();
        let ts = !inverted;
        if ts > before.0 {
            continue;
        }
        if current.as_ref().is_none_or(|visited| visited.key != key) {
            current = Some(KeyBase::find(&t.data, key, before, to)?);
        }
        let visited = current.as_ref().expect("set above");
        let doomed_row = match visited.base {
            Some((base, tombstone)) if base == inverted => tombstone && visited.last_inside,
            _ => true,
        };
        if doomed_row {
            doomed.push((key.to_vec(), inverted));
        }
    }
    for (key, inverted) in doomed {
        t.data.remove((key.as_slice(), inverted))?;
    }
    Ok(())
}

/// What a collection pass needs to know of a key it visits.
struct KeyBase {
    key: Key,
    /// The key's base: its newest version at or below the watermark (inverted timestamp, and
    /// whether it is a tombstone).
    base: Option<(u64, bool)>,
    /// Whether the key's last (oldest) row falls inside the pass.
    last_inside: bool,
}

impl KeyBase {
    fn find(
        data: &Table<'_, (&'static [u8], u64), &'static [u8]>,
        key: &[u8],
        before: Timestamp,
        to: Option<&VersionPos>,
    ) -> Result<KeyBase, StoreError> {
        let base = data
            .range((key, !before.0)..=(key, u64::MAX))?
            .next()
            .transpose()?
            .map(|(k, v)| (k.value().1, v.value().first() == Some(&TAG_TOMBSTONE)));
        let last_inside = match to {
            None => true,
            Some(to) => {
                let last = data.range((key, 0u64)..=(key, u64::MAX))?.next_back().transpose()?;
                last.is_some_and(|(k, _)| k.value() < row(to))
            }
        };
        Ok(KeyBase { key: key.to_vec(), base, last_inside })
    }
}

/// One pass of garbage collection over the records of transactions `[from, to)`: finished
/// ones of transactions that started at or below `before` go.
fn collect_records(
    t: &mut ShardTables<'_>,
    before: Timestamp,
    from: Option<&TxnId>,
    to: Option<&TxnId>,
) -> Result<(), StoreError> {
    raise_collected(t, before)?;
    let from = from.map(txn_key);
    let to = to.map(txn_key);
    let lo = from.as_ref().map_or(Bound::Unbounded, |k| Bound::Included(k.as_slice()));
    let hi = to.as_ref().map_or(Bound::Unbounded, |k| Bound::Excluded(k.as_slice()));
    let mut old: Vec<Vec<u8>> = Vec::new();
    for entry in t.records.range::<&[u8]>((lo, hi))? {
        let (k, v) = entry?;
        let txn = decode_txn_key(k.value());
        if txn.start_ts <= before && decode_record(v.value()).finished {
            old.push(k.value().to_vec());
        }
    }
    for key in old {
        t.records.remove(key.as_slice())?;
    }
    Ok(())
}

fn refused(reason: AbortReason, detail: String) -> Applied {
    Applied::Refused { reason, detail }
}

fn stale_term(txn: TxnId, lock_term: u64, entry_term: u64) -> Applied {
    refused(
        AbortReason::LeaderChanged,
        format!("{txn} locked in term {lock_term}, proposed in term {entry_term}"),
    )
}

fn below_closed(txn: TxnId, ts: Timestamp, closed: Timestamp) -> Applied {
    refused(
        AbortReason::LeaderChanged,
        format!("{txn} timestamp {ts} is not above the closed timestamp {closed}"),
    )
}

/// Encodes a transaction id as a fixed-width key whose byte order is the ids' order.
pub fn txn_key(txn: &TxnId) -> [u8; TXN_KEY_LEN] {
    let mut out = [0u8; TXN_KEY_LEN];
    out[0..8].copy_from_slice(&txn.start_ts.0.to_be_bytes());
    out[8..16].copy_from_slice(&txn.coordinator.to_be_bytes());
    out[16..24].copy_from_slice(&txn.incarnation.to_be_bytes());
    out[24..32].copy_from_slice(&txn.seq.to_be_bytes());
    out
}

/// The inverse of [`txn_key`].
pub fn decode_txn_key(bytes: &[u8]) -> TxnId {
    assert_eq!(bytes.len(), TXN_KEY_LEN, "corrupt transaction key");
    let word =
        |i: usize| u64::from_be_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("eight bytes"));
    TxnId { start_ts: Timestamp(word(0)), coordinator: word(1), incarnation: word(2), seq: word(3) }
}

fn encode_value(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        None => vec![TAG_TOMBSTONE],
        Some(bytes) => {
            let mut out = Vec::with_capacity(bytes.len() + 1);
            out.push(TAG_VALUE);
            out.extend_from_slice(bytes);
            out
        }
    }
}

fn decode_value(bytes: &[u8]) -> Option<Value> {
    match bytes.first() {
        Some(&TAG_VALUE) => Some(bytes[1..].to_vec()),
        Some(&TAG_TOMBSTONE) => None,
        other => panic!("corrupt version tag {other:?}"),
    }
}

fn decode_record(bytes: &[u8]) -> Record {
    decode(bytes)
}

/// Encodes a stored record with postcard. Stored records are versioned by their table's
/// layout; a change of layout gets new table names.
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("postcard encodes every stored type")
}

/// Decodes a stored record; a failure means the file is corrupt, which the node cannot survive.
fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> T {
    postcard::from_bytes(bytes).expect("corrupt stored record")
}

/// FNV-1a, 64 bits: a stable hash (unlike `DefaultHasher`, fixed across builds).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use redb::Database;
    use redb::ReadableDatabase;
    use redb::backends::InMemoryBackend;

    use super::*;

    fn db() -> (Database, ShardState) {
        let db = Database::builder()
            .create_with_backend(InMemoryBackend::new())
            .expect("in-memory database");
        let state = ShardState::new(ShardId(0));
        let tx = db.begin_write().expect("write");
        state.create_tables(&tx).expect("tables");
        tx.commit().expect("commit");
        (db, state)
    }

    fn txn(seq: u64) -> TxnId {
        TxnId { start_ts: Timestamp(100 + seq), coordinator: 1, incarnation: 1, seq }
    }

    fn put(key: &str, value: &str) -> Write {
        Write { key: key.as_bytes().to_vec(), value: Some(value.as_bytes().to_vec()) }
    }

    fn apply(db: &Database, state: &ShardState, command: Command) -> Applied {
        let tx = db.begin_write().expect("write");
        let out = state.apply(&tx, &command, 1).expect("apply");
        tx.commit().expect("commit");
        out
    }

    fn read(db: &Database, state: &ShardState, key: &str, ts: Timestamp) -> Option<String> {
        let rtx = db.begin_read().expect("read");
        state
            .read_at(&rtx, key.as_bytes(), ts)
            .expect("read")
            .map(|v| String::from_utf8(v).expect("utf8"))
    }

    #[test]
    fn one_phase_commit_writes_versions_readable_by_timestamp() {
        let (db, state) = db();
        let t1 = txn(1);
        let applied = apply(
            &db,
            &state,
            Command::CommitOnePhase {
                txn: t1,
                writes: vec![put("a", "1")],
                commit_ts: Timestamp(10),
                lock_term: 1,
            },
        );
        assert_eq!(applied, Applied::Committed { commit_ts: Timestamp(10) });
        apply(
            &db,
            &state,
            Command::CommitOnePhase {
                txn: txn(2),
                writes: vec![Write { key: b"a".to_vec(), value: None }],
                commit_ts: Timestamp(20),
                lock_term: 1,
            },
        );
        assert_eq!(read(&db, &state, "a", Timestamp(9)), None);
        assert_eq!(read(&db, &state, "a", Timestamp(10)).as_deref(), Some("1"));
        assert_eq!(read(&db, &state, "a", Timestamp(19)).as_deref(), Some("1"));
        assert_eq!(read(&db, &state, "a", Timestamp::MAX), None);
        // Repeating the entry (a retried proposal) answers the same and changes nothing.
        let again = apply(
            &db,
            &state,
            Command::CommitOnePhase {
                txn: t1,
                writes: vec![put("a", "other")],
                commit_ts: Timestamp(30),
                lock_term: 1,
            },
        );
        assert_eq!(again, Applied::Committed { commit_ts: Timestamp(10) });
        assert_eq!(read(&db, &state, "a", Timestamp::MAX), None);
    }

    #[test]
    fn prepare_then_commit_applies_at_commit_timestamp() {
        let (db, state) = db();
        let t = txn(1);
        let prepared = apply(
            &db,
            &state,
            Command::Prepare {
                txn: t,
                home: ShardId(0),
                writes: vec![put("k", "v")],
                prepare_ts: Timestamp(50),
                lock_term: 1,
            },
        );
        assert_eq!(prepared, Applied::Prepared { prepare_ts: Timestamp(50) });
        assert_eq!(read(&db, &state, "k", Timestamp::MAX), None, "prepared is invisible");
        apply(&db, &state, Command::Commit { txn: t, commit_ts: Timestamp(60) });
        assert_eq!(read(&db, &state, "k", Timestamp(59)), None);
        assert_eq!(read(&db, &state, "k", Timestamp(60)).as_deref(), Some("v"));
        let rtx = db.begin_read().expect("read");
        assert!(state.prepared(&rtx).expect("prepared").is_empty());
    }

    #[test]
    fn a_prepare_repeated_after_its_commit_commits_again_without_a_change() {
        let (db, state) = db();
        let t = txn(1);
        let prepare = |prepare_ts| Command::Prepare {
            txn: t,
            home: ShardId(0),
            writes: vec![put("k", "v"), put("m", "w")],
            prepare_ts: Timestamp(prepare_ts),
            lock_term: 1,
        };
        apply(&db, &state, prepare(50));
        apply(&db, &state, Command::Commit { txn: t, commit_ts: Timestamp(60) });
        let before = state.data_digest(&db.begin_read().expect("read")).expect("digest");
        // A late delivery of the prepare, then the resolver's commit of it: the prepare
        // timestamp is above the commit's.
        assert_eq!(
            apply(&db, &state, prepare(70)),
            Applied::Prepared { prepare_ts: Timestamp(70) }
        );
        apply(&db, &state, Command::Commit { txn: t, commit_ts: Timestamp(60) });
        assert_eq!(state.data_digest(&db.begin_read().expect("read")).expect("digest"), before);
        // One that got its timestamp before the commit was decided: the versions are there.
        apply(&db, &state, prepare(55));
        apply(&db, &state, Command::Commit { txn: t, commit_ts: Timestamp(60) });
        assert_eq!(state.data_digest(&db.begin_read().expect("read")).expect("digest"), before);
        // ... or superseded by a later transaction's.
        let later = Command::CommitOnePhase {
            txn: txn(2),
            writes: vec![put("k", "later")],
            commit_ts: Timestamp(80),
            lock_term: 1,
        };
        apply(&db, &state, later);
        let before = state.data_digest(&db.begin_read().expect("read")).expect("digest");
        apply(&db, &state, prepare(56));
        apply(&db, &state, Command::Commit { txn: t, commit_ts: Timestamp(60) });
        assert_eq!(state.data_digest(&db.begin_read().expect("read")).expect("digest"), before);
        assert_eq!(read(&db, &state, "m", Timestamp::MAX).as_deref(), Some("w"));
        assert_eq!(read(&db, &state, "k", Timestamp::MAX).as_deref(), Some("later"));
        let rtx = db.begin_read().expect("read");
        assert!(state.prepared(&rtx).expect("prepared").is_empty(), "every repeat ended");
    }

    #[test]
    fn commit_at_home_decides_and_writes_but_leaves_the_record_unfinished() {
        let (db, state) = db();
        let t = txn(1);
        let command = |commit_ts| Command::CommitAtHome {
            txn: t,
            writes: vec![put("h", "1")],
            commit_ts: Timestamp(commit_ts),
            lock_term: 1,
        };
        assert_eq!(
            apply(&db, &state, command(40)),
            Applied::Committed { commit_ts: Timestamp(40) }
        );
        assert_eq!(read(&db, &state, "h", Timestamp(40)).as_deref(), Some("1"));
        let record =
            |db: &Database| state.record(&db.begin_read().expect("read"), &t).expect("rec");
        let committed = Decision::Committed { commit_ts: Timestamp(40) };
        assert_eq!(record(&db), Some(Record { decision: committed, finished: false }));
        // A later Decide (the coordinator settling a lost answer) learns the commit.
        let aborted = Decision::Aborted { reason: AbortReason::Unavailable };
        assert_eq!(
            apply(&db, &state, Command::Decide { txn: t, decision: aborted }),
            Applied::Decided(committed)
        );
        // Repeated (a retried proposal): same answer, no second version.
        assert_eq!(
            apply(&db, &state, command(50)),
            Applied::Committed { commit_ts: Timestamp(40) }
        );
        assert_eq!(read(&db, &state, "h", Timestamp(49)).as_deref(), Some("1"));
        apply(&db, &state, Command::CloseAndFinish { ts: Timestamp(45), finished: vec![t] });
        assert_eq!(record(&db), Some(Record { decision: committed, finished: true }));
        let rtx = db.begin_read().expect("read");
        assert_eq!(state.watermarks(&rtx).expect("watermarks").0, Timestamp(45));
        // Decided ABORTED first (a resolver won the race): refused, nothing written.
        let t2 = txn(2);
        apply(&db, &state, Command::Decide { txn: t2, decision: aborted });
        let refused = apply(
            &db,
            &state,
            Command::CommitAtHome {
                txn: t2,
                writes: vec![put("g", "1")],
                commit_ts: Timestamp(60),
                lock_term: 1,
            },
        );
        assert!(matches!(refused, Applied::Refused { .. }), "{refused:?}");
        assert_eq!(read(&db, &state, "g", Timestamp::MAX), None);
    }

    #[test]
    fn decide_is_a_compare_and_set() {
        let (db, state) = db();
        let t = txn(1);
        let aborted = Decision::Aborted { reason: AbortReason::CoordinatorLost };
        let committed = Decision::Committed { commit_ts: Timestamp(5) };
        assert_eq!(
            apply(&db, &state, Command::Decide { txn: t, decision: aborted }),
            Applied::Decided(aborted)
        );
        assert_eq!(
            apply(&db, &state, Command::Decide { txn: t, decision: committed }),
            Applied::Decided(aborted),
            "the first decision wins"
        );
        // A one-phase commit of a transaction someone resolved as aborted is refused.
        let refused = apply(
            &db,
            &state,
            Command::CommitOnePhase {
                txn: t,
                writes: vec![put("x", "1")],
                commit_ts: Timestamp(9),
                lock_term: 1,
            },
        );
        assert!(matches!(refused, Applied::Refused { .. }), "{refused:?}");
        assert_eq!(read(&db, &state, "x", Timestamp::MAX), None);
    }

    #[test]
    fn timestamps_at_or_below_the_closed_timestamp_are_refused() {
        let (db, state) = db();
        apply(&db, &state, Command::Close { ts: Timestamp(100) });
        apply(&db, &state, Command::Close { ts: Timestamp(50) });
        let refused = apply(
            &db,
            &state,
            Command::Prepare {
                txn: txn(1),
                home: ShardId(0),
                writes: vec![put("k", "v")],
                prepare_ts: Timestamp(100),
                lock_term: 1,
            },
        );
        assert!(matches!(refused, Applied::Refused { reason: AbortReason::LeaderChanged, .. }));
        let rtx = db.begin_read().expect("read");
        assert_eq!(
            state.watermarks(&rtx).expect("meta").0,
            Timestamp(100),
            "closed never decreases"
        );
    }

    #[test]
    fn stale_lock_term_is_refused() {
        let (db, state) = db();
        let tx = db.begin_write().expect("write");
        let out = state
            .apply(
                &tx,
                &Command::CommitOnePhase {
                    txn: txn(1),
                    writes: vec![put("a", "1")],
                    commit_ts: Timestamp(10),
                    lock_term: 1,
                },
                2,
            )
            .expect("apply");
        assert!(matches!(out, Applied::Refused { reason: AbortReason::LeaderChanged, .. }));
    }

    #[test]
    fn scan_skips_old_versions_and_tombstones_and_respects_bounds() {
        let (db, state) = db();
        let mut seq = 0;
        let mut commit = |writes: Vec<Write>, ts: u64| {
            seq += 1;
            apply(
                &db,
                &state,
                Command::CommitOnePhase {
                    txn: txn(seq),
                    writes,
                    commit_ts: Timestamp(ts),
                    lock_term: 1,
                },
            );
        };
        commit(vec![put("a", "1"), put("b", "1"), put("c", "1"), put("d", "1")], 10);
        commit(vec![put("b", "2"), Write { key: b"c".to_vec(), value: None }], 20);
        let rtx = db.begin_read().expect("read");
        let rows = |from: &str, to: Option<&str>, limit, ts| {
            state
                .scan(&rtx, from.as_bytes(), to.map(str::as_bytes), limit, Timestamp(ts))
                .expect("scan")
                .into_iter()
                .map(|(k, v)| {
                    format!("{}={}", String::from_utf8_lossy(&k), String::from_utf8_lossy(&v))
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(rows("a", None, 10, 100), ["a=1", "b=2", "d=1"]);
        assert_eq!(rows("a", None, 10, 15), ["a=1", "b=1", "c=1", "d=1"]);
        assert_eq!(rows("b", Some("d"), 10, 100), ["b=2"]);
        assert_eq!(rows("a", None, 2, 100), ["a=1", "b=2"]);
        // The newest version a scan read counts a delete: `c` read as deleted at 20.
        let seen = |from: &str, to: Option<&str>, ts| {
            let to = to.map(str::as_bytes);
            let (rows, newest) = state
                .scan_versions_seen(&rtx, from.as_bytes(), to, 10, Timestamp(ts))
                .expect("scan");
            (rows.len(), newest.0)
        };
        assert_eq!(seen("c", Some("d"), 100), (0, 20), "the delete of c is what was read");
        assert_eq!(seen("a", None, 100), (3, 20));
        assert_eq!(seen("c", Some("d"), 15), (1, 10));
        assert_eq!(seen("e", None, 100), (0, 0), "nothing read");
    }

    #[test]
    fn collect_keeps_the_newest_version_at_or_below_the_watermark() {
        let (db, state) = db();
        for (i, ts) in [10u64, 20, 30].into_iter().enumerate() {
            apply(
                &db,
                &state,
                Command::CommitOnePhase {
                    txn: txn(i as u64),
                    writes: vec![put("k", &ts.to_string())],
                    commit_ts: Timestamp(ts),
                    lock_term: 1,
                },
            );
        }
        apply(&db, &state, Command::Collect { before: Timestamp(25) });
        assert_eq!(read(&db, &state, "k", Timestamp(25)).as_deref(), Some("20"));
        assert_eq!(read(&db, &state, "k", Timestamp(15)), None, "collected");
        assert_eq!(read(&db, &state, "k", Timestamp(30)).as_deref(), Some("30"));
    }

    /// Writes `history` (key, value or delete) at timestamps 10, 20, 30, ... in one-phase
    /// commits; returns the last timestamp.
    fn write_history(db: &Database, state: &ShardState, history: &[(u8, Option<u8>)]) -> u64 {
        let mut ts = 0;
        for (i, (key, value)) in history.iter().enumerate() {
            ts = 10 * (i as u64 + 1);
            let write =
                Write { key: vec![b'a' + key], value: value.map(|v| v.to_string().into_bytes()) };
            let applied = apply(
                db,
                state,
                Command::CommitOnePhase {
                    txn: txn(i as u64),
                    writes: vec![write],
                    commit_ts: Timestamp(ts),
                    lock_term: 1,
                },
            );
            assert_eq!(applied, Applied::Committed { commit_ts: Timestamp(ts) });
        }
        ts
    }

    /// Every key's value as of every timestamp above `before`.
    fn reads_above(
        db: &Database,
        state: &ShardState,
        keys: u8,
        before: u64,
        last: u64,
    ) -> Vec<Option<String>> {
        let mut reads = Vec::new();
        for key in 0..keys {
            let key = ((b'a' + key) as char).to_string();
            for ts in (before + 1..=last + 1).chain([u64::MAX]) {
                reads.push(read(db, state, &key, Timestamp(ts)));
            }
        }
        reads
    }

    /// The versions left at or below `before`, per key.
    fn old_versions(db: &Database, state: &ShardState, before: u64) -> Vec<(Key, Timestamp)> {
        let rtx = db.begin_read().expect("read");
        let snapshot = state.export(&rtx).expect("export");
        snapshot
            .versions
            .into_iter()
            .filter(|(_, ts, _)| ts.0 <= before)
            .map(|(key, ts, _)| (key, ts))
            .collect()
    }

    proptest::proptest! {
        /// Collecting in passes that split the table anywhere (inside a key's versions too)
        /// changes no read above the watermark, and leaves at most one version per key at or
        /// below it. One pass over the whole table also removes tombstone bases.
        #[test]
        fn collection_passes_keep_every_read_above_the_watermark(
            history in proptest::collection::vec(
                (0u8..4, proptest::option::weighted(0.75, 0u8..10)), 1..60),
            before_at in 0usize..60,
            passes in proptest::collection::vec(1usize..12, 0..8),
        ) {
            let (db, state) = db();
            let last = write_history(&db, &state, &history);
            let before = 10 * (before_at.min(history.len()) as u64) + 5;
            let expected = reads_above(&db, &state, 4, before, last);
            let mut from: Option<VersionPos> = None;
            for n in passes.iter().copied().chain([usize::MAX]) {
                let to = {
                    let rtx = db.begin_read().expect("read");
                    state.version_after(&rtx, from.as_ref(), n).expect("position")
                };
                let to = if n == usize::MAX { None } else { to };
                let command = Command::CollectVersions {
                    before: Timestamp(before),
                    from: from.clone(),
                    to: to.clone(),
                };
                proptest::prop_assert_eq!(apply(&db, &state, command), Applied::Done);
                match to {
                    Some(to) => from = Some(to),
                    None => break,
                }
            }
            proptest::prop_assert_eq!(reads_above(&db, &state, 4, before, last), expected.clone());
            let old = old_versions(&db, &state, before);
            let mut keys: Vec<&Key> = old.iter().map(|(key, _)| key).collect();
            keys.dedup();
            proptest::prop_assert_eq!(keys.len(), old.len(), "more than one old version of a key");
            // A last pass over the whole table leaves only live bases.
            let whole = Command::CollectVersions { before: Timestamp(before), from: None, to: None };
            apply(&db, &state, whole);
            proptest::prop_assert_eq!(reads_above(&db, &state, 4, before, last), expected);
            for (key, ts) in old_versions(&db, &state, before) {
                let rtx = db.begin_read().expect("read");
                let version = state.read_version(&rtx, &key, ts).expect("read");
                proptest::prop_assert!(
                    matches!(version, Some((_, Some(_)))),
                    "a tombstone base of {} stayed", display_key(&key)
                );
            }
        }
    }

    /// A random run of transaction commands: one-phase commits, prepares, their commits and
    /// aborts, decides and closes, at rising timestamps; no two prepared transactions write a
    /// key (the lock table sees to that in a real run).
    fn command_run(ops: &[(u8, u8, u8)]) -> Vec<Command> {
        let mut prepared: Vec<(TxnId, u8)> = Vec::new();
        let mut commands = Vec::new();
        for (i, (kind, key, value)) in ops.iter().copied().enumerate() {
            let ts = Timestamp(10 * (i as u64 + 1));
            let t = txn(i as u64);
            let name = format!("k{key}");
            let free = !prepared.iter().any(|(_, k)| *k == key);
            let command = match kind {
                0 if free => Command::CommitOnePhase {
                    txn: t,
                    writes: vec![put(&name, &value.to_string())],
                    commit_ts: ts,
                    lock_term: 1,
                },
                1 if free => {
                    prepared.push((t, key));
                    Command::Prepare {
                        txn: t,
                        home: ShardId(1),
                        writes: vec![put(&name, &value.to_string())],
                        prepare_ts: ts,
                        lock_term: 1,
                    }
                }
                2 if !prepared.is_empty() => {
                    let (t, _) = prepared.remove(usize::from(value) % prepared.len());
                    Command::Commit { txn: t, commit_ts: ts }
                }
                3 if !prepared.is_empty() => {
                    let (t, _) = prepared.remove(usize::from(value) % prepared.len());
                    Command::Abort { txn: t }
                }
                4 => Command::Decide {
                    txn: txn(u64::from(value) % (i as u64 + 1)),
                    decision: Decision::Aborted { reason: AbortReason::User },
                },
                _ => Command::Close { ts: Timestamp(ts.0 - 5) },
            };
            commands.push(command);
        }
        commands
    }

    proptest::proptest! {
        /// A batch applies exactly as its commands would one entry each: the same answers, in
        /// order, and the same state (what lets a leader group proposals into one entry).
        #[test]
        fn a_batch_applies_as_its_commands_one_by_one(
            ops in proptest::collection::vec((0u8..6, 0u8..4, 0u8..10), 1..40),
            sizes in proptest::collection::vec(1usize..6, 1..20),
        ) {
            let commands = command_run(&ops);
            let (alone, alone_state) = db();
            let answers: Vec<Applied> =
                commands.iter().map(|c| apply(&alone, &alone_state, c.clone())).collect();
            let (batched, batched_state) = db();
            let mut batched_answers = Vec::new();
            let mut rest = commands.as_slice();
            for size in sizes.iter().copied().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (now, later) = rest.split_at(size.min(rest.len()));
                rest = later;
                match apply(&batched, &batched_state, Command::Batch(now.to_vec())) {
                    Applied::Batch(results) => batched_answers.extend(results),
                    other => proptest::prop_assert!(false, "a batch answered {other:?}"),
                }
            }
            proptest::prop_assert_eq!(batched_answers, answers);
            let export = |db: &Database, state: &ShardState| {
                state.export(&db.begin_read().expect("read")).expect("export")
            };
            proptest::prop_assert_eq!(
                export(&batched, &batched_state),
                export(&alone, &alone_state)
            );
        }
    }

    /// Commits `txn(i)` at home (its record unfinished), writing `k{i}` at 1000 + i.
    fn commit_at_home(db: &Database, state: &ShardState, i: u64) {
        let command = Command::CommitAtHome {
            txn: txn(i),
            writes: vec![put(&format!("k{i}"), "v")],
            commit_ts: Timestamp(1_000 + i),
            lock_term: 1,
        };
        apply(db, state, command);
    }

    #[test]
    fn record_passes_remove_finished_old_records_only() {
        let (db, state) = db();
        for i in 0..10 {
            commit_at_home(&db, &state, i);
            if i % 2 == 0 {
                apply(&db, &state, Command::Finish { txn: txn(i) });
            }
        }
        // txn(i) started at 100 + i; collect records that started at or below 106, in passes.
        let before = Timestamp(106);
        let mut from = None;
        loop {
            let to = {
                let rtx = db.begin_read().expect("read");
                state.record_after(&rtx, from.as_ref(), 3).expect("position")
            };
            apply(&db, &state, Command::CollectRecords { before, from, to });
            match to {
                Some(to) => from = Some(to),
                None => break,
            }
        }
        let rtx = db.begin_read().expect("read");
        for i in 0..10 {
            let kept = state.record(&rtx, &txn(i)).expect("read").is_some();
            let collected = i % 2 == 0 && 100 + i <= 106;
            assert_eq!(kept, !collected, "record of txn {i}");
        }
        assert_eq!(state.watermarks(&rtx).expect("read").1, before);
    }

    #[test]
    fn unfinished_records_are_the_old_committed_ones_left_unfinished() {
        let (db, state) = db();
        for i in 0..6 {
            commit_at_home(&db, &state, i);
        }
        apply(&db, &state, Command::Finish { txn: txn(1) });
        let aborted = Decision::Aborted { reason: AbortReason::CoordinatorLost };
        apply(&db, &state, Command::Decide { txn: txn(7), decision: aborted });
        let rtx = db.begin_read().expect("read");
        // txn(i) started at 100 + i and committed at 1,000 + i: the ones decided at or below
        // 1,004, not finished, oldest first.
        let found = state.unfinished_records(&rtx, Timestamp(1_004), 10).expect("read");
        let expected = [0, 2, 3, 4].map(|i| (txn(i), Timestamp(1_000 + i)));
        assert_eq!(found, expected.to_vec());
        let limited = state.unfinished_records(&rtx, Timestamp(2_000), 2).expect("read");
        assert_eq!(limited, expected[..2].to_vec(), "at most `limit`");
        // Old transactions, but decided after `before`: their coordinators may still wait.
        let recent = state.unfinished_records(&rtx, Timestamp(104), 10).expect("read");
        assert_eq!(recent, Vec::new(), "a record is picked by the age of its decision");
    }

    #[test]
    fn a_commit_at_home_finished_by_home_and_collected_is_not_settled_aborted() {
        let (db, state) = db();
        // txn(1) committed at home at 1,001; home finished the record itself (an orphan, its
        // coordinator's answer lost) and a pass collected it.
        commit_at_home(&db, &state, 1);
        apply(&db, &state, Command::Finish { txn: txn(1) });
        let before = Timestamp(2_000);
        apply(&db, &state, Command::CollectRecords { before, from: None, to: None });
        let rtx = db.begin_read().expect("read");
        assert_eq!(state.record(&rtx, &txn(1)).expect("read"), None, "the record was collected");
        drop(rtx);
        // The coordinator, still settling, asks with the one-phase rule: "forgotten", nothing
        // written. (A plain Decide would record ABORTED for a transaction every shard applied.)
        let aborted = Decision::Aborted { reason: AbortReason::Unavailable };
        let settle = Command::DecideOnePhase { txn: txn(1), decision: aborted };
        assert!(matches!(apply(&db, &state, settle), Applied::Forgotten { .. }));
        let rtx = db.begin_read().expect("read");
        assert_eq!(state.record(&rtx, &txn(1)).expect("read"), None, "no record written");
        drop(rtx);
        assert_eq!(read(&db, &state, "k1", Timestamp::MAX).as_deref(), Some("v"));
    }

    #[test]
    fn a_one_phase_retry_after_its_record_was_collected_is_not_called_aborted() {
        let (db, state) = db();
        // txn(1) commits in one phase (its record finished at once); a pass collects the record.
        let first = Command::CommitOnePhase {
            txn: txn(1),
            writes: vec![put("k", "first")],
            commit_ts: Timestamp(102),
            lock_term: 1,
        };
        assert!(matches!(apply(&db, &state, first), Applied::Committed { .. }));
        let before = Timestamp(105);
        apply(&db, &state, Command::CollectRecords { before, from: None, to: None });
        // Its retry (the first answer was lost) can no longer tell: "forgotten", not refused
        // (a refusal makes the coordinator record ABORTED for a committed transaction).
        let retry = Command::CommitOnePhase {
            txn: txn(1),
            writes: vec![put("k", "retry")],
            commit_ts: Timestamp(1_000),
            lock_term: 1,
        };
        assert!(matches!(apply(&db, &state, retry), Applied::Forgotten { .. }));
        // Nor does the compare-and-set that settles a refused one-phase commit record ABORTED.
        let aborted = Decision::Aborted { reason: AbortReason::LeaderChanged };
        let settle = Command::DecideOnePhase { txn: txn(1), decision: aborted };
        assert!(matches!(apply(&db, &state, settle), Applied::Forgotten { .. }));
        assert_eq!(read(&db, &state, "k", Timestamp::MAX).as_deref(), Some("first"));
        let rtx = db.begin_read().expect("read");
        assert_eq!(state.record(&rtx, &txn(1)).expect("read"), None, "no record written");
        drop(rtx);
        // Above the watermark it is an ordinary Decide.
        let young = Command::DecideOnePhase { txn: txn(7), decision: aborted };
        assert_eq!(apply(&db, &state, young), Applied::Decided(aborted));
        let rtx = db.begin_read().expect("read");
        assert!(state.record(&rtx, &txn(7)).expect("read").is_some(), "ABORTED recorded");
    }

    #[test]
    fn a_commit_after_its_aborted_record_was_collected_is_refused() {
        let (db, state) = db();
        // A resolver decided txn(1) ABORTED (finished at once); a pass collected the record.
        let aborted = Decision::Aborted { reason: AbortReason::CoordinatorLost };
        apply(&db, &state, Command::Decide { txn: txn(1), decision: aborted });
        let before = Timestamp(105);
        apply(&db, &state, Command::CollectRecords { before, from: None, to: None });
        let rtx = db.begin_read().expect("read");
        assert_eq!(state.record(&rtx, &txn(1)).expect("read"), None, "the record was collected");
        drop(rtx);
        // Its coordinator's late commit at home must not bring it back to life, nor may a
        // one-phase commit (which answers that the outcome is no longer known).
        let late_at_home = Command::CommitAtHome {
            txn: txn(1),
            writes: vec![put("k", "late")],
            commit_ts: Timestamp(1_000),
            lock_term: 1,
        };
        let applied = apply(&db, &state, late_at_home);
        assert!(
            matches!(applied, Applied::Refused { reason: AbortReason::CoordinatorLost, .. }),
            "{applied:?}"
        );
        let late_one_phase = Command::CommitOnePhase {
            txn: txn(1),
            writes: vec![put("k", "late")],
            commit_ts: Timestamp(1_001),
            lock_term: 1,
        };
        let applied = apply(&db, &state, late_one_phase);
        assert!(matches!(applied, Applied::Forgotten { .. }), "{applied:?}");
        assert_eq!(read(&db, &state, "k", Timestamp::MAX), None);
        // A transaction younger than the watermark commits as usual.
        let young = Command::CommitOnePhase {
            txn: txn(6),
            writes: vec![put("k", "young")],
            commit_ts: Timestamp(1_002),
            lock_term: 1,
        };
        assert!(matches!(apply(&db, &state, young), Applied::Committed { .. }));
    }

    #[test]
    fn export_import_round_trips_and_digests_agree() {
        let (db, state) = db();
        apply(
            &db,
            &state,
            Command::CommitOnePhase {
                txn: txn(1),
                writes: vec![put("a", "1")],
                commit_ts: Timestamp(10),
                lock_term: 1,
            },
        );
        apply(
            &db,
            &state,
            Command::Prepare {
                txn: txn(2),
                home: ShardId(3),
                writes: vec![put("b", "2")],
                prepare_ts: Timestamp(20),
                lock_term: 1,
            },
        );
        let rtx = db.begin_read().expect("read");
        let snapshot = state.export(&rtx).expect("export");
        let digest = state.data_digest(&rtx).expect("digest");
        let (other, other_state) = self::db();
        let tx = other.begin_write().expect("write");
        other_state.import(&tx, &snapshot).expect("import");
        tx.commit().expect("commit");
        let rtx = other.begin_read().expect("read");
        assert_eq!(other_state.export(&rtx).expect("export"), snapshot);
        assert_eq!(other_state.data_digest(&rtx).expect("digest"), digest);
        // A close changes the closed timestamp, not the data digest; a write changes it.
        apply(&other, &other_state, Command::Close { ts: Timestamp(30) });
        let rtx = other.begin_read().expect("read");
        assert_eq!(other_state.data_digest(&rtx).expect("digest"), digest);
        apply(
            &other,
            &other_state,
            Command::CommitOnePhase {
                txn: txn(3),
                writes: vec![put("c", "3")],
                commit_ts: Timestamp(40),
                lock_term: 1,
            },
        );
        let rtx = other.begin_read().expect("read");
        assert_ne!(other_state.data_digest(&rtx).expect("digest"), digest);
    }

    #[test]
    #[should_panic(expected = "lock table bug")]
    fn conflicting_prepared_writes_are_a_bug() {
        let (db, state) = db();
        for seq in [1, 2] {
            apply(
                &db,
                &state,
                Command::Prepare {
                    txn: txn(seq),
                    home: ShardId(0),
                    writes: vec![put("k", "v")],
                    prepare_ts: Timestamp(10 + seq),
                    lock_term: 1,
                },
            );
        }
    }

    #[test]
    fn txn_keys_sort_like_txn_ids() {
        let a = txn(1);
        let b = TxnId { start_ts: Timestamp(1000), ..txn(0) };
        assert!(a < b);
        assert!(txn_key(&a) < txn_key(&b));
        assert_eq!(decode_txn_key(&txn_key(&b)), b);
    }
}
