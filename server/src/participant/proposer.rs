//! Group commit of a shard leader's proposals: commands proposed while the shard's Raft log
//! is busy wait together and go into the log as one entry ([`Command::Batch`]).
//!
//! ```text
//!   propose(c) ─► queue ─► nothing in flight? ─► spawn a drainer
//!   drainer: loop { take the queue (bounded) ─► client_write(one command, or Batch) ─►
//!                   answer each proposer its own Applied }  until the queue is empty
//! ```
//!
//! At 64 clients a leader gets a proposal every few tens of microseconds; each one as an entry
//! of its own costs a round through openraft's core, an entry to encode, send, store, decode and
//! apply on every replica, and a response. One entry for what arrived meanwhile costs those
//! once. A proposal that finds the log idle is written at once, alone (no wait for company).
//!
//! Invariants:
//! - Every proposer is answered exactly once: with its own command's [`Applied`], or with the
//!   batch's failure (not proposed: none of it will apply; unknown: all of it may).
//! - At most [`PROPOSALS_IN_FLIGHT_MAX`] entries of this shard are in flight from here, and
//!   the queue is drained as long as it is not empty (a drainer stops only on an empty queue,
//!   deciding so under the queue's lock).
//! - Commands keep their queue order inside an entry and across entries of one drainer, so
//!   a command applies after every command queued before it in the same drainer.
//!   [`Proposer::submit`] queues before it returns: a caller that submits under a lock of its
//!   own orders its command with every other command submitted under that lock (a prepare and
//!   phase 2 at a participant, `participant::shard`).
//! - A batch never holds another batch.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use openraft::error::ClientWriteError;
use openraft::error::RaftError;
use tokio::sync::oneshot;
use txn::command::Applied;
use txn::command::Command;
use txn::types::NodeId;

use replication::types::Raft;

/// Entries a shard leader has in flight from its proposer at most. One keeps batches largest;
/// openraft pipelines what the log writer and replication get meanwhile. One drainer also
/// makes the queue's order the log's order, which [`Proposer::submit`]'s callers rely on: more
/// would need the order kept across drainers.
pub const PROPOSALS_IN_FLIGHT_MAX: usize = 1;
/// Commands in one entry at most.
pub const BATCH_COMMANDS_MAX: usize = 128;
/// Payload bytes (keys and values) in one entry at most; a single larger command goes alone.
pub const BATCH_BYTES_MAX: usize = 1 << 20;

/// Why a proposal failed.
#[derive(Clone, Debug)]
pub enum ProposeError {
    /// Rejected before it was appended: it will never apply.
    NotProposed(Option<NodeId>),
    /// Appended, then the outcome was lost (leader change, timeout): it may still apply.
    Unknown(String),
}

type Answer = oneshot::Sender<Result<Applied, ProposeError>>;

/// The proposals of one shard replica (used while it leads).
pub struct Proposer {
    raft: Raft,
    /// How long one entry may take to apply before its proposers hear "unknown".
    deadline: Duration,
    queue: Mutex<Queue>,
    /// Entries written, for STATUS.
    entries: AtomicU64,
    /// Commands they carried, for STATUS.
    commands: AtomicU64,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<(Command, Answer)>,
    in_flight: usize,
}

impl Proposer {
    /// The proposer of `raft`'s group; an entry not applied within `deadline` is unknown.
    pub fn new(raft: Raft, deadline: Duration) -> Arc<Proposer> {
        Arc::new(Proposer {
            raft,
            deadline,
            queue: Mutex::new(Queue::default()),
            entries: AtomicU64::new(0),
            commands: AtomicU64::new(0),
        })
    }

    /// Entries written so far, and the commands they carried.
    pub fn written(&self) -> (u64, u64) {
        (self.entries.load(Ordering::Relaxed), self.commands.load(Ordering::Relaxed))
    }

    /// Proposes `command` and waits until it applied (its [`Applied`]) or failed.
    pub async fn propose(self: &Arc<Self>, command: Command) -> Result<Applied, ProposeError> {
        self.submit(command).await
    }

    /// Queues `command` now, before this returns (so a caller holding a lock orders its
    /// proposal with that lock), and gives the wait for its outcome.
    pub fn submit(
        self: &Arc<Self>,
        command: Command,
    ) -> impl Future<Output = Result<Applied, ProposeError>> + use<> {
        assert!(!matches!(command, Command::Batch(_)), "batches are built here, not proposed");
        let (answer, answered) = oneshot::channel();
        let start_drainer = {
            let mut queue = self.queue.lock().expect("proposer queue lock");
            queue.waiting.push_back((command, answer));
            let start = queue.in_flight < PROPOSALS_IN_FLIGHT_MAX;
            if start {
                queue.in_flight += 1;
            }
            start
        };
        if start_drainer {
            // A task of its own: the drainer must outlive a proposer that stops waiting.
            let proposer = self.clone();
            tokio::spawn(async move { proposer.drain().await });
        }
        // The drainer answers within `deadline` of writing the entry. The wait in the queue
        // before it is usually one entry in flight, but can be more (a queue longer than one
        // batch, entries timing out one after another); past twice the deadline the proposer
        // hears "unknown", as it would of an entry that timed out.
        let wait = self.deadline * 2;
        async move {
            match tokio::time::timeout(wait, answered).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(ProposeError::Unknown("the proposer stopped".into())),
                Err(_) => Err(ProposeError::Unknown(format!("not applied within {wait:?}"))),
            }
        }
    }

    /// Writes batches until the queue is empty.
    async fn drain(&self) {
        loop {
            let batch = {
                let mut queue = self.queue.lock().expect("proposer queue lock");
                if queue.waiting.is_empty() {
                    queue.in_flight -= 1;
                    return;
                }
                take_batch(&mut queue.waiting)
            };
            self.write(batch).await;
        }
    }

    /// One entry for `batch`; answers each of its proposers.
    async fn write(&self, mut batch: Vec<(Command, Answer)>) {
        self.entries.fetch_add(1, Ordering::Relaxed);
        self.commands.fetch_add(batch.len() as u64, Ordering::Relaxed);
        if batch.len() == 1 {
            let (command, answer) = batch.pop().expect("one command");
            let _ = answer.send(self.write_one(command).await);
            return;
        }
        let (commands, answers): (Vec<Command>, Vec<Answer>) = batch.into_iter().unzip();
        let count = commands.len();
        match self.write_one(Command::Batch(commands)).await {
            Ok(Applied::Batch(results)) => {
                assert_eq!(results.len(), count, "one result per command of a batch");
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(Ok(result));
                }
            }
            Ok(other) => panic!("a batch applied as {other:?}"),
            Err(error) => {
                for answer in answers {
                    let _ = answer.send(Err(error.clone()));
                }
            }
        }
    }

    async fn write_one(&self, command: Command) -> Result<Applied, ProposeError> {
        match tokio::time::timeout(self.deadline, self.raft.client_write(command)).await {
            Ok(Ok(response)) => Ok(response.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => {
                Err(ProposeError::NotProposed(forward.leader_id))
            }
            Ok(Err(error)) => Err(ProposeError::Unknown(error.to_string())),
            Err(_) => Err(ProposeError::Unknown(format!("not applied within {:?}", self.deadline))),
        }
    }
}

/// The next entry's commands: the oldest waiting, then more in order while the entry stays
/// within [`BATCH_COMMANDS_MAX`] and [`BATCH_BYTES_MAX`].
fn take_batch(waiting: &mut VecDeque<(Command, Answer)>) -> Vec<(Command, Answer)> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while let Some((command, _)) = waiting.front() {
        let size = command.payload_bytes();
        if !batch.is_empty()
            && (batch.len() == BATCH_COMMANDS_MAX || bytes + size > BATCH_BYTES_MAX)
        {
            break;
        }
        bytes += size;
        batch.push(waiting.pop_front().expect("a front"));
    }
    batch
}

#[cfg(test)]
mod tests {
    use txn::command::Write;
    use txn::types::Timestamp;
    use txn::types::TxnId;

    use super::*;

    fn put(seq: u64, bytes: usize) -> (Command, Answer) {
        let txn = TxnId { start_ts: Timestamp(seq), coordinator: 1, incarnation: 1, seq };
        let write = Write { key: vec![b'k'], value: Some(vec![0; bytes.saturating_sub(1)]) };
        let command = Command::CommitOnePhase {
            txn,
            writes: vec![write],
            commit_ts: Timestamp(seq),
            lock_term: 1,
        };
        (command, oneshot::channel().0)
    }

    fn sizes(batch: &[(Command, Answer)]) -> Vec<usize> {
        batch.iter().map(|(command, _)| command.payload_bytes()).collect()
    }

    #[test]
    fn batches_stop_at_the_command_and_byte_limits_and_keep_order() {
        let mut waiting: VecDeque<_> =
            (0..BATCH_COMMANDS_MAX as u64 + 3).map(|i| put(i, 10)).collect();
        let first = take_batch(&mut waiting);
        assert_eq!(first.len(), BATCH_COMMANDS_MAX);
        assert_eq!(take_batch(&mut waiting).len(), 3);
        assert!(take_batch(&mut waiting).is_empty());

        let half = BATCH_BYTES_MAX / 2;
        let mut waiting: VecDeque<_> = [half, half, 1, BATCH_BYTES_MAX * 2, 5]
            .into_iter()
            .zip(1..)
            .map(|(b, i)| put(i, b))
            .collect();
        assert_eq!(sizes(&take_batch(&mut waiting)), vec![half, half]);
        // A command over the limit goes alone, never split and never refused here.
        assert_eq!(sizes(&take_batch(&mut waiting)), vec![1]);
        assert_eq!(sizes(&take_batch(&mut waiting)), vec![BATCH_BYTES_MAX * 2]);
        assert_eq!(sizes(&take_batch(&mut waiting)), vec![5]);
    }
}
