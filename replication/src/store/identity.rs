//! Who this database belongs to: the node id, the cluster's shard count, and the incarnation.
//!
//! The first start of a node records its id and the shard count; every later start checks them
//! (a `--data` directory of another node, or a different `--shards`, is refused with a clear
//! error before anything is written) and bumps the incarnation durably. The incarnation makes
//! transaction ids unique across restarts: `(node, incarnation, counter)` is never reused.
//!
//! It also keeps each shard's vote gate ([`crate::vote_gate`]): closed for every shard by the
//! first start (in the same commit as the identity, so that no crash leaves a node with an
//! identity and open gates it never earned), opened with its floor once the replica caught up.

use redb::Database;
use redb::ReadableDatabase;
use redb::TableDefinition;

use txn::types::NodeId;

const NODE_TABLE: TableDefinition<&str, u64> = TableDefinition::new("node");
/// The keys of `NODE_TABLE` that list the cluster's node ids: `member.` and the id in 20 digits.
const MEMBER_PREFIX: &str = "member.";
/// Just past every member key.
const MEMBER_END: &str = "member/";
/// Shard id -> the vote gate: [`GATE_CLOSED`], or the floor of an open gate. No row: open with
/// floor 0 (a node whose first start predates the gates).
const VOTE_GATE_TABLE: TableDefinition<u32, u64> = TableDefinition::new("vote_gates");
/// A closed gate in [`VOTE_GATE_TABLE`].
const GATE_CLOSED: u64 = u64::MAX;

/// The identity of the node that owns a database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The node id.
    pub node_id: NodeId,
    /// The number of shards of the cluster.
    pub shards: u32,
    /// Bumped at every start, starting at 1.
    pub incarnation: u64,
    /// True on the very first start (no identity yet). Not what decides whether a group is
    /// initialized: that is asked of every group on every start (`server::node`).
    pub fresh: bool,
}

/// Why a database cannot be used by this node.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The data directory belongs to another node.
    #[error("the data directory belongs to node {found}, not node {expected}")]
    WrongNode {
        /// Recorded in the database.
        found: NodeId,
        /// Asked for.
        expected: NodeId,
    },
    /// The cluster was created with another shard count.
    #[error("the data directory was created with --shards {found}, not {expected}")]
    WrongShards {
        /// Recorded in the database.
        found: u32,
        /// Asked for.
        expected: u32,
    },
    /// The node was started with another set of node ids than its cluster was created with
    /// (the shards' replicas are placed by the ids).
    #[error(
        "the data directory belongs to a cluster of nodes {found:?}, but --peers names nodes \
         {expected:?}: start every node with the cluster's --peers (addresses may change, the \
         ids may not)"
    )]
    WrongMembers {
        /// Recorded in the database.
        found: Vec<NodeId>,
        /// Asked for.
        expected: Vec<NodeId>,
    },
    /// The data directory was written by a version that kept the Raft log in redb.
    #[error(
        "{0} is the Raft log of an older version of kvd; this version keeps it in wal/ and \
         cannot read that file: start with an empty --data directory"
    )]
    OldFormat(String),
    /// The database could not be read or written.
    #[error("storage: {0}")]
    Storage(#[from] redb::Error),
    /// A database file of the data directory is open in another process.
    #[error("{0} is in use by another process (is another kvd running with this --data?)")]
    InUse(String),
    /// A database file of the data directory could not be opened or created.
    #[error("cannot open {path}: {error}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        error: redb::Error,
    },
    /// The Raft log could not be read or written.
    #[error("Raft log: {0}")]
    Log(std::io::Error),
    /// The Raft log is damaged (bit rot, not a crash's torn write): what this node stored
    /// cannot be trusted. The remedy is a lost disk's: start it on an empty data directory, and
    /// it copies everything back from the other replicas before it votes.
    #[error(
        "{0}. This node's data cannot be trusted: move its data directory aside and start the \
         node on an empty one; it copies everything back from the other replicas and votes only \
         once it has caught up. Do that for one node at a time, while the other nodes are up: \
         the copy comes from them"
    )]
    DamagedLog(std::io::Error),
}

impl IdentityError {
    /// The error of opening the Raft log: damage ([`crate::store::wal::Damaged`]) is told
    /// apart from other failures.
    pub fn of_log(error: std::io::Error) -> IdentityError {
        match crate::store::wal::is_damage(&error) {
            true => IdentityError::DamagedLog(error),
            false => IdentityError::Log(error),
        }
    }
}

/// Checks (or, on a fresh database, records) the identity: the node's id, the shard count and
/// the ids of the cluster's nodes (`members`, sorted; recorded at the first start of a version
/// that checks them). Bumps the incarnation durably; a fresh database's first incarnation is
/// `first` (at least 1).
///
/// Why not always 1: a node whose disk was lost starts on an empty data directory, and
/// counting from 1 again would reuse the incarnations of its previous life, so transaction
/// ids (start_ts, node, incarnation, seq) would be unique only by their hybrid clock reading,
/// and the node would take its previous life's transactions for its own (`is_mine`). The node
/// passes its physical clock in milliseconds: above any incarnation of a previous life as
/// long as that life restarted fewer times than milliseconds passed since it began (found by
/// a review, 2026-12-07).
pub fn claim(
    db: &Database,
    node_id: NodeId,
    shards: u32,
    members: &[NodeId],
    first: u64,
) -> Result<Identity, IdentityError> {
    let mut members = members.to_vec();
    members.sort_unstable();
    members.dedup();
    let (found_id, found_shards, incarnation, found_members) = {
        let rtx = db.begin_read().map_err(redb::Error::from)?;
        match rtx.open_table(NODE_TABLE) {
            Ok(table) => {
                let get = |name: &str| -> Result<Option<u64>, redb::Error> {
                    Ok(table.get(name)?.map(|v| v.value()))
                };
                // In key order, which is the ids' order (20 digits each).
                let mut found_members = Vec::new();
                for row in table.range(MEMBER_PREFIX..MEMBER_END).map_err(redb::Error::from)? {
                    found_members.push(row.map_err(redb::Error::from)?.1.value());
                }
                (get("id")?, get("shards")?, get("incarnation")?.unwrap_or(0), found_members)
            }
            Err(redb::TableError::TableDoesNotExist(_)) => (None, None, 0, Vec::new()),
            Err(e) => return Err(redb::Error::from(e).into()),
        }
    };
    if let Some(found) = found_id
        && found != node_id
    {
        return Err(IdentityError::WrongNode { found, expected: node_id });
    }
    if let Some(found) = found_shards {
        let found = found as u32;
        if found != shards {
            return Err(IdentityError::WrongShards { found, expected: shards });
        }
    }
    if !found_members.is_empty() && found_members != members {
        return Err(IdentityError::WrongMembers { found: found_members, expected: members });
    }
    let incarnation = if incarnation == 0 { first.max(1) } else { incarnation + 1 };
    let tx = db.begin_write().map_err(redb::Error::from)?;
    {
        let mut table = tx.open_table(NODE_TABLE).map_err(redb::Error::from)?;
        if found_members.is_empty() {
            for member in &members {
                let key = format!("{MEMBER_PREFIX}{member:020}");
                table.insert(key.as_str(), *member).map_err(redb::Error::from)?;
            }
        }
        table.insert("id", node_id).map_err(redb::Error::from)?;
        table.insert("shards", u64::from(shards)).map_err(redb::Error::from)?;
        table.insert("incarnation", incarnation).map_err(redb::Error::from)?;
        if found_id.is_none() {
            let mut gates = tx.open_table(VOTE_GATE_TABLE).map_err(redb::Error::from)?;
            for shard in 0..shards {
                gates.insert(shard, GATE_CLOSED).map_err(redb::Error::from)?;
            }
        }
    }
    tx.commit().map_err(redb::Error::from)?;
    Ok(Identity { node_id, shards, incarnation, fresh: found_id.is_none() })
}

/// The shard count recorded in the data directory `data`, if it holds an identity: a node
/// restarted without `--shards` takes it (the count is fixed when the cluster is created). A
/// database that cannot be opened now (another process has it, it is damaged) answers `None`;
/// opening it for real says why.
pub fn stored_shards(data: &std::path::Path) -> Option<u32> {
    let file = data.join(super::NODE_FILE);
    if !file.is_file() {
        return None;
    }
    let db = Database::open(&file).ok()?;
    let rtx = db.begin_read().ok()?;
    let table = rtx.open_table(NODE_TABLE).ok()?;
    let shards = table.get("shards").ok()??.value();
    u32::try_from(shards).ok()
}

/// The vote gate of `shard` as last recorded: `None` while closed, else the floor.
pub fn vote_gate(db: &Database, shard: u32) -> Result<Option<u64>, redb::Error> {
    let rtx = db.begin_read()?;
    let value = match rtx.open_table(VOTE_GATE_TABLE) {
        Ok(table) => table.get(shard)?.map(|v| v.value()),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(e.into()),
    };
    Ok(match value {
        Some(GATE_CLOSED) => None,
        Some(floor) => Some(floor),
        None => Some(0),
    })
}

/// Records, durably, that the vote gate of `shard` is open with `floor`.
pub fn open_vote_gate(db: &Database, shard: u32, floor: u64) -> Result<(), redb::Error> {
    assert_ne!(floor, GATE_CLOSED, "a floor is a term");
    let tx = db.begin_write()?;
    tx.open_table(VOTE_GATE_TABLE)?.insert(shard, floor)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use redb::backends::InMemoryBackend;

    use super::*;

    #[test]
    fn the_first_claim_closes_every_vote_gate_and_opening_one_is_durable() {
        let db = Database::builder().create_with_backend(InMemoryBackend::new()).expect("db");
        claim(&db, 1, 3, &[1, 2, 3], 1).expect("first claim");
        for shard in 0..3 {
            assert_eq!(vote_gate(&db, shard).expect("read"), None, "closed by the first start");
        }
        open_vote_gate(&db, 1, 7).expect("open");
        claim(&db, 1, 3, &[1, 2, 3], 1).expect("second claim");
        assert_eq!(vote_gate(&db, 1).expect("read"), Some(7), "open with its floor");
        assert_eq!(vote_gate(&db, 0).expect("read"), None, "a restart opens nothing");
    }

    #[test]
    fn first_claim_is_fresh_and_later_claims_bump_the_incarnation() {
        let db = Database::builder().create_with_backend(InMemoryBackend::new()).expect("db");
        let first = claim(&db, 2, 4, &[1, 2, 3], 1).expect("claim");
        assert!(first.fresh);
        assert_eq!(first.incarnation, 1);
        let second = claim(&db, 2, 4, &[1, 2, 3], 1).expect("claim");
        assert!(!second.fresh);
        assert_eq!(second.incarnation, 2);
    }

    #[test]
    fn a_fresh_database_starts_at_the_first_incarnation_it_is_given() {
        let db = Database::builder().create_with_backend(InMemoryBackend::new()).expect("db");
        let first = claim(&db, 2, 4, &[1, 2, 3], 1_800_000_000_000).expect("claim");
        assert_eq!(first.incarnation, 1_800_000_000_000);
        let second = claim(&db, 2, 4, &[1, 2, 3], 1_900_000_000_000).expect("claim");
        assert_eq!(second.incarnation, 1_800_000_000_001, "a restart counts on");
        let db = Database::builder().create_with_backend(InMemoryBackend::new()).expect("db");
        assert_eq!(claim(&db, 2, 4, &[1, 2, 3], 0).expect("claim").incarnation, 1);
    }

    #[test]
    fn another_node_or_shard_count_is_refused_without_changes() {
        let db = Database::builder().create_with_backend(InMemoryBackend::new()).expect("db");
        claim(&db, 2, 4, &[1, 2, 3], 1).expect("claim");
        let err = claim(&db, 3, 4, &[1, 2, 3], 1).expect_err("wrong node");
        assert_eq!(err.to_string(), "the data directory belongs to node 2, not node 3");
        let err = claim(&db, 2, 8, &[1, 2, 3], 1).expect_err("wrong shards");
        assert_eq!(err.to_string(), "the data directory was created with --shards 4, not 8");
        let err = claim(&db, 2, 4, &[1, 2], 1).expect_err("a node left out");
        assert!(err.to_string().contains("cluster of nodes [1, 2, 3], but --peers names"), "{err}");
        claim(&db, 2, 4, &[1, 2, 3, 4], 1).expect_err("a node added");
        let again = claim(&db, 2, 4, &[3, 2, 1], 1).expect("the same ids in any order");
        assert_eq!(again.incarnation, 2, "refusals changed nothing");
    }

    /// A data directory of a version that did not record the members takes them at its next
    /// start, and is checked from then on.
    #[test]
    fn members_are_recorded_when_missing() {
        let db = Database::builder().create_with_backend(InMemoryBackend::new()).expect("db");
        claim(&db, 2, 4, &[1, 2, 3], 1).expect("claim");
        let tx = db.begin_write().expect("write");
        {
            let mut table = tx.open_table(NODE_TABLE).expect("table");
            for member in [1u64, 2, 3] {
                table.remove(format!("{MEMBER_PREFIX}{member:020}").as_str()).expect("remove");
            }
        }
        tx.commit().expect("commit");
        claim(&db, 2, 4, &[1, 2, 5], 1).expect("no members recorded: taken");
        claim(&db, 2, 4, &[1, 2, 3], 1).expect_err("recorded now");
    }
}
