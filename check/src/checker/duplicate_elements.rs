//! duplicate-elements: one read shows the same element twice (Elle `elle/list_append.clj`,
//! `duplicates`; an anomaly, unlike a duplicate append in invokes, which makes the history
//! malformed; TESTING §1.3 step 2).

use std::collections::HashSet;

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::history::ListDisplay;
use crate::history_index::HistoryIndex;
use crate::report::Report;

/// Returns the elements occurring more than once in `values`, in first-repeat order.
fn duplicates(values: &[i64]) -> Vec<i64> {
    let mut seen = HashSet::with_capacity(values.len());
    let mut repeated = Vec::new();
    for &v in values {
        if !seen.insert(v) && !repeated.contains(&v) {
            repeated.push(v);
        }
    }
    repeated
}

/// Records every read with duplicate elements in `report`.
pub(crate) fn check(ix: &HistoryIndex, report: &mut Report) {
    for k in 0..ix.reads.len() {
        // A prefix of a duplicate-free order is duplicate-free: only scan what can differ.
        let order_clean = duplicates(ix.orders[k]).is_empty();
        for read in ix.checked_reads(k) {
            if read.prefix && order_clean {
                continue;
            }
            let repeated = duplicates(read.values);
            if repeated.is_empty() {
                continue;
            }
            report.record(AnomalyKind::DuplicateElements, || Anomaly {
                kind: AnomalyKind::DuplicateElements,
                txns: vec![ix.txn_ref(read.txn)],
                explanation: format!(
                    "{} read {} = {}, which contains {} more than once",
                    ix.name(read.txn),
                    ix.key(k as u32),
                    ListDisplay(read.values),
                    ListDisplay(&repeated)
                ),
                steps: Vec::new(),
            });
        }
    }
}
