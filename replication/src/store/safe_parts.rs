//! A shard's safe-time parts (closed timestamp, oldest undecided prepare, GC watermark), cached
//! between applies.
//!
//! Every causal read asks for them (`ShardReader::safe_time_parts`), thousands of times a
//! second, and reading them from redb costs a read transaction and a scan of the prepared
//! transactions; but they change only when entries apply, about a hundred times a second per
//! shard at rest (the closes). So the state machine counts its commits and readers re-read the
//! parts only when the count moved.
//!
//! Invariant: parts cached under version `v` were read after the commit that made the version
//! `v` was visible to readers (the state machine bumps the version only after its commit
//! returns, and a reader loads the version before it reads), so they are at least as new as
//! that commit; a reader that finds the version still at `v` may use them.

use std::io;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use txn::types::Timestamp;

/// The closed timestamp, the smallest prepare timestamp of an undecided transaction, and the
/// GC watermark.
pub type Parts = (Timestamp, Option<Timestamp>, Timestamp);

/// One shard's cache, shared by its state machine and its readers.
#[derive(Debug, Default)]
pub struct SafeParts {
    version: AtomicU64,
    cached: Mutex<Option<(u64, Parts)>>,
}

impl SafeParts {
    /// Called by the state machine after each commit that changed the shard's tables.
    pub(crate) fn bump(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// The cached parts if no commit happened since they were read, else `read()`'s.
    pub(crate) fn get_or_read(
        &self,
        read: impl FnOnce() -> io::Result<Parts>,
    ) -> io::Result<Parts> {
        let version = self.version.load(Ordering::SeqCst);
        if let Some((cached, parts)) = *self.cached.lock().expect("safe parts lock")
            && cached == version
        {
            return Ok(parts);
        }
        let parts = read()?;
        let mut cached = self.cached.lock().expect("safe parts lock");
        if cached.is_none_or(|(older, _)| older < version) {
            *cached = Some((version, parts));
        }
        Ok(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_read_again_only_after_a_commit() {
        let parts = SafeParts::default();
        let first = (Timestamp(10), None, Timestamp(0));
        let second = (Timestamp(20), Some(Timestamp(15)), Timestamp(0));
        assert_eq!(parts.get_or_read(|| Ok(first)).unwrap(), first);
        let cached = parts.get_or_read(|| panic!("read again without a commit")).unwrap();
        assert_eq!(cached, first);
        parts.bump();
        assert_eq!(parts.get_or_read(|| Ok(second)).unwrap(), second);
        assert_eq!(parts.get_or_read(|| panic!("read again")).unwrap(), second);
        // A read that failed caches nothing.
        parts.bump();
        assert!(parts.get_or_read(|| Err(io::Error::other("down"))).is_err());
        assert_eq!(parts.get_or_read(|| Ok(first)).unwrap(), first);
    }
}
