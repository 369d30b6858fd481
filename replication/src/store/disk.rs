//! The files under the Raft log (the WAL's segments) and the directory that holds them: the disk
//! seam of the log, as redb's `StorageBackend` is the seam of the databases.
//!
//! Production uses [`FsDir`] (files in `DATA/wal/`), the simulation its own directory over
//! turmoil's file system (writes not synced are lost when a host crashes), and tests [`MemDir`].
//!
//! Contract of a [`LogDir`]: a file that [`LogDir::open`] created is in the directory durably
//! when `open` returns (the directory is synced), so a crash never loses a file whose contents
//! were synced. [`LogDir::remove`] need not be durable: a removed segment that comes back after
//! a crash holds only purged entries, and replay skips them.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;

/// One file of the log: positioned reads and writes, as `pread`/`pwrite`.
pub trait LogFile: Send + Sync + std::fmt::Debug {
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Fills `out` from `offset`; fails if the file is shorter.
    fn read_at(&self, offset: u64, out: &mut [u8]) -> io::Result<()>;
    /// Writes all of `data` at `offset`.
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Cuts (or extends) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Reserves space up to `len` bytes (reading as zeros), so that later writes inside it do
    /// not change the file's size: an `fdatasync` then flushes data alone, not the file system
    /// journal (which would also flush other files' dirty data, the state database's).
    fn allocate(&self, len: u64) -> io::Result<()>;
    /// Makes every write so far durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Drops what the operating system caches of the file and the disk already holds, so that
    /// what is read next comes from the disk ([`drop_cached_pages`]). Best effort: nothing
    /// where there is no such cache.
    fn drop_cached(&self) {}
}

/// Drops the pages of `file` that the kernel caches and that hold no unwritten data, so that
/// what is read next comes from the disk. After a failed `fsync` Linux marks the pages it could
/// not write clean, and a later read of the file (by the node started again after it stopped
/// on the error) returns them as if they were on disk, while the disk holds something older
/// (PostgreSQL's "fsyncgate", 2018): the node would count entries the disk never had, and
/// help commit them (found by a review of recovery, 2026-12-08). Called on every file of the
/// log and of the databases before a start reads them. Dirty pages (a killed process's writes
/// not flushed yet) stay: the kernel still writes them. Best effort: a failure is logged, as
/// it only leaves the cache as it was.
pub fn drop_cached_pages(file: &std::fs::File, what: &Path) {
    if let Err(error) = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed) {
        tracing::warn!(file = %what.display(), %error, "could not drop the file's cached pages");
    }
}

/// The directory of the log's files.
pub trait LogDir: Send + Sync {
    /// Opens `name`, creating it (durably) if it does not exist.
    fn open(&self, name: &str) -> io::Result<Arc<dyn LogFile>>;
    /// The names of the files in the directory, in no particular order.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Removes `name`.
    fn remove(&self, name: &str) -> io::Result<()>;
}

impl LogFile for std::fs::File {
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.read_exact_at(out, offset)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.write_all_at(data, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        std::fs::File::set_len(self, len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let flags = rustix::fs::FallocateFlags::empty();
        match rustix::fs::fallocate(self, flags, 0, len) {
            Ok(()) => Ok(()),
            // A file system without fallocate: set the size; writes allocate as they go.
            Err(rustix::io::Errno::OPNOTSUPP) => std::fs::File::set_len(self, len),
            Err(errno) => Err(errno.into()),
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        std::fs::File::sync_data(self)
    }

    fn drop_cached(&self) {
        drop_cached_pages(self, Path::new("a WAL segment"));
    }
}

/// A directory of the real file system.
pub struct FsDir {
    path: PathBuf,
}

impl FsDir {
    /// The directory `path`, created if missing; its entry in its parent is durable either
    /// way ([`create_dir_durably`]).
    pub fn create(path: PathBuf) -> io::Result<FsDir> {
        create_dir_durably(&path)?;
        Ok(FsDir { path })
    }

    fn sync(&self) -> io::Result<()> {
        sync_dir(&self.path)
    }
}

/// Creates the directory `path` and every missing ancestor, durably: the parent of each one
/// created is synced, so a power cut after this returns cannot take a directory away with the
/// files later synced inside it (a review found the data directory's own entry never synced,
/// 2026-12-06). The parent of `path` is synced even if `path` existed: a start that died
/// between creating it and that sync left it there unsynced.
pub fn create_dir_durably(path: &Path) -> io::Result<()> {
    // `path` first (ancestors start with it): every directory whose entry to sync.
    let mut created: Vec<&Path> = path.ancestors().take_while(|dir| !dir.exists()).collect();
    std::fs::create_dir_all(path)?;
    if created.is_empty() {
        created.push(path);
    }
    for dir in created {
        match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent)?,
            _ => sync_dir(Path::new("."))?,
        }
    }
    Ok(())
}

/// Syncs the directory `path` (its entries: files created or renamed in it).
pub fn sync_dir(path: &Path) -> io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

impl LogDir for FsDir {
    fn open(&self, name: &str) -> io::Result<Arc<dyn LogFile>> {
        let path = self.path.join(name);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        // Synced even if the file existed: a process killed between creating it and this
        // sync left its entry in the page cache only, and the next start, finding it there,
        // synced nothing, so a power cut later took the segment and what had been synced into
        // it (a review of the harness, whose simulated directory always synced, 2026-12-07).
        self.sync()?;
        Ok(Arc::new(file))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.path)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.path.join(name))
    }
}

/// A directory in memory (tests): every write is durable at once.
#[derive(Default)]
pub struct MemDir {
    files: Mutex<BTreeMap<String, Arc<MemFile>>>,
}

/// A file of a [`MemDir`].
#[derive(Debug, Default)]
pub struct MemFile {
    bytes: Mutex<Vec<u8>>,
}

impl MemFile {
    fn bytes(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.bytes.lock().expect("memory file lock")
    }
}

impl MemDir {
    /// The file `name`, if it exists (tests damage files through it).
    pub fn file(&self, name: &str) -> Option<Arc<MemFile>> {
        self.files.lock().expect("memory dir lock").get(name).cloned()
    }
}

impl LogFile for MemFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.bytes().len() as u64)
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let bytes = self.bytes();
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let source = bytes
            .get(start..start + out.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        out.copy_from_slice(source);
        Ok(())
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut bytes = self.bytes();
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        if bytes.len() < start + data.len() {
            bytes.resize(start + data.len(), 0);
        }
        bytes[start..start + data.len()].copy_from_slice(data);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.bytes().resize(usize::try_from(len).map_err(io::Error::other)?, 0);
        Ok(())
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(io::Error::other)?;
        let mut bytes = self.bytes();
        if bytes.len() < len {
            bytes.resize(len, 0);
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
}

impl LogDir for MemDir {
    fn open(&self, name: &str) -> io::Result<Arc<dyn LogFile>> {
        let mut files = self.files.lock().expect("memory dir lock");
        Ok(files.entry(name.to_string()).or_default().clone())
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.files.lock().expect("memory dir lock").keys().cloned().collect())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        match self.files.lock().expect("memory dir lock").remove(name) {
            Some(_) => Ok(()),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::create_dir_durably;

    #[test]
    fn creates_missing_ancestors_and_accepts_an_existing_directory() {
        let root = tempfile::tempdir().expect("a temp dir");
        let path = root.path().join("a").join("b").join("data");
        create_dir_durably(&path).expect("created");
        assert!(path.is_dir());
        create_dir_durably(&path).expect("an existing directory is fine");
        let file = root.path().join("file");
        std::fs::write(&file, b"x").expect("a file");
        assert!(create_dir_durably(&file.join("below")).is_err(), "under a file");
    }
}
