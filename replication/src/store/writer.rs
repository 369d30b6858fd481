//! The node's one redb writer: every change to the node's database goes through it.
//!
//! redb runs one write transaction at a time, and a durable commit costs an fsync. All shards of
//! a node share one database, so the writer takes every job queued since its last commit and
//! commits them together: one fsync covers the log appends of every shard (group commit). While
//! an fsync runs, new jobs queue up and form the next batch, so batches grow with load.
//!
//! A batch commits in two transactions, in this order:
//!
//! 1. *volatile* jobs (state machine applies) with `Durability::None`: their durability comes
//!    from the log, which is replayed from the applied index after a crash; redb makes them
//!    durable with the next durable commit anyway;
//! 2. *durable* jobs (log appends, votes, truncation, purge, snapshots) with
//!    `Durability::Immediate`, completed only after the fsync. Durable jobs run in the order
//!    they were submitted (openraft requires its log and vote writes to be serialized).
//!
//! A volatile job never depends on a durable job of the same batch: applies read no log table.
//!
//! If a commit fails the database is in an unknown state: every job of the batch fails, the
//! writer stops, and every later submission fails. The node must then stop (fail-stop; retrying
//! an fsync after an error is unsafe).
//!
//! Where the writer runs is the [`Executor`] seam: a dedicated OS thread in production (fsync
//! blocks), or an async task inline in the simulation (no blocking threads there; the simulated
//! disk never blocks).

use std::io;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;

use redb::Database;
use redb::Durability;
use redb::WriteTransaction;
use tokio::sync::mpsc;
use tokio::sync::oneshot;

/// Jobs taken into one batch at most.
pub const WRITER_BATCH_JOBS_MAX: usize = 4096;

/// Where the writer loop runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Executor {
    /// A dedicated OS thread (production: fsync blocks).
    Thread,
    /// A task on the current tokio runtime, calling redb inline (the simulation, whose disk
    /// never blocks). `sync_delay` is how long a durable commit takes in (simulated) time, as an
    /// fsync does on a real disk: writes queue up meanwhile, and a crash during it loses the
    /// batch, as a power cut during an fsync does.
    Task {
        /// Simulated duration of an fsync.
        sync_delay: std::time::Duration,
    },
}

/// Called with the commit's result once the job's batch committed (or failed).
pub type Completion = Box<dyn FnOnce(io::Result<()>) + Send>;
/// The job's changes, made inside the batch's write transaction.
pub type Work = Box<dyn FnOnce(&WriteTransaction) -> Result<(), redb::Error> + Send>;

/// One unit of work for the writer.
pub struct Job {
    /// True when the job's completion must wait for an fsync.
    pub durable: bool,
    /// The changes.
    pub work: Work,
    /// Told the outcome.
    pub done: Completion,
}

/// A handle to submit jobs; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
    failed: Arc<AtomicBool>,
}

impl Writer {
    /// Starts the writer loop over `db`.
    pub fn start(db: Arc<Database>, executor: Executor) -> Writer {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let failed = Arc::new(AtomicBool::new(false));
        let loop_failed = failed.clone();
        match executor {
            Executor::Thread => {
                std::thread::Builder::new()
                    .name("redb-writer".into())
                    .spawn(move || {
                        while let Some(first) = queue.blocking_recv() {
                            let batch = drain(first, &mut queue);
                            if !run_batch(&db, batch, &loop_failed) {
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
                        if !sync_delay.is_zero() && batch.iter().any(|job| job.durable) {
                            tokio::time::sleep(sync_delay).await;
                            // Jobs that arrived during the "fsync" join this batch.
                            if let Some(more) = queue.try_recv().ok() {
                                batch.extend(drain(more, &mut queue));
                            }
                        }
                        if !run_batch(&db, batch, &loop_failed) {
                            break;
                        }
                    }
                });
            }
        }
        Writer { jobs, failed }
    }

    /// True once a commit failed (the node must stop).
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Queues a job; fails at once if the writer has stopped.
    pub fn submit(&self, job: Job) -> io::Result<()> {
        if self.has_failed() {
            return Err(stopped());
        }
        self.jobs.send(job).map_err(|_| stopped())
    }

    /// Runs `work` in the next batch and returns its result once committed.
    pub async fn run<T, F>(&self, durable: bool, work: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, redb::Error> + Send + 'static,
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

fn drain(first: Job, queue: &mut mpsc::UnboundedReceiver<Job>) -> Vec<Job> {
    let mut batch = vec![first];
    while batch.len() < WRITER_BATCH_JOBS_MAX {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    batch
}

/// Commits a batch; false when the writer must stop.
fn run_batch(db: &Database, batch: Vec<Job>, failed: &AtomicBool) -> bool {
    let (durable, volatile): (Vec<Job>, Vec<Job>) = batch.into_iter().partition(|job| job.durable);
    commit_group(db, volatile, Durability::None, failed)
        && commit_group(db, durable, Durability::Immediate, failed)
}

fn commit_group(
    db: &Database,
    jobs: Vec<Job>,
    durability: Durability,
    failed: &AtomicBool,
) -> bool {
    if jobs.is_empty() {
        return true;
    }
    if failed.load(Ordering::SeqCst) {
        for job in jobs {
            (job.done)(Err(stopped()));
        }
        return false;
    }
    let mut completions = Vec::with_capacity(jobs.len());
    let result = (|| -> Result<(), redb::Error> {
        let mut tx = db.begin_write()?;
        tx.set_durability(durability)?;
        let mut pending = jobs.into_iter();
        while let Some(job) = pending.next() {
            let outcome = (job.work)(&tx);
            completions.push(job.done);
            if let Err(error) = outcome {
                // The batch is lost: the jobs not run yet fail with it.
                completions.extend(pending.map(|job| job.done));
                return Err(error);
            }
        }
        tx.commit()?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            for done in completions {
                done(Ok(()));
            }
            true
        }
        Err(error) => {
            tracing::error!(%error, "storage commit failed; the node must stop");
            failed.store(true, Ordering::SeqCst);
            for done in completions {
                done(Err(io::Error::other(format!("storage commit failed: {error}"))));
            }
            false
        }
    }
}
