//! The one writer of a storage [`Sink`] (the state database, or the Raft log's WAL): every change
//! to it goes through the writer.
//!
//! A durable commit costs an fsync. The writer takes every job queued since its last commit and
//! commits them together in one batch (one redb write transaction, or one append to the WAL): for
//! the log, one fsync covers the appends of every shard (group commit). While a commit runs, new
//! jobs queue up and form the next batch, so batches grow with load.
//!
//! A batch is committed durably (its jobs complete only after the fsync) if any of its jobs is
//! *durable*, or if a checkpoint is due (every `checkpoint_every` commits, for a database written
//! mostly by volatile jobs: it bounds what a crash loses, and redb reuses pages freed by volatile
//! commits only after a durable one). Otherwise it is committed volatile: visible at once,
//! durable with the next durable commit. Jobs run in the order they were submitted (openraft
//! requires its log and vote writes to be serialized).
//!
//! If a commit fails the sink is in an unknown state: every job of the batch fails, the writer
//! stops, and every later submission fails. The node must then stop (fail-stop; retrying an
//! fsync after an error is unsafe).
//!
//! A commit that does not complete (a disk that hangs in an fsync) cannot fail the writer: the
//! thread is stuck in it. The writer shows which commit is in progress
//! ([`Writer::commit_in_progress`]), for a watchdog ([`super::stall`]) to stop the node when one
//! does not end. Only on a thread: the simulated disk never stalls.
//!
//! Where the writer runs is the [`Executor`] seam: a dedicated OS thread in production (fsync
//! blocks), or an async task inline in the simulation (no blocking threads there; the simulated
//! disk never blocks).

use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use redb::Database;
use redb::Durability;
use redb::WriteTransaction;
use tokio::sync::mpsc;
use tokio::sync::oneshot;

/// Jobs taken into one batch at most.
pub const WRITER_BATCH_JOBS_MAX: usize = 4096;

/// Test seam: while the file this environment variable names exists, every durable commit of a
/// writer on a thread waits before it starts, as on a disk whose fsync hangs (the end-to-end
/// test of the stall check). Read once; nothing else sets it.
pub const DISK_STALL_VAR: &str = "KVD_DISK_STALL";
/// How often a commit held by [`DISK_STALL_VAR`] looks at the file again.
const DISK_STALL_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// Waits while the file named by [`DISK_STALL_VAR`] exists.
fn stall_if_asked() {
    static PATH: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    let Some(path) = PATH.get_or_init(|| std::env::var_os(DISK_STALL_VAR).map(Into::into)) else {
        return;
    };
    while path.exists() {
        std::thread::sleep(DISK_STALL_POLL);
    }
}

/// Where the writer loop runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Executor {
    /// A dedicated OS thread (production: fsync blocks).
    Thread,
    /// A task on the current tokio runtime, calling redb inline (the simulation, whose disk
    /// never blocks). `sync_delay` is how long a durable commit takes in (simulated) time, as an
    /// fsync does on a real disk: writes queue up meanwhile. A sink that splits its commits
    /// ([`Sink::SPLITS`], the WAL) is written before the wait and synced after it, so a crash
    /// during it finds the batch written and not synced, perhaps torn; another commits after
    /// the wait, so a crash during it loses the batch whole.
    Task {
        /// Simulated duration of an fsync.
        sync_delay: std::time::Duration,
    },
}

impl Executor {
    /// Runs `work`, which blocks for long (it reads a whole shard, say), where it holds up no
    /// worker of the async runtime: on a thread of its own in production, inline in the
    /// simulation (whose disk never blocks, and whose runs must stay deterministic).
    pub async fn run_blocking<T: Send + 'static>(
        self,
        name: &str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        match self {
            Executor::Thread => {
                let (done, result) = tokio::sync::oneshot::channel();
                std::thread::Builder::new()
                    .name(name.to_string())
                    .spawn(move || {
                        let _ = done.send(work());
                    })
                    .expect("spawn a thread");
                result.await.unwrap_or_else(|_| panic!("the {name} thread panicked"))
            }
            Executor::Task { .. } => work(),
        }
    }
}

/// Called with the commit's result once the job's batch committed (or failed).
pub type Completion = Box<dyn FnOnce(io::Result<()>) + Send>;
/// The job's changes, made inside the batch.
pub type Work<S> =
    Box<dyn FnOnce(&mut <S as Sink>::Batch) -> Result<(), <S as Sink>::Error> + Send>;

/// What a writer commits batches to.
pub trait Sink: Send + 'static {
    /// What a job's work writes into (a redb write transaction, a WAL batch).
    type Batch;
    /// Why a commit failed.
    type Error: std::fmt::Display;

    /// Runs `works` in order into one batch and commits it, with an fsync if `durable`; the
    /// first failing work fails the whole batch.
    fn commit(&mut self, durable: bool, works: Vec<Work<Self>>) -> Result<(), Self::Error>;

    /// Whether [`Sink::write`] and [`Sink::sync`] split a commit (else the write commits
    /// whole, and the simulation's writer waits the fsync's time before it, as it always did).
    const SPLITS: bool = false;

    /// The first half of [`Sink::commit`], for a writer that waits between the two (the
    /// simulation's, for the fsync's time, [`Executor::Task`]): runs `works` into one batch
    /// and writes it, unsynced. [`Sink::sync`] must follow before the next write. By default
    /// the whole commit (a redb commit cannot be split).
    fn write(&mut self, durable: bool, works: Vec<Work<Self>>) -> Result<(), Self::Error> {
        self.commit(durable, works)
    }

    /// The second half of [`Sink::commit`]: syncs what [`Sink::write`] wrote if `durable`, and
    /// ends the commit. By default nothing (the write committed).
    fn sync(&mut self, _durable: bool) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A redb database as a sink: one write transaction per batch.
pub struct RedbSink(pub Arc<Database>);

impl Sink for RedbSink {
    type Batch = WriteTransaction;
    type Error = redb::Error;

    fn commit(&mut self, durable: bool, works: Vec<Work<Self>>) -> Result<(), redb::Error> {
        let mut tx = self.0.begin_write()?;
        tx.set_durability(if durable { Durability::Immediate } else { Durability::None })?;
        for work in works {
            work(&mut tx)?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// The message of a caught panic.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => text.to_string(),
        (None, Some(text)) => text.clone(),
        (None, None) => "(no message)".to_string(),
    }
}

/// One unit of work for the writer.
pub struct Job<S: Sink> {
    /// True when the job's completion must wait for an fsync.
    pub durable: bool,
    /// The changes.
    pub work: Work<S>,
    /// Told the outcome.
    pub done: Completion,
}

/// What the writer has done since it started (for STATUS and benchmarks).
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Durable (fsync'd) commits.
    pub durable_commits: AtomicU64,
    /// Jobs in durable commits.
    pub durable_jobs: AtomicU64,
    /// Volatile commits.
    pub volatile_commits: AtomicU64,
    /// Jobs in volatile commits.
    pub volatile_jobs: AtomicU64,
    /// Time spent in durable commits, fsync included, in microseconds.
    pub durable_us: AtomicU64,
    /// Time spent in volatile commits, in microseconds.
    pub volatile_us: AtomicU64,
}

impl WriterStats {
    fn count(&self, durable: bool, jobs: usize, elapsed: std::time::Duration) {
        let (commits, counted, time) = if durable {
            (&self.durable_commits, &self.durable_jobs, &self.durable_us)
        } else {
            (&self.volatile_commits, &self.volatile_jobs, &self.volatile_us)
        };
        commits.fetch_add(1, Ordering::Relaxed);
        counted.fetch_add(jobs as u64, Ordering::Relaxed);
        time.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// One line: commits, jobs per commit and time per commit of both kinds.
    pub fn summary(&self) -> String {
        let line = |commits: &AtomicU64, jobs: &AtomicU64, us: &AtomicU64| {
            let commits = commits.load(Ordering::Relaxed);
            let per =
                |total: &AtomicU64| total.load(Ordering::Relaxed) as f64 / commits.max(1) as f64;
            format!("{commits} ({:.1} jobs, {:.0} us each)", per(jobs), per(us))
        };
        format!(
            "durable commits {}, volatile commits {}",
            line(&self.durable_commits, &self.durable_jobs, &self.durable_us),
            line(&self.volatile_commits, &self.volatile_jobs, &self.volatile_us)
        )
    }
}

/// A handle to submit jobs; cheap to clone.
pub struct Writer<S: Sink> {
    jobs: mpsc::UnboundedSender<Job<S>>,
    /// The number of the commit in progress (from 1); 0 while none runs, or when the writer
    /// runs as a task (never watched).
    in_commit: Arc<AtomicU64>,
    failed: Arc<AtomicBool>,
    /// Why, once `failed`.
    failure: Arc<Mutex<Option<String>>>,
    stats: Arc<WriterStats>,
    executor: Executor,
}

impl<S: Sink> Clone for Writer<S> {
    fn clone(&self) -> Self {
        Writer {
            jobs: self.jobs.clone(),
            in_commit: self.in_commit.clone(),
            failed: self.failed.clone(),
            failure: self.failure.clone(),
            stats: self.stats.clone(),
            executor: self.executor,
        }
    }
}

impl<S: Sink> Writer<S> {
    /// Starts the writer loop over `sink` (`name` names its thread); with `checkpoint_every`,
    /// every that many commits is durable even if none of its jobs asks for it.
    pub fn start(
        sink: S,
        executor: Executor,
        name: &str,
        checkpoint_every: Option<u64>,
    ) -> Writer<S> {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job<S>>();
        let failed = Arc::new(AtomicBool::new(false));
        let failure = Arc::new(Mutex::new(None));
        let stats = Arc::new(WriterStats::default());
        let in_commit = Arc::new(AtomicU64::new(0));
        let mut batcher = Batcher {
            sink,
            catch_panics: executor == Executor::Thread,
            in_commit: (executor == Executor::Thread).then(|| in_commit.clone()),
            failed: failed.clone(),
            failure: failure.clone(),
            stats: stats.clone(),
            checkpoint_every,
            commits: 0,
        };
        match executor {
            Executor::Thread => {
                std::thread::Builder::new()
                    .name(format!("{name}-writer"))
                    .spawn(move || {
                        while let Some(first) = queue.blocking_recv() {
                            let batch = drain(first, &mut queue);
                            let durable = batcher.durable(&batch);
                            if !batcher.commit(batch, durable) {
                                break;
                            }
                        }
                    })
                    .expect("spawn the writer thread");
            }
            Executor::Task { sync_delay } => {
                tokio::spawn(async move {
                    while let Some(first) = queue.recv().await {
                        let mut batch = drain(first, &mut queue);
                        let durable = batcher.durable(&batch);
                        let running = if sync_delay.is_zero() || !durable {
                            batcher.commit(batch, durable)
                        } else if S::SPLITS {
                            // Written, then the fsync's time, then synced: a crash meanwhile
                            // finds the batch written and not synced, perhaps torn, as a power
                            // cut during an fsync does (before 2026-12-07 the wait came first,
                            // and a crash lost the WAL's batch whole; found by a review of the
                            // harness). Jobs that arrive meanwhile form the next batch.
                            let Some(written) = batcher.write(batch, durable) else { break };
                            tokio::time::sleep(sync_delay).await;
                            batcher.sync(written, durable)
                        } else {
                            // The fsync's time, then the commit, which a crash meanwhile loses
                            // whole. Jobs that arrived during the "fsync" join this batch.
                            tokio::time::sleep(sync_delay).await;
                            if let Ok(more) = queue.try_recv() {
                                batch.extend(drain(more, &mut queue));
                            }
                            batcher.commit(batch, durable)
                        };
                        if !running {
                            break;
                        }
                    }
                });
            }
        }
        Writer { jobs, in_commit, failed, failure, stats, executor }
    }

    /// Which commit is in progress, by number, if one is (a writer on a thread only): a
    /// watchdog that sees the same number for long knows the writer is stuck in it.
    pub fn commit_in_progress(&self) -> Option<u64> {
        Some(self.in_commit.load(Ordering::Acquire)).filter(|commit| *commit != 0)
    }

    /// What a watchdog reads [`Writer::commit_in_progress`] from without keeping the writer
    /// alive (gone once the writer's thread ended).
    pub fn progress(&self) -> std::sync::Weak<AtomicU64> {
        Arc::downgrade(&self.in_commit)
    }

    /// Where the writer runs; other blocking work of the same store runs likewise
    /// ([`Executor::run_blocking`]).
    pub fn executor(&self) -> Executor {
        self.executor
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// True once a commit failed (the node must stop).
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// The error of the commit that failed, once one has.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().expect("failure lock").clone()
    }

    /// Queues a job; fails at once if the writer has stopped.
    pub fn submit(&self, job: Job<S>) -> io::Result<()> {
        if self.has_failed() {
            return Err(stopped());
        }
        self.jobs.send(job).map_err(|_| stopped())
    }

    /// Runs `work` in the next batch and returns its result once committed.
    pub async fn run<T, F>(&self, durable: bool, work: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut S::Batch) -> Result<T, S::Error> + Send + 'static,
    {
        let slot = Arc::new(Mutex::new(None));
        let filled = slot.clone();
        let (tell, told) = oneshot::channel();
        self.submit(Job {
            durable,
            work: Box::new(move |tx| {
                let value = work(tx)?;
                *filled.lock().expect("writer slot") = Some(value);
                Ok(())
            }),
            done: Box::new(move |result| {
                let _ = tell.send(result);
            }),
        })?;
        told.await.map_err(|_| stopped())??;
        let value = slot.lock().expect("writer slot").take();
        value.ok_or_else(stopped)
    }
}

fn stopped() -> io::Error {
    io::Error::other("the storage writer has stopped after a failed commit")
}

fn drain<S: Sink>(first: Job<S>, queue: &mut mpsc::UnboundedReceiver<Job<S>>) -> Vec<Job<S>> {
    let mut batch = vec![first];
    while batch.len() < WRITER_BATCH_JOBS_MAX {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    batch
}

/// The writer loop's state.
struct Batcher<S: Sink> {
    sink: S,
    /// Catch a panic in a commit as a failure of the writer (on a thread of its own; in the
    /// simulation a panic stops the run instead).
    catch_panics: bool,
    /// Where the number of the commit in progress is shown (`Writer::in_commit`), when watched.
    in_commit: Option<Arc<AtomicU64>>,
    failed: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<String>>>,
    stats: Arc<WriterStats>,
    checkpoint_every: Option<u64>,
    commits: u64,
}

impl<S: Sink> Batcher<S> {
    /// Whether `batch` must be committed durably.
    fn durable(&self, batch: &[Job<S>]) -> bool {
        let checkpoint =
            self.checkpoint_every.is_some_and(|every| (self.commits + 1).is_multiple_of(every));
        checkpoint || batch.iter().any(|job| job.durable)
    }

    /// Records the writer's failure: every later job fails, and the store reports `why`.
    fn fail(&self, why: String) {
        tracing::error!(%why, "storage commit failed; the node must stop");
        *self.failure.lock().expect("failure lock") = Some(why);
        self.failed.store(true, Ordering::SeqCst);
    }

    /// Writes a batch without syncing it ([`Sink::write`]; a task's writer only, which lets a
    /// panic stop the run); None when the writer must stop (the jobs were told).
    fn write(&mut self, jobs: Vec<Job<S>>, durable: bool) -> Option<Written> {
        assert!(!self.catch_panics, "a writer on a thread commits whole");
        let jobs = self.unless_failed(jobs)?;
        self.commits += 1;
        let started = std::time::Instant::now();
        let (works, completions): (Vec<_>, Vec<_>) =
            jobs.into_iter().map(|job| (job.work, job.done)).unzip();
        match self.sink.write(durable, works) {
            Ok(()) => Some(Written { completions, started }),
            Err(error) => {
                self.failed_commit(error.to_string(), completions);
                None
            }
        }
    }

    /// Syncs a batch [`Batcher::write`] wrote ([`Sink::sync`]) and tells its jobs; false when
    /// the writer must stop.
    fn sync(&mut self, written: Written, durable: bool) -> bool {
        let Written { completions, started } = written;
        let result = self.sink.sync(durable);
        self.stats.count(durable, completions.len(), started.elapsed());
        self.tell(result, completions)
    }

    /// Tells a batch's jobs how its commit ended; false (the writer stops) if it failed.
    fn tell(&self, result: Result<(), S::Error>, completions: Vec<Completion>) -> bool {
        match result {
            Ok(()) => {
                for done in completions {
                    done(Ok(()));
                }
                true
            }
            Err(error) => {
                self.failed_commit(error.to_string(), completions);
                false
            }
        }
    }

    /// A commit failed: the writer stops, and the batch's jobs are told.
    fn failed_commit(&self, error: String, completions: Vec<Completion>) {
        self.fail(error.clone());
        for done in completions {
            done(Err(io::Error::other(format!("storage commit failed: {error}"))));
        }
    }

    /// The jobs, unless the writer has failed (then they are told so, and None).
    fn unless_failed(&self, jobs: Vec<Job<S>>) -> Option<Vec<Job<S>>> {
        if !self.failed.load(Ordering::SeqCst) {
            return Some(jobs);
        }
        for job in jobs {
            (job.done)(Err(stopped()));
        }
        None
    }

    /// Commits a batch in one transaction; false when the writer must stop.
    fn commit(&mut self, jobs: Vec<Job<S>>, durable: bool) -> bool {
        let Some(jobs) = self.unless_failed(jobs) else { return false };
        self.commits += 1;
        let started = std::time::Instant::now();
        if let Some(in_commit) = &self.in_commit {
            in_commit.store(self.commits, Ordering::Release);
            if durable {
                stall_if_asked();
            }
        }
        let count = jobs.len();
        let (works, completions): (Vec<_>, Vec<_>) =
            jobs.into_iter().map(|job| (job.work, job.done)).unzip();
        // A panic in a job (an assertion of the store's invariants) is a failure like a commit
        // error: recorded, so that the node stops, instead of a dead thread that the store's
        // users learn of only at their next submit (a review found it, 2026-12-05). Caught
        // here, with the jobs' completions still held, so that the writer is failed before
        // any job hears of it (caught around this call, the unwinding dropped them first, and
        // a caller could see its job fail while the writer did not look failed yet). In `kvd`
        // a panic hook aborts the process before this catch runs (`server::cli`), the same
        // fail-stop; this path serves the library's other users and its tests.
        let result = if self.catch_panics {
            match std::panic::catch_unwind(AssertUnwindSafe(|| self.sink.commit(durable, works))) {
                Ok(result) => result,
                Err(panic) => {
                    let why = format!("the writer panicked: {}", panic_text(&*panic));
                    self.fail(why.clone());
                    for done in completions {
                        done(Err(io::Error::other(why.clone())));
                    }
                    return false;
                }
            }
        } else {
            self.sink.commit(durable, works)
        };
        self.stats.count(durable, count, started.elapsed());
        if let Some(in_commit) = &self.in_commit {
            in_commit.store(0, Ordering::Release);
        }
        self.tell(result, completions)
    }
}

/// A batch written by [`Batcher::write`], waiting for [`Batcher::sync`].
struct Written {
    completions: Vec<Completion>,
    started: std::time::Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that records what its commits wrote, and fails its `fail_at`-th commit.
    struct TestSink {
        committed: Arc<Mutex<Vec<u32>>>,
        commits: usize,
        fail_at: usize,
    }

    impl Sink for TestSink {
        type Batch = Vec<u32>;
        type Error = String;

        fn commit(&mut self, _durable: bool, works: Vec<Work<Self>>) -> Result<(), String> {
            self.commits += 1;
            let mut batch = Vec::new();
            for work in works {
                work(&mut batch)?;
            }
            if self.commits == self.fail_at {
                return Err("fsync: Input/output error".into());
            }
            self.committed.lock().expect("committed").extend(batch);
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failed_commit_fails_its_jobs_and_stops_the_writer_for_good() {
        let committed = Arc::new(Mutex::new(Vec::new()));
        let sink = TestSink { committed: committed.clone(), commits: 0, fail_at: 2 };
        let writer = Writer::start(sink, Executor::Thread, "test", None);
        let write = |n: u32| {
            move |batch: &mut Vec<u32>| -> Result<(), String> {
                batch.push(n);
                Ok(())
            }
        };
        writer.run(true, write(1)).await.expect("the first commit succeeds");
        assert!(!writer.has_failed());
        let error = writer.run(true, write(2)).await.expect_err("the second commit fails");
        assert!(error.to_string().contains("Input/output error"), "{error}");
        assert!(writer.has_failed());
        assert_eq!(writer.failure().as_deref(), Some("fsync: Input/output error"), "why");
        // Fail-stop: no later job is tried, durable or not (retrying after a failed fsync
        // could acknowledge writes the kernel already dropped).
        assert!(writer.run(true, write(3)).await.is_err());
        assert!(writer.run(false, write(4)).await.is_err());
        assert_eq!(*committed.lock().expect("committed"), vec![1]);
    }

    #[tokio::test]
    async fn a_panicking_job_is_a_failure_of_the_writer() {
        let committed = Arc::new(Mutex::new(Vec::new()));
        let sink = TestSink { committed: committed.clone(), commits: 0, fail_at: 0 };
        let writer = Writer::start(sink, Executor::Thread, "test", None);
        let panicking = |_: &mut Vec<u32>| -> Result<(), String> { panic!("log hole in s0") };
        assert!(writer.run(true, panicking).await.is_err(), "its job fails");
        assert!(writer.has_failed(), "the writer is failed, not silently gone");
        let why = writer.failure().expect("a reason");
        assert!(why.contains("panicked") && why.contains("log hole in s0"), "{why}");
        assert!(writer.run(false, |_: &mut Vec<u32>| Ok(())).await.is_err());
    }

    #[tokio::test]
    async fn the_commit_in_progress_is_shown_until_it_ends() {
        let sink = TestSink { committed: Arc::new(Mutex::new(Vec::new())), commits: 0, fail_at: 0 };
        let writer = Writer::start(sink, Executor::Thread, "test", None);
        assert_eq!(writer.commit_in_progress(), None, "idle");
        let (entered, inside) = oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let blocking = writer.clone();
        let commit = tokio::spawn(async move {
            blocking
                .run(true, move |_: &mut Vec<u32>| -> Result<(), String> {
                    entered.send(()).expect("the test waits");
                    released.recv().expect("the test releases");
                    Ok(())
                })
                .await
        });
        inside.await.expect("the commit started");
        assert_eq!(writer.commit_in_progress(), Some(1), "the first commit, in progress");
        release.send(()).expect("the commit waits");
        commit.await.expect("joined").expect("committed");
        assert_eq!(writer.commit_in_progress(), None, "done");
        let progress = writer.progress();
        drop(writer);
        for _ in 0..1000 {
            if progress.upgrade().is_none() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        panic!("the writer's thread kept its progress after the writer was dropped");
    }
}
