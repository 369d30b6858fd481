//! Who this database belongs to: the node id, the cluster's shard count, and the incarnation.
//!
//! The first start of a node records its id and the shard count; every later start checks them
//! (a `--data` directory of another node, or a different `--shards`, is refused with a clear
//! error before anything is written) and bumps the incarnation durably. The incarnation makes
//! transaction ids unique across restarts: `(node, incarnation, counter)` is never reused.

use redb::Database;
use redb::ReadableDatabase;
use redb::TableDefinition;

use txn::types::NodeId;

const NODE_TABLE: TableDefinition<&str, u64> = TableDefinition::new("node");

/// The identity of the node that owns a database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The node id.
    pub node_id: NodeId,
    /// The number of shards of the cluster.
    pub shards: u32,
    /// Bumped at every start, starting at 1.
    pub incarnation: u64,
    /// True on the very first start (no data yet): the node initializes its Raft groups.
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
    /// The data directory was written by a version that kept the Raft log in redb.
    #[error(
        "{0} is the Raft log of an older version of kvd; this version keeps it in wal/ and \
         cannot read that file: start with an empty --data directory"
    )]
    OldFormat(String),
    /// The database could not be read or written.
    #[error("storage: {0}")]
    Storage(#[from] redb::Error),
    /// The Raft log could not be read (corrupt) or written.
    #[error("Raft log: {0}")]
    Log(std::io::Error),
}

/// Checks (or, on a fresh database, records) the identity, and bumps the incarnation durably.
pub fn claim(db: &Database, node_id: NodeId, shards: u32) -> Result<Identity, IdentityError> {
    let (found_id, found_shards, incarnation) = {
        let rtx = db.begin_read().map_err(redb::Error::from)?;
        match rtx.open_table(NODE_TABLE) {
            Ok(table) => {
                let get = |name: &str| -> Result<Option<u64>, redb::Error> {
                    Ok(table.get(name)?.map(|v| v.value()))
                };
                (get("id")?, get("shards")?, get("incarnation")?.unwrap_or(0))
            }
            Err(redb::TableError::TableDoesNotExist(_)) => (None, None, 0),
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
    let incarnation = incarnation + 1;
    let tx = db.begin_write().map_err(redb::Error::from)?;
    {
        let mut table = tx.open_table(NODE_TABLE).map_err(redb::Error::from)?;
        table.insert("id", node_id).map_err(redb::Error::from)?;
        table.insert("shards", u64::from(shards)).map_err(redb::Error::from)?;
        table.insert("incarnation", incarnation).map_err(redb::Error::from)?;
    }
    tx.commit().map_err(redb::Error::from)?;
    Ok(Identity { node_id, shards, incarnation, fresh: found_id.is_none() })
}

#[cfg(test)]
mod tests {
    use redb::backends::InMemoryBackend;

    use super::*;

    #[test]
    fn first_claim_is_fresh_and_later_claims_bump_the_incarnation() {
        let db = Database::builder().create_with_backend(InMemoryBackend::new()).expect("db");
        let first = claim(&db, 2, 4).expect("claim");
        assert!(first.fresh);
        assert_eq!(first.incarnation, 1);
        let second = claim(&db, 2, 4).expect("claim");
        assert!(!second.fresh);
        assert_eq!(second.incarnation, 2);
    }

    #[test]
    fn another_node_or_shard_count_is_refused_without_changes() {
        let db = Database::builder().create_with_backend(InMemoryBackend::new()).expect("db");
        claim(&db, 2, 4).expect("claim");
        let err = claim(&db, 3, 4).expect_err("wrong node");
        assert_eq!(err.to_string(), "the data directory belongs to node 2, not node 3");
        let err = claim(&db, 2, 8).expect_err("wrong shards");
        assert_eq!(err.to_string(), "the data directory was created with --shards 4, not 8");
        assert_eq!(claim(&db, 2, 4).expect("claim").incarnation, 2, "refusals changed nothing");
    }
}
