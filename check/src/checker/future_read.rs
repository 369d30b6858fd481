//! future-read: a transaction reads an element it appends only later (Elle
//! `elle/list_append.clj`, `future-read`; TESTING §1.3 step 2).

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::history::ListDisplay;
use crate::history_index::{HistoryIndex, Op};
use crate::report::Report;

/// Records every future read of `ix` in `report`.
pub(crate) fn check(ix: &HistoryIndex, report: &mut Report) {
    for key_reads in &ix.reads {
        for read in key_reads {
            let t = read.txn;
            let ops = &ix.ops[t as usize];
            let Op::Read { key, .. } = ops[read.op as usize] else { continue };
            let later_appends = ops[read.op as usize + 1..]
                .iter()
                .any(|op| matches!(op, Op::Append { key: k, .. } if *k == key));
            if !later_appends {
                continue;
            }
            let future: Vec<i64> = read
                .values
                .iter()
                .copied()
                .filter(|&v| ix.writer(key, v).is_some_and(|w| w.txn == t && w.op > read.op))
                .collect();
            if future.is_empty() {
                continue;
            }
            report.record(AnomalyKind::FutureRead, || Anomaly {
                kind: AnomalyKind::FutureRead,
                txns: vec![ix.txn_ref(t)],
                explanation: format!(
                    "{} read {} = {}, which includes {}, appended by {} itself only later",
                    ix.name(t),
                    ix.key(key),
                    ListDisplay(read.values),
                    ListDisplay(&future),
                    ix.name(t)
                ),
                steps: Vec::new(),
            });
        }
    }
}
