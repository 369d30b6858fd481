//! END: the commit protocol, run by the coordinator.
//!
//! ```text
//!   no writes            read-only prepare at every participant (confirm leader, release)
//!                        -> COMMITTED
//!   writes at home only  read-only prepares at the other participants, then
//!                        CommitOnePhase at home (one Raft entry: record + versions)
//!   writes at several    Prepare at every write participant, read-only prepare at the
//!                        others, all in parallel; all YES ->
//!                        Decide{COMMITTED at max(prepare_ts)} at home (compare-and-set)
//!                        -> answer the client -> Finalize at every participant -> Finish
//!                        any NO -> ABORTED -> Finalize(abort) at every participant
//! ```
//!
//! The client hears COMMITTED only once the decision is durable in the record (Raft-replicated
//! at home), so a coordinator that dies after answering cannot lose the commit: participants
//! learn it from the record. A coordinator that dies before deciding leaves the transaction to
//! the participants' resolvers, which decide ABORTED by the same compare-and-set; whoever
//! writes the record first wins, and everybody obeys the record.
//!
//! When the decision itself cannot be learned in time (the home shard unreachable), END
//! answers that the outcome is unknown, never a guess; `TxnStatus` settles it.

use std::collections::BTreeMap;

use futures::future::join_all;
use txn::command::AbortReason;
use txn::command::Decision;
use txn::types::ShardId;
use txn::types::Timestamp;
use txn::types::TxnId;

use crate::context::Counters;
use crate::coordinator::coordinator::Coordinator;
use crate::coordinator::coordinator::StatementError;
use crate::coordinator::txn_state::Outcome;
use crate::coordinator::txn_state::Status;
use crate::coordinator::txn_state::TxnState;
use crate::peer::caller::CallError;
use crate::peer::message::PeerReply;
use crate::peer::message::PeerRequest;
use crate::peer::message::PrepareRequest;

/// Attempts at phase 2 per participant before leaving it to that participant's resolver.
pub const PHASE2_ATTEMPTS_MAX: usize = 10;

/// A participant's vote.
enum Vote {
    Yes(Option<Timestamp>),
    No(AbortReason, String),
}

impl Coordinator {
    /// END: commits the transaction (or reports why it aborted). Idempotent.
    pub async fn commit(&self, txn: TxnId) -> Outcome {
        let entry = match self.entry(&txn) {
            Ok(entry) => entry,
            Err(error) => return Outcome::Unknown(error.to_string()),
        };
        let mut state = entry.state.lock().await;
        match &state.status {
            Status::Ended(outcome) => return outcome.clone(),
            Status::Aborted { reason, detail } => {
                let outcome = Outcome::Aborted { reason: *reason, detail: detail.clone() };
                state.status = Status::Ended(outcome.clone());
                return outcome;
            }
            Status::Active => {}
        }
        let outcome = self.run_commit(txn, &mut state).await;
        match &outcome {
            Outcome::Committed { .. } => Counters::bump(&self.ctx.counters.committed),
            Outcome::Aborted { .. } => Counters::bump(&self.ctx.counters.aborted),
            Outcome::Unknown(_) => {}
        }
        state.status = Status::Ended(outcome.clone());
        self.ctx.registry.end(txn);
        outcome
    }

    async fn run_commit(&self, txn: TxnId, state: &mut TxnState) -> Outcome {
        let writers: Vec<ShardId> = state
            .parts
            .iter()
            .filter(|(_, part)| !part.writes.is_empty())
            .map(|(shard, _)| *shard)
            .collect();
        let readers: Vec<ShardId> = state
            .parts
            .iter()
            .filter(|(_, part)| part.writes.is_empty())
            .map(|(shard, _)| *shard)
            .collect();
        if writers.is_empty() {
            return match self.prepare_all(txn, state, &readers).await {
                Ok(_) => Outcome::Committed { commit_ts: Timestamp::ZERO },
                Err((reason, detail)) => self.abort_after_votes(txn, state, &[], reason, detail),
            };
        }
        let home = state.home.expect("a transaction that wrote has a home");
        assert!(writers.contains(&home), "the home shard {home} is one of the writers {writers:?}");
        if writers.len() == 1 {
            if let Err((reason, detail)) = self.prepare_all(txn, state, &readers).await {
                return self.abort_after_votes(txn, state, &[], reason, detail);
            }
            return self.commit_one_phase(txn, state, home).await;
        }
        let everyone: Vec<ShardId> = state.parts.keys().copied().collect();
        let prepare_ts = match self.prepare_all(txn, state, &everyone).await {
            Ok(votes) => votes,
            Err((reason, detail)) => {
                return self.abort_after_votes(txn, state, &writers, reason, detail);
            }
        };
        let commit_ts = prepare_ts
            .values()
            .copied()
            .flatten()
            .max()
            .expect("write participants vote a timestamp");
        crate::failpoint::pause("before-decide").await;
        match self.decide(txn, home, Decision::Committed { commit_ts }).await {
            Ok(Decision::Committed { commit_ts }) => {
                crate::failpoint::pause("after-decide").await;
                self.spawn_phase2(txn, home, writers, Decision::Committed { commit_ts });
                Outcome::Committed { commit_ts }
            }
            Ok(Decision::Aborted { reason }) => {
                self.spawn_phase2(txn, home, writers, Decision::Aborted { reason });
                Outcome::Aborted {
                    reason,
                    detail: "the transaction was resolved as aborted before it could commit".into(),
                }
            }
            Err(why) => Outcome::Unknown(why),
        }
    }

    /// Sends Prepare (with each part's writes; none for read-only parts) to `shards` in
    /// parallel. All YES: the vote timestamps. Any NO or silence: why.
    async fn prepare_all(
        &self,
        txn: TxnId,
        state: &TxnState,
        shards: &[ShardId],
    ) -> Result<BTreeMap<ShardId, Option<Timestamp>>, (AbortReason, String)> {
        let home = state.home.unwrap_or(ShardId(0));
        let calls = shards.iter().map(|shard| {
            let part = &state.parts[shard];
            let request = PrepareRequest {
                shard: *shard,
                txn,
                home,
                lock_term: part.term,
                writes: part.write_list(),
                locks: part.locks.clone(),
            };
            let deadline = self.rpc_deadline();
            async move {
                let reply = self
                    .ctx
                    .peers
                    .call_shard(*shard, PeerRequest::Prepare(request), deadline)
                    .await;
                let vote = match reply {
                    Ok((_, PeerReply::Voted { prepare_ts })) => Vote::Yes(prepare_ts),
                    Ok((_, PeerReply::Aborted { reason, detail })) => Vote::No(reason, detail),
                    Ok((_, other)) => Vote::No(
                        AbortReason::Unavailable,
                        format!("{shard} could not prepare: {other:?}"),
                    ),
                    Err(CallError::Timeout(after)) => Vote::No(
                        AbortReason::Unavailable,
                        format!("{shard} did not vote within {after:?}"),
                    ),
                    Err(error) => Vote::No(AbortReason::Unavailable, error.to_string()),
                };
                (*shard, vote)
            }
        });
        let mut votes = BTreeMap::new();
        let mut refusal = None;
        for (shard, vote) in join_all(calls).await {
            match vote {
                Vote::Yes(ts) => {
                    votes.insert(shard, ts);
                }
                Vote::No(reason, detail) => {
                    refusal.get_or_insert((reason, detail));
                }
            }
        }
        match refusal {
            Some(why) => Err(why),
            None => Ok(votes),
        }
    }

    /// Aborts after a NO (or missing) vote: releases the locks of every participant; the
    /// `maybe_prepared` ones get a replicated Abort, since they may have prepared.
    fn abort_after_votes(
        &self,
        txn: TxnId,
        state: &TxnState,
        maybe_prepared: &[ShardId],
        reason: AbortReason,
        detail: String,
    ) -> Outcome {
        let decision = Decision::Aborted { reason };
        for shard in state.parts.keys().copied() {
            let prepared = maybe_prepared.contains(&shard);
            let ctx = self.ctx.clone();
            let deadline = self.rpc_deadline();
            tokio::spawn(async move {
                let request = PeerRequest::Finalize { shard, txn, decision, prepared };
                let _ = ctx.peers.call_shard(shard, request, deadline).await;
            });
        }
        Outcome::Aborted { reason, detail }
    }

    /// The whole commit at the home shard, the only writer.
    async fn commit_one_phase(&self, txn: TxnId, state: &TxnState, home: ShardId) -> Outcome {
        let part = &state.parts[&home];
        let request = PrepareRequest {
            shard: home,
            txn,
            home,
            lock_term: part.term,
            writes: part.write_list(),
            locks: part.locks.clone(),
        };
        let reply = self
            .ctx
            .peers
            .call_shard(home, PeerRequest::CommitOnePhase(request), self.rpc_deadline())
            .await;
        // Only COMMITTED is trusted as it stands. A NO may answer a retry: the first attempt
        // timed out at a leader that was then deposed, its entry committed all the same, and
        // the retry at the new leader found the locks gone. So a NO, like silence, is settled
        // by the record: a compare-and-set to ABORTED at home, ordered after any CommitOnePhase
        // entry that can still commit, answers exactly.
        let (reason, detail) = match reply {
            Ok((_, PeerReply::Committed { commit_ts })) => return Outcome::Committed { commit_ts },
            Ok((_, PeerReply::Aborted { reason, detail })) => (reason, detail),
            Ok((_, other)) => (AbortReason::Unavailable, format!("{home} answered {other:?}")),
            Err(error) => (AbortReason::Unavailable, error.to_string()),
        };
        match self.decide(txn, home, Decision::Aborted { reason }).await {
            Ok(Decision::Committed { commit_ts }) => {
                tracing::debug!(%txn, %detail, "a one-phase commit answered NO had committed");
                Outcome::Committed { commit_ts }
            }
            Ok(Decision::Aborted { reason }) => {
                self.abort_after_votes(txn, state, &[home], reason, detail)
            }
            Err(why) => Outcome::Unknown(why),
        }
    }

    /// Compare-and-set of the record at home; retried (it is idempotent) until the deadline.
    pub(crate) async fn decide(
        &self,
        txn: TxnId,
        home: ShardId,
        decision: Decision,
    ) -> Result<Decision, String> {
        let request = PeerRequest::Decide { shard: home, txn, decision };
        match self.ctx.peers.call_shard(home, request, self.rpc_deadline() * 2).await {
            Ok((_, PeerReply::Decided(decision))) => Ok(decision),
            Ok((_, other)) => Err(format!("the home shard {home} answered {other:?}")),
            Err(error) => Err(format!("the decision could not be recorded at {home}: {error}")),
        }
    }

    /// Phase 2 in the background: Finalize at every write participant, then Finish at home.
    fn spawn_phase2(&self, txn: TxnId, home: ShardId, writers: Vec<ShardId>, decision: Decision) {
        let ctx = self.ctx.clone();
        let deadline = self.rpc_deadline();
        tokio::spawn(async move {
            let calls = writers.iter().map(|shard| {
                let ctx = ctx.clone();
                let shard = *shard;
                async move {
                    for _ in 0..PHASE2_ATTEMPTS_MAX {
                        let request =
                            PeerRequest::Finalize { shard, txn, decision, prepared: true };
                        if let Ok((_, PeerReply::Done)) =
                            ctx.peers.call_shard(shard, request, deadline).await
                        {
                            return true;
                        }
                    }
                    false
                }
            });
            let done = join_all(calls).await;
            if matches!(decision, Decision::Committed { .. }) && done.iter().all(|ok| *ok) {
                let _ = ctx
                    .peers
                    .call_shard(home, PeerRequest::Finish { shard: home, txn }, deadline)
                    .await;
            }
        });
    }

    /// TxnStatus: the exact outcome of a transaction; an undecided one is decided ABORTED.
    pub async fn txn_status(
        &self,
        txn: TxnId,
        home: Option<ShardId>,
    ) -> Result<Outcome, StatementError> {
        if self.ctx.is_mine(&txn) {
            if let Some(outcome) = self.local_outcome(txn).await {
                if !matches!(outcome, Outcome::Unknown(_)) || home.is_none() {
                    return Ok(outcome);
                }
            }
        }
        let Some(home) = home else {
            // It wrote nothing (no home): nothing of it can be committed.
            return Ok(Outcome::Aborted {
                reason: AbortReason::CoordinatorLost,
                detail: "the transaction wrote nothing and its coordinator does not know it".into(),
            });
        };
        if home.0 >= self.ctx.topology.shard_count() {
            return Err(StatementError::Invalid(format!("no shard {home}")));
        }
        let request = PeerRequest::Status { shard: home, txn, resolve: true };
        match self.ctx.peers.call_shard(home, request, self.rpc_deadline() * 2).await {
            Ok((_, PeerReply::Decided(Decision::Committed { commit_ts }))) => {
                Ok(Outcome::Committed { commit_ts })
            }
            Ok((_, PeerReply::Decided(Decision::Aborted { reason }))) => {
                Ok(Outcome::Aborted { reason, detail: "recorded as aborted".into() })
            }
            Ok((_, other)) => {
                Err(StatementError::Unavailable(format!("the home shard answered {other:?}")))
            }
            Err(error) => Err(StatementError::Unavailable(error.to_string())),
        }
    }
}
