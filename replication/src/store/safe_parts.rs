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
//!
//! # Closes applied in memory
//!
//! A batch of entries that only close (`Command::only_closes`: what a shard's log carries
//! between writes, a hundred times a second while causal readers are about) changes nothing
//! but the closed timestamp, so the state machine applies it without a commit: it records the
//! batch's last index and the closed timestamp here, and writes the closed timestamp into the
//! tables with the shard's next transaction (`state_machine`). The tables then lag by closes
//! only; what they hold is still a consistent state at their applied index.
//!
//! Invariant: the state machine records a close here only after every earlier entry of the
//! shard is committed (openraft applies a shard's batches one after another). So a reader that
//! loads the in-memory closed timestamp *first*, and then reads the tables (or takes cached
//! parts, whose version it loads after), sees every entry below that close: combining them
//! ([`SafeParts::with_closes_in_memory`]) never pairs a close with an older prepared set.

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
    /// The highest closed timestamp applied in memory (never decreases).
    closed_in_memory: AtomicU64,
    /// The log index of the last batch applied in memory (0: none since the last install).
    applied_in_memory: AtomicU64,
}

impl SafeParts {
    /// Called by the state machine after each commit that changed the shard's tables.
    pub(crate) fn bump(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// Called by the state machine after it applied a batch of closes in memory: the batch
    /// ends at log index `index` and closes at `closed`.
    pub(crate) fn closes_applied(&self, index: u64, closed: Timestamp) {
        self.closed_in_memory.fetch_max(closed.0, Ordering::SeqCst);
        self.applied_in_memory.fetch_max(index, Ordering::SeqCst);
    }

    /// Called when a snapshot replaces the shard's state: its index is the tables' again.
    pub(crate) fn installed(&self) {
        self.applied_in_memory.store(0, Ordering::SeqCst);
    }

    /// The log index of the last batch applied in memory (0: none). Load it before reading
    /// the tables: their applied index, if higher, is the true one.
    pub(crate) fn applied_in_memory(&self) -> u64 {
        self.applied_in_memory.load(Ordering::SeqCst)
    }

    /// Reads the tables' parts through `read` (see [`SafeParts::get_or_read`]) and raises
    /// their closed timestamp to the one applied in memory, loaded first (module invariant).
    pub(crate) fn with_closes_in_memory<T>(
        &self,
        read: impl FnOnce() -> io::Result<T>,
        closed_of: impl FnOnce(&mut T) -> &mut Timestamp,
    ) -> io::Result<T> {
        let in_memory = Timestamp(self.closed_in_memory.load(Ordering::SeqCst));
        let mut parts = read()?;
        let closed = closed_of(&mut parts);
        *closed = (*closed).max(in_memory);
        Ok(parts)
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

    #[test]
    fn closes_in_memory_raise_the_tables_closed_timestamp_and_never_lower_it() {
        let parts = SafeParts::default();
        let closed = |parts: &SafeParts, table: u64| {
            let read = || Ok(Timestamp(table));
            parts.with_closes_in_memory(read, |closed| closed).unwrap()
        };
        assert_eq!(closed(&parts, 5), Timestamp(5), "nothing in memory");
        parts.closes_applied(7, Timestamp(30));
        assert_eq!(closed(&parts, 5), Timestamp(30));
        assert_eq!(closed(&parts, 40), Timestamp(40), "the tables caught up and passed it");
        parts.closes_applied(6, Timestamp(20));
        assert_eq!(closed(&parts, 5), Timestamp(30), "never lowered");
        assert_eq!(parts.applied_in_memory(), 7);
        parts.installed();
        assert_eq!(parts.applied_in_memory(), 0);
    }
}
