//! redb and the WAL over turmoil's simulated file system, with a kill switch: the disk seam.
//!
//! turmoil's file system keeps writes pending until `sync_data`, and a host crash discards the
//! pending ones (and files never synced), like power loss. But turmoil runs a crashed host's
//! destructors, and redb's `Database::drop` would then write and sync, making unsynced commits
//! durable after all. The kill switch, flipped by the driver just before it crashes a host,
//! makes every later I/O of that incarnation fail, so nothing is written after the "crash".
//!
//! The same switch models a disk that fails under a running node ([`DiskSwitch::fail_next_sync`],
//! the nemesis's `disk-failure`): its next fsync reports an I/O error and every I/O after it
//! fails too. That is the conservative reading of a failed fsync (after one, the kernel may have
//! dropped the dirty pages, so nothing written since the last good fsync can be trusted): the
//! node must stop (fail-stop), and only a restart, which loses the unsynced writes as a crash
//! does, brings it back.

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;

use turmoil::fs::shim::std::fs::File;
use turmoil::fs::shim::std::fs::OpenOptions;

/// A disk sector: what a crash writes whole or not at all (`sim::cluster`'s torn writes).
pub const SECTOR_BYTES: u64 = 512;

/// The data directory of a simulated node.
pub const DATA_DIR: &str = "/data";

/// The state of one node's simulated disk, shared by its files; the driver flips it.
#[derive(Debug, Default)]
pub struct DiskSwitch {
    /// Set while the node is crashed, or once its disk failed: every I/O fails.
    dead: AtomicBool,
    /// Set by the nemesis: the next fsync fails, and the disk dies with it.
    fail_sync: AtomicBool,
    /// Set by the nemesis: the node's next start finds its data directory gone.
    lost: AtomicBool,
    /// Set by the nemesis: the node's next start finds one bit of its Raft log flipped, the
    /// one this number picks ([`rot_a_log_bit`]).
    rot: Mutex<Option<u64>>,
    /// Where the bit was flipped, from the flip until the node refuses to start (or, wrongly,
    /// starts): kept here, not by the start that flipped it, in case a crash cuts that short.
    rotted: Mutex<Option<String>>,
    /// Set when the node refused to start on its damaged log: the driver replaces its disk.
    refused: AtomicBool,
}

impl DiskSwitch {
    /// The node crashed (or the simulation ends): nothing more is written.
    pub fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
    }

    /// A new incarnation starts with a working disk (what was synced before is still there).
    pub fn revive(&self) {
        self.fail_sync.store(false, Ordering::SeqCst);
        self.dead.store(false, Ordering::SeqCst);
    }

    /// Makes the next fsync fail with an I/O error, and the disk dead from then on.
    pub fn fail_next_sync(&self) {
        self.fail_sync.store(true, Ordering::SeqCst);
    }

    /// Loses everything on the disk: the node's next start removes its data directory before
    /// opening it (a replaced disk). Asked while the node is down.
    pub fn lose_all(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    /// True once, at the start after a [`DiskSwitch::lose_all`].
    pub fn take_lost(&self) -> bool {
        self.lost.swap(false, Ordering::SeqCst)
    }

    /// Flips one bit of the Raft log, picked by `choice`, before the node's next start (bit
    /// rot in what it had synced). Asked while the node is down.
    pub fn rot(&self, choice: u64) {
        *self.rot.lock().expect("rot lock") = Some(choice);
    }

    /// The bit to flip at this start, once, after a [`DiskSwitch::rot`].
    pub fn take_rot(&self) -> Option<u64> {
        self.rot.lock().expect("rot lock").take()
    }

    /// The bit [`rot_a_log_bit`] flipped, until a start meets it.
    pub fn set_rotted(&self, at: String) {
        *self.rotted.lock().expect("rot lock") = Some(at);
    }

    /// Where a bit was flipped that no start has met yet; taken by the start that meets it.
    pub fn take_rotted(&self) -> Option<String> {
        self.rotted.lock().expect("rot lock").take()
    }

    /// The node refused to start on its damaged log.
    pub fn refuse(&self) {
        self.refused.store(true, Ordering::SeqCst);
    }

    /// True once after [`DiskSwitch::refuse`].
    pub fn take_refused(&self) -> bool {
        self.refused.swap(false, Ordering::SeqCst)
    }

    /// Withdraws a [`DiskSwitch::fail_next_sync`] that no fsync has met yet.
    pub fn cancel_failure(&self) {
        self.fail_sync.store(false, Ordering::SeqCst);
    }

    /// True while every I/O fails.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// Fails once the disk is dead (or outside the simulation): no I/O after a "crash".
    fn alive(&self) -> io::Result<()> {
        if self.is_dead() || !turmoil::in_simulation() {
            return Err(io::Error::other("the simulated process is dead"));
        }
        Ok(())
    }

    /// Before an fsync: fails, and kills the disk, if a failure was asked for.
    fn sync(&self) -> io::Result<()> {
        self.alive()?;
        if self.fail_sync.swap(false, Ordering::SeqCst) {
            self.kill();
            return Err(io::Error::from_raw_os_error(EIO));
        }
        Ok(())
    }
}

/// Flips one bit of a synced record of the WAL on the disk `disk` (run inside the node's host,
/// before it opens its data): of the newest segment with data when `choice` is odd, of any
/// otherwise, at a byte no later than the segment's last non-zero one (so inside a record: the
/// simulated disk keeps whole writes, and the space after the log reads as zeros). Returns
/// where, or `None` if the log holds nothing yet.
pub fn rot_a_log_bit(disk: &Arc<DiskSwitch>, choice: u64) -> io::Result<Option<String>> {
    use replication::store::LogDir;
    use replication::store::wal::SEGMENT_SUFFIX;
    let dir = SimLogDir::new(disk.clone());
    let mut names: Vec<String> =
        dir.list()?.into_iter().filter(|name| name.ends_with(SEGMENT_SUFFIX)).collect();
    names.sort();
    let mut written = Vec::new();
    for name in names {
        let file = dir.open(&name)?;
        let mut bytes = vec![0; file.size()? as usize];
        file.read_at(0, &mut bytes)?;
        if let Some(last) = bytes.iter().rposition(|&byte| byte != 0) {
            written.push((name, file, bytes, last));
        }
    }
    let pick = match choice % 2 {
        1 => written.len().checked_sub(1),
        _ => (!written.is_empty()).then(|| (choice / 2) as usize % written.len()),
    };
    let Some((name, file, bytes, last)) = pick.map(|index| written.swap_remove(index)) else {
        return Ok(None);
    };
    let offset = (choice >> 8) as usize % (last + 1);
    let bit = (choice >> 4) % 8;
    file.write_at(offset as u64, &[bytes[offset] ^ (1 << bit)])?;
    file.sync_data()?;
    let at = format!("{name} offset {offset} bit {bit}");
    disk.set_rotted(at.clone());
    Ok(Some(at))
}

/// The error number of an I/O error (Linux `EIO`).
const EIO: i32 = 5;

/// A redb storage backend over a simulated file.
#[derive(Debug)]
pub struct SimFileBackend {
    file: File,
    disk: Arc<DiskSwitch>,
}

impl SimFileBackend {
    /// Opens (or creates) the database file `name` in the node's data directory, on the disk
    /// `disk`.
    pub fn open(name: &str, disk: Arc<DiskSwitch>) -> io::Result<SimFileBackend> {
        let path = format!("{DATA_DIR}/{name}");
        let dir = path.rsplit_once('/').map_or(DATA_DIR, |(dir, _)| dir);
        turmoil::fs::shim::std::fs::create_dir_all(dir)?;
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        turmoil::fs::shim::std::fs::sync_dir(dir)?;
        Ok(SimFileBackend { file, disk })
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
    disk: Arc<DiskSwitch>,
}

impl SimLogDir {
    /// The WAL directory on the disk `disk`.
    pub fn new(disk: Arc<DiskSwitch>) -> SimLogDir {
        SimLogDir { disk }
    }

    fn path(name: &str) -> String {
        format!("{}/{name}", replication::store::WAL_DIR)
    }
}

impl replication::store::LogDir for SimLogDir {
    fn open(&self, name: &str) -> io::Result<Arc<dyn replication::store::LogFile>> {
        Ok(Arc::new(SimFileBackend::open(&SimLogDir::path(name), self.disk.clone())?))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        self.disk.alive()?;
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
        self.disk.alive()?;
        turmoil::fs::shim::std::fs::remove_file(format!("{DATA_DIR}/{}", SimLogDir::path(name)))
    }
}

impl redb::StorageBackend for SimFileBackend {
    fn len(&self) -> io::Result<u64> {
        self.disk.alive()?;
        Ok(self.file.metadata()?.len())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.disk.alive()?;
        self.file.read_exact_at(out, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.disk.alive()?;
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.disk.sync()?;
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.disk.alive()?;
        // One write per sector it touches: a crash keeps each whole or loses it, in any
        // combination, as a disk does (turmoil tears a write in blocks counted from the write's
        // start, which cut inside sectors, where no disk tears; the WAL then took a torn write
        // for damage, a false finding of the first runs with torn writes, 2026-12-07).
        // A piece of a sector is written as the whole sector's new content (as far as the file
        // reaches), so that of two writes to one sector that a crash finds unsynced, whichever
        // survives holds what was there before it: a disk writes a sector as the page cache
        // holds it, never the second write's bytes without the first's (the WAL's volatile
        // writes under canary ack-before-fsync met that, and it took the sector for damage).
        let len = redb::StorageBackend::len(self)?;
        let mut at = 0;
        while at < data.len() {
            let position = offset + at as u64;
            let sector_start = position / SECTOR_BYTES * SECTOR_BYTES;
            let sector_end = sector_start + SECTOR_BYTES;
            let end = data.len().min(at + (sector_end - position) as usize);
            let piece_end = offset + end as u64;
            let image_end = piece_end.max(sector_end.min(len));
            let mut image = vec![0; (image_end - sector_start) as usize];
            let known_end = len.min(image_end);
            if known_end > sector_start {
                self.file.read_exact_at(
                    &mut image[..(known_end - sector_start) as usize],
                    sector_start,
                )?;
            }
            let from = (position - sector_start) as usize;
            image[from..from + (end - at)].copy_from_slice(&data[at..end]);
            self.file.write_all_at(&image, sector_start)?;
            at = end;
        }
        Ok(())
    }
}
