//! The disk-stall watchdog: stops the node when a commit of the Raft log does not end.
//!
//! A writer cannot fail a commit it is stuck in (an fsync that hangs in the kernel), and a node
//! whose log cannot be written would otherwise stay in every Raft group, answering heartbeats
//! (they need no disk), without doing its part: a leader among them keeps its shards from
//! electing one that works. CockroachDB stops a node whose disk stalls for the same reason
//! (`storage.max_sync_duration`, 20 s by default); so does this watchdog, after `limit`.
//!
//! - It watches the log writer only. Its commits are appends and one `fdatasync`, small and
//!   frequent (idle shards append a close every 250 ms), so a stall shows there first. The
//!   state writer's commits include whole snapshot installs, which may rightly take minutes.
//! - It runs on an OS thread of its own: on a runtime worker, reads that block on the same
//!   stalled disk could hold it up too.
//! - It counts only the time it was awake to see: it looks every [`STALL_CHECK_EVERY`], and
//!   a look that comes late (the process was paused: SIGSTOP, a suspended VM) starts the count
//!   again, since the commit may have been held up by the pause and not by the disk.
//! - It gives up when the writer is gone.

use std::sync::Weak;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

/// How often the watchdog looks at the commit in progress.
pub const STALL_CHECK_EVERY: Duration = Duration::from_millis(250);
/// A look this much later than planned means the process was paused: the count starts again.
pub const PAUSE_SLACK: Duration = Duration::from_secs(1);

/// Starts the watchdog of the writer whose progress is `progress`
/// ([`super::writer::Writer::progress`]): when one commit has run for longer than `limit`,
/// `on_stall` is called once with why, and the watchdog ends.
pub fn watch(
    progress: Weak<AtomicU64>,
    what: &'static str,
    limit: Duration,
    on_stall: impl FnOnce(String) + Send + 'static,
) {
    std::thread::Builder::new()
        .name("stall-watchdog".into())
        .spawn(move || {
            // The commit seen in progress, and how long it has been seen so.
            let mut stuck: Option<(u64, Duration)> = None;
            loop {
                let slept = Instant::now();
                std::thread::sleep(STALL_CHECK_EVERY);
                let awake = slept.elapsed();
                let Some(progress) = progress.upgrade() else { return };
                let current = Some(progress.load(Ordering::Acquire)).filter(|c| *c != 0);
                stuck = match (current, stuck) {
                    _ if awake > STALL_CHECK_EVERY + PAUSE_SLACK => None,
                    (Some(commit), Some((seen, for_))) if commit == seen => {
                        Some((commit, for_ + awake))
                    }
                    (Some(commit), _) => Some((commit, Duration::ZERO)),
                    (None, _) => None,
                };
                if let Some((_, for_)) = stuck
                    && for_ > limit
                {
                    on_stall(format!("a commit of {what} has not ended for {for_:.1?}"));
                    return;
                }
            }
        })
        .expect("spawn the stall watchdog");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_commit_that_does_not_end_is_reported_once_and_one_that_ends_is_not() {
        let progress = Arc::new(AtomicU64::new(0));
        let (told, reports) = std::sync::mpsc::channel();
        watch(Arc::downgrade(&progress), "the test log", Duration::from_millis(600), move |why| {
            told.send(why).expect("the test listens");
        });
        // Commits that end in time, one after another: never reported.
        for commit in 1..=4 {
            progress.store(commit, Ordering::Release);
            std::thread::sleep(STALL_CHECK_EVERY);
        }
        progress.store(0, Ordering::Release);
        assert!(reports.try_recv().is_err(), "commits that ended were reported");
        // One that does not end.
        progress.store(5, Ordering::Release);
        let why = reports.recv_timeout(Duration::from_secs(10)).expect("a report");
        assert!(why.starts_with("a commit of the test log has not ended for"), "{why}");
        drop(progress);
        assert!(reports.recv_timeout(Duration::from_secs(1)).is_err(), "reported once");
    }
}
