//! Wait-for edges of waiting requests, for the deadlock detector and for people (STATUS, LOCKS).

use serde::Deserialize;
use serde::Serialize;

use super::LockMode;
use super::LockSpan;
use super::RequestId;
use crate::types::TxnId;

/// One wait-for edge: a transaction a waiting request waits for, and the lock (held or queued
/// ahead) through which it blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocker {
    /// The blocking transaction (never the waiter itself).
    pub txn: TxnId,
    /// The span of the blocking lock or queued request (the first one found for that txn).
    pub span: LockSpan,
    /// The mode of the blocking lock or queued request.
    pub mode: LockMode,
}

/// A waiting request with everything it waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitInfo {
    /// The waiting request.
    pub request: RequestId,
    /// Its transaction.
    pub txn: TxnId,
    /// What it asks for.
    pub span: LockSpan,
    /// How strongly.
    pub mode: LockMode,
    /// Its wait-for edges, holders first, then conflicting requests queued ahead of it.
    pub blockers: Vec<Blocker>,
}
