//! The transaction messages nodes send each other over `peer.v1.Peer/Mux` (`replication::mux`).
//!
//! Each is one [`Envelope`]: the sender's hybrid logical clock (the receiver observes it, so
//! causality carries across nodes) and a [`PeerRequest`]; the answer is an envelope with a
//! [`PeerReply`]. Encoded with postcard behind a version byte (`replication::codec`).
//!
//! Who sends what:
//!
//! ```text
//!   coordinator ──Lock/Prepare/CommitOnePhase/Finalize/Release──► shard leader (participant)
//!   coordinator ──CommitAtHome (the decision with home's writes)─► home shard leader
//!   coordinator ──Decide/Finish/Status──────────────────────────► home shard leader
//!   client node ──Single (one-statement READ/WRITE/SCAN)────────► shard leader
//!   shard leader ──ProbeTxn──► holder's coordinator ──ProbeShard──► shard where it waits
//!   shard leader ──Confirm (a deadlock, edge by edge)──► next edge's shard leader
//!   shard leader ──Alive (is this holder still yours?)──► holder's coordinator
//! ```

use replication::types::LogId;
use serde::Deserialize;
use serde::Serialize;
use txn::command::AbortReason;
use txn::command::Decision;
use txn::command::Write;
use txn::deadlock::Confirmation;
use txn::deadlock::Probe;
use txn::lock::LockMode;
use txn::lock::LockSpan;
use txn::types::Key;
use txn::types::NodeId;
use txn::types::ShardId;
use txn::types::Timestamp;
use txn::types::TxnId;
use txn::types::Value;

/// A message with the sender's clock.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// The sender's hybrid logical clock when it sent the message.
    pub clock: Timestamp,
    /// The message.
    pub body: T,
}

/// What a transaction statement locks at one shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockOp {
    /// READ: a shared lock on the key (exclusive `for_update`), and its value.
    Read {
        /// The key.
        key: Key,
        /// Lock it exclusively (the transaction means to write it: no S->X upgrade later).
        for_update: bool,
    },
    /// WRITE or DELETE: an exclusive lock on the key (the value stays at the coordinator).
    Write {
        /// The key.
        key: Key,
    },
    /// SCAN: a shared range lock on `[from, to)`, and up to `limit` rows.
    Scan {
        /// Inclusive start.
        from: Key,
        /// Exclusive end (`None`: end of the shard... and of the key space).
        to: Option<Key>,
        /// The most rows to return.
        limit: usize,
    },
}

impl LockOp {
    /// What it locks, and how.
    pub fn lock(&self) -> (LockSpan, LockMode) {
        match self {
            LockOp::Read { key, for_update: false } => {
                (LockSpan::Key(key.clone()), LockMode::Shared)
            }
            LockOp::Read { key, for_update: true } | LockOp::Write { key } => {
                (LockSpan::Key(key.clone()), LockMode::Exclusive)
            }
            LockOp::Scan { from, to, .. } => {
                (LockSpan::Range { from: from.clone(), to: to.clone() }, LockMode::Shared)
            }
        }
    }
}

/// A lock request for a statement of an interactive transaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockRequest {
    /// The participant shard.
    pub shard: ShardId,
    /// The transaction.
    pub txn: TxnId,
    /// The leader term of the transaction's earlier locks at this shard, if it has any: the
    /// request fails with LEADER_CHANGED if the leader changed since (those locks are gone).
    pub lock_term: Option<u64>,
    /// What to lock.
    pub op: LockOp,
}

/// Phase 1 (or the one-phase commit) at one participant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrepareRequest {
    /// The participant shard.
    pub shard: ShardId,
    /// The transaction.
    pub txn: TxnId,
    /// The shard holding the transaction's record.
    pub home: ShardId,
    /// The term in which all its locks here were granted; `None` when it holds none here yet
    /// (every lock it needs here is in `acquire`).
    pub lock_term: Option<u64>,
    /// Keys to lock exclusively first, in order, waiting as a statement would (writes sent with
    /// END): the lock requests ride on the prepare instead of a round trip each.
    pub acquire: Vec<Key>,
    /// How long the `acquire` locks may wait here, all of them together, in milliseconds: what
    /// is left of the transaction's END lock budget (`lock_wait_ms` from the start of END).
    pub wait_ms: u64,
    /// Its writes at this shard (empty: a read-only participant).
    pub writes: Vec<Write>,
    /// Whether the participant releases the transaction's shared locks here once it votes.
    /// False while another participant may still take locks for it (writes sent with END):
    /// strict two-phase locking takes every lock before it releases any, so those shared
    /// locks wait for the decision (phase 2 releases them).
    pub release_shared: bool,
    /// Every lock the coordinator believes the transaction holds here; the participant checks
    /// each is still held (a lock lost to eviction or a leader change means NO).
    pub locks: Vec<(LockSpan, LockMode)>,
}

/// A one-statement operation, executed entirely at the shard leader.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SingleOp {
    /// READ outside a transaction.
    Read {
        /// The key.
        key: Key,
    },
    /// WRITE or DELETE outside a transaction.
    Write {
        /// The key.
        key: Key,
        /// The value; `None` deletes.
        value: Option<Value>,
    },
    /// SCAN outside a transaction, for the part of the range this shard holds.
    Scan {
        /// Inclusive start.
        from: Key,
        /// Exclusive end.
        to: Option<Key>,
        /// The most rows.
        limit: usize,
    },
}

/// A request from one node to another.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    /// Take a lock for a statement (and read, for READ and SCAN).
    Lock(LockRequest),
    /// Phase 1: vote.
    Prepare(PrepareRequest),
    /// The whole commit of a transaction that wrote only at its home shard.
    CommitOnePhase(PrepareRequest),
    /// The commit at the home shard of a transaction that also wrote elsewhere, once every
    /// other participant voted YES with a prepare timestamp at most `after`.
    CommitAtHome {
        /// Home's part.
        request: PrepareRequest,
        /// The largest prepare timestamp of the other participants.
        after: Timestamp,
    },
    /// Phase 2: apply the decision at a participant and release its locks. `prepared` is false
    /// when the participant certainly did not prepare (nothing to replicate, just release).
    Finalize {
        /// The participant.
        shard: ShardId,
        /// The transaction.
        txn: TxnId,
        /// The decision.
        decision: Decision,
        /// Whether the participant may have prepared.
        prepared: bool,
    },
    /// Release an unprepared transaction's locks (abort before prepare).
    Release {
        /// The participant.
        shard: ShardId,
        /// The transaction.
        txn: TxnId,
    },
    /// Compare-and-set the record at the home shard.
    Decide {
        /// The home shard.
        shard: ShardId,
        /// The transaction.
        txn: TxnId,
        /// The proposed decision.
        decision: Decision,
        /// The transaction tried to commit in one phase: with no record below the collected
        /// watermark the answer is `TooOld`, not the decision (`Command::DecideOnePhase`).
        one_phase: bool,
    },
    /// Mark a committed record finished (every participant applied phase 2).
    Finish {
        /// The home shard.
        shard: ShardId,
        /// The transaction.
        txn: TxnId,
    },
    /// The record of a transaction; with `resolve`, an undecided one is decided ABORTED.
    Status {
        /// The home shard.
        shard: ShardId,
        /// The transaction.
        txn: TxnId,
        /// Decide it if undecided.
        resolve: bool,
        /// The asker holds the transaction prepared (a participant's resolver), so it cannot
        /// have committed and had its record collected: a record missing below the collected
        /// watermark then means ABORTED. Anyone else hears `TooOld` there.
        prepared_here: bool,
    },
    /// A one-statement operation, as a transaction of its own.
    Single {
        /// The shard.
        shard: ShardId,
        /// Its transaction id, minted by the sender once per operation: a second delivery of
        /// the request (`Peers::call_shard` resends a call whose stream broke) is then the
        /// same transaction, and a write commits at most once.
        txn: TxnId,
        /// What to do.
        op: SingleOp,
    },
    /// A deadlock probe for the shard where its last holder waits.
    ProbeShard {
        /// The shard.
        shard: ShardId,
        /// The probe.
        probe: Probe,
    },
    /// A detected deadlock being confirmed around its cycle; the victim's shard aborts the
    /// victim's wait if every edge still exists (no phantom aborts).
    Confirm {
        /// The shard where the next edge to check waits.
        shard: ShardId,
        /// The confirmation.
        confirmation: Confirmation,
    },
    /// To a coordinator: a probe whose last holder it coordinates.
    ProbeTxn {
        /// The probe.
        probe: Probe,
    },
    /// To a coordinator: are these transactions still running?
    Alive {
        /// The transactions.
        txns: Vec<TxnId>,
    },
    /// This node's current lock waits (for STATUS and LOCKS).
    Waits,
    /// A snapshot read at any replica (causal consistency): served once the replica's safe
    /// time reaches the snapshot, without locks.
    SnapshotRead {
        /// The shard.
        shard: ShardId,
        /// Which snapshot.
        at: SnapshotAt,
        /// What to read.
        op: SnapshotOp,
        /// How long the replica may wait for its safe time to reach the snapshot.
        wait_ms: u64,
    },
    /// The state of this node's replica of a shard (for convergence and leak checks).
    Inspect {
        /// The shard.
        shard: ShardId,
    },
    /// A replica's Raft term and last log id, for a replica that starts on a fresh data
    /// directory (`participant::rejoin`). Answered `RaftState`.
    RaftState {
        /// The shard.
        shard: ShardId,
    },
    /// To a shard's leader, from a replica serving causal reads: keep closed timestamps fresh
    /// (`participant::close_demand`). Answered `Done` by any replica.
    WantCloses {
        /// The shard.
        shard: ShardId,
    },
    /// Take the exclusive locks of writes sent with END (`PrepareRequest::acquire`) before
    /// any participant votes, after checking that the transaction's earlier locks there are
    /// still held; nothing is replicated. Answered `Locked` with the term of the grants.
    Acquire(PrepareRequest),
}

/// A replica's state, as [`PeerRequest::Inspect`] reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspection {
    /// The index of the last applied log entry.
    pub applied: u64,
    /// The digest of the replica's data, without its closed timestamp (equal on replicas at
    /// the same applied index, and on replicas whose logs differ only by `Close` entries).
    pub digest: u64,
    /// Undecided prepared transactions in the state machine.
    pub prepared: usize,
    /// True if this replica leads the shard (and is ready).
    pub leading: bool,
    /// Transactions holding or waiting for locks (leader only).
    pub lock_holders: usize,
    /// Snapshots of the shard this node has exported to send to followers since it started.
    pub snapshots_exported: u64,
}

/// Which snapshot a snapshot read reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotAt {
    /// Exactly this timestamp (a read-only transaction's snapshot).
    Exactly(Timestamp),
    /// The replica's freshest safe snapshot, but not below this (the session's causal token).
    AtLeast(Timestamp),
}

/// What a snapshot read reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotOp {
    /// One key.
    Read {
        /// The key.
        key: Key,
    },
    /// Up to `limit` rows of `[from, to)`.
    Scan {
        /// Inclusive start.
        from: Key,
        /// Exclusive end.
        to: Option<Key>,
        /// The most rows.
        limit: usize,
    },
}

/// What a READ or SCAN saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadResult {
    /// The rows (one for READ if found).
    pub rows: Vec<(Key, Value)>,
    /// The largest commit timestamp among the versions read (for causal tokens).
    pub version_ts: Timestamp,
    /// For a snapshot read, the snapshot it was served at (zero for a locking read).
    pub snapshot_ts: Timestamp,
    /// For a locking SCAN that stopped at its limit: the range lock it holds ends here (just
    /// past its last row) instead of at the end it asked for ([`LockTable::narrow_range`]).
    ///
    /// [`LockTable::narrow_range`]: txn::lock::LockTable::narrow_range
    pub range_end: Option<Key>,
}

/// One lock wait, for people.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WaitLine {
    /// The shard.
    pub shard: ShardId,
    /// The waiting transaction.
    pub txn: TxnId,
    /// What it waits for.
    pub span: LockSpan,
    /// In which mode.
    pub mode: LockMode,
    /// The transactions it waits for.
    pub blockers: Vec<TxnId>,
    /// Milliseconds waited so far.
    pub waited_ms: u64,
}

/// What a coordinator says about a probe's last holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeOutcome {
    /// It waits somewhere: the probe went on.
    Forwarded,
    /// It waits nowhere: the probe stops.
    NotWaiting,
    /// The coordinator does not know it (it restarted, or the transaction ended): the sender
    /// may evict its locks.
    Unknown,
}

/// The answer to a [`PeerRequest`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PeerReply {
    /// This node does not lead the shard; try `leader` if known.
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// Try again later (no leader yet, leader not ready, storage busy).
    Unavailable(String),
    /// The request is malformed or breaks a limit; nothing changed.
    Invalid(String),
    /// What the request needs is older than the retention window and collected: a snapshot's
    /// versions, or the record of a transaction whose outcome is asked (`Status`) or whose
    /// one-phase commit is retried. Nothing changed; the answer is no longer known.
    TooOld(String),
    /// The transaction must abort; nothing of it at this shard survives.
    Aborted {
        /// Why.
        reason: AbortReason,
        /// For people.
        detail: String,
    },
    /// A lock was granted (with what READ/SCAN saw).
    Locked {
        /// The leader term of the grant.
        term: u64,
        /// What was read.
        read: ReadResult,
    },
    /// A YES vote (`prepare_ts` is `None` for a read-only participant).
    Voted {
        /// The vote timestamp.
        prepare_ts: Option<Timestamp>,
    },
    /// Committed (one-phase commit, or a one-statement write) at this timestamp.
    Committed {
        /// The commit timestamp.
        commit_ts: Timestamp,
    },
    /// The record's decision.
    Decided(Decision),
    /// The record, if any (`Status` without resolve).
    Record(Option<Decision>),
    /// Done.
    Done,
    /// The result of a one-statement read or scan.
    Read(ReadResult),
    /// What became of a probe.
    Probe(ProbeOutcome),
    /// Per transaction of an `Alive` request: true if still running.
    Alive(Vec<bool>),
    /// Lock waits.
    Waits(Vec<WaitLine>),
    /// A replica's state.
    Inspected(Inspection),
    /// Answers `RaftState`.
    RaftState {
        /// The replica's Raft term.
        term: u64,
        /// The id of the last entry of its Raft log (durable or not).
        last_log: Option<LogId>,
        /// Whether its vote gate is open (`replication::vote_gate`).
        voting: bool,
    },
}
