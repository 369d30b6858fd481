//! G1b, intermediate read: an ok read ends at an element whose writer appended to the same key
//! again later, so the reader saw a state that never committed (Adya 1999 §4.1.2 G1b; Elle
//! `elle/list_append.clj`, `g1b-cases`; TESTING §1.3 step 2).

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::history::ListDisplay;
use crate::history_index::{HistoryIndex, Op};
use crate::report::Report;

/// Records every intermediate read in `report`.
pub(crate) fn check(ix: &HistoryIndex, report: &mut Report) {
    for (k, key_reads) in ix.reads.iter().enumerate() {
        let key = k as u32;
        for read in key_reads {
            let Some(&last) = read.values.last() else { continue };
            let Some(w) = ix.writer(key, last) else { continue };
            if w.txn == read.txn {
                continue;
            }
            let later =
                ix.ops[w.txn as usize][w.op as usize + 1..].iter().find_map(|op| match *op {
                    Op::Append { key: k2, value } if k2 == key => Some(value),
                    _ => None,
                });
            let Some(later) = later else { continue };
            report.record(AnomalyKind::G1b, || Anomaly {
                kind: AnomalyKind::G1b,
                txns: vec![ix.txn_ref(w.txn), ix.txn_ref(read.txn)],
                explanation: format!(
                    "{} read {} = {}, ending at {last}, an intermediate state of {}, which \
                     appended {later} to {} after it",
                    ix.name(read.txn),
                    ix.key(key),
                    ListDisplay(read.values),
                    ix.name(w.txn),
                    ix.key(key)
                ),
                steps: Vec::new(),
            });
        }
    }
}
