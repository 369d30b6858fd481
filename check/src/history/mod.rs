//! The list-append history format (DESIGN §7; Jepsen/Elle's history rendered as JSON lines).
//!
//! ```text
//! {"index":0,"time":1500,"process":3,"type":"invoke","f":"txn","value":[["append","x",1],["r","y",null]]}
//! {"index":1,"time":2900,"process":3,"type":"ok","f":"txn","value":[["append","x",1],["r","y",[1,2]]]}
//! ```
//!
//! - [`Key`], [`MicroOp`], [`Event`]: the vocabulary of one line.
//! - [`History`]: parsed and validated events paired into [`Txn`]s (rules in `validator.rs`).
//! - [`Recorder`]: the writer the simulation records through.
//! - [`HistoryError`]: why input is unreadable or malformed (`kvcheck` exit 2).
//!
//! The full format is documented in `docs/history.md`.

mod event;
#[allow(clippy::module_inception)]
mod history;
mod history_error;
mod key;
mod micro_op;
mod recorder;
mod txn;
mod validator;

pub use event::{Event, EventType};
pub use history::History;
pub use history_error::HistoryError;
pub use key::Key;
pub use micro_op::{ListDisplay, MicroOp};
pub use recorder::Recorder;
pub use txn::{Outcome, Txn};
