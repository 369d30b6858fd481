//! The rules a history must follow before it can be checked (TESTING §1.2, §1.3 step 1).
//!
//! Invariants enforced, event by event:
//! 1. `index` strictly increases (it defines realtime order).
//! 2. A process has at most one pending invoke; a completion pairs with it.
//! 3. A process whose operation ended `info` is never used again (Jepsen: the worker continues
//!    under a new process id), or process and realtime edges would be wrong.
//! 4. Invokes carry `null` reads; `ok` completions carry a list for every read.
//! 5. A completion repeats its invoke's micro-ops: same functions, keys and appended values.
//! 6. Append values are unique per key over all invokes (Elle's `:duplicate-appends`).
//! 7. A process names one session, or none, in all its events; a session (several processes of
//!    one client) has at most one pending invoke: a session runs one transaction at a time.
//!
//! Both [`super::History::from_events`] and [`super::Recorder`] run every event through this.

use std::collections::HashMap;

use super::event::{Event, EventType};
use super::history_error::HistoryError;
use super::key::Key;
use super::micro_op::MicroOp;

/// Incremental validation state over a prefix of a history.
#[derive(Debug, Default)]
pub(crate) struct Validator {
    /// The index of the last event accepted.
    last_index: Option<u64>,
    /// Per process, the position (in accepted-event order) and index of its pending invoke.
    pending: HashMap<u64, (usize, u64)>,
    /// Processes retired by an `info`, with the index of that `info`.
    retired: HashMap<u64, u64>,
    /// Every (key, value) appended by an invoke so far, with that invoke's index.
    appended: HashMap<(Key, i64), u64>,
    /// Per process, the session its first event named (or none).
    session_of: HashMap<u64, Option<u64>>,
    /// Per session, the index of its pending invoke.
    session_pending: HashMap<u64, u64>,
}

/// What an accepted event did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// An invoke; the caller opens a transaction.
    Invoke,
    /// A completion of the invoke accepted at this position.
    Completion {
        /// Position of the paired invoke among accepted events.
        invoke_position: usize,
    },
}

impl Validator {
    /// Returns the position of the pending invoke of `process`, if any.
    pub(crate) fn pending_position(&self, process: u64) -> Option<usize> {
        self.pending.get(&process).map(|&(position, _)| position)
    }

    /// Checks `event` (the `position`-th accepted event) against the rules, given the micro-ops
    /// of the pending invoke of its process (looked up by the caller through `invoke_ops`).
    pub(crate) fn accept<'a>(
        &mut self,
        position: usize,
        event: &Event,
        line: Option<usize>,
        invoke_ops: impl Fn(usize) -> &'a [MicroOp],
    ) -> Result<Accepted, HistoryError> {
        let malformed =
            |message: String| HistoryError::Malformed { line, index: event.index, message };
        if let Some(last) = self.last_index
            && event.index <= last
        {
            return Err(malformed(format!(
                "index {} does not follow the previous index {last} (indexes must increase)",
                event.index
            )));
        }
        if let Some(info_index) = self.retired.get(&event.process) {
            return Err(malformed(format!(
                "process {} is used again after its info at index {info_index} (a process \
                 whose operation ended info must continue under a new process id)",
                event.process
            )));
        }
        let named = *self.session_of.entry(event.process).or_insert(event.session);
        if named != event.session {
            return Err(malformed(format!(
                "process {} names session {:?} after {named:?} (a process belongs to one \
                 session)",
                event.process, event.session
            )));
        }
        let accepted = if event.kind == EventType::Invoke {
            if let Some(session) = event.session
                && let Some(pending) = self.session_pending.insert(session, event.index)
            {
                return Err(malformed(format!(
                    "session {session} invokes while its invoke at index {pending} is pending \
                     (a session runs one transaction at a time)"
                )));
            }
            if let Some(&(_, pending)) = self.pending.get(&event.process) {
                return Err(malformed(format!(
                    "process {} invokes while its invoke at index {pending} is pending",
                    event.process
                )));
            }
            for op in &event.value {
                match op {
                    MicroOp::Read { key, value: Some(_) } => {
                        return Err(malformed(format!("invoke read of {key} is not null")));
                    }
                    MicroOp::Read { .. } => {}
                    MicroOp::Append { key, value } => {
                        if let Some(&first_index) = self.appended.get(&(key.clone(), *value)) {
                            return Err(HistoryError::DuplicateAppend {
                                line,
                                key: key.to_string(),
                                value: *value,
                                first_index,
                                index: event.index,
                            });
                        }
                        self.appended.insert((key.clone(), *value), event.index);
                    }
                }
            }
            self.pending.insert(event.process, (position, event.index));
            Accepted::Invoke
        } else {
            let Some((invoke_position, _)) = self.pending.remove(&event.process) else {
                return Err(malformed(format!(
                    "{} completion on process {} has no pending invoke",
                    event.kind, event.process
                )));
            };
            if let Some(why) = completion_mismatch(invoke_ops(invoke_position), event) {
                return Err(malformed(why));
            }
            if let Some(session) = event.session {
                self.session_pending.remove(&session);
            }
            if event.kind == EventType::Info {
                self.retired.insert(event.process, event.index);
            }
            Accepted::Completion { invoke_position }
        };
        self.last_index = Some(event.index);
        Ok(accepted)
    }
}

/// Explains how a completion's micro-ops disagree with its invoke's, if they do.
fn completion_mismatch(invoke: &[MicroOp], completion: &Event) -> Option<String> {
    if invoke.len() != completion.value.len() {
        return Some(format!(
            "{} completion has {} micro-ops but its invoke has {}",
            completion.kind,
            completion.value.len(),
            invoke.len()
        ));
    }
    for (i, (a, b)) in invoke.iter().zip(&completion.value).enumerate() {
        let same = match (a, b) {
            (MicroOp::Append { key: k1, value: v1 }, MicroOp::Append { key: k2, value: v2 }) => {
                k1 == k2 && v1 == v2
            }
            (MicroOp::Read { key: k1, .. }, MicroOp::Read { key: k2, value }) => {
                if completion.kind == EventType::Ok && value.is_none() {
                    return Some(format!(
                        "ok completion's read of {k2} (micro-op {i}) is null; an ok txn reports \
                         the list it read ([] when empty)"
                    ));
                }
                k1 == k2
            }
            _ => false,
        };
        if !same {
            return Some(format!(
                "micro-op {i} of the completion, {b}, does not match {a} of its invoke"
            ));
        }
    }
    None
}
