//! dirty-update: in a key's version order, a failed transaction's element is followed by a
//! committed transaction's element: the committed write built on an aborted one (Elle
//! `elle/list_append.clj`, `dirty-update-cases`; TESTING §1.3 step 4).

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::history::Outcome;
use crate::history_index::{HistoryIndex, NO_TXN};
use crate::report::Report;

/// Records every dirty update in `report`, one per run of failed elements.
pub(crate) fn check(ix: &HistoryIndex, report: &mut Report) {
    for (k, writers) in ix.order_writers.iter().enumerate() {
        let order = ix.orders[k];
        let mut failed: Option<usize> = None;
        for (i, &w) in writers.iter().enumerate() {
            if w == NO_TXN {
                continue;
            }
            if ix.outcome(w) == Outcome::Fail {
                failed = Some(i);
                continue;
            }
            let Some(f) = failed.take() else { continue };
            if !ix.committed[w as usize] {
                continue;
            }
            let failed_writer = writers[f];
            report.record(AnomalyKind::DirtyUpdate, || Anomaly {
                kind: AnomalyKind::DirtyUpdate,
                txns: vec![ix.txn_ref(failed_writer), ix.txn_ref(w)],
                explanation: format!(
                    "{} committed its append of {} to {} after {}'s append of {}, but {} failed",
                    ix.name(w),
                    order[i],
                    ix.key(k as u32),
                    ix.name(failed_writer),
                    order[f],
                    ix.name(failed_writer)
                ),
                steps: Vec::new(),
            });
        }
    }
}
