//! A write sent with END ([`crate::Transaction::commit_with`]) instead of a WRITE of its own.
//!
//! A WRITE locks its key at once (a round trip to the coordinator, and from there to the key's
//! shard leader). A mutation travels with END and its exclusive lock is taken by the prepare
//! at its shard: the same isolation (strict two-phase locking: every lock is taken before any
//! is released, and the write becomes visible only at commit), one round trip for all of them.
//! A conflict shows up at END instead of at the statement.

use proto::kv;

/// One write sent with END.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mutation {
    /// The key.
    pub key: Vec<u8>,
    /// The new value; `None` deletes the key.
    pub value: Option<Vec<u8>>,
}

impl Mutation {
    /// Writes `value` at `key`.
    pub fn put(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Mutation {
        Mutation { key: key.as_ref().to_vec(), value: Some(value.as_ref().to_vec()) }
    }

    /// Deletes `key`.
    pub fn delete(key: impl AsRef<[u8]>) -> Mutation {
        Mutation { key: key.as_ref().to_vec(), value: None }
    }

    pub(crate) fn to_proto(&self) -> kv::Mutation {
        kv::Mutation {
            key: self.key.clone().into(),
            value: self.value.clone().unwrap_or_default().into(),
            delete: self.value.is_none(),
        }
    }
}
