//! incompatible-order: two reads of one key are not prefixes of one another, so no single
//! version order explains them (Elle `elle/list_append.clj`, `incompatible-orders`; TESTING
//! §1.3 step 3). Each read is compared with the key's longest read.

use std::collections::BTreeSet;

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::history::ListDisplay;
use crate::history_index::HistoryIndex;
use crate::report::Report;

/// Records every read that is not a prefix of its key's longest read in `report`, once per
/// distinct list read.
pub(crate) fn check(ix: &HistoryIndex, report: &mut Report) {
    for (k, key_reads) in ix.reads.iter().enumerate() {
        let unfinished_off = ix.unfinished_reads[k].iter().any(|r| !r.prefix);
        if !ix.incompatible[k] && !unfinished_off {
            continue;
        }
        let order = ix.orders[k];
        let Some(longest) = key_reads.iter().find(|r| r.values == order) else { continue };
        let mut reported: BTreeSet<&[i64]> = BTreeSet::new();
        for read in ix.checked_reads(k) {
            if read.prefix || !reported.insert(read.values) {
                continue;
            }
            report.record(AnomalyKind::IncompatibleOrder, || Anomaly {
                kind: AnomalyKind::IncompatibleOrder,
                txns: vec![ix.txn_ref(read.txn), ix.txn_ref(longest.txn)],
                explanation: format!(
                    "{} read {} = {} and {} read {} = {}: neither is a prefix of the other",
                    ix.name(read.txn),
                    ix.key(k as u32),
                    ListDisplay(read.values),
                    ix.name(longest.txn),
                    ix.key(k as u32),
                    ListDisplay(order)
                ),
                steps: Vec::new(),
            });
        }
    }
}
