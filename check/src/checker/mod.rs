//! One checker per property (STYLE §3.7 item 7). Every checker reads the shared
//! [`crate::history_index::HistoryIndex`] and records typed anomalies in a
//! [`crate::report::Report`], which keeps only the kinds the model forbids.
//!
//! Per-op (Elle `elle/list_append.clj`; TESTING §1.3 steps 2–4, 7):
//! [`internal`], [`future_read`], [`duplicate_elements`], [`garbage_read`],
//! [`incompatible_order`], [`aborted_read`] (G1a), [`intermediate_read`] (G1b),
//! [`dirty_update`], [`lost_update`], [`own_appends`] (G0 within one transaction).
//!
//! Cycles (Adya 1999; Elle `elle/txn.clj`; TESTING §1.3 step 8): [`cycles`].
//!
//! Causal (Bouajjani et al. POPL 2017; TESTING §3.2): [`causal_past`] (CyclicCO and causal
//! pasts per key, over [`key_appenders`]), [`causal_read`] (read-your-writes, monotonic reads/writes, writes-follow-reads,
//! causal-read-missing), [`convergence`] (CyclicCF).

pub(crate) mod aborted_read;
pub(crate) mod causal_past;
pub(crate) mod causal_read;
pub(crate) mod convergence;
pub(crate) mod cycles;
pub(crate) mod dirty_update;
pub(crate) mod duplicate_elements;
pub(crate) mod future_read;
pub(crate) mod garbage_read;
pub(crate) mod incompatible_order;
pub(crate) mod intermediate_read;
pub(crate) mod internal;
pub(crate) mod key_appenders;
pub(crate) mod lost_update;
pub(crate) mod own_appends;
