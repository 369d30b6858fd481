//! Missing causal past: a read misses an element appended by a transaction in the reader's
//! causal past (TESTING §3.2 item 4; Bouajjani et al. POPL 2017, WriteCOInitRead and
//! WriteCORead adapted to lists; session guarantees after Terry et al., "Session Guarantees for
//! Weakly Consistent Replicated Data", PDIS 1994).
//!
//! Each external read of `k` in `T` (before `T`'s own appends to `k`) must contain every
//! element appended to `k` by every transaction in CausalPast(T). A missing element appended by
//! `U` is named by how `U` entered T's past:
//!
//! | name | `U` is in T's past because |
//! |---|---|
//! | read-your-writes | `U` ran earlier in T's session |
//! | monotonic-reads | an earlier transaction of T's session read from `U` |
//! | monotonic-writes | T's session (up to T) read from a later transaction of U's session |
//! | writes-follow-reads | T's session read from `W`, whose session had read from `U` by then |
//! | causal-read-missing | a longer causal chain |
//!
//! Atomic visibility follows: seeing one element of `U` puts `U` in the past, so every key T
//! reads must show all of U's appends (no fractured reads).

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::history::ListDisplay;
use crate::history_index::{HistoryIndex, Op};
use crate::report::Report;

use super::causal_past::CausalPast;
use super::key_appenders::KeyAppenders;

/// Missing-element violations classified before the check stops (each classification scans
/// the reader's session).
pub(crate) const CAUSAL_VIOLATIONS_MAX: usize = 10_000;

/// Checks `t`'s external reads of `key` against the appenders of `key` in its causal past
/// (`in_past` indexes `appenders`). Returns the number of violations found.
pub(crate) fn check_txn(
    ix: &HistoryIndex,
    past: &CausalPast,
    key: u32,
    appenders: &KeyAppenders,
    t: u32,
    in_past: &[usize],
    report: &mut Report,
) -> usize {
    let mut violations = 0;
    for op in &ix.ops[t as usize] {
        let read = match *op {
            Op::Append { key: k, .. } if k == key => break,
            Op::Read { key: k, value: Some(read) } if k == key => read,
            _ => continue,
        };
        let prefix = ix.orders[key as usize].starts_with(read);
        let len = read.len() as u32;
        for &a in in_past {
            let u = appenders.txns[a];
            if u == t || (prefix && appenders.position_max[a] < len) {
                continue;
            }
            let missing: Vec<i64> =
                appenders.values[a].iter().copied().filter(|v| !read.contains(v)).collect();
            if missing.is_empty() {
                continue;
            }
            violations += 1;
            let kind = classify(past, t, u);
            report.record(kind, || Anomaly {
                kind,
                txns: vec![ix.txn_ref(u), ix.txn_ref(t)],
                explanation: format!(
                    "{} read {} = {}, missing {} appended by {}, which is in its causal past ({})",
                    ix.name(t),
                    ix.key(key),
                    ListDisplay(read),
                    ListDisplay(&missing),
                    ix.name(u),
                    path(ix, t, u, kind)
                ),
                steps: Vec::new(),
            });
        }
    }
    violations
}

/// Names how `u` entered `t`'s causal past (see the module table).
fn classify(past: &CausalPast, t: u32, u: u32) -> AnomalyKind {
    let (st, qt) = (past.session_of[t as usize], past.seq[t as usize] as usize);
    let (su, qu) = (past.session_of[u as usize], past.seq[u as usize]);
    if st == su {
        return AnomalyKind::ReadYourWrites;
    }
    let session = &past.sessions[st as usize];
    let read_from = |x: u32, w: u32| past.wr_sources[x as usize].binary_search(&w).is_ok();
    if session[..qt].iter().any(|&x| read_from(x, u)) {
        return AnomalyKind::MonotonicReads;
    }
    let sources =
        || session[..=qt].iter().flat_map(|&x| past.wr_sources[x as usize].iter().copied());
    if sources().any(|w| past.session_of[w as usize] == su && past.seq[w as usize] > qu) {
        return AnomalyKind::MonotonicWrites;
    }
    let writer_read_u = |w: u32| {
        let sw = past.session_of[w as usize] as usize;
        past.sessions[sw][..=past.seq[w as usize] as usize].iter().any(|&y| read_from(y, u))
    };
    if sources().any(|w| past.session_of[w as usize] != su && writer_read_u(w)) {
        return AnomalyKind::WritesFollowReads;
    }
    AnomalyKind::CausalReadMissing
}

/// Says in words how `u` is in `t`'s causal past, for the explanation.
fn path(ix: &HistoryIndex, t: u32, u: u32, kind: AnomalyKind) -> String {
    let process = |x: u32| ix.txn(x).process;
    match kind {
        AnomalyKind::ReadYourWrites => {
            format!("{} ran earlier in the same session (process {})", ix.name(u), process(u))
        }
        AnomalyKind::MonotonicReads => {
            format!("an earlier transaction of process {} read from {}", process(t), ix.name(u))
        }
        AnomalyKind::MonotonicWrites => format!(
            "process {} read a later transaction of {}'s process {}",
            process(t),
            ix.name(u),
            process(u)
        ),
        AnomalyKind::WritesFollowReads => format!(
            "process {} read a transaction whose process had read {}",
            process(t),
            ix.name(u)
        ),
        _ => "through a longer chain of session order and reads".to_string(),
    }
}
