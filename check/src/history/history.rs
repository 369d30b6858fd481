//! A parsed, validated list-append history: its events and its transactions.

use std::collections::BTreeSet;
use std::io::BufRead;

use super::event::Event;
use super::history_error::HistoryError;
use super::txn::{Outcome, Txn};
use super::validator::{Accepted, Validator};

/// A validated history (see [`super::validator`] for the rules it satisfies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// The events in index order.
    events: Vec<Event>,
    /// The transactions in invoke order.
    txns: Vec<Txn>,
}

impl History {
    /// Validates `events` (in index order) and pairs them into transactions.
    pub fn from_events(events: Vec<Event>) -> Result<History, HistoryError> {
        History::build(events, None)
    }

    /// Parses JSON lines (blank lines are skipped) and validates the result.
    pub fn parse_jsonl(text: &str) -> Result<History, HistoryError> {
        let mut events = Vec::new();
        let mut lines = Vec::new();
        for (i, line) in text.lines().enumerate() {
            History::parse_line(line, i + 1, &mut events, &mut lines)?;
        }
        History::build(events, Some(lines))
    }

    /// Reads JSON lines from `reader` and validates the result.
    pub fn read_jsonl(reader: impl BufRead) -> Result<History, HistoryError> {
        let mut events = Vec::new();
        let mut lines = Vec::new();
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(|e| HistoryError::Io { message: e.to_string() })?;
            History::parse_line(&line, i + 1, &mut events, &mut lines)?;
        }
        History::build(events, Some(lines))
    }

    /// Settles unknown outcomes that were learned later (the store's `TxnStatus` at the end of a
    /// run): each `info` transaction whose invoke index is in `aborted` becomes `fail`. An
    /// `info` transaction counts as committed when a read observed one of its appends, so
    /// without this a read of a write whose transaction in fact aborted (G1a) passes unseen.
    /// Transactions learned committed stay `info`: the checker already takes an observed one as
    /// committed, and its reads' results are unknown.
    pub fn settle_aborted(&mut self, aborted: &BTreeSet<u64>) {
        for txn in &mut self.txns {
            if txn.outcome == Outcome::Info && aborted.contains(&txn.invoke_index) {
                txn.outcome = Outcome::Fail;
            }
        }
    }

    /// Returns the events in index order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Returns the transactions in invoke order.
    pub fn txns(&self) -> &[Txn] {
        &self.txns
    }

    /// Renders the history as JSON lines, one event per line.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for event in &self.events {
            out.push_str(&event.to_json());
            out.push('\n');
        }
        out
    }

    /// Parses one line into `events`, remembering its line number.
    fn parse_line(
        line: &str,
        number: usize,
        events: &mut Vec<Event>,
        lines: &mut Vec<usize>,
    ) -> Result<(), HistoryError> {
        if line.trim().is_empty() {
            return Ok(());
        }
        let event = Event::from_json_line(line)
            .map_err(|message| HistoryError::Syntax { line: number, message })?;
        // Not a client's operation (a nemesis event): not part of what is checked.
        if let Some(event) = event {
            events.push(event);
            lines.push(number);
        }
        Ok(())
    }

    /// Validates and pairs events; `lines` gives each event's line number when known.
    fn build(events: Vec<Event>, lines: Option<Vec<usize>>) -> Result<History, HistoryError> {
        let mut validator = Validator::default();
        let mut txns: Vec<Txn> = Vec::new();
        // Position of an accepted invoke event -> its transaction.
        let mut txn_of_invoke: Vec<Option<usize>> = vec![None; events.len()];
        for (position, event) in events.iter().enumerate() {
            let line = lines.as_ref().map(|l| l[position]);
            let accepted = validator.accept(position, event, line, |p| &events[p].value)?;
            match accepted {
                Accepted::Invoke => {
                    txn_of_invoke[position] = Some(txns.len());
                    txns.push(Txn {
                        process: event.process,
                        session: event.session,
                        outcome: Outcome::Info,
                        invoke_index: event.index,
                        completion_index: None,
                        invoke_time: event.time,
                        completion_time: None,
                        ops: event.value.clone(),
                    });
                }
                Accepted::Completion { invoke_position } => {
                    let t = txn_of_invoke[invoke_position]
                        .expect("the validator pairs completions with accepted invokes");
                    let txn = &mut txns[t];
                    txn.outcome =
                        Outcome::from_event(event.kind).expect("a completion is never an invoke");
                    txn.completion_index = Some(event.index);
                    txn.completion_time = event.time;
                    // A fail or info completion may carry the reads done before it ended
                    // (`Recorder::fail_after`), otherwise it repeats the invoke.
                    txn.ops = event.value.clone();
                }
            }
        }
        Ok(History { events, txns })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_line() {
        let text = "{\"index\":0,\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[]}\n\
                    \n\
                    {\"index\":1,\"process\":1,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"r\",\"x\",7]]}";
        let err = History::parse_jsonl(text).expect_err("bad read value");
        assert_eq!(err.line(), Some(3), "{err}");
    }

    #[test]
    fn round_trips_through_jsonl() {
        let text = concat!(
            r#"{"index":0,"time":5,"process":1,"type":"invoke","f":"txn","value":[["append",2,1],["r","y",null]]}"#,
            "\n",
            r#"{"index":1,"time":9,"process":1,"type":"ok","f":"txn","value":[["append",2,1],["r","y",[]]]}"#,
            "\n"
        );
        let history = History::parse_jsonl(text).expect("valid");
        assert_eq!(history.to_jsonl(), text);
        assert_eq!(history.txns().len(), 1);
        assert_eq!(history.txns()[0].outcome, Outcome::Ok);
    }

    #[test]
    fn a_read_of_an_unknown_transaction_learned_aborted_is_an_aborted_read() {
        use crate::history::{MicroOp, Recorder};
        use crate::{AnomalyKind, Model};
        let mut recorder = Recorder::new();
        let unknown = recorder.invoke(1, 10, vec![MicroOp::append("x", 1)]);
        recorder.info(1, 20);
        recorder.invoke(2, 30, vec![MicroOp::read("x")]);
        recorder.ok(2, 40, vec![MicroOp::read_result("x", vec![1])]);
        let mut history = recorder.history();
        let report = crate::check(&history, Model::StrictSerializable);
        assert!(report.valid, "an observed unknown transaction counts as committed: {report:?}");
        history.settle_aborted(&BTreeSet::from([unknown]));
        assert_eq!(history.txns()[0].outcome, Outcome::Fail);
        let report = crate::check(&history, Model::StrictSerializable);
        assert!(report.anomalies.iter().any(|a| a.kind == AnomalyKind::G1a), "{report:?}");
    }

    /// A Jepsen history records its nemesis too; its events are skipped, not malformed (until
    /// 2026-12-06 `kvcheck` stopped at the first with exit 2, found by a contract review).
    #[test]
    fn nemesis_events_are_skipped() {
        let text = concat!(
            r#"{"index":0,"time":1,"process":"nemesis","type":"info","f":"start-partition","value":null}"#,
            "\n",
            r#"{"index":1,"time":2,"process":0,"type":"invoke","f":"txn","value":[["append","x",1]]}"#,
            "\n",
            r#"{"index":2,"time":3,"process":"nemesis","type":"info","f":"start-partition","value":{"n1":["n2"]}}"#,
            "\n",
            r#"{"index":3,"time":4,"process":0,"type":"ok","f":"txn","value":[["append","x",1]]}"#,
            "\n",
        );
        let history = History::parse_jsonl(text).expect("valid");
        assert_eq!(history.events().len(), 2);
        assert_eq!(history.txns().len(), 1);
        assert_eq!(history.txns()[0].outcome, Outcome::Ok);
        // A client event must still be well formed: a number that is no process is malformed,
        // and so is a transaction of a named process (not checked as an empty history).
        let bad = r#"{"index":0,"process":-1,"type":"invoke","f":"txn","value":[]}"#;
        assert!(History::parse_jsonl(bad).is_err());
        let named = r#"{"index":0,"process":"p1","type":"invoke","f":"txn","value":[]}"#;
        assert!(History::parse_jsonl(named).is_err());
    }

    #[test]
    fn unfinished_invoke_is_info() {
        let text =
            r#"{"index":0,"process":1,"type":"invoke","f":"txn","value":[["append","x",1]]}"#;
        let history = History::parse_jsonl(text).expect("valid");
        assert_eq!(history.txns()[0].outcome, Outcome::Info);
        assert_eq!(history.txns()[0].completion_index, None);
    }
}
