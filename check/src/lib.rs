//! History format and consistency checkers for the list-append workload, and `kvcheck`.
//!
//! A port of Elle's list-append analysis (Kingsbury & Alvaro, "Elle: Inferring Isolation
//! Anomalies from Experimental Observations", VLDB 2020; `jepsen-io/elle`,
//! `elle/list_append.clj`, `elle/txn.clj`), classified with Adya's phenomena (Adya, "Weak
//! Consistency", 1999), plus a transactional causal checker after Bouajjani et al. (POPL 2017).
//! Design notes: TESTING.md §1.3 (algorithm), §1.4 (models), §3.2 (causal); DESIGN.md §7
//! (the history contract); `docs/history.md` (the format).
//!
//! ```text
//!  JSON lines ──parse+validate──▶ History ──HistoryIndex──▶ per-op checkers ─┐
//!  Recorder ───────────────────▶           (keys, writers,  dependency graph ├─▶ Report
//!                                           version orders) causal checkers ─┘
//! ```
//!
//! - [`history`]: the format, parsing, validation, and the [`history::Recorder`].
//! - [`check`]: the entry point; [`Model`] picks which anomalies count.
//! - [`completeness::check_final_reads`]: final-read completeness after healing.
//! - [`register`]: one-statement writes and reads of single-key registers.
//! - [`snapshot_order::check_snapshot_order`]: snapshot reads are cuts of one timestamp order.
//!
//! ```
//! use check::history::{MicroOp, Recorder};
//! use check::{check, Model};
//! let mut rec = Recorder::new();
//! rec.invoke(1, 0, vec![MicroOp::append("x", 1)]);
//! rec.ok(1, 10, vec![MicroOp::append("x", 1)]);
//! rec.invoke(2, 20, vec![MicroOp::read("x")]);
//! rec.ok(2, 30, vec![MicroOp::read_result("x", vec![])]); // stale: began after T0 ended
//! let history = rec.history();
//! assert!(check(&history, Model::Serializable).valid);
//! let report = check(&history, Model::StrictSerializable);
//! assert!(!report.valid);
//! assert!(report.has(check::AnomalyKind::GSingleRealtime), "{report}");
//! ```

pub mod anomaly;
pub(crate) mod checker;
pub mod completeness;
pub(crate) mod graph;
pub mod history;
pub(crate) mod history_index;
pub mod model;
pub mod register;
pub mod report;
pub mod snapshot_order;

pub use anomaly::{Anomaly, AnomalyKind, TxnRef};
pub use model::Model;
pub use report::Report;

use checker::causal_past::CausalPast;
use checker::causal_read::CAUSAL_VIOLATIONS_MAX;
use checker::key_appenders::KeyAppenders;
use graph::dependency_graph::GraphOptions;
use history::History;
use history_index::HistoryIndex;
use report::TxnCounts;

/// Checks `history` against `model` and reports every anomaly the model forbids.
pub fn check(history: &History, model: Model) -> Report {
    let ix = HistoryIndex::new(history);
    let mut txns = TxnCounts::of(history);
    txns.info_observed = ix.info_observed();
    let mut report = Report::new(model, txns);

    checker::internal::check(&ix, &mut report);
    checker::future_read::check(&ix, &mut report);
    checker::duplicate_elements::check(&ix, &mut report);
    checker::garbage_read::check(&ix, &mut report);
    checker::incompatible_order::check(&ix, &mut report);
    checker::aborted_read::check(&ix, &mut report);
    checker::intermediate_read::check(&ix, &mut report);
    checker::dirty_update::check(&ix, &mut report);
    checker::lost_update::check(&ix, &mut report);
    checker::own_appends::check(&ix, &mut report);

    let options = match model {
        Model::Serializable => GraphOptions::default(),
        Model::StrictSerializable => GraphOptions { realtime: true, ..GraphOptions::default() },
        Model::StrongSessionSerializable => {
            GraphOptions { process: true, ..GraphOptions::default() }
        }
        Model::Causal => GraphOptions { writers_only: true, ..GraphOptions::default() },
    };
    checker::cycles::check(&ix, options, &mut report);
    if model == Model::Causal {
        check_causal(&ix, &mut report);
    }
    report.finish();
    report
}

/// Runs the causal checks of TESTING §3.2: CyclicCO, missing causal past, CyclicCF.
fn check_causal(ix: &HistoryIndex, report: &mut Report) {
    let past = CausalPast::new(ix);
    if !past.is_acyclic() {
        past.report_cycles(ix, report);
        report.notes.push("causal order is cyclic; causal-past checks skipped".to_string());
        return;
    }
    let mut violations = 0;
    for (key, appenders) in KeyAppenders::all(ix).iter().enumerate() {
        if violations >= CAUSAL_VIOLATIONS_MAX {
            report.notes.push(format!(
                "stopped checking causal reads after {CAUSAL_VIOLATIONS_MAX} violations"
            ));
            break;
        }
        let mut consumers: Vec<u32> = ix.reads[key]
            .iter()
            .filter(|r| r.external)
            .map(|r| r.txn)
            .chain(appenders.txns.iter().copied())
            .collect();
        consumers.sort_unstable();
        consumers.dedup();
        let key = key as u32;
        past.walk_key(&appenders.txns, &consumers, |t, in_past| {
            violations +=
                checker::causal_read::check_txn(ix, &past, key, appenders, t, in_past, report);
            checker::convergence::check_txn(ix, key, appenders, t, in_past, report);
        });
    }
}
