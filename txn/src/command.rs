//! The commands a shard replicates through its Raft log, and what applying one answers.
//!
//! Every change to a shard's state is one of these, applied in log order by every replica
//! ([`crate::state::ShardState::apply`]), so replicas stay identical. The transaction protocol
//! (docs/transactions.md) maps onto them:
//!
//! ```text
//!   one shard touched:   CommitOnePhase{writes, commit_ts}         record COMMITTED + versions
//!   several shards:      Prepare{writes, prepare_ts} at each other write participant (phase 1)
//!                        CommitAtHome{writes, commit_ts} at the home shard: the decision and
//!                          home's versions in one entry; or Decide{Aborted} there
//!                        Commit{commit_ts} | Abort at each other participant     (phase 2)
//!                        Finish at home, once they all did
//!   any time:            Close{ts}   the leader's promise: no commit at or below ts from now on
//!                        (CloseAndFinish{ts, finished} also carries Finish of those records)
//! ```
//!
//! Apply is deterministic: the answer depends only on the shard's state and the command (and the
//! term of the entry, for the lock-term check), never on time or on which replica applies it.

use std::fmt;

use serde::Deserialize;
use serde::Serialize;

use crate::types::Key;
use crate::types::ShardId;
use crate::types::Timestamp;
use crate::types::TxnId;
use crate::types::Value;
use crate::types::display_key;

/// One buffered write: a new value, or a delete (a tombstone version).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    /// The key written.
    pub key: Key,
    /// The new value; `None` deletes the key.
    pub value: Option<Value>,
}

/// Why a transaction aborted. The wire names (`Display`) are part of the client contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AbortReason {
    /// The client asked for it.
    User,
    /// The youngest transaction on a deadlock cycle.
    Deadlock,
    /// A lock wait outlasted the limit.
    LockTimeout,
    /// A participant's leader changed while the transaction held unprepared locks there.
    LeaderChanged,
    /// Its coordinator disappeared and someone resolved the transaction through its record.
    CoordinatorLost,
    /// Idle longer than the limit.
    IdleTimeout,
    /// A shard was unreachable in time.
    Unavailable,
    /// Over a size limit.
    TooLarge,
    /// Ran longer than its record could be kept (half the retention window): it may not
    /// commit any more.
    TooOld,
}

impl AbortReason {
    /// True when running the same transaction again may well succeed.
    pub fn is_retryable(self) -> bool {
        !matches!(self, AbortReason::User | AbortReason::TooLarge)
    }

    /// The contract name, as in `ABORTED: DEADLOCK`.
    pub fn name(self) -> &'static str {
        match self {
            AbortReason::User => "USER",
            AbortReason::Deadlock => "DEADLOCK",
            AbortReason::LockTimeout => "LOCK_TIMEOUT",
            AbortReason::LeaderChanged => "LEADER_CHANGED",
            AbortReason::CoordinatorLost => "COORDINATOR_LOST",
            AbortReason::IdleTimeout => "IDLE_TIMEOUT",
            AbortReason::Unavailable => "UNAVAILABLE",
            AbortReason::TooLarge => "TOO_LARGE",
            AbortReason::TooOld => "TOO_OLD",
        }
    }
}

impl fmt::Display for AbortReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The fate of a transaction, as its record holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Committed at this timestamp: its writes are versions at `commit_ts`.
    Committed {
        /// The timestamp of every version it wrote.
        commit_ts: Timestamp,
    },
    /// Aborted: none of its writes will ever be visible.
    Aborted {
        /// Why.
        reason: AbortReason,
    },
}

/// A transaction a participant has voted YES for and not yet heard the decision of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedTxn {
    /// The shard that holds the transaction's record (where its fate is decided).
    pub home: ShardId,
    /// The writes, applied as versions at the commit timestamp if it commits.
    pub writes: Vec<Write>,
    /// This participant's vote timestamp; the commit timestamp is at least this.
    pub prepare_ts: Timestamp,
}

/// A command replicated through one shard's Raft log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A transaction that touched only this shard (which is its home): records COMMITTED and
    /// writes its versions in one entry. Refused if its record already says ABORTED (someone
    /// resolved it) or if `commit_ts` is not above the closed timestamp.
    CommitOnePhase {
        /// The transaction.
        txn: TxnId,
        /// Its writes (may be empty for a transaction that only read).
        writes: Vec<Write>,
        /// The commit timestamp chosen by the leader.
        commit_ts: Timestamp,
        /// The leader term in which its locks were granted (must be the entry's term).
        lock_term: u64,
    },
    /// Phase 1: persist the writes and the exclusive locks that protect them; vote YES.
    /// Refused if `prepare_ts` is not above the closed timestamp or the lock term is stale.
    Prepare {
        /// The transaction.
        txn: TxnId,
        /// The shard holding its record.
        home: ShardId,
        /// Its writes on this shard.
        writes: Vec<Write>,
        /// The vote timestamp chosen by the leader.
        prepare_ts: Timestamp,
        /// The leader term in which its locks were granted (must be the entry's term).
        lock_term: u64,
    },
    /// Phase 2, committed: apply a prepared transaction's writes at `commit_ts`.
    Commit {
        /// The transaction.
        txn: TxnId,
        /// Its commit timestamp (at least this shard's prepare_ts).
        commit_ts: Timestamp,
    },
    /// Phase 2, aborted: forget a prepared transaction.
    Abort {
        /// The transaction.
        txn: TxnId,
    },
    /// The decision, at the home shard: compare-and-set of the record from absent to
    /// `decision`. Whoever applies first wins; later ones learn the winner's decision.
    Decide {
        /// The transaction.
        txn: TxnId,
        /// The proposed fate.
        decision: Decision,
    },
    /// At the home shard, after every participant applied phase 2 of a committed transaction:
    /// its record is no longer needed by participants, only by a client asking `TxnStatus`, so
    /// it becomes collectable once older than the retention window.
    Finish {
        /// The transaction.
        txn: TxnId,
    },
    /// The leader promises that no transaction will prepare or commit on this shard at or below
    /// `ts` (closed timestamps, for causal snapshot reads on followers).
    Close {
        /// The closed timestamp.
        ts: Timestamp,
    },
    /// The commit of a transaction that also wrote at other shards, at its home, once those
    /// have prepared: records COMMITTED and writes the home's versions in one entry (the
    /// decision and home's phase 2 together). The record stays unfinished until the other
    /// participants have applied phase 2 (`Finish`). Refused like `CommitOnePhase`.
    CommitAtHome {
        /// The transaction.
        txn: TxnId,
        /// Its writes on this shard.
        writes: Vec<Write>,
        /// The commit timestamp: at least every other participant's prepare_ts.
        commit_ts: Timestamp,
        /// The leader term in which its locks were granted (must be the entry's term).
        lock_term: u64,
    },
    /// `Close{ts}` and `Finish` of each of `finished`, in one entry: the close loop carries
    /// the records finished since its last entry, so finishing costs no entry of its own.
    CloseAndFinish {
        /// The closed timestamp (zero: nothing new to close).
        ts: Timestamp,
        /// Transactions whose records are finished.
        finished: Vec<TxnId>,
    },
    /// Garbage collection of the whole shard in one entry: removes versions shadowed by a
    /// newer version at or below `before`, tombstones at or below `before` (with every older
    /// version), and finished records of transactions that started at or below `before`.
    /// Snapshots at or below `before` are no longer served. Leaders now propose the bounded
    /// passes below instead (one entry over a big table held the node's state writer for
    /// seconds); this one is still applied from logs written before them.
    Collect {
        /// Snapshots below this timestamp are no longer served.
        before: Timestamp,
    },
    /// One bounded pass of garbage collection over the versions (what `Collect` does to them)
    /// in the rows from `from` (inclusive) to `to` (exclusive; `None`: the table's ends), and
    /// raises the watermark to `before`. A leader collects a shard in passes of about
    /// `COLLECT_PASS_ROWS` rows each, so no entry holds the node's state writer for long.
    CollectVersions {
        /// Snapshots below this timestamp are no longer served.
        before: Timestamp,
        /// The first row of the pass (`None`: the first of the table).
        from: Option<VersionPos>,
        /// The row after the pass (`None`: to the end of the table).
        to: Option<VersionPos>,
    },
    /// One bounded pass of garbage collection over the records (what `Collect` does to them)
    /// of the transactions from `from` (inclusive) to `to` (exclusive), in table order.
    CollectRecords {
        /// Finished records of transactions that started at or below this go.
        before: Timestamp,
        /// The first transaction of the pass (`None`: the first of the table).
        from: Option<TxnId>,
        /// The transaction after the pass (`None`: to the end of the table).
        to: Option<TxnId>,
    },
    /// Several commands proposed together while the log was busy (group commit: one entry
    /// instead of one each), applied in order as if they were consecutive entries. Answers
    /// [`Applied::Batch`], one result per command. Never holds a batch.
    Batch(Vec<Command>),
    /// [`Command::Decide`] for a transaction that tried to commit in one phase, after its
    /// commit was refused or went unanswered: as Decide, except that with no record and a start
    /// at or below the collected watermark it writes nothing and answers
    /// [`Applied::Forgotten`], since the missing record may be the COMMITTED one of an earlier
    /// attempt (finished at once, so collectable). Last of the variants, so that logs written
    /// before it still decode.
    DecideOnePhase {
        /// The transaction.
        txn: TxnId,
        /// The proposed fate.
        decision: Decision,
    },
}

/// Where a version sits in a shard's data table: its key and commit timestamp (rows sort by
/// key, then newest first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionPos {
    /// The key.
    pub key: Key,
    /// The version's commit timestamp.
    pub ts: Timestamp,
}

impl Command {
    /// `Some(ts)` if applying this command changes nothing but the closed timestamp, raising it
    /// to `ts` (a `Close`, or a `CloseAndFinish` that finishes nothing): it answers
    /// [`Applied::Done`] whatever the state, so a state machine may apply it in memory.
    pub fn only_closes(&self) -> Option<Timestamp> {
        match self {
            Command::Close { ts } => Some(*ts),
            Command::CloseAndFinish { ts, finished } if finished.is_empty() => Some(*ts),
            _ => None,
        }
    }

    /// The bytes of keys and values this command carries (what makes an entry big).
    pub fn payload_bytes(&self) -> usize {
        let writes = |writes: &[Write]| {
            writes.iter().map(|w| w.key.len() + w.value.as_ref().map_or(0, |v| v.len())).sum()
        };
        match self {
            Command::CommitOnePhase { writes: w, .. }
            | Command::CommitAtHome { writes: w, .. }
            | Command::Prepare { writes: w, .. } => writes(w),
            Command::Batch(commands) => commands.iter().map(Command::payload_bytes).sum(),
            _ => 0,
        }
    }
}

/// What applying a command answers (to the proposer; every replica computes the same).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// Done (Commit, Abort, Close, Collect; also repeated phase-2 commands).
    Done,
    /// A one-phase commit took effect at this timestamp.
    Committed {
        /// The commit timestamp.
        commit_ts: Timestamp,
    },
    /// Prepared (or already prepared before, at this timestamp): a YES vote.
    Prepared {
        /// The vote timestamp.
        prepare_ts: Timestamp,
    },
    /// A Prepare, CommitOnePhase or CommitAtHome was refused: a NO vote, nothing changed.
    Refused {
        /// Why: becomes the abort reason.
        reason: AbortReason,
        /// For people.
        detail: String,
    },
    /// A CommitOnePhase or DecideOnePhase of a transaction that has no record and started at
    /// or below the collected watermark: nothing changed, and whether an earlier attempt of it
    /// committed is no longer known here (a one-phase commit's record is finished at once, so
    /// it may have been collected). Its coordinator must answer "unknown", never ABORTED.
    Forgotten {
        /// For people.
        detail: String,
    },
    /// The record's decision after a Decide (the proposer's, or an earlier winner's).
    Decided(Decision),
    /// The results of a [`Command::Batch`], in its commands' order.
    Batch(Vec<Applied>),
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::CommitOnePhase { txn, writes, commit_ts, .. } => {
                write!(f, "commit-1pc {txn} @{commit_ts} {}", WritesDisplay(writes))
            }
            Command::CommitAtHome { txn, writes, commit_ts, .. } => {
                write!(f, "commit-home {txn} @{commit_ts} {}", WritesDisplay(writes))
            }
            Command::Prepare { txn, home, writes, prepare_ts, .. } => {
                write!(f, "prepare {txn} home={home} @{prepare_ts} {}", WritesDisplay(writes))
            }
            Command::Commit { txn, commit_ts } => write!(f, "commit {txn} @{commit_ts}"),
            Command::Abort { txn } => write!(f, "abort {txn}"),
            Command::Decide { txn, decision } => write!(f, "decide {txn} {decision:?}"),
            Command::DecideOnePhase { txn, decision } => {
                write!(f, "decide-1pc {txn} {decision:?}")
            }
            Command::Finish { txn } => write!(f, "finish {txn}"),
            Command::Close { ts } => write!(f, "close {ts}"),
            Command::CloseAndFinish { ts, finished } => {
                write!(f, "close {ts} and finish {} records", finished.len())
            }
            Command::Collect { before } => write!(f, "collect <{before}"),
            Command::CollectVersions { before, from, to } => {
                let pos = |p: &Option<VersionPos>| match p {
                    Some(p) => format!("{}@{}", display_key(&p.key), p.ts),
                    None => "end".to_string(),
                };
                write!(f, "collect versions <{before} [{}, {})", pos(from), pos(to))
            }
            Command::CollectRecords { before, from, to } => {
                let txn = |t: &Option<TxnId>| t.map_or("end".to_string(), |t| t.to_string());
                write!(f, "collect records <{before} [{}, {})", txn(from), txn(to))
            }
            Command::Batch(commands) => {
                write!(f, "batch of {}:", commands.len())?;
                for command in commands {
                    write!(f, " {{{command}}}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// Renders a write set compactly for logs.
struct WritesDisplay<'a>(&'a [Write]);

impl fmt::Display for WritesDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, write) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, " ")?;
            }
            match &write.value {
                Some(value) => write!(f, "{}={}B", display_key(&write.key), value.len())?,
                None => write!(f, "{}=del", display_key(&write.key))?,
            }
        }
        write!(f, "]")
    }
}
