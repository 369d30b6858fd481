//! redb over turmoil's simulated file system, with a kill switch: the disk seam.
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
        turmoil::fs::shim::std::fs::create_dir_all(DATA_DIR)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(format!("{DATA_DIR}/{name}"))?;
        turmoil::fs::shim::std::fs::sync_dir(DATA_DIR)?;
        Ok(SimFileBackend { file, kill })
    }

    fn check(&self) -> io::Result<()> {
        if self.kill.load(Ordering::SeqCst) || !turmoil::in_simulation() {
            return Err(io::Error::other("the simulated process is dead"));
        }
        Ok(())
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
