//! The nouns every layer shares: node, shard and transaction ids, keys, timestamps.
//!
//! Ids that must not mix are newtypes. A [`Timestamp`] is a hybrid logical clock reading packed
//! into a `u64` (milliseconds since the Unix epoch in the high 48 bits, a logical counter in the
//! low 16), so timestamps compare as integers and sort correctly as big-endian bytes in redb.

use std::fmt;

use serde::Deserialize;
use serde::Serialize;

/// A node of the cluster (`kvd --id`). Never 0.
pub type NodeId = u64;

/// A shard: one contiguous key range, replicated by one Raft group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardId(pub u32);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// A user key: arbitrary bytes, never empty.
pub type Key = Vec<u8>;

/// A user value: arbitrary bytes (may be empty).
pub type Value = Vec<u8>;

/// A hybrid logical clock timestamp: `physical_ms << 16 | logical`.
///
/// `Timestamp::ZERO` is below every timestamp a clock hands out.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Below every real timestamp.
    pub const ZERO: Timestamp = Timestamp(0);
    /// Above every real timestamp.
    pub const MAX: Timestamp = Timestamp(u64::MAX);
    /// Bits of the logical counter.
    pub const LOGICAL_BITS: u32 = 16;

    /// Builds a timestamp from its two parts.
    pub fn new(physical_ms: u64, logical: u16) -> Timestamp {
        assert!(physical_ms < (1 << (64 - Self::LOGICAL_BITS)), "physical time out of range");
        Timestamp((physical_ms << Self::LOGICAL_BITS) | u64::from(logical))
    }

    /// Milliseconds since the Unix epoch.
    pub fn physical_ms(self) -> u64 {
        self.0 >> Self::LOGICAL_BITS
    }

    /// The logical counter.
    pub fn logical(self) -> u16 {
        (self.0 & 0xffff) as u16
    }

    /// The next timestamp up.
    pub fn next(self) -> Timestamp {
        Timestamp(self.0.checked_add(1).expect("timestamp overflow"))
    }

    /// The timestamp just below (saturating at zero).
    pub fn prev(self) -> Timestamp {
        Timestamp(self.0.saturating_sub(1))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.physical_ms(), self.logical())
    }
}

/// Names a transaction, cluster-wide and forever.
///
/// Unique because `(coordinator, incarnation)` is unique per start of a node (the incarnation is
/// persisted and bumped at every start) and `seq` counts within an incarnation. `start_ts` is the
/// transaction's age: the smaller, the older, and older transactions win (a deadlock aborts the
/// youngest on its cycle). The derived order compares `start_ts` first, so `max` is the youngest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxnId {
    /// HLC time at BEGIN. Compared first: the order of ids is the order of age.
    pub start_ts: Timestamp,
    /// The node that coordinates the transaction.
    pub coordinator: NodeId,
    /// The coordinator's incarnation when it began the transaction.
    pub incarnation: u64,
    /// A counter within the incarnation.
    pub seq: u64,
}

impl TxnId {
    /// True when `self` started after `other` (ties broken by the remaining fields).
    pub fn is_younger_than(&self, other: &TxnId) -> bool {
        self > other
    }
}

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}.{}.{}", self.coordinator, self.incarnation, self.seq)
    }
}

/// Renders a key for people: printable ASCII as is, anything else escaped.
pub fn display_key(key: &[u8]) -> String {
    key.escape_ascii().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_packs_and_orders() {
        let a = Timestamp::new(1_700_000_000_000, 5);
        assert_eq!(a.physical_ms(), 1_700_000_000_000);
        assert_eq!(a.logical(), 5);
        assert!(a < Timestamp::new(1_700_000_000_000, 6));
        assert!(Timestamp::new(1_700_000_000_000, u16::MAX) < Timestamp::new(1_700_000_000_001, 0));
        assert_eq!(a.next().prev(), a);
    }

    #[test]
    fn txn_ids_order_by_age_first() {
        let old = TxnId { start_ts: Timestamp(10), coordinator: 3, incarnation: 9, seq: 9 };
        let young = TxnId { start_ts: Timestamp(11), coordinator: 1, incarnation: 1, seq: 1 };
        assert!(young.is_younger_than(&old));
        assert_eq!(std::cmp::max(old, young), young);
    }
}
