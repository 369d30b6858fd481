//! Dependency graphs and cycle search (Adya 1999 §3; Elle `elle/graph.clj`, `elle/txn.clj`).
//!
//! - [`digraph`]: compact labelled graph (ww, wr, rw, process, realtime bits per edge).
//! - [`dependency_graph`]: builds the graph of a history and explains its edges.
//! - [`scc`]: iterative Tarjan strongly connected components.
//! - [`cycle_search`]: typed breadth-first shortest-cycle search within a component.
//! - [`cycle`]: a found cycle and its classification (G0 … G2-item, `-process`, `-realtime`).

pub(crate) mod cycle;
pub(crate) mod cycle_search;
pub(crate) mod dependency_graph;
pub(crate) mod digraph;
pub(crate) mod scc;
