//! Raft transport (being written).
