//! lost-update: two committed transactions read the same state of a key and then both appended
//! to it, so one append was made without seeing the other (Elle `elle/list_append.clj`,
//! `lost-update-cases`, after Adya's P4; repeatable read and up forbid it; TESTING §1.3 step 7).

use std::collections::BTreeMap;

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::history::ListDisplay;
use crate::history_index::{HistoryIndex, Op};
use crate::report::Report;

/// Records every lost update in `report`, one per (key, state read).
pub(crate) fn check(ix: &HistoryIndex, report: &mut Report) {
    for (k, key_reads) in ix.reads.iter().enumerate() {
        let key = k as u32;
        // State read (last element, None for empty) -> transactions that read it then appended.
        let mut groups: BTreeMap<Option<i64>, Vec<u32>> = BTreeMap::new();
        let mut previous: Option<u32> = None;
        for read in key_reads {
            // Only a transaction's first external read counts.
            if !read.external || previous == Some(read.txn) {
                continue;
            }
            previous = Some(read.txn);
            let appends = ix.ops[read.txn as usize]
                .iter()
                .any(|op| matches!(op, Op::Append { key: k2, .. } if *k2 == key));
            if appends {
                groups.entry(read.values.last().copied()).or_default().push(read.txn);
            }
        }
        for (last, txns) in groups {
            if txns.len() < 2 {
                continue;
            }
            let read = key_reads.iter().find(|r| r.txn == txns[0]).map_or(&[][..], |r| r.values);
            let names: Vec<String> = txns.iter().map(|&t| ix.name(t)).collect();
            report.record(AnomalyKind::LostUpdate, || Anomaly {
                kind: AnomalyKind::LostUpdate,
                txns: txns.iter().map(|&t| ix.txn_ref(t)).collect(),
                explanation: format!(
                    "{} all read {} = {}{} and then appended to {}: all but one append was made \
                     without seeing the others",
                    names.join(", "),
                    ix.key(key),
                    ListDisplay(read),
                    if last.is_none() { " (empty)" } else { "" },
                    ix.key(key)
                ),
                steps: Vec::new(),
            });
        }
    }
}
