//! G0 within one transaction: a transaction's appends to one key must appear in the key's
//! version order in the order it made them, each after the one before. A read that shows a
//! later append without the earlier one before it (`x+1 x+2` read back as `[2, 1]`, or as `[2]`)
//! puts a write-write dependency from the transaction to itself, a cycle of one that the
//! dependency graph cannot hold (it drops self-edges, as Elle's does; so Elle misses this too).
//! A store that applied a transaction's buffered writes out of order would show it. Found by a
//! review of the checker, 2026-12-07.

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::history::ListDisplay;
use crate::history_index::{HistoryIndex, Op};
use crate::report::Report;

/// Records every transaction whose appends to a key appear out of their order.
pub(crate) fn check(ix: &HistoryIndex, report: &mut Report) {
    for t in 0..ix.len() as u32 {
        let ops = &ix.ops[t as usize];
        for (i, op) in ops.iter().enumerate() {
            let Op::Append { key, value: later } = *op else { continue };
            // The same transaction's previous append to this key, if any.
            let earlier = ops[..i].iter().rev().find_map(|op| match *op {
                Op::Append { key: k, value } if k == key => Some(value),
                _ => None,
            });
            let Some(earlier) = earlier else { continue };
            let Some(&at) = ix.positions.get(&(key, later)) else { continue };
            let in_order = ix.positions.get(&(key, earlier)).is_some_and(|&before| before < at);
            if in_order {
                continue;
            }
            let order = ix.orders[key as usize];
            report.record(AnomalyKind::G0, || Anomaly {
                kind: AnomalyKind::G0,
                txns: vec![ix.txn_ref(t)],
                explanation: format!(
                    "{} appended {earlier} then {later} to {}, but {} was read as {}: {later} \
                     without {earlier} before it (a write-write cycle of one transaction)",
                    ix.name(t),
                    ix.key(key),
                    ix.key(key),
                    ListDisplay(order)
                ),
                steps: Vec::new(),
            });
        }
    }
}
