//! Micro-operations of the list-append workload (Elle `elle/list_append.clj`, TESTING §1.1).
//!
//! A transaction is a list of micro-ops: `["append", key, int]` adds an element to the end of
//! the key's list (values unique per key over the whole history), `["r", key, list|null]` reads
//! the whole list. An `invoke` carries `null` reads; an `ok` carries what each read returned,
//! order and duplicates kept.

use std::fmt;

use serde_json::Value;

use super::key::Key;

/// One micro-operation of a list-append transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MicroOp {
    /// Appends `value` to the list at `key`.
    Append {
        /// The list appended to.
        key: Key,
        /// The element appended; unique per key across the history.
        value: i64,
    },
    /// Reads the whole list at `key`.
    Read {
        /// The list read.
        key: Key,
        /// The list observed, or `None` when unknown (invokes, and `fail`/`info` completions).
        value: Option<Vec<i64>>,
    },
}

impl MicroOp {
    /// Creates an append of `value` to `key`.
    pub fn append(key: impl Into<Key>, value: i64) -> MicroOp {
        MicroOp::Append { key: key.into(), value }
    }

    /// Creates a read of `key` with an unknown result, as recorded in an invoke.
    pub fn read(key: impl Into<Key>) -> MicroOp {
        MicroOp::Read { key: key.into(), value: None }
    }

    /// Creates a read of `key` that observed `values`, as recorded in an `ok` completion.
    pub fn read_result(key: impl Into<Key>, values: Vec<i64>) -> MicroOp {
        MicroOp::Read { key: key.into(), value: Some(values) }
    }

    /// Returns the key this micro-op touches.
    pub fn key(&self) -> &Key {
        match self {
            MicroOp::Append { key, .. } | MicroOp::Read { key, .. } => key,
        }
    }

    /// Returns whether this is an append.
    pub fn is_append(&self) -> bool {
        matches!(self, MicroOp::Append { .. })
    }

    /// Appends the JSON rendering (`["append","x",1]`, `["r","x",[1,2]]`) to `out`.
    pub(crate) fn write_json(&self, out: &mut String) {
        match self {
            MicroOp::Append { key, value } => {
                out.push_str("[\"append\",");
                key.write_json(out);
                out.push(',');
                out.push_str(&value.to_string());
                out.push(']');
            }
            MicroOp::Read { key, value } => {
                out.push_str("[\"r\",");
                key.write_json(out);
                out.push(',');
                match value {
                    None => out.push_str("null"),
                    Some(values) => {
                        out.push('[');
                        for (i, v) in values.iter().enumerate() {
                            if i > 0 {
                                out.push(',');
                            }
                            out.push_str(&v.to_string());
                        }
                        out.push(']');
                    }
                }
                out.push(']');
            }
        }
    }

    /// Parses one micro-op from its JSON form; the error says what is wrong with it.
    pub(crate) fn from_json(json: &Value) -> Result<MicroOp, String> {
        let parts = match json.as_array() {
            Some(parts) if parts.len() == 3 => parts,
            _ => return Err(format!("micro-op {json} is not a 3-element array [f, key, value]")),
        };
        let key = match &parts[1] {
            Value::String(s) => Key::new(s.clone()),
            Value::Number(n) if n.is_i64() || n.is_u64() => Key::from_integer_text(n.to_string()),
            other => return Err(format!("key {other} is neither a string nor an integer")),
        };
        match parts[0].as_str() {
            Some("append") => match parts[2].as_i64() {
                Some(value) => Ok(MicroOp::Append { key, value }),
                None => Err(format!("append value {} is not a 64-bit integer", parts[2])),
            },
            Some("r") => match &parts[2] {
                Value::Null => Ok(MicroOp::Read { key, value: None }),
                Value::Array(items) => {
                    let mut values = Vec::with_capacity(items.len());
                    for item in items {
                        match item.as_i64() {
                            Some(v) => values.push(v),
                            None => return Err(format!("read element {item} is not an integer")),
                        }
                    }
                    Ok(MicroOp::Read { key, value: Some(values) })
                }
                other => Err(format!("read value {other} is neither null nor a list")),
            },
            _ => Err(format!("micro-op function {} is neither \"append\" nor \"r\"", parts[0])),
        }
    }
}

/// Elle's notation: `[append x 1]`, `[r x [1 2]]`, `[r x nil]`.
impl fmt::Display for MicroOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MicroOp::Append { key, value } => write!(f, "[append {key} {value}]"),
            MicroOp::Read { key, value: None } => write!(f, "[r {key} nil]"),
            MicroOp::Read { key, value: Some(values) } => {
                write!(f, "[r {key} {}]", ListDisplay(values))
            }
        }
    }
}

/// Renders a list of elements Elle-style: `[1 2 3]`.
pub struct ListDisplay<'a>(pub &'a [i64]);

impl fmt::Display for ListDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{v}")?;
        }
        f.write_str("]")
    }
}
