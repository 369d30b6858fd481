//! Whether the data directory a node opened is still the one at its path.
//!
//! A node keeps its files open, so a data directory deleted (or moved, or replaced) under a
//! running node goes unnoticed by its reads and writes: they go on into files that no longer
//! have a name, and everything the node acknowledges from then on is gone at its next start.
//! PostgreSQL guards against the same mistake by checking its lock file every minute and shutting
//! down when it is gone. Here the node checks, every `server::node::STORAGE_CHECK_PERIOD`, that
//! its identity file ([`super::NODE_FILE`]) is still at its path and is the same file (device
//! and inode) that it opened; when not, the node stops (fail-stop, as for a failed disk).
//!
//! Only a definite answer counts: the file is not found, or another file is there. Any other
//! error of the check (permissions changed, say) leaves the node running.
//!
//! The check runs on a thread of its own ([`PresenceWatch`]), which keeps its last answer for
//! the node to read: a `stat` blocks for as long as the disk does, and on a runtime worker a
//! stalled disk would hold up everything else of the node, its check for the stall included.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often the watcher thread checks.
pub const PRESENCE_CHECK_EVERY: Duration = Duration::from_millis(500);

/// The identity file of an opened data directory, as it was when opened.
#[derive(Clone, Debug)]
pub struct DirPresence {
    file: PathBuf,
    device: u64,
    inode: u64,
}

impl DirPresence {
    /// Remembers `file` (which must exist) as it is now.
    pub fn of(file: &Path) -> io::Result<DirPresence> {
        let meta = std::fs::metadata(file)?;
        Ok(DirPresence { file: file.to_path_buf(), device: meta.dev(), inode: meta.ino() })
    }

    /// Why the directory is no longer the one opened, if it is not.
    pub fn lost(&self) -> Option<String> {
        match std::fs::metadata(&self.file) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                Some(format!("{} is gone", self.file.display()))
            }
            Ok(meta) if (meta.dev(), meta.ino()) != (self.device, self.inode) => {
                Some(format!("{} is another file than the one opened", self.file.display()))
            }
            _ => None,
        }
    }

    /// Checks every `period` on a thread of its own until the watch is dropped.
    pub fn watch(self, period: Duration) -> PresenceWatch {
        let lost = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (found, stopped) = (lost.clone(), stop.clone());
        std::thread::Builder::new()
            .name("presence".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    if let Some(why) = self.lost() {
                        *found.lock().expect("presence lock") = Some(why);
                        return;
                    }
                    std::thread::sleep(period);
                }
            })
            .expect("spawn the presence thread");
        PresenceWatch { lost, stop }
    }
}

/// The last answer of a [`DirPresence`] checked on a thread of its own.
#[derive(Debug)]
pub struct PresenceWatch {
    lost: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
}

impl PresenceWatch {
    /// Why the directory is no longer the one opened, once a check found so.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().expect("presence lock").clone()
    }
}

impl Drop for PresenceWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_removed_or_replaced_is_lost_and_one_left_alone_is_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("node.redb");
        std::fs::write(&file, b"identity").expect("write");
        let presence = DirPresence::of(&file).expect("presence");
        // Held open, as the node holds its databases: the removed file's inode stays in use,
        // so the new file cannot get its number.
        let _open = std::fs::File::open(&file).expect("open");
        assert_eq!(presence.lost(), None);
        std::fs::write(&file, b"rewritten in place").expect("rewrite");
        assert_eq!(presence.lost(), None, "the same file, written to");

        std::fs::remove_file(&file).expect("remove");
        assert!(presence.lost().expect("lost").ends_with("node.redb is gone"));

        std::fs::write(&file, b"a new file under the old name").expect("replace");
        let lost = presence.lost().expect("lost");
        assert!(lost.ends_with("is another file than the one opened"), "{lost}");
    }

    #[test]
    fn the_watch_reports_a_removed_file_from_its_thread() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("node.redb");
        std::fs::write(&file, b"identity").expect("write");
        let watch = DirPresence::of(&file).expect("presence").watch(Duration::from_millis(5));
        assert_eq!(watch.lost(), None);
        std::fs::remove_file(&file).expect("remove");
        for _ in 0..1000 {
            if watch.lost().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(watch.lost().expect("lost").ends_with("node.redb is gone"));
    }
}
