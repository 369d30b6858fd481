//! The verdict of [`crate::check`]: valid or not, every anomaly found, and why.
//!
//! Reports are deterministic: anomalies are ordered by kind (see [`AnomalyKind`]) and then by
//! the transactions involved, and counted in a `BTreeMap`. Each kind keeps at most
//! [`ANOMALIES_PER_KIND_MAX`] detailed anomalies; the count covers all of them.

use std::collections::BTreeMap;
use std::fmt;

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::history::{History, Outcome};
use crate::model::Model;

/// Detailed anomalies kept per kind; further ones are only counted.
pub const ANOMALIES_PER_KIND_MAX: usize = 16;

/// How many transactions of each outcome the history holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxnCounts {
    /// All transactions.
    pub total: usize,
    /// Committed (`ok`).
    pub ok: usize,
    /// Certainly not committed (`fail`).
    pub fail: usize,
    /// Unknown outcome (`info` or never completed).
    pub info: usize,
    /// Of the `info` ones, those some read observed (so they committed).
    pub info_observed: usize,
}

impl TxnCounts {
    /// Counts the transactions of `history`; `info_observed` is filled in by the caller.
    pub(crate) fn of(history: &History) -> TxnCounts {
        let mut counts = TxnCounts { total: history.txns().len(), ..TxnCounts::default() };
        for txn in history.txns() {
            match txn.outcome {
                Outcome::Ok => counts.ok += 1,
                Outcome::Fail => counts.fail += 1,
                Outcome::Info => counts.info += 1,
            }
        }
        counts
    }
}

/// The result of checking a history against a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The model checked.
    pub model: Model,
    /// Whether no anomaly the model forbids was found.
    pub valid: bool,
    /// Anomalies found, in report order, at most [`ANOMALIES_PER_KIND_MAX`] per kind.
    pub anomalies: Vec<Anomaly>,
    /// How many anomalies of each kind were found (including those not kept in detail).
    pub counts: BTreeMap<AnomalyKind, usize>,
    /// The history's transactions by outcome.
    pub txns: TxnCounts,
    /// Limits hit while checking (a search cut short); the verdict stays sound but may list
    /// fewer anomalies.
    pub notes: Vec<String>,
}

impl Report {
    /// Creates an empty (valid) report.
    pub(crate) fn new(model: Model, txns: TxnCounts) -> Report {
        Report {
            model,
            valid: true,
            anomalies: Vec::new(),
            counts: BTreeMap::new(),
            txns,
            notes: Vec::new(),
        }
    }

    /// Counts an anomaly of `kind` if the model forbids it, and keeps it in detail (built by
    /// `build`) while under [`ANOMALIES_PER_KIND_MAX`].
    pub(crate) fn record(&mut self, kind: AnomalyKind, build: impl FnOnce() -> Anomaly) {
        if !self.model.forbids(kind) {
            return;
        }
        let count = self.counts.entry(kind).or_insert(0);
        *count += 1;
        if *count <= ANOMALIES_PER_KIND_MAX {
            let anomaly = build();
            debug_assert_eq!(anomaly.kind, kind, "anomaly built for the wrong kind");
            self.anomalies.push(anomaly);
        }
        self.valid = false;
    }

    /// Returns whether some anomaly of `kind` was found.
    pub fn has(&self, kind: AnomalyKind) -> bool {
        self.counts.contains_key(&kind)
    }

    /// Returns the number of anomalies found (all kinds).
    pub fn anomaly_count(&self) -> usize {
        self.counts.values().sum()
    }

    /// Sorts anomalies into report order.
    pub(crate) fn finish(&mut self) {
        self.anomalies.sort_by(|a, b| {
            let key =
                |x: &Anomaly| (x.kind, x.txns.iter().map(|t| t.invoke_index).collect::<Vec<_>>());
            key(a).cmp(&key(b))
        });
    }

    /// Returns the one-line summary: verdict, model, anomaly counts, transaction counts.
    pub fn summary(&self) -> String {
        let t = &self.txns;
        let txns = format!(
            "{} txns ({} ok, {} fail, {} info of which {} observed)",
            t.total, t.ok, t.fail, t.info, t.info_observed
        );
        if self.valid {
            return format!("valid under {}: {txns}", self.model);
        }
        let counts: Vec<String> = self.counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let count = self.anomaly_count();
        format!(
            "INVALID under {}: {count} {} ({}) in {txns}",
            self.model,
            if count == 1 { "anomaly" } else { "anomalies" },
            counts.join(", ")
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary())?;
        for anomaly in &self.anomalies {
            write!(f, "{anomaly}")?;
        }
        for (kind, count) in &self.counts {
            if *count > ANOMALIES_PER_KIND_MAX {
                writeln!(f, "({} more {kind} not shown)", count - ANOMALIES_PER_KIND_MAX)?;
            }
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}
