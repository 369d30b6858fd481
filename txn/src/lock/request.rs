//! Lock requests: their ids and the answers [`LockTable`](super::LockTable) gives about them.
//!
//! A [`RequestId`] is handed out only to a request that has to wait; it names that wait and
//! nothing else. Ids strictly increase within one table (one table per leader term), so a
//! request id is also the *wait epoch* a deadlock probe carries: an edge naming request `R` is
//! valid only while `R` is still waiting. A request granted at once needs no name.

use std::fmt;

use serde::Deserialize;
use serde::Serialize;

use crate::types::TxnId;

/// Identifies one lock request in one table; strictly increasing per table. It is also the "wait
/// epoch" carried by deadlock probes: a probe edge naming request R is valid only while R is
/// still waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// The answer to [`LockTable::acquire`](super::LockTable::acquire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Acquired {
    /// The lock is held now (or was already held).
    Granted,
    /// The request is queued; a later release or cancel reports its [`Grant`].
    Waiting(RequestId),
}

/// A waiting request that a release or cancel has just granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The request, as returned earlier in [`Acquired::Waiting`].
    pub request: RequestId,
    /// Its transaction, which now holds the lock.
    pub txn: TxnId,
}
