//! [`SessionTxns`]: the transactions begun on one `Kv/Session` stream, aborted when it closes.
//!
//! A session stream is a client's connection to the node. A client that goes away (its process
//! crashed or was killed, its connection broke) leaves its open transactions holding their
//! locks, which before 2026-12-05 lasted until the idle timeout (`idle_ms`, 30 s) aborted them.
//! As PostgreSQL rolls back the open transaction of a closed connection, the node now aborts,
//! when a stream stops, every transaction begun on it (`Begin`, or a `Read` that begins) whose
//! `Commit` or `Abort` it has not received, with `UNAVAILABLE` ([`Coordinator::abandon`]).
//!
//! Invariants:
//! - Registered = begun on this stream, and neither `Commit` nor `Abort` of it received here
//!   (one refused as bad input leaves the transaction open, and registers it again). The
//!   stream's reader unregisters a Commit as it reads it, so a Commit received is never
//!   abandoned; one sent on another stream may be ([`Coordinator::abandon`] waits for a
//!   running END and leaves its lock waits alone, but gets the state first if it asks first).
//! - A client that stalls longer than the HTTP/2 keepalive allows (`node.rs`: pings every
//!   500 ms, 1 s to answer) loses its connection, and with it its open transactions: they are
//!   aborted as a dead client's would be.
//! - The set lives as long as the stream's reader (its handler holds the one strong
//!   reference; requests in flight hold a `Weak`), so the transactions are abandoned as soon
//!   as the stream stops reading, not after its slowest request (a statement waiting for a
//!   lock, which the abandon ends). A transaction begun by a request that finishes after that
//!   is abandoned at once.
//! - Bounded: transactions the coordinator has forgotten (ended, or begun by a client that
//!   dropped them without END or ABORT) are pruned whenever the set doubles past
//!   [`PRUNE_FLOOR`], so a stream that runs millions of transactions holds only the open ones.
//!
//! Unary calls have no connection to tie a transaction to: theirs wait for the idle timeout.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::Weak;

use txn::types::TxnId;

use crate::coordinator::Coordinator;

/// The set is pruned of forgotten transactions each time it reaches twice its size after the
/// last pruning, and never below this.
pub const PRUNE_FLOOR: usize = 1024;

/// The open transactions of one session stream.
pub struct SessionTxns {
    coordinator: Arc<Coordinator>,
    state: Mutex<Registered>,
}

#[derive(Default)]
struct Registered {
    txns: BTreeSet<TxnId>,
    /// The size at which the set is pruned next.
    prune_at: usize,
}

impl SessionTxns {
    /// An empty set for a new stream of the node whose coordinator is `coordinator`.
    pub fn new(coordinator: Arc<Coordinator>) -> Arc<SessionTxns> {
        let state = Mutex::new(Registered { txns: BTreeSet::new(), prune_at: PRUNE_FLOOR });
        Arc::new(SessionTxns { coordinator, state })
    }

    /// Records a transaction begun on the stream `txns` is the set of; if that stream has
    /// already stopped (the set is gone), the transaction is abandoned at once.
    pub fn begun(txns: &Weak<SessionTxns>, coordinator: &Arc<Coordinator>, txn: TxnId) {
        let Some(txns) = txns.upgrade() else {
            // The stream stopped while this request ran: nobody is left to end it.
            spawn_abandon(coordinator.clone(), vec![txn]);
            return;
        };
        let mut state = txns.state.lock().expect("session txns lock");
        state.txns.insert(txn);
        if state.txns.len() >= state.prune_at {
            state.txns.retain(|txn| txns.coordinator.knows(txn));
            state.prune_at = (state.txns.len() * 2).max(PRUNE_FLOOR);
        }
    }

    /// Forgets a transaction whose Commit or Abort the stream's reader just read (before the
    /// request runs, so that a stream closing right after cannot abandon it).
    pub fn ending(&self, txn: &TxnId) {
        self.state.lock().expect("session txns lock").txns.remove(txn);
    }
}

impl Drop for SessionTxns {
    fn drop(&mut self) {
        let txns: Vec<TxnId> =
            std::mem::take(&mut self.state.lock().expect("session txns lock").txns)
                .into_iter()
                .collect();
        if txns.is_empty() {
            return;
        }
        spawn_abandon(self.coordinator.clone(), txns);
    }
}

/// Abandons `txns` in a task of its own, all at once (one whose statement waits for a lock
/// held by another of them must not wait behind it), polled in id order (deterministic in the
/// simulation). Nothing if no runtime runs (the node is being torn down).
fn spawn_abandon(coordinator: Arc<Coordinator>, txns: Vec<TxnId>) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            futures::future::join_all(txns.into_iter().map(|txn| coordinator.abandon(txn))).await;
        });
    }
}
