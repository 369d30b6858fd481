//! The committed appenders of one key, as the causal checks need them: each appender's
//! elements and the furthest position any of them has in the key's version order.

use crate::history_index::{HistoryIndex, Op};

/// Marks an element no read observed (it sorts after every position).
pub(crate) const UNOBSERVED: u32 = u32::MAX;

/// The committed transactions appending to one key.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyAppenders {
    /// The appending transactions, in history order.
    pub txns: Vec<u32>,
    /// Per appender, its elements appended to the key.
    pub values: Vec<Vec<i64>>,
    /// Per appender, the largest version-order position of its elements ([`UNOBSERVED`] if
    /// any is unobserved).
    pub position_max: Vec<u32>,
}

impl KeyAppenders {
    /// Groups the committed appends of `ix` by key.
    pub(crate) fn all(ix: &HistoryIndex) -> Vec<KeyAppenders> {
        let mut by_key = vec![KeyAppenders::default(); ix.keys.len()];
        for t in 0..ix.len() as u32 {
            if !ix.committed[t as usize] {
                continue;
            }
            for op in &ix.ops[t as usize] {
                let Op::Append { key, value } = *op else { continue };
                let entry = &mut by_key[key as usize];
                if entry.txns.last() != Some(&t) {
                    entry.txns.push(t);
                    entry.values.push(Vec::new());
                    entry.position_max.push(0);
                }
                let position = ix.positions.get(&(key, value)).copied().unwrap_or(UNOBSERVED);
                let last = entry.txns.len() - 1;
                entry.values[last].push(value);
                entry.position_max[last] = entry.position_max[last].max(position);
            }
        }
        by_key
    }
}
