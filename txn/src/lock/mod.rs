//! The lock table of one shard leader (being written).
