//! Edge-chasing deadlock detection (being written).
