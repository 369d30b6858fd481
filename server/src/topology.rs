//! The shard map: which contiguous key range each shard holds, and which nodes replicate it.
//!
//! Fixed at cluster creation from `--shards S` and the node list, and computed the same way on
//! every node, so no node needs to ask another.
//!
//! # Split points
//!
//! Shard `i` holds `[split(i), split(i+1))`, with `split(0)` the empty key and the last shard
//! open-ended. The split points divide the 62 ASCII alphanumerics `0-9A-Za-z` evenly by first
//! byte: keys people type (names, ids, hex and base62 strings) spread over the shards, where an
//! even split of the byte range would put nearly every text key in one shard. Any byte string is
//! a valid key and lands in exactly one shard.
//!
//! ```text
//!   --shards 4:   [.., "F")  ["F", "V")  ["V", "k")  ["k", ..)
//! ```
//!
//! # Replicas
//!
//! Every shard has `min(3, nodes)` replicas: shard `i` is replicated on the nodes at positions
//! `i, i+1, i+2 (mod n)` of the sorted node list, so with 3 nodes every node holds every shard,
//! and with 5 the load spreads. The first replica is the shard's *preferred leader*: leaders are
//! spread over nodes instead of piling up on whichever node wins elections first.

use std::collections::BTreeMap;

use txn::types::NodeId;
use txn::types::ShardId;

/// The alphanumerics, in byte order, that split points are drawn from.
pub const SPLIT_ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Replicas per shard (fewer when the cluster has fewer nodes).
pub const REPLICAS_PER_SHARD: usize = 3;
/// The most shards a cluster may have.
pub const SHARDS_MAX: u32 = 62;

/// The shard map of a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// Node id -> its address (HOST:PORT).
    nodes: BTreeMap<NodeId, String>,
    /// `splits[i]` is the first key of shard `i` (`splits[0]` is empty).
    splits: Vec<Vec<u8>>,
    /// `replicas[i]` are the nodes of shard `i`, preferred leader first.
    replicas: Vec<Vec<NodeId>>,
}

impl Topology {
    /// The shard map for `shards` shards over `nodes`.
    pub fn new(nodes: BTreeMap<NodeId, String>, shards: u32) -> Topology {
        assert!((1..=SHARDS_MAX).contains(&shards), "shard count {shards} out of range");
        assert!(!nodes.is_empty(), "a cluster has nodes");
        let splits = (0..shards as usize)
            .map(|i| {
                if i == 0 {
                    Vec::new()
                } else {
                    vec![SPLIT_ALPHABET[i * SPLIT_ALPHABET.len() / shards as usize]]
                }
            })
            .collect::<Vec<_>>();
        for pair in splits.windows(2) {
            assert!(pair[0] < pair[1], "split points must increase: {splits:?}");
        }
        let ids: Vec<NodeId> = nodes.keys().copied().collect();
        let count = REPLICAS_PER_SHARD.min(ids.len());
        let replicas = (0..shards as usize)
            .map(|i| (0..count).map(|j| ids[(i + j) % ids.len()]).collect())
            .collect();
        Topology { nodes, splits, replicas }
    }

    /// The cluster's shape as the peer handshake names it (`replication::handshake`): the shard
    /// count and the node ids, which fix the split points and the replicas.
    pub fn shape(&self) -> String {
        replication::handshake::shape(self.shard_count(), self.nodes.keys().copied())
    }

    /// What the peer handshake compares (`replication::handshake`): the [`Topology::shape`] and
    /// the election timeouts. A leader serves lease reads for most of `election_max_ms` after
    /// its last quorum (`lease_read_percent`, `config::LEASE_READ_PERCENT_DEFAULT`), trusting that its
    /// followers wait all of it before they elect another: with
    /// another node's timeouts shorter, a partitioned old leader served reads while the others
    /// had elected a new leader and written (a review, 2026-12-07). So every node of a cluster
    /// runs the same election timeouts; changing them takes a restart of every node.
    pub fn handshake_shape(&self, timing: &crate::config::Timing) -> String {
        format!("{} election={}-{}ms", self.shape(), timing.election_min_ms, timing.election_max_ms)
    }

    /// The number of shards.
    pub fn shard_count(&self) -> u32 {
        self.splits.len() as u32
    }

    /// Every shard.
    pub fn shards(&self) -> impl Iterator<Item = ShardId> + '_ {
        (0..self.shard_count()).map(ShardId)
    }

    /// The nodes and their addresses.
    pub fn nodes(&self) -> &BTreeMap<NodeId, String> {
        &self.nodes
    }

    /// The address of a node.
    pub fn addr(&self, node: NodeId) -> Option<&str> {
        self.nodes.get(&node).map(String::as_str)
    }

    /// The shard holding `key`.
    pub fn shard_of(&self, key: &[u8]) -> ShardId {
        let index = self.splits.partition_point(|split| split.as_slice() <= key);
        assert!(index >= 1, "the first split is the empty key");
        ShardId(index as u32 - 1)
    }

    /// The key range of a shard: inclusive start, exclusive end (`None`: end of key space).
    pub fn range(&self, shard: ShardId) -> (&[u8], Option<&[u8]>) {
        assert!(self.has(shard), "{shard} is not a shard of this cluster");
        let i = shard.0 as usize;
        (&self.splits[i], self.splits.get(i + 1).map(Vec::as_slice))
    }

    /// The shards overlapping `[from, to)`, in key order, each with the part of the range it
    /// holds.
    pub fn split_range<'a>(
        &'a self,
        from: &'a [u8],
        to: Option<&'a [u8]>,
    ) -> Vec<(ShardId, Vec<u8>, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        if to.is_some_and(|to| to <= from) {
            return out;
        }
        let first = self.shard_of(from);
        for shard in first.0..self.shard_count() {
            let shard = ShardId(shard);
            let (start, end) = self.range(shard);
            if to.is_some_and(|to| to <= start) {
                break;
            }
            let part_from = if start > from { start.to_vec() } else { from.to_vec() };
            let part_to = match (end, to) {
                (Some(end), Some(to)) => Some(end.min(to).to_vec()),
                (Some(end), None) => Some(end.to_vec()),
                (None, to) => to.map(<[u8]>::to_vec),
            };
            out.push((shard, part_from, part_to));
        }
        out
    }

    /// The replicas of a shard, preferred leader first; none for a shard the cluster does not
    /// have (an id from a request of another node or a tool).
    pub fn replicas(&self, shard: ShardId) -> &[NodeId] {
        self.replicas.get(shard.0 as usize).map_or(&[], Vec::as_slice)
    }

    /// Whether the cluster has `shard`.
    pub fn has(&self, shard: ShardId) -> bool {
        shard.0 < self.shard_count()
    }

    /// The shards `node` replicates.
    pub fn shards_of(&self, node: NodeId) -> Vec<ShardId> {
        self.shards().filter(|shard| self.replicas(*shard).contains(&node)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: u64) -> BTreeMap<NodeId, String> {
        (1..=n).map(|id| (id, format!("127.0.0.1:{}", 7000 + id))).collect()
    }

    #[test]
    fn four_shards_split_the_alphanumerics() {
        let topology = Topology::new(nodes(3), 4);
        let shard = |key: &str| topology.shard_of(key.as_bytes()).0;
        assert_eq!(shard(""), 0);
        assert_eq!(shard("0"), 0);
        assert_eq!(shard("E"), 0);
        assert_eq!(shard("F"), 1);
        assert_eq!(shard("Uzzz"), 1);
        assert_eq!(shard("V"), 2);
        assert_eq!(shard("account"), 2);
        assert_eq!(shard("k1"), 3);
        assert_eq!(shard("\u{ff}"), 3);
        assert_eq!(topology.range(ShardId(1)), (&b"F"[..], Some(&b"V"[..])));
        assert_eq!(topology.range(ShardId(3)), (&b"k"[..], None));
    }

    #[test]
    fn every_key_is_in_exactly_its_shards_range() {
        for shards in [1, 2, 3, 4, 7, 16, SHARDS_MAX] {
            let topology = Topology::new(nodes(3), shards);
            for byte in 0..=255u8 {
                let key = [byte, b'x'];
                let (start, end) = topology.range(topology.shard_of(&key));
                assert!(start <= &key[..] && end.is_none_or(|end| &key[..] < end));
            }
        }
    }

    #[test]
    fn split_range_covers_the_range_in_order() {
        let topology = Topology::new(nodes(3), 4);
        let parts = topology.split_range(b"A", Some(b"m"));
        let parts: Vec<_> = parts.iter().map(|(s, f, t)| (s.0, f.clone(), t.clone())).collect();
        assert_eq!(
            parts,
            vec![
                (0, b"A".to_vec(), Some(b"F".to_vec())),
                (1, b"F".to_vec(), Some(b"V".to_vec())),
                (2, b"V".to_vec(), Some(b"k".to_vec())),
                (3, b"k".to_vec(), Some(b"m".to_vec())),
            ]
        );
        assert_eq!(topology.split_range(b"x", None).len(), 1);
        assert!(topology.split_range(b"m", Some(b"a")).is_empty());
        assert!(topology.split_range(b"a", Some(b"a")).is_empty());
    }

    #[test]
    fn replicas_rotate_over_nodes() {
        let three = Topology::new(nodes(3), 4);
        assert_eq!(three.replicas(ShardId(0)), &[1, 2, 3]);
        assert_eq!(three.replicas(ShardId(1)), &[2, 3, 1]);
        assert_eq!(three.shards_of(2).len(), 4);
        let five = Topology::new(nodes(5), 5);
        assert_eq!(five.replicas(ShardId(4)), &[5, 1, 2]);
        assert_eq!(five.shards_of(1).len(), 3);
    }
}
