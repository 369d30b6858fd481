//! Keys that land in known shards.
//!
//! With the default `--shards 4`, the shard map splits the key space by first byte at `F`, `V`
//! and `k` (server/src/topology.rs):
//!
//! ```text
//!   s0: [.., "F")    0-9 A-E      s1: ["F", "V")   F-U
//!   s2: ["V", "k")   V-Z a-j      s3: ["k", ..)    k-z and every byte above
//! ```

/// The shard count the tests' clusters use unless they say otherwise.
pub const SHARDS: u32 = 4;

/// One key per shard of the default map: `SHARD_KEYS[i]` is in shard `i`.
pub const SHARD_KEYS: [&str; 4] = ["Alice", "Gina", "Wendy", "kate"];

/// A first letter per shard: a key starting with `SHARD_PREFIXES[i]` is in shard `i`.
pub const SHARD_PREFIXES: [char; 4] = ['A', 'G', 'W', 'k'];

/// The shard of `key` in the default 4-shard map.
pub fn shard_of(key: &[u8]) -> u32 {
    match key.first() {
        None => 0,
        Some(&byte) if byte < b'F' => 0,
        Some(&byte) if byte < b'V' => 1,
        Some(&byte) if byte < b'k' => 2,
        Some(_) => 3,
    }
}

/// `count` distinct keys spread round-robin over the four shards, named after `tag`.
pub fn spread(tag: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{}{tag}{i:03}", SHARD_PREFIXES[i % SHARD_PREFIXES.len()])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_keys_are_in_their_shards() {
        for (shard, key) in SHARD_KEYS.iter().enumerate() {
            assert_eq!(shard_of(key.as_bytes()), shard as u32, "{key}");
        }
        for (i, key) in spread("x", 8).iter().enumerate() {
            assert_eq!(shard_of(key.as_bytes()), (i % 4) as u32, "{key}");
        }
    }
}
