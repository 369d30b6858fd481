//! G1a, aborted read: an ok read shows an element appended by a failed transaction (Adya 1999
//! §4.1.2 G1a; Elle `elle/list_append.clj`, `g1a-cases`; TESTING §1.3 step 2).
//!
//! A `fail` must mean "certainly not committed" (TESTING §1.2), so a wrong `fail` in the
//! recorder shows up here as a false alarm.

use std::collections::BTreeMap;

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::history::{ListDisplay, Outcome};
use crate::history_index::{HistoryIndex, NO_TXN};
use crate::report::Report;

/// Records every aborted read in `report`, one per (reader, key, failed writer).
pub(crate) fn check(ix: &HistoryIndex, report: &mut Report) {
    for k in 0..ix.reads.len() {
        let first_failed =
            ix.order_writers[k].iter().position(|&w| w != NO_TXN && ix.outcome(w) == Outcome::Fail);
        for read in ix.checked_reads(k) {
            if read.prefix && first_failed.is_none_or(|f| f >= read.values.len()) {
                continue;
            }
            let mut by_writer: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
            for &v in read.values {
                if let Some(w) = ix.writer(k as u32, v)
                    && ix.outcome(w.txn) == Outcome::Fail
                {
                    by_writer.entry(w.txn).or_default().push(v);
                }
            }
            for (writer, elements) in by_writer {
                report.record(AnomalyKind::G1a, || Anomaly {
                    kind: AnomalyKind::G1a,
                    txns: vec![ix.txn_ref(writer), ix.txn_ref(read.txn)],
                    explanation: format!(
                        "{} read {} = {}, which includes {}, appended by {}, which failed",
                        ix.name(read.txn),
                        ix.key(k as u32),
                        ListDisplay(read.values),
                        ListDisplay(&elements),
                        ix.name(writer)
                    ),
                    steps: Vec::new(),
                });
            }
        }
    }
}
