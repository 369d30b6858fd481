//! Consistency models `kvcheck` checks and which anomalies each forbids (TESTING §1.4, after
//! Elle's `elle/consistency_model.clj`; causal after TESTING §3.2).
//!
//! | model | forbids |
//! |---|---|
//! | `serializable` (PL-3) | every per-op anomaly, lost-update, G0, G1c, G-single, G-nonadjacent, G2-item |
//! | `strict-serializable` (PL-SS) | the above plus their `-realtime` variants |
//! | `strong-session-serializable` | serializable plus the `-process` variants |
//! | `causal` | every per-op anomaly, lost-update, cycles among read-write txns, CyclicCO, the session guarantees, causal-read-missing, CyclicCF |
//!
//! Per-op anomalies (internal, future-read, duplicate-elements, garbage-read, incompatible-order,
//! G1a, G1b, dirty-update) are forbidden everywhere: Elle treats them as G1a/PL-1 or read-atomic
//! violations, and this store promises far more.

use std::fmt;
use std::str::FromStr;

use crate::anomaly::AnomalyKind;

/// A consistency model to check a history against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Model {
    /// Conflict serializability: no cycle of ww/wr/rw dependencies.
    Serializable,
    /// Serializability whose order respects realtime (sequential mode's promise).
    StrictSerializable,
    /// Serializability whose order respects each process's order (Elle's
    /// strong-session-serializable; the transactional reading of sequential consistency).
    StrongSessionSerializable,
    /// Transactional causal consistency (causal mode's promise), with read-write transactions
    /// still serializable.
    Causal,
}

impl Model {
    /// Every model.
    pub const ALL: [Model; 4] = [
        Model::Serializable,
        Model::StrictSerializable,
        Model::StrongSessionSerializable,
        Model::Causal,
    ];

    /// Returns the model's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Model::Serializable => "serializable",
            Model::StrictSerializable => "strict-serializable",
            Model::StrongSessionSerializable => "strong-session-serializable",
            Model::Causal => "causal",
        }
    }

    /// Returns whether the model forbids anomalies of `kind`.
    pub fn forbids(self, kind: AnomalyKind) -> bool {
        if kind.is_causal() {
            return self == Model::Causal;
        }
        if kind.is_realtime() {
            return self == Model::StrictSerializable;
        }
        if kind.is_process() {
            return self == Model::StrongSessionSerializable;
        }
        true
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Model {
    type Err = String;

    fn from_str(s: &str) -> Result<Model, String> {
        Model::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Model::ALL.iter().map(|m| m.name()).collect();
            format!("unknown model {s:?}; expected one of {}", names.join(", "))
        })
    }
}
