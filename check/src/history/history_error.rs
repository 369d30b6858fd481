//! Why a history is unreadable or malformed (`kvcheck` exit 2).
//!
//! Malformed histories have no validity verdict: Elle likewise refuses duplicate appends
//! (`:duplicate-appends`, validity unknown) and unpaired completions.

use std::fmt;

/// A history that cannot be checked, with the 1-based line when it came from JSON lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryError {
    /// The input could not be read at all.
    Io {
        /// The I/O error's message.
        message: String,
    },
    /// A line is not a well-formed event.
    Syntax {
        /// The 1-based line number.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },
    /// The events break a history rule: index order, invoke/completion pairing, process reuse.
    Malformed {
        /// The 1-based line number, when parsed from JSON lines.
        line: Option<usize>,
        /// The offending event's index.
        index: u64,
        /// The rule broken.
        message: String,
    },
    /// Two invokes append the same element to the same key (Elle's `:duplicate-appends`), so
    /// reads can no longer be traced to one writer.
    DuplicateAppend {
        /// The 1-based line number of the second append, when parsed from JSON lines.
        line: Option<usize>,
        /// The key appended to.
        key: String,
        /// The element appended twice.
        value: i64,
        /// The index of the first invoke appending it.
        first_index: u64,
        /// The index of the second invoke appending it.
        index: u64,
    },
}

impl HistoryError {
    /// Returns the 1-based line the error refers to, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            HistoryError::Io { .. } => None,
            HistoryError::Syntax { line, .. } => Some(*line),
            HistoryError::Malformed { line, .. } | HistoryError::DuplicateAppend { line, .. } => {
                *line
            }
        }
    }
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::Io { message } => write!(f, "cannot read history: {message}"),
            HistoryError::Syntax { line, message } => write!(f, "line {line}: {message}"),
            HistoryError::Malformed { line, index, message } => {
                if let Some(line) = line {
                    write!(f, "line {line}: ")?;
                }
                write!(f, "event {index}: {message}")
            }
            HistoryError::DuplicateAppend { line, key, value, first_index, index } => {
                if let Some(line) = line {
                    write!(f, "line {line}: ")?;
                }
                write!(
                    f,
                    "event {index}: duplicate append of {value} to {key}, already appended by \
                     the invoke at index {first_index} (append values must be unique per key)"
                )
            }
        }
    }
}

impl std::error::Error for HistoryError {}
