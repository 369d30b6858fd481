//! internal: a transaction disagrees with itself (Elle `elle/list_append.clj`, `internal-cases`;
//! Adya-style "internal consistency", read-atomic and up forbid it; TESTING §1.3 step 2).
//!
//! Walking an ok transaction's micro-ops, each key's expected state is either known in full
//! (after a read: the list read plus later own appends) or known only as a suffix (own appends
//! with no read yet). A read that is not that list, or does not end with that suffix, is an
//! internal anomaly.

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::history::{ListDisplay, Outcome};
use crate::history_index::{HistoryIndex, Op};
use crate::report::Report;

/// What a transaction's own micro-ops imply about one key.
struct Expected {
    /// The key.
    key: u32,
    /// Whether `list` is the full list (a read happened) or only its suffix.
    full: bool,
    /// The implied list or suffix.
    list: Vec<i64>,
}

/// Records every internal anomaly of `ix` in `report`.
pub(crate) fn check(ix: &HistoryIndex, report: &mut Report) {
    for t in 0..ix.len() as u32 {
        if ix.outcome(t) != Outcome::Ok {
            continue;
        }
        let mut expected: Vec<Expected> = Vec::new();
        for op in &ix.ops[t as usize] {
            match *op {
                Op::Append { key, value } => match expected.iter_mut().find(|e| e.key == key) {
                    Some(e) => e.list.push(value),
                    None => expected.push(Expected { key, full: false, list: vec![value] }),
                },
                Op::Read { key, value: Some(read) } => {
                    let Some(e) = expected.iter_mut().find(|e| e.key == key) else {
                        expected.push(Expected { key, full: true, list: read.to_vec() });
                        continue;
                    };
                    let consistent = if e.full { read == e.list } else { read.ends_with(&e.list) };
                    if !consistent {
                        let implied = if e.full {
                            format!("{}", ListDisplay(&e.list))
                        } else {
                            format!("a list ending with {}", ListDisplay(&e.list))
                        };
                        report.record(AnomalyKind::Internal, || Anomaly {
                            kind: AnomalyKind::Internal,
                            txns: vec![ix.txn_ref(t)],
                            explanation: format!(
                                "{} read {} = {}, but its own earlier micro-ops imply {implied}",
                                ix.name(t),
                                ix.key(key),
                                ListDisplay(read)
                            ),
                            steps: Vec::new(),
                        });
                    }
                    e.full = true;
                    e.list = read.to_vec();
                }
                Op::Read { value: None, .. } => {}
            }
        }
    }
}
