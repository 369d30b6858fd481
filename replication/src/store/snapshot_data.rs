//! A shard's snapshot data as openraft carries it ([`openraft::RaftStateMachine::SnapshotData`]):
//! exported when it is sent, not when openraft asks for it.
//!
//! ```text
//!   leader:    get_current_snapshot ─► Tables(read transaction)  (a durable commit; no export)
//!              network's full_snapshot ─► encode(): export + encode off the runtime ─► chunks
//!   follower:  chunks ─► Encoded(bytes) ─► install_snapshot
//! ```
//!
//! openraft reads a snapshot on the shard's state-machine worker, the task that also applies the
//! shard's entries. Exporting there (as until 2026-12-07) stopped the shard's applies for as
//! long as a whole shard takes to read and encode, at every attempt to reach a follower that
//! needs a snapshot (at most every `UNREACHABLE_BACKOFF_MAX` while it is down). The read
//! transaction fixes the state at the snapshot's meta whatever is applied meanwhile (redb's
//! MVCC), so the export can wait for the network.
//!
//! Invariant: the tables of a [`SnapshotData::Tables`] are the shard's state at the meta it was
//! returned with (the read transaction was opened inside the durable commit that read the meta).

use std::fmt;
use std::io;

use redb::ReadTransaction;
use txn::state::ShardState;

use crate::codec;
use crate::store::writer::Executor;

/// A shard's snapshot: its tables at a read transaction, or their encoding.
pub enum SnapshotData {
    /// The tables as a read transaction sees them, not read yet (a leader's, until sent).
    Tables(Box<Tables>),
    /// The encoded tables (received from a leader; empty for a snapshot that has only a meta).
    Encoded(Vec<u8>),
}

/// The shard's tables at a read transaction.
pub struct Tables {
    pub(crate) rtx: ReadTransaction,
    pub(crate) state: ShardState,
    pub(crate) executor: Executor,
}

impl SnapshotData {
    /// No data: the meta of a built snapshot, or of one read at start-up.
    pub fn empty() -> SnapshotData {
        SnapshotData::Encoded(Vec::new())
    }

    /// True for a snapshot with only a meta.
    pub fn is_empty(&self) -> bool {
        matches!(self, SnapshotData::Encoded(bytes) if bytes.is_empty())
    }

    /// The encoded tables. Exporting reads the whole shard: it runs where it holds up no
    /// worker of the runtime ([`Executor::run_blocking`]).
    pub async fn encode(self) -> io::Result<Vec<u8>> {
        self.encode_holding(()).await
    }

    /// [`SnapshotData::encode`], keeping `hold` (a permit) until the export ends, even when the
    /// caller stops waiting for it: on a thread of its own, a cancelled export runs on, holding
    /// a read transaction and the whole shard, and the permit that bounds how many exports a
    /// node runs at once must not be free meanwhile (a review found replication's cancels, at
    /// every leader change, leaving exports beyond the bound, 2026-12-07).
    pub async fn encode_holding<H: Send + 'static>(self, hold: H) -> io::Result<Vec<u8>> {
        match self {
            SnapshotData::Encoded(bytes) => Ok(bytes),
            SnapshotData::Tables(tables) => {
                let Tables { rtx, state, executor } = *tables;
                let export = move || {
                    let exported = state.export(&rtx).map(|exported| codec::encode(&exported));
                    drop(hold);
                    exported
                };
                executor
                    .run_blocking("snapshot-export", export)
                    .await
                    .map_err(|error| io::Error::other(format!("snapshot export: {error}")))
            }
        }
    }
}

impl fmt::Debug for SnapshotData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotData::Tables(tables) => write!(f, "Tables({})", tables.state.shard()),
            SnapshotData::Encoded(bytes) => write!(f, "Encoded({} bytes)", bytes.len()),
        }
    }
}
