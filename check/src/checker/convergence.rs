//! CyclicCF, convergence: two appends to one key ordered by causality must appear in that
//! order in the key's version order (TESTING §3.2 item 5; Bouajjani et al. POPL 2017, CCv's
//! CyclicCF: the conflict relation must extend causal order). This store has one arbitration
//! order (commit timestamps), so causally later appends are never placed earlier.
//!
//! For each committed `T2` appending `v2` (observed, at position p2) to `k`, every element
//! appended to `k` by a transaction `T1` in CausalPast(T2) must be observed before p2.

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::history::ListDisplay;
use crate::history_index::{HistoryIndex, Op};
use crate::report::Report;

use super::key_appenders::KeyAppenders;

/// Checks `t`'s first append to `key` against the appenders of `key` in its causal past.
pub(crate) fn check_txn(
    ix: &HistoryIndex,
    key: u32,
    appenders: &KeyAppenders,
    t: u32,
    in_past: &[usize],
    report: &mut Report,
) {
    let first = ix.ops[t as usize].iter().find_map(|op| match *op {
        Op::Append { key: k, value } if k == key => Some(value),
        _ => None,
    });
    let Some(value) = first else { return };
    let Some(&p2) = ix.positions.get(&(key, value)) else { return };
    for &a in in_past {
        let u = appenders.txns[a];
        if u == t || appenders.position_max[a] < p2 {
            continue;
        }
        let misplaced: Vec<i64> = appenders.values[a]
            .iter()
            .copied()
            .filter(|v| ix.positions.get(&(key, *v)).is_none_or(|&p| p > p2))
            .collect();
        report.record(AnomalyKind::CyclicCf, || Anomaly {
            kind: AnomalyKind::CyclicCf,
            txns: vec![ix.txn_ref(u), ix.txn_ref(t)],
            explanation: format!(
                "{} is in {}'s causal past and both appended to {}, but {}'s {} is not before \
                 {}'s {value} in {}'s order {}",
                ix.name(u),
                ix.name(t),
                ix.key(key),
                ix.name(u),
                ListDisplay(&misplaced),
                ix.name(t),
                ix.key(key),
                ListDisplay(ix.orders[key as usize])
            ),
            steps: Vec::new(),
        });
    }
}
