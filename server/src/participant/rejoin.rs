//! Opening a replica's vote gate after a fresh start (`replication::vote_gate` says why).
//!
//! A replica that starts on a fresh data directory (the first start of a new cluster, or a
//! node whose disk was replaced) grants no vote until:
//!
//! 1. a majority of its shard's replicas *other than itself* ([`others_needed`]) answered
//!    `RaftState` with their term and last log id, all asked after this start;
//! 2. it has applied an entry at or above the largest last log id among them, durably
//!    (nothing to wait for if none of them holds anything past the initial membership: the
//!    cluster is new and nothing was ever committed);
//! 3. the gate's floor, the largest term among them, is stored durably.
//!
//! Until step 1 it takes no entries or snapshots, and from then on only from leaders of the
//! floor's term or later (`replication::vote_gate`): a deposed leader, whose term its lost disk
//! would have refused, must not commit with it.
//!
//! Meanwhile it does not campaign either (openraft's elections are switched off for the
//! group, and a leadership transfer to it is refused), since its own vote for itself is a vote
//! too. Then votes in terms above the floor are granted, and elections run, as usual.
//!
//! Why this is enough: an entry committed before the data was lost is on a majority; the
//! replicas that answered share one with it, which still holds it, so the largest last log id
//! is at or above it, and a log that reaches that id through a leader holds the entry too (log
//! matching, leader completeness). A term this node may have voted in before is at most the term of the
//! candidate it voted for, and of every node that voted with it; a majority of the others
//! includes one of those (with the candidate itself, they were a majority), so the floor is at
//! or above that term.
//!
//! The argument assumes that nothing the node sent before it lost its data arrives after the
//! others answered: true on a real network, where a restart takes far longer and the old
//! connections die with the process; with 3 replicas it needs nothing of the kind, since every
//! other replica must answer. The answers of replicas whose own gates are closed count (on a
//! new cluster all of them are); two lost disks are beyond what any protocol recovers.
//!
//! While it waits, the leader replicates to it afresh: openraft's `allow_log_reversion` (set in
//! `node::raft_config`) lets a leader that saw this replica's old log matched start over
//! instead of resending from there forever.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use replication::store::GateOpener;
use replication::types::LogId;
use tokio::time::Instant;
use txn::types::NodeId;

use crate::participant::Shard;
use crate::peer::message::PeerReply;
use crate::peer::message::PeerRequest;

/// How often a closed gate looks again (asks the replicas that have not answered, checks its
/// own log).
pub const REJOIN_POLL: Duration = Duration::from_millis(100);

/// How long the replica waits for answers before it says so in the log...
pub const WAIT_WARNING_AFTER: Duration = Duration::from_secs(10);
/// ...and how often it says so again.
pub const WAIT_WARNING_EVERY: Duration = Duration::from_secs(60);

/// How many of the shard's `replicas` other than this node must answer: a majority of the
/// replicas, not counting this one (its own log may be the one that was lost).
pub fn others_needed(replicas: usize) -> usize {
    let others = replicas.saturating_sub(1);
    others.min(replicas.div_ceil(2))
}

/// Runs until `shard`'s vote gate is open (see the module's protocol). `record` stores the
/// open gate durably before it opens.
pub async fn open_votes(shard: Arc<Shard>, record: GateOpener) {
    let ctx = shard.context().clone();
    let me = ctx.me;
    let replicas = ctx.topology.replicas(shard.id).to_vec();
    let others: Vec<NodeId> = replicas.iter().copied().filter(|id| *id != me).collect();
    let needed = others_needed(replicas.len());
    let deadline = Duration::from_millis(ctx.config.timing.rpc_ms);
    tracing::info!(shard = %shard.id, needed, "votes withheld until this replica has caught up");

    // 1. Term and last log id of a majority of the others.
    let mut answers: BTreeMap<NodeId, (u64, Option<LogId>)> = BTreeMap::new();
    let mut warn_at = Instant::now() + WAIT_WARNING_AFTER;
    let unanswered = |answers: &BTreeMap<NodeId, _>| -> Vec<NodeId> {
        others.iter().copied().filter(|node| !answers.contains_key(node)).collect()
    };
    while answers.len() < needed {
        for node in unanswered(&answers) {
            let request = PeerRequest::RaftState { shard: shard.id };
            if let Ok(PeerReply::RaftState { term, last_log, .. }) =
                ctx.peers.call(node, request, deadline).await
            {
                answers.insert(node, (term, last_log));
            }
        }
        if answers.len() < needed {
            if Instant::now() >= warn_at {
                // What an operator starting a new cluster one node at a time needs to know.
                let silent = unanswered(&answers);
                tracing::warn!(
                    shard = %shard.id, ?silent, needed,
                    "votes withheld: a replica on a fresh data directory votes only once a \
                     majority of the other replicas has answered (start them, or reach them)"
                );
                warn_at = Instant::now() + WAIT_WARNING_EVERY;
            }
            tokio::time::sleep(REJOIN_POLL).await;
        }
    }
    let floor = answers.values().map(|(term, _)| *term).max().unwrap_or(0);
    let target = answers.values().filter_map(|(_, last)| *last).max();
    // From now on it takes entries from leaders of the floor's term or later, not before
    // (`replication::vote_gate`: a deposed leader must not commit with it).
    shard.gate.learned(floor);

    // 2. This replica has applied, durably, at or past the largest of theirs. (Applied entries
    // are committed; the committed entry that matters is at or below both indexes.)
    if let Some(target) = target.filter(|target| target.index > 0) {
        tracing::info!(shard = %shard.id, %target, "catching up before voting");
        loop {
            let applied = shard.raft.metrics().borrow_watched().last_applied;
            if let Some(applied) = applied
                && applied >= target
                && shard.log.durable_through(applied.index.min(target.index))
            {
                break;
            }
            tokio::time::sleep(REJOIN_POLL).await;
        }
    }

    // 3. Durably open, then open.
    if let Err(error) = record(floor) {
        // The gate stays closed (safe); the next start tries again.
        tracing::error!(shard = %shard.id, %error, "cannot record the open vote gate");
        return;
    }
    shard.open_votes(floor);
    tracing::info!(shard = %shard.id, floor, "votes allowed: this replica has caught up");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_majority_of_the_replicas_without_this_one() {
        assert_eq!(others_needed(1), 0, "a lone replica asks nobody");
        assert_eq!(others_needed(2), 1);
        assert_eq!(others_needed(3), 2, "both others: one of them shares any majority");
        assert_eq!(others_needed(5), 3);
    }
}
