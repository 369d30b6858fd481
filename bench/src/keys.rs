//! Keys: how key indexes become key strings, and which shard a key lands in.
//!
//! # Spreading over shards
//!
//! A cluster splits its key space by the first byte of the key, at points drawn evenly from the
//! 62 ASCII alphanumerics (`0-9A-Za-z`); with the default 4 shards:
//!
//! ```text
//!   [.., "F")  ["F", "V")  ["V", "k")  ["k", ..)      0-9A-E | F-U | V-j | k-z
//! ```
//!
//! Key `i` starts with `ALNUM[(i * 17) mod 62]`: a permutation of the alphanumerics over every
//! 62 consecutive indexes (17 and 62 are coprime), so a large key set's first byte is uniform
//! over the 62, and, because 17 is about a quarter of 62, even a handful of keys (the 8 accounts
//! of `bank`) round-robin over 4 shards instead of all landing in the first one.
//!
//! # Shard map
//!
//! [`Splits`] is the list of each shard's first key. It is asked from the cluster (the
//! `Topology` RPC, [`fetch_splits`]); when no node answers, [`Splits::even`] recomputes the
//! servers' rule for the default 4 shards.

use std::time::Duration;

use client::connector::Connector;
use client::connector::TcpConnector;
use rand::Rng;

/// The alphanumerics in byte order (the servers' split alphabet).
pub const ALNUM: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The step through [`ALNUM`] from one key index to the next (coprime with 62).
pub const STRIDE: u64 = 17;
/// The servers' default shard count.
pub const DEFAULT_SHARDS: usize = 4;
/// Draws before [`pick_cross_shard`] gives up looking for a key in another shard.
const CROSS_SHARD_DRAWS_MAX: usize = 256;

/// The first byte of key `i`.
pub fn first_byte(i: u64) -> u8 {
    ALNUM[((i % 62) * STRIDE % 62) as usize]
}

/// Data key `i` (`put`, `get`, `txn2`, `rmw`).
pub fn key(i: u64) -> String {
    format!("{}{:06}", first_byte(i) as char, i)
}

/// Account `i` of the `bank` run `run`. Each run has accounts of its own: a run's preload
/// sets every balance, so two runs sharing accounts at once would spoil each other's total.
pub fn account(run: u32, i: u64) -> String {
    format!("{}acct{run:08x}.{i:04}", first_byte(i) as char)
}

/// The two keys of deadlock pair `pair`, in different shards when the cluster has more than one.
pub fn deadlock_keys(pair: u64, splits: &Splits) -> (String, String) {
    let a = first_byte(pair);
    let b = other_shard_byte(a, splits).unwrap_or(a);
    (format!("{}dlk{:05}a", a as char, pair), format!("{}dlk{:05}b", b as char, pair))
}

/// An alphanumeric whose keys land in another shard than keys starting with `byte`, looking
/// first half-way round the alphabet (the farthest shard). `None` with a single shard.
pub fn other_shard_byte(byte: u8, splits: &Splits) -> Option<u8> {
    let at = ALNUM.iter().position(|&c| c == byte).unwrap_or(0);
    let shard = splits.shard_of(&[byte]);
    (0..ALNUM.len())
        .map(|offset| ALNUM[(at + ALNUM.len() / 2 + offset) % ALNUM.len()])
        .find(|&c| splits.shard_of(&[c]) != shard)
}

/// Two distinct key indexes below `n` (`n >= 2`), uniformly.
pub fn pick_distinct<R: Rng>(rng: &mut R, n: u64) -> (u64, u64) {
    assert!(n >= 2, "two distinct keys need a key space of at least 2, not {n}");
    let a = rng.random_range(0..n);
    let b = (a + rng.random_range(1..n)) % n;
    (a, b)
}

/// Two key indexes below `n` whose keys lie in different shards: the first uniform, the second
/// uniform among the keys outside the first's shard. Falls back to two distinct keys when the
/// key space has no key outside that shard.
pub fn pick_cross_shard<R: Rng>(rng: &mut R, n: u64, splits: &Splits) -> (u64, u64) {
    let (a, fallback) = pick_distinct(rng, n);
    let shard = splits.shard_of(&[first_byte(a)]);
    for _ in 0..CROSS_SHARD_DRAWS_MAX {
        let b = rng.random_range(0..n);
        if splits.shard_of(&[first_byte(b)]) != shard {
            return (a, b);
        }
    }
    (a, fallback)
}

/// The shard map: the first key of every shard, in key order (the first is empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splits(Vec<Vec<u8>>);

impl Splits {
    /// From the shards' first keys (any order).
    pub fn new(mut firsts: Vec<Vec<u8>>) -> Splits {
        firsts.sort();
        firsts.dedup();
        if firsts.first().is_none_or(|first| !first.is_empty()) {
            firsts.insert(0, Vec::new());
        }
        Splits(firsts)
    }

    /// The servers' rule for `shards` shards: split `i` is `ALNUM[i * 62 / shards]`.
    pub fn even(shards: usize) -> Splits {
        let shards = shards.clamp(1, ALNUM.len());
        Splits::new((1..shards).map(|i| vec![ALNUM[i * ALNUM.len() / shards]]).collect())
    }

    /// The number of shards.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: there is at least one shard.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The shard holding `key`.
    pub fn shard_of(&self, key: &[u8]) -> usize {
        self.0.partition_point(|first| first.as_slice() <= key).saturating_sub(1)
    }
}

/// The shard map as the cluster tells it (`Topology` on the first node that answers).
pub async fn fetch_splits(addrs: &[String]) -> Option<Splits> {
    for addr in addrs {
        let mut kv = proto::kv::kv_client::KvClient::new(TcpConnector.channel(addr));
        let answer = tokio::time::timeout(
            Duration::from_secs(2),
            kv.topology(proto::kv::TopologyRequest {}),
        )
        .await;
        if let Ok(Ok(response)) = answer {
            let shards = response.into_inner().shards;
            if !shards.is_empty() {
                return Some(Splits::new(shards.into_iter().map(|s| s.from.to_vec()).collect()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    #[test]
    fn even_splits_match_the_servers_rule() {
        let splits = Splits::even(4);
        assert_eq!(splits, Splits::new(vec![b"F".to_vec(), b"V".to_vec(), b"k".to_vec()]));
        for (key, shard) in [("0", 0), ("E~", 0), ("F", 1), ("U9", 1), ("V", 2), ("j", 2)] {
            assert_eq!(splits.shard_of(key.as_bytes()), shard, "{key}");
        }
        assert_eq!(splits.shard_of(b"k"), 3);
        assert_eq!(splits.shard_of(b"z"), 3);
        assert_eq!(splits.shard_of(b""), 0);
        assert_eq!(splits.shard_of(&[0xff]), 3);
        assert_eq!(Splits::even(1).len(), 1);
        assert_eq!(Splits::even(1).shard_of(b"zzz"), 0);
    }

    #[test]
    fn first_bytes_are_a_permutation_of_the_alphanumerics() {
        for start in [0, 5, 1000] {
            let mut seen: Vec<u8> = (start..start + 62).map(first_byte).collect();
            seen.sort();
            assert_eq!(seen, ALNUM.to_vec(), "keys {start}..{}", start + 62);
        }
    }

    #[test]
    fn keys_spread_evenly_over_shards() {
        let splits = Splits::even(4);
        let mut counts = [0u64; 4];
        for i in 0..10_000 {
            counts[splits.shard_of(key(i).as_bytes())] += 1;
        }
        // 15, 16, 15 and 16 of the 62 first bytes: each shard gets its share within 1%.
        for (shard, &count) in counts.iter().enumerate() {
            let share = [15.0, 16.0, 15.0, 16.0][shard] / 62.0;
            let expected = 10_000.0 * share;
            assert!((count as f64 - expected).abs() < 100.0, "shard {shard}: {counts:?}");
        }
        // A handful of keys (bank's 8 accounts) already covers every shard, twice.
        let mut few = [0u64; 4];
        for i in 0..8 {
            few[splits.shard_of(account(7, i).as_bytes())] += 1;
        }
        assert_eq!(few, [2, 2, 2, 2]);
    }

    #[test]
    fn keys_are_distinct() {
        let mut keys: Vec<String> = (0..5000).map(key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 5000);
    }

    #[test]
    fn cross_shard_pairs_land_in_different_shards() {
        let mut rng = SmallRng::seed_from_u64(7);
        for shards in [2, 4, 7] {
            let splits = Splits::even(shards);
            for n in [2, 16, 2000] {
                let shards_used: std::collections::BTreeSet<usize> =
                    (0..n).map(|i| splits.shard_of(key(i).as_bytes())).collect();
                if shards_used.len() < 2 {
                    continue;
                }
                for _ in 0..2000 {
                    let (a, b) = pick_cross_shard(&mut rng, n, &splits);
                    assert!(a < n && b < n);
                    assert_ne!(
                        splits.shard_of(key(a).as_bytes()),
                        splits.shard_of(key(b).as_bytes()),
                        "{} and {} with {shards} shards",
                        key(a),
                        key(b)
                    );
                }
            }
        }
    }

    #[test]
    fn cross_shard_falls_back_to_distinct_keys_with_one_shard() {
        let mut rng = SmallRng::seed_from_u64(1);
        let (a, b) = pick_cross_shard(&mut rng, 10, &Splits::even(1));
        assert_ne!(a, b);
    }

    #[test]
    fn deadlock_keys_are_in_different_shards_and_unique_per_pair() {
        let splits = Splits::even(4);
        let mut all = Vec::new();
        for pair in 0..100 {
            let (a, b) = deadlock_keys(pair, &splits);
            assert_ne!(splits.shard_of(a.as_bytes()), splits.shard_of(b.as_bytes()), "{a} {b}");
            all.push(a);
            all.push(b);
        }
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 200);
        let (a, b) = deadlock_keys(3, &Splits::even(1));
        assert_ne!(a, b);
    }

    #[test]
    fn distinct_pairs_are_distinct() {
        let mut rng = SmallRng::seed_from_u64(3);
        for _ in 0..1000 {
            let (a, b) = pick_distinct(&mut rng, 2);
            assert_ne!(a, b);
        }
    }
}
