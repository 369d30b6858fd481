//! The `STATUS` block of a node, parsed.
//!
//! ```text
//! node 3 (incarnation 1), 4 shards
//!   s0 leader    term 1   leader 3    applied 5, 0 lock holders, 0 prepared
//!   s1 follower  term 1   leader 3    applied 2
//! lock waits: 0
//! ...
//! ```

use std::collections::BTreeMap;

/// One shard replica's line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// `leader`, `follower`, `candidate`, `learner`...
    pub role: String,
    /// The Raft term it is in.
    pub term: u64,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// Its applied log index.
    pub applied: u64,
    /// True while it grants no votes (a fresh data directory, not caught up yet).
    pub votes_withheld: bool,
}

/// A node's status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node id.
    pub id: u64,
    /// Its incarnation (bumped at every start).
    pub incarnation: u64,
    /// Shard id -> the replica's line.
    pub shards: BTreeMap<u32, ReplicaStatus>,
    /// The lock waits at the shards it leads (`lock waits: N`).
    pub lock_waits: usize,
    /// Reads whose leader confirmed its leadership by its lease (`reads: leadership confirmed
    /// N times by lease, M by ReadIndex`).
    pub lease_reads: u64,
    /// Reads whose leader confirmed its leadership by a ReadIndex round.
    pub read_index_reads: u64,
    /// The raw text, for messages.
    pub text: String,
}

impl NodeStatus {
    /// Parses a node's block (the lines after its `[addr]` header).
    pub fn parse(text: &str) -> Result<NodeStatus, String> {
        let mut status = NodeStatus { text: text.to_string(), ..NodeStatus::default() };
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["node", id, "(incarnation", incarnation, ..] => {
                    status.id = id.parse().map_err(|_| format!("bad node line {line:?}"))?;
                    status.incarnation = incarnation
                        .trim_end_matches([')', ','])
                        .parse()
                        .map_err(|_| format!("bad node line {line:?}"))?;
                }
                [shard, role, "term", term, "leader", leader, "applied", applied, ..]
                    if shard.starts_with('s') =>
                {
                    let bad = || format!("bad shard line {line:?}");
                    let id = shard[1..].parse().map_err(|_| bad())?;
                    let replica = ReplicaStatus {
                        role: role.to_string(),
                        term: term.parse().map_err(|_| bad())?,
                        leader: if *leader == "-" {
                            None
                        } else {
                            Some(leader.parse().map_err(|_| bad())?)
                        },
                        applied: applied.trim_end_matches(',').parse().map_err(|_| bad())?,
                        votes_withheld: line.contains("votes withheld"),
                    };
                    status.shards.insert(id, replica);
                }
                ["lock", "waits:", waits] => {
                    status.lock_waits =
                        waits.parse().map_err(|_| format!("bad lock waits line {line:?}"))?;
                }
                [
                    "reads:",
                    "leadership",
                    "confirmed",
                    lease,
                    "times",
                    "by",
                    "lease,",
                    read_index,
                    ..,
                ] => {
                    let bad = || format!("bad reads line {line:?}");
                    status.lease_reads = lease.parse().map_err(|_| bad())?;
                    status.read_index_reads = read_index.parse().map_err(|_| bad())?;
                }
                _ => {}
            }
        }
        if status.id == 0 {
            return Err(format!("no node line in {text:?}"));
        }
        Ok(status)
    }

    /// The shards this node leads.
    pub fn led(&self) -> Vec<u32> {
        self.shards.iter().filter(|(_, r)| r.role == "leader").map(|(s, _)| *s).collect()
    }
}

/// Splits `Client::status_all` output into `addr -> Ok(block) | Err(why unavailable)`.
pub fn split_status_all(text: &str) -> BTreeMap<String, Result<String, String>> {
    let mut blocks: BTreeMap<String, Result<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            let Some((addr, tail)) = rest.split_once(']') else { continue };
            let tail = tail.trim();
            let entry = if tail.is_empty() { Ok(String::new()) } else { Err(tail.to_string()) };
            blocks.insert(addr.to_string(), entry);
            current = Some(addr.to_string());
        } else if let Some(addr) = &current
            && let Some(Ok(block)) = blocks.get_mut(addr)
        {
            block.push_str(line);
            block.push('\n');
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_status_block() {
        let text = "node 3 (incarnation 2), 4 shards\n  s0 leader    term 1   leader 3    applied 5, \
                    0 lock holders, 0 prepared\n  s1 follower  term 2   leader -    applied 2\n\
                    lock waits: 2\nreads: leadership confirmed 7 times by lease, 3 by ReadIndex\n";
        let status = NodeStatus::parse(text).expect("parses");
        assert_eq!((status.id, status.incarnation), (3, 2));
        assert_eq!(status.shards[&0].role, "leader");
        assert_eq!(status.shards[&0].applied, 5);
        assert_eq!(status.shards[&1].leader, None);
        assert_eq!(status.led(), vec![0]);
        assert_eq!(status.lock_waits, 2);
        assert_eq!((status.lease_reads, status.read_index_reads), (7, 3));
        let all = split_status_all("[a:1]\nnode 1 (incarnation 1), 1 shards\n[b:2] did not answer");
        assert!(all["a:1"].as_ref().is_ok_and(|b| b.starts_with("node 1")));
        assert!(all["b:2"].is_err());
    }
}
