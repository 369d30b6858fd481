//! garbage-read: a read shows an element no transaction appended (Bouajjani et al. POPL 2017,
//! ThinAirRead; TESTING §1.3 step 2, §3.2 item 3).

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::history::ListDisplay;
use crate::history_index::{HistoryIndex, NO_TXN};
use crate::report::Report;

/// Records every read of a never-appended element in `report`.
pub(crate) fn check(ix: &HistoryIndex, report: &mut Report) {
    for k in 0..ix.reads.len() {
        let first_garbage = ix.order_writers[k].iter().position(|&w| w == NO_TXN);
        for read in ix.checked_reads(k) {
            if read.prefix && first_garbage.is_none_or(|g| g >= read.values.len()) {
                continue;
            }
            let garbage: Vec<i64> =
                read.values.iter().copied().filter(|&v| ix.writer(k as u32, v).is_none()).collect();
            if garbage.is_empty() {
                continue;
            }
            report.record(AnomalyKind::GarbageRead, || Anomaly {
                kind: AnomalyKind::GarbageRead,
                txns: vec![ix.txn_ref(read.txn)],
                explanation: format!(
                    "{} read {} = {}, but no transaction ever appended {}",
                    ix.name(read.txn),
                    ix.key(k as u32),
                    ListDisplay(read.values),
                    ListDisplay(&garbage)
                ),
                steps: Vec::new(),
            });
        }
    }
}
