//! Phase 2 messages to one shard share a message: a coordinator has at most
//! [`FINALIZE_IN_FLIGHT_MAX`] Finalize messages in flight to a shard, and the phase 2 items it
//! queues for that shard meanwhile go together in the next one ([`PeerRequest::FinalizeMany`]).
//!
//! ```text
//!   finalize(shard, item) ─► the shard's queue ─► nothing in flight? ─► spawn a sender
//!   sender: loop { take the queue (bounded) ─► one Finalize, or FinalizeMany ─►
//!                  answer each item its own reply }  until the queue is empty
//! ```
//!
//! Under load a coordinator finishes a transaction every few tens of microseconds, and most
//! of them write at the same few shards; one message for what queued meanwhile costs one
//! request frame, one reply frame and one handler task at the participant instead of one each
//! per transaction. The participant proposes the items' commands together, so its proposer puts
//! them into one entry. An item that finds no message in flight goes at once, alone.
//!
//! Invariants:
//! - Every item is answered exactly once: with its own reply, or with the message's failure
//!   (a transport error or a reply for the whole message, such as `NotLeader`). Phase 2 is
//!   idempotent at the participant, so the caller retries any failure as it would a lone call.
//! - At most [`FINALIZE_IN_FLIGHT_MAX`] messages per shard are in flight from here, and a
//!   shard's queue is sent as long as it is not empty (a sender stops only on an empty queue,
//!   deciding so under the queue's lock).
//! - The queues are a `BTreeMap` (deterministic in the simulation); an empty queue is removed.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::oneshot;
use txn::types::ShardId;

use crate::context::Counters;
use crate::context::NodeContext;
use crate::peer::caller::CallError;
use crate::peer::message::FinalizeItem;
use crate::peer::message::PeerReply;
use crate::peer::message::PeerRequest;

/// Finalize messages a coordinator has in flight to one shard at most.
pub const FINALIZE_IN_FLIGHT_MAX: usize = 1;
/// Phase 2 items in one message at most.
pub const FINALIZE_ITEMS_MAX: usize = 256;

type Answer = oneshot::Sender<Result<PeerReply, CallError>>;

/// What one Finalize message carried, counted for STATUS.
#[derive(Debug, Default)]
pub struct FinalizeCounters {
    /// Finalize messages sent.
    pub messages: AtomicU64,
    /// Phase 2 items they carried.
    pub items: AtomicU64,
}

/// The coordinator's phase 2 messages, per participant shard.
pub struct Finalizer {
    ctx: Arc<NodeContext>,
    /// How long one message may wait for its reply.
    deadline: Duration,
    queues: Mutex<BTreeMap<ShardId, Queue>>,
    counters: FinalizeCounters,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<(FinalizeItem, Answer)>,
    in_flight: usize,
}

impl Finalizer {
    /// Sends through `ctx.peers`; a message not answered within `deadline` fails its items.
    pub fn new(ctx: Arc<NodeContext>, deadline: Duration) -> Arc<Finalizer> {
        Arc::new(Finalizer {
            ctx,
            deadline,
            queues: Mutex::new(BTreeMap::new()),
            counters: FinalizeCounters::default(),
        })
    }

    /// Messages sent and items carried so far.
    pub fn counters(&self) -> &FinalizeCounters {
        &self.counters
    }

    /// Phase 2 of `item` at `shard`: the participant's reply to it, or why none came.
    pub async fn finalize(
        self: &Arc<Self>,
        shard: ShardId,
        item: FinalizeItem,
    ) -> Result<PeerReply, CallError> {
        let (answer, answered) = oneshot::channel();
        let start_sender = {
            let mut queues = self.queues.lock().expect("finalizer queues lock");
            let queue = queues.entry(shard).or_default();
            queue.waiting.push_back((item, answer));
            let start = queue.in_flight < FINALIZE_IN_FLIGHT_MAX;
            if start {
                queue.in_flight += 1;
            }
            start
        };
        if start_sender {
            // A task of its own: the sender must outlive a caller that stops waiting.
            let finalizer = self.clone();
            tokio::spawn(async move { finalizer.send_all(shard).await });
        }
        match answered.await {
            Ok(result) => result,
            // The sender answers every item it takes; a dropped answer means the runtime
            // is shutting down.
            Err(_) => Err(CallError::Timeout(self.deadline)),
        }
    }

    /// Sends `shard`'s queue, message after message, until it is empty.
    async fn send_all(&self, shard: ShardId) {
        loop {
            let items = {
                let mut queues = self.queues.lock().expect("finalizer queues lock");
                let queue = queues.get_mut(&shard).expect("a sender's queue exists");
                if queue.waiting.is_empty() {
                    queue.in_flight -= 1;
                    if queue.in_flight == 0 {
                        queues.remove(&shard);
                    }
                    return;
                }
                let n = queue.waiting.len().min(FINALIZE_ITEMS_MAX);
                queue.waiting.drain(..n).collect::<Vec<_>>()
            };
            self.send(shard, items).await;
        }
    }

    /// One message for `items`; answers each of them.
    async fn send(&self, shard: ShardId, mut items: Vec<(FinalizeItem, Answer)>) {
        Counters::bump(&self.counters.messages);
        self.counters.items.fetch_add(items.len() as u64, Ordering::Relaxed);
        if items.len() == 1 {
            let (item, answer) = items.pop().expect("one item");
            let request = PeerRequest::Finalize {
                shard,
                txn: item.txn,
                decision: item.decision,
                prepared: item.prepared,
            };
            let reply = self.ctx.peers.call_shard(shard, request, self.deadline).await;
            let _ = answer.send(reply.map(|(_, reply)| reply));
            return;
        }
        let (items, answers): (Vec<FinalizeItem>, Vec<Answer>) = items.into_iter().unzip();
        let count = items.len();
        let request = PeerRequest::FinalizeMany { shard, items };
        match self.ctx.peers.call_shard(shard, request, self.deadline).await {
            Ok((_, PeerReply::Each(replies))) => {
                assert_eq!(replies.len(), count, "one reply per item of a FinalizeMany");
                for (answer, reply) in answers.into_iter().zip(replies) {
                    let _ = answer.send(Ok(reply));
                }
            }
            // A reply to the whole message (NotLeader once the hints ran out, Unavailable).
            Ok((_, reply)) => {
                for answer in answers {
                    let _ = answer.send(Ok(reply.clone()));
                }
            }
            Err(error) => {
                for answer in answers {
                    let _ = answer.send(Err(error.clone()));
                }
            }
        }
    }
}
