//! One line of a history: an operation event (DESIGN §7, Jepsen's op map).
//!
//! ```text
//! {"index":0,"time":1500,"process":3,"type":"invoke","f":"txn","value":[["append","x",1],["r","y",null]]}
//! ```
//!
//! `index` is the event's position and defines realtime precedence; `time` (nanoseconds, one
//! monotonic clock) is for display only. An optional `session` (a non-negative integer) names
//! the client session a process belongs to, when one session runs several processes (a client
//! takes a new process after an `info`, and keeps its session: its causal token). Extra fields
//! are ignored.

use std::fmt;

use serde_json::Value;

use super::micro_op::MicroOp;

/// The four kinds of events of Jepsen's history model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    /// The client started the transaction.
    Invoke,
    /// The transaction committed; reads carry what they observed.
    Ok,
    /// The transaction certainly did not commit.
    Fail,
    /// The outcome is unknown: it may or may not have committed.
    Info,
}

impl EventType {
    /// Returns the JSON spelling: `invoke`, `ok`, `fail`, `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }

    /// Parses the JSON spelling.
    pub fn parse(text: &str) -> Option<EventType> {
        match text {
            "invoke" => Some(EventType::Invoke),
            "ok" => Some(EventType::Ok),
            "fail" => Some(EventType::Fail),
            "info" => Some(EventType::Info),
            _ => None,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One operation event: an invoke or a completion of a `txn`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Position in the history; strictly increasing; defines realtime order.
    pub index: u64,
    /// Nanoseconds on one monotonic clock (simulated time in the simulation); display only.
    pub time: Option<u64>,
    /// The client process that issued the operation.
    pub process: u64,
    /// The client session of the process, when the history says (`None`: the process is its
    /// own session).
    pub session: Option<u64>,
    /// Invoke, ok, fail or info.
    pub kind: EventType,
    /// The transaction's micro-ops (the `value` field; `f` is always `"txn"`).
    pub value: Vec<MicroOp>,
}

impl Event {
    /// Renders the event as one JSON line (without the newline), fields in DESIGN §7 order.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64 + 16 * self.value.len());
        out.push_str("{\"index\":");
        out.push_str(&self.index.to_string());
        if let Some(time) = self.time {
            out.push_str(",\"time\":");
            out.push_str(&time.to_string());
        }
        out.push_str(",\"process\":");
        out.push_str(&self.process.to_string());
        if let Some(session) = self.session {
            out.push_str(",\"session\":");
            out.push_str(&session.to_string());
        }
        out.push_str(",\"type\":\"");
        out.push_str(self.kind.as_str());
        out.push_str("\",\"f\":\"txn\",\"value\":[");
        for (i, op) in self.value.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            op.write_json(&mut out);
        }
        out.push_str("]}");
        out
    }

    /// Parses one JSON line; the error says what is wrong with it. `None` for an event of a
    /// process that is not a client: a Jepsen history also records its nemesis (`"process":
    /// "nemesis"`, `"f": "start-partition"`, ...), whose events are no operations on the store.
    /// Only such events are skipped: a named process with `"f": "txn"` is malformed, so that a
    /// history of clients with string names is refused rather than checked as empty.
    pub(crate) fn from_json_line(line: &str) -> Result<Option<Event>, String> {
        let json: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let object = json.as_object().ok_or("not a JSON object")?;
        let field = |name: &str| object.get(name).filter(|v| !v.is_null());
        let index = field("index")
            .ok_or("missing \"index\"")?
            .as_u64()
            .ok_or("\"index\" is not a non-negative integer")?;
        let time = match field("time") {
            None => None,
            Some(t) => Some(t.as_u64().ok_or("\"time\" is not a non-negative integer")?),
        };
        let process = field("process").ok_or("missing \"process\"")?;
        if process.is_string() && field("f").and_then(Value::as_str) != Some("txn") {
            return Ok(None);
        }
        let process =
            process.as_u64().ok_or("\"process\" is not a non-negative integer or a name")?;
        let session = match field("session") {
            None => None,
            Some(s) => Some(s.as_u64().ok_or("\"session\" is not a non-negative integer")?),
        };
        let kind_text =
            field("type").ok_or("missing \"type\"")?.as_str().ok_or("\"type\" is not a string")?;
        let kind = EventType::parse(kind_text).ok_or_else(|| {
            format!("\"type\" is {kind_text:?}, expected invoke, ok, fail or info")
        })?;
        match field("f").and_then(Value::as_str) {
            Some("txn") => {}
            _ => return Err("\"f\" is not \"txn\" (only list-append txns are checked)".into()),
        }
        let ops = field("value")
            .ok_or("missing \"value\"")?
            .as_array()
            .ok_or("\"value\" is not a list of micro-ops")?;
        let value = ops.iter().map(MicroOp::from_json).collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Event { index, time, process, session, kind, value }))
    }
}
