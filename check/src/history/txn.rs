//! A transaction: an invoke paired with its completion.
//!
//! Pairing follows Jepsen's `history/pair-index`: a completion belongs to the pending invoke of
//! its process. An invoke never completed is treated as `info` (Jepsen completes such histories
//! the same way): it may or may not have committed.

use std::fmt;

use super::event::EventType;
use super::micro_op::MicroOp;

/// How a transaction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// Committed; reads are known.
    Ok,
    /// Certainly not committed.
    Fail,
    /// Unknown: an `info` completion, or no completion at all.
    Info,
}

impl Outcome {
    /// Returns the event type name of the outcome (`ok`, `fail`, `info`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        }
    }

    /// Maps a completion event type to an outcome; `None` for invokes.
    pub(crate) fn from_event(kind: EventType) -> Option<Outcome> {
        match kind {
            EventType::Invoke => None,
            EventType::Ok => Some(Outcome::Ok),
            EventType::Fail => Some(Outcome::Fail),
            EventType::Info => Some(Outcome::Info),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One transaction of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Txn {
    /// The process that ran it.
    pub process: u64,
    /// The session of that process, if the history names one (see [`super::Event`]).
    pub session: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
    /// The invoke event's index; names the transaction (`T<invoke_index>`).
    pub invoke_index: u64,
    /// The completion event's index; `None` when the history never completes it.
    pub completion_index: Option<u64>,
    /// The invoke event's time.
    pub invoke_time: Option<u64>,
    /// The completion event's time.
    pub completion_time: Option<u64>,
    /// The micro-ops: the completion's value for `ok` (reads observed), the invoke's otherwise.
    pub ops: Vec<MicroOp>,
}

impl Txn {
    /// Returns the transaction's name in reports: `T` and its invoke index.
    pub fn name(&self) -> String {
        format!("T{}", self.invoke_index)
    }
}
