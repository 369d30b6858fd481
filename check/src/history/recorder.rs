//! The writer side: the simulation records its history through a [`Recorder`] (TESTING §7a).
//!
//! The recorder assigns `index` from a counter (so realtime order is recording order), takes
//! `time` from the caller (simulated nanoseconds), and enforces the rules of
//! [`super::validator`] as events arrive: recording a malformed history is a bug in the
//! workload, so it panics there instead of producing a history `kvcheck` would refuse.
//!
//! ```
//! use check::history::{MicroOp, Recorder};
//! let mut recorder = Recorder::new();
//! recorder.invoke(1, 100, vec![MicroOp::append("x", 1), MicroOp::read("y")]);
//! recorder.ok(1, 250, vec![MicroOp::append("x", 1), MicroOp::read_result("y", vec![])]);
//! let history = recorder.history();
//! assert_eq!(history.txns().len(), 1);
//! ```

use super::event::{Event, EventType};
use super::history::History;
use super::micro_op::MicroOp;
use super::validator::Validator;

/// Records a list-append history event by event.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Events recorded so far, in index order.
    events: Vec<Event>,
    /// The rules every event is checked against.
    validator: Validator,
    /// Per process, the session it belongs to ([`Recorder::join_session`]).
    sessions: std::collections::BTreeMap<u64, u64>,
}

impl Recorder {
    /// Creates an empty recorder; the first event gets index 0.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Makes `process` (before its first event) one of `session`'s processes: its events carry
    /// the session, which the causal checks follow across a client's processes (it takes a
    /// new process after an `info` and keeps its session, its causal token).
    pub fn join_session(&mut self, process: u64, session: u64) {
        self.sessions.insert(process, session);
    }

    /// Records the start of a transaction on `process` at `time` and returns its index.
    /// Reads in `ops` must be [`MicroOp::read`] (unknown result).
    ///
    /// Panics if the process has a pending transaction, was retired by an `info`, or an append
    /// repeats an earlier (key, value).
    pub fn invoke(&mut self, process: u64, time: u64, ops: Vec<MicroOp>) -> u64 {
        self.record(process, time, EventType::Invoke, ops)
    }

    /// Records that the pending transaction of `process` committed, with what its reads saw.
    ///
    /// Panics if `ops` does not repeat the invoke's micro-ops (reads filled in) or nothing is
    /// pending on `process`.
    pub fn ok(&mut self, process: u64, time: u64, ops: Vec<MicroOp>) -> u64 {
        self.record(process, time, EventType::Ok, ops)
    }

    /// Records that the pending transaction of `process` certainly did not commit.
    pub fn fail(&mut self, process: u64, time: u64) -> u64 {
        self.fail_after(process, time, Vec::new())
    }

    /// Records that the outcome of the pending transaction of `process` is unknown. The process
    /// is retired: its client must continue under a new process id.
    pub fn info(&mut self, process: u64, time: u64) -> u64 {
        self.info_after(process, time, Vec::new())
    }

    /// [`Recorder::fail`], with what the transaction's reads saw before it ended: `completed`
    /// repeats the first micro-ops of its invoke, reads filled in (the rest stay unknown).
    /// The checker holds those reads to what any read must show (only committed appends, in
    /// order), though they take part in no dependency.
    ///
    /// Panics if `completed` is longer than the invoke or does not repeat its micro-ops.
    pub fn fail_after(&mut self, process: u64, time: u64, completed: Vec<MicroOp>) -> u64 {
        let ops = self.completed_ops(process, completed);
        self.record(process, time, EventType::Fail, ops)
    }

    /// [`Recorder::info`], with what the transaction's reads saw ([`Recorder::fail_after`]).
    pub fn info_after(&mut self, process: u64, time: u64, completed: Vec<MicroOp>) -> u64 {
        let ops = self.completed_ops(process, completed);
        self.record(process, time, EventType::Info, ops)
    }

    /// The pending invoke's micro-ops of `process`, its first ones replaced by `completed`
    /// (the validator checks that they repeat them).
    fn completed_ops(&self, process: u64, completed: Vec<MicroOp>) -> Vec<MicroOp> {
        let mut ops = self.pending_ops(process);
        assert!(
            completed.len() <= ops.len(),
            "{} micro-ops completed of an invoke of {}",
            completed.len(),
            ops.len()
        );
        ops.splice(..completed.len(), completed);
        ops
    }

    /// Returns the events recorded so far.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Returns the number of events recorded.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Returns whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Renders the events as JSON lines (DESIGN §7).
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for event in &self.events {
            out.push_str(&event.to_json());
            out.push('\n');
        }
        out
    }

    /// Returns the history recorded so far (pending invokes count as `info`).
    pub fn history(&self) -> History {
        History::from_events(self.events.clone()).expect("the recorder validates every event")
    }

    /// Consumes the recorder and returns its history.
    pub fn into_history(self) -> History {
        History::from_events(self.events).expect("the recorder validates every event")
    }

    /// Returns the micro-ops of the pending invoke of `process`.
    fn pending_ops(&self, process: u64) -> Vec<MicroOp> {
        match self.validator.pending_position(process) {
            Some(position) => self.events[position].value.clone(),
            None => panic!("process {process} has no pending transaction to complete"),
        }
    }

    /// Validates and appends one event.
    fn record(&mut self, process: u64, time: u64, kind: EventType, value: Vec<MicroOp>) -> u64 {
        let index = self.events.len() as u64;
        let session = self.sessions.get(&process).copied();
        let event = Event { index, time: Some(time), process, session, kind, value };
        let position = self.events.len();
        let events = &self.events;
        if let Err(e) = self.validator.accept(position, &event, None, |p| &events[p].value) {
            panic!("recording a malformed history: {e}");
        }
        self.events.push(event);
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_fail_and_info_with_the_invoke_value() {
        let mut recorder = Recorder::new();
        assert_eq!(recorder.invoke(1, 10, vec![MicroOp::append("x", 1)]), 0);
        assert_eq!(recorder.fail(1, 20), 1);
        recorder.invoke(1, 30, vec![MicroOp::append(7, 2), MicroOp::read("y")]);
        recorder.info(1, 40);
        let text = recorder.to_jsonl();
        assert!(text.contains(r#"{"index":3,"time":40,"process":1,"type":"info","f":"txn","value":[["append",7,2],["r","y",null]]}"#), "{text}");
        assert_eq!(History::parse_jsonl(&text).expect("valid"), recorder.history());
    }

    #[test]
    fn a_failed_transaction_keeps_the_reads_it_completed() {
        let mut recorder = Recorder::new();
        recorder.invoke(
            1,
            10,
            vec![MicroOp::read("x"), MicroOp::append("x", 1), MicroOp::read("y")],
        );
        recorder.fail_after(1, 20, vec![MicroOp::read_result("x", vec![4])]);
        let text = recorder.to_jsonl();
        assert!(
            text.contains(
                r#""type":"fail","f":"txn","value":[["r","x",[4]],["append","x",1],["r","y",null]]"#
            ),
            "{text}"
        );
        assert_eq!(History::parse_jsonl(&text).expect("valid"), recorder.history());
    }

    #[test]
    #[should_panic(expected = "duplicate append")]
    fn duplicate_append_is_a_recording_bug() {
        let mut recorder = Recorder::new();
        recorder.invoke(1, 10, vec![MicroOp::append("x", 1)]);
        recorder.fail(1, 20);
        recorder.invoke(2, 30, vec![MicroOp::append("x", 1)]);
    }

    #[test]
    #[should_panic(expected = "used again after its info")]
    fn retired_process_is_a_recording_bug() {
        let mut recorder = Recorder::new();
        recorder.invoke(1, 10, vec![MicroOp::append("x", 1)]);
        recorder.info(1, 20);
        recorder.invoke(1, 30, vec![MicroOp::append("x", 2)]);
    }
}
