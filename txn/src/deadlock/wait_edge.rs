//! [`WaitEdge`]: one wait-for edge of the global graph, as the shard where the waiter waits
//! sees it.

use std::fmt;

use serde::Deserialize;
use serde::Serialize;

use crate::lock::LockSpan;
use crate::lock::LockTable;
use crate::lock::RequestId;
use crate::types::ShardId;
use crate::types::TxnId;

/// One wait-for edge, as seen by the shard where the waiter waits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitEdge {
    /// The waiting transaction.
    pub waiter: TxnId,
    /// A transaction it waits for (holds a conflicting lock, or queued a conflicting request
    /// ahead of it).
    pub holder: TxnId,
    /// The shard where `waiter` waits.
    pub shard: ShardId,
    /// The blocking lock or request of `holder` (the [`crate::lock::Blocker`] span).
    pub span: LockSpan,
    /// The waiter's request: the edge's epoch. The edge exists only while it waits.
    pub request: RequestId,
}

impl WaitEdge {
    /// True when the edge still exists in `table` (the table of [`WaitEdge::shard`]): its
    /// request still waits (same epoch), and `holder` is still one of its blockers.
    pub fn exists_in(&self, table: &LockTable) -> bool {
        table.request_txn(self.request) == Some(self.waiter)
            && table.blockers(self.request).iter().any(|blocker| blocker.txn == self.holder)
    }
}

impl fmt::Display for WaitEdge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} waits for {} on {} ({})", self.waiter, self.holder, self.span, self.shard)
    }
}
