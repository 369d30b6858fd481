//! Anomalies: the typed findings of every checker, with the transactions involved and why.
//!
//! Names follow Elle (`elle/list_append.clj`, `elle/txn.clj`; Kingsbury & Alvaro, VLDB 2020),
//! which follows Adya's phenomena (Adya, "Weak Consistency", MIT PhD thesis 1999, §3–4): G0, G1a,
//! G1b, G1c, G-single, G2-item, with `-process`/`-realtime` variants for cycles that need a
//! session or realtime edge. The causal ones follow Bouajjani et al., "On Verifying Causal
//! Consistency" (POPL 2017; `CyclicCO`, `CyclicCF`) and Terry et al.'s session guarantees
//! (PDIS 1994; read-your-writes, monotonic reads/writes, writes-follow-reads). TESTING §1.3,
//! §1.4, §3.2 map them onto list-append.

use std::fmt;

use crate::history::{MicroOp, Outcome, Txn};

/// The kind of an anomaly. Declaration order is report order: most fundamental first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnomalyKind {
    /// A read disagrees with the transaction's own earlier reads and appends of the key.
    Internal,
    /// A read contains an element the same transaction appends only later.
    FutureRead,
    /// One read contains the same element twice.
    DuplicateElements,
    /// An element no transaction ever appended was read (Bouajjani's ThinAirRead).
    GarbageRead,
    /// Two reads of a key are not prefixes of one another: no single version order exists.
    IncompatibleOrder,
    /// Aborted read: an ok read contains an element appended by a failed transaction.
    G1a,
    /// Intermediate read: an ok read ends at an element its writer later appended past.
    G1b,
    /// A failed transaction's element is followed by a committed one in the version order.
    DirtyUpdate,
    /// Two committed transactions read the same state of a key, then both appended to it.
    LostUpdate,
    /// A cycle of write-write dependencies.
    G0,
    /// G0 that needs a process (session-order) edge.
    G0Process,
    /// G0 that needs a realtime edge.
    G0Realtime,
    /// A cycle of write-write and write-read dependencies, at least one write-read.
    G1c,
    /// G1c that needs a process edge.
    G1cProcess,
    /// G1c that needs a realtime edge.
    G1cRealtime,
    /// A cycle with exactly one read-write anti-dependency ("read skew").
    GSingle,
    /// G-single that needs a process edge.
    GSingleProcess,
    /// G-single that needs a realtime edge (the classic stale read).
    GSingleRealtime,
    /// A cycle with at least two read-write anti-dependencies, none adjacent.
    GNonadjacent,
    /// G-nonadjacent that needs a process edge.
    GNonadjacentProcess,
    /// G-nonadjacent that needs a realtime edge.
    GNonadjacentRealtime,
    /// A cycle with at least two read-write anti-dependencies, two of them adjacent
    /// ("write skew").
    G2Item,
    /// G2-item that needs a process edge.
    G2ItemProcess,
    /// G2-item that needs a realtime edge.
    G2ItemRealtime,
    /// Session order plus read-from is cyclic: no causal order exists.
    CyclicCo,
    /// A read misses an element appended earlier in the reader's own session.
    ReadYourWrites,
    /// A read misses an element of a transaction an earlier transaction of the session saw.
    MonotonicReads,
    /// The session saw a later write of another session but misses an earlier one of it.
    MonotonicWrites,
    /// The session saw a write whose session had first read a transaction the read misses.
    WritesFollowReads,
    /// A read misses an element of a transaction in its causal past (longer causal chain).
    CausalReadMissing,
    /// Two appends to one key ordered by causality appear in the opposite version order
    /// (no convergent arbitration order).
    CyclicCf,
}

impl AnomalyKind {
    /// Every kind, in report order.
    pub const ALL: [AnomalyKind; 31] = [
        AnomalyKind::Internal,
        AnomalyKind::FutureRead,
        AnomalyKind::DuplicateElements,
        AnomalyKind::GarbageRead,
        AnomalyKind::IncompatibleOrder,
        AnomalyKind::G1a,
        AnomalyKind::G1b,
        AnomalyKind::DirtyUpdate,
        AnomalyKind::LostUpdate,
        AnomalyKind::G0,
        AnomalyKind::G0Process,
        AnomalyKind::G0Realtime,
        AnomalyKind::G1c,
        AnomalyKind::G1cProcess,
        AnomalyKind::G1cRealtime,
        AnomalyKind::GSingle,
        AnomalyKind::GSingleProcess,
        AnomalyKind::GSingleRealtime,
        AnomalyKind::GNonadjacent,
        AnomalyKind::GNonadjacentProcess,
        AnomalyKind::GNonadjacentRealtime,
        AnomalyKind::G2Item,
        AnomalyKind::G2ItemProcess,
        AnomalyKind::G2ItemRealtime,
        AnomalyKind::CyclicCo,
        AnomalyKind::ReadYourWrites,
        AnomalyKind::MonotonicReads,
        AnomalyKind::MonotonicWrites,
        AnomalyKind::WritesFollowReads,
        AnomalyKind::CausalReadMissing,
        AnomalyKind::CyclicCf,
    ];

    /// Returns the anomaly's name as Elle and the reports spell it.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::Internal => "internal",
            AnomalyKind::FutureRead => "future-read",
            AnomalyKind::DuplicateElements => "duplicate-elements",
            AnomalyKind::GarbageRead => "garbage-read",
            AnomalyKind::IncompatibleOrder => "incompatible-order",
            AnomalyKind::G1a => "G1a",
            AnomalyKind::G1b => "G1b",
            AnomalyKind::DirtyUpdate => "dirty-update",
            AnomalyKind::LostUpdate => "lost-update",
            AnomalyKind::G0 => "G0",
            AnomalyKind::G0Process => "G0-process",
            AnomalyKind::G0Realtime => "G0-realtime",
            AnomalyKind::G1c => "G1c",
            AnomalyKind::G1cProcess => "G1c-process",
            AnomalyKind::G1cRealtime => "G1c-realtime",
            AnomalyKind::GSingle => "G-single",
            AnomalyKind::GSingleProcess => "G-single-process",
            AnomalyKind::GSingleRealtime => "G-single-realtime",
            AnomalyKind::GNonadjacent => "G-nonadjacent",
            AnomalyKind::GNonadjacentProcess => "G-nonadjacent-process",
            AnomalyKind::GNonadjacentRealtime => "G-nonadjacent-realtime",
            AnomalyKind::G2Item => "G2-item",
            AnomalyKind::G2ItemProcess => "G2-item-process",
            AnomalyKind::G2ItemRealtime => "G2-item-realtime",
            AnomalyKind::CyclicCo => "CyclicCO",
            AnomalyKind::ReadYourWrites => "read-your-writes",
            AnomalyKind::MonotonicReads => "monotonic-reads",
            AnomalyKind::MonotonicWrites => "monotonic-writes",
            AnomalyKind::WritesFollowReads => "writes-follow-reads",
            AnomalyKind::CausalReadMissing => "causal-read-missing",
            AnomalyKind::CyclicCf => "CyclicCF",
        }
    }

    /// Looks a kind up by its name.
    pub fn from_name(name: &str) -> Option<AnomalyKind> {
        AnomalyKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Returns whether this kind is a dependency cycle (G0 … G2-item and their variants).
    pub fn is_cycle(self) -> bool {
        (AnomalyKind::G0..=AnomalyKind::G2ItemRealtime).contains(&self)
    }

    /// Returns whether this is a cycle variant that needs a realtime edge.
    pub fn is_realtime(self) -> bool {
        matches!(
            self,
            AnomalyKind::G0Realtime
                | AnomalyKind::G1cRealtime
                | AnomalyKind::GSingleRealtime
                | AnomalyKind::GNonadjacentRealtime
                | AnomalyKind::G2ItemRealtime
        )
    }

    /// Returns whether this is a cycle variant that needs a process edge.
    pub fn is_process(self) -> bool {
        matches!(
            self,
            AnomalyKind::G0Process
                | AnomalyKind::G1cProcess
                | AnomalyKind::GSingleProcess
                | AnomalyKind::GNonadjacentProcess
                | AnomalyKind::G2ItemProcess
        )
    }

    /// Returns whether this is one of the causal-consistency kinds (TESTING §3.2).
    pub fn is_causal(self) -> bool {
        self >= AnomalyKind::CyclicCo
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A transaction as cited in a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnRef {
    /// The invoke's history index; the transaction is called `T<invoke_index>`.
    pub invoke_index: u64,
    /// The completion's history index, if any.
    pub completion_index: Option<u64>,
    /// The process that ran it.
    pub process: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Its micro-ops (reads as observed for ok transactions).
    pub ops: Vec<MicroOp>,
}

impl TxnRef {
    /// Cites `txn`.
    pub fn of(txn: &Txn) -> TxnRef {
        TxnRef {
            invoke_index: txn.invoke_index,
            completion_index: txn.completion_index,
            process: txn.process,
            outcome: txn.outcome,
            ops: txn.ops.clone(),
        }
    }

    /// Returns the transaction's name, `T<invoke_index>`.
    pub fn name(&self) -> String {
        format!("T{}", self.invoke_index)
    }
}

impl fmt::Display for TxnRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "T{}: process {}, invoke {}",
            self.invoke_index, self.process, self.invoke_index
        )?;
        match self.completion_index {
            Some(c) => write!(f, ", {} {c}:", self.outcome)?,
            None => write!(f, ", never completed:")?,
        }
        for op in &self.ops {
            write!(f, " {op}")?;
        }
        Ok(())
    }
}

/// One finding: its kind, the transactions involved, and a human explanation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    /// What went wrong.
    pub kind: AnomalyKind,
    /// The transactions involved, in the order the explanation cites them.
    pub txns: Vec<TxnRef>,
    /// One sentence saying what was observed.
    pub explanation: String,
    /// For cycles: one reason per edge ("T2 observed T1's append of 1 to y"); else empty.
    pub steps: Vec<String>,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.kind, self.explanation)?;
        for step in &self.steps {
            writeln!(f, "    - {step}")?;
        }
        for txn in &self.txns {
            writeln!(f, "    {txn}")?;
        }
        Ok(())
    }
}
