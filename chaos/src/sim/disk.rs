//! redb and the WAL over turmoil's simulated file system, with a kill switch: the disk seam.
//!
//! turmoil's file system keeps writes pending until `sync_data`, and a host crash discards the
//! pending ones (and files never synced), like power loss. But turmoil runs a crashed host's
//! destructors, and redb's `Database::drop` would then write and sync, making unsynced commits
//! durable after all. The kill switch, flipped by the driver just before it crashes a host,
//! makes every later I/O of that incarnation fail, so nothing is written after the "crash".

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;

use turmoil::fs::shim::std::fs::File;
use turmoil::fs::shim::std::fs::OpenOptions;

/// The data directory of a simulated node.
pub const DATA_DIR: &str = "/data";

/// Fails once the kill switch is flipped (or outside the simulation): no I/O after a "crash".
fn alive(kill: &AtomicBool) -> io::Result<()> {
    if kill.load(Ordering::SeqCst) || !turmoil::in_simulation() {
        return Err(io::Error::other("the simulated process is dead"));
    }
    Ok(())
}

/// A redb storage backend over a simulated file.
#[derive(Debug)]
pub struct SimFileBackend {
    file: File,
    kill: Arc<AtomicBool>,
}

impl SimFileBackend {
    /// Opens (or creates) the database file `name` in the node's data directory; `kill` is
    /// this incarnation's switch.
    pub fn open(name: &str, kill: Arc<AtomicBool>) -> io::Result<SimFileBackend> {
        let path = format!("{DATA_DIR}/{name}");
        let dir = path.rsplit_once('/').map_or(DATA_DIR, |(dir, _)| dir);
        turmoil::fs::shim::std::fs::create_dir_all(dir)?;
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        turmoil::fs::shim::std::fs::sync_dir(dir)?;
        Ok(SimFileBackend { file, kill })
    }

    fn check(&self) -> io::Result<()> {
        alive(&self.kill)
    }
}

impl replication::store::LogFile for SimFileBackend {
    fn size(&self) -> io::Result<u64> {
        redb::StorageBackend::len(self)
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        redb::StorageBackend::read(self, offset, out)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        redb::StorageBackend::write(self, offset, data)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        redb::StorageBackend::set_len(self, len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        if redb::StorageBackend::len(self)? < len {
            redb::StorageBackend::set_len(self, len)?;
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        redb::StorageBackend::sync_data(self)
    }
}

/// The WAL's directory of a simulated node (inside [`DATA_DIR`]), with the kill switch.
pub struct SimLogDir {
    kill: Arc<AtomicBool>,
}

impl SimLogDir {
    /// The WAL directory of this incarnation.
    pub fn new(kill: Arc<AtomicBool>) -> SimLogDir {
        SimLogDir { kill }
    }

    fn path(name: &str) -> String {
        format!("{}/{name}", replication::store::WAL_DIR)
    }
}

impl replication::store::LogDir for SimLogDir {
    fn open(&self, name: &str) -> io::Result<Arc<dyn replication::store::LogFile>> {
        Ok(Arc::new(SimFileBackend::open(&SimLogDir::path(name), self.kill.clone())?))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        alive(&self.kill)?;
        let dir = format!("{DATA_DIR}/{}", replication::store::WAL_DIR);
        if !turmoil::fs::shim::std::fs::exists(&dir) {
            return Ok(Vec::new());
        }
        let mut names = Vec::new();
        for entry in turmoil::fs::shim::std::fs::read_dir(&dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        alive(&self.kill)?;
        turmoil::fs::shim::std::fs::remove_file(format!("{DATA_DIR}/{}", SimLogDir::path(name)))
    }
}

impl redb::StorageBackend for SimFileBackend {
    fn len(&self) -> io::Result<u64> {
        self.check()?;
        Ok(self.file.metadata()?.len())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.check()?;
        self.file.read_exact_at(out, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check()?;
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.check()?;
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check()?;
        self.file.write_all_at(data, offset)
    }
}
