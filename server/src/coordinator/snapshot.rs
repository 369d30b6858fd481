//! Causal reads: snapshot reads served by any replica, without locks (docs/consistency.md).
//!
//! A causal session carries a token (the largest commit timestamp it saw). A one-statement
//! read asks a replica for its freshest safe snapshot at or above the token; a read-only
//! transaction (or a scan over several shards) fixes one snapshot at or above the token for all
//! its shards, so what it reads is one consistent state. The local replica is asked first (no
//! network; available on the minority side of a partition), then the other replicas.

use std::sync::Arc;

use replication::canary;
use replication::canary::Canary;
use txn::types::Key;
use txn::types::ShardId;
use txn::types::Timestamp;
use txn::types::Value;

use crate::config::Timing;
use crate::coordinator::coordinator::Coordinator;
use crate::coordinator::coordinator::StatementError;
use crate::coordinator::coordinator::check_scan_bytes;
use crate::peer::message::PeerReply;
use crate::peer::message::PeerRequest;
use crate::peer::message::ReadResult;
use crate::peer::message::SnapshotAt;
use crate::peer::message::SnapshotOp;

/// The snapshot every replica of this node can serve now, from their safe times: the smallest
/// (every local shard must be fresh), leaving out the replicas that cannot help. One that
/// applied no `Close` yet (a new cluster, a rebuilt replica) serves nothing: taken as the
/// minimum, it made every read-only transaction begun here ask for snapshot 0, refused as too
/// old everywhere. One more than `behind_max_ms` behind the freshest of them (catching up
/// after a long absence, installing a snapshot) likewise: its safe time could be below the
/// collected watermark of the other shards, which would refuse the snapshot as too old (found
/// by a review, 2026-12-06); its shard is read from another replica instead. (Behind the
/// freshest replica, not behind the clock: on the minority side of a partition every replica
/// stops closing at once, and they must go on serving together.) `None` when no replica is
/// left.
pub fn freshest_common(
    safe_times: impl IntoIterator<Item = Timestamp>,
    behind_max_ms: u64,
) -> Option<Timestamp> {
    let serving: Vec<Timestamp> =
        safe_times.into_iter().filter(|safe| *safe > Timestamp::ZERO).collect();
    let freshest_ms = serving.iter().max()?.physical_ms();
    let oldest_ms = freshest_ms.saturating_sub(behind_max_ms);
    serving.into_iter().filter(|safe| safe.physical_ms() >= oldest_ms).min()
}

/// The safe times of this node's replicas (the node provides it).
pub trait LocalReplicas: Send + Sync {
    /// The safe time of this node's replica of `shard`, if it has one.
    fn safe_time(&self, shard: ShardId) -> Option<Timestamp>;
    /// Tells this node's replica of `shard`, if any, that causal readers want its closed
    /// timestamp fresh (`participant::close_demand`).
    fn note_causal_reader(&self, shard: ShardId);
}

impl Coordinator {
    /// Installs the view of this node's replicas.
    pub fn bind_replicas(&self, replicas: Arc<dyn LocalReplicas>) {
        assert!(self.replicas.set(replicas).is_ok(), "replicas bound twice");
    }

    /// A snapshot at or above `token` that this node's replicas can serve now: the smallest of
    /// their safe times ([`freshest_common`]). Without a usable local replica, an estimate of
    /// what replicas have closed.
    pub(crate) fn pick_snapshot(&self, token: Timestamp) -> Timestamp {
        self.pick_snapshot_of(token, &[])
    }

    /// [`Coordinator::pick_snapshot`] for a read of `shards` alone: from this node's replicas
    /// of those (all of its replicas when it has none of them, or `shards` is empty, as for a
    /// read-only transaction, which does not know what it will read). A replica's safe time
    /// stays below its oldest undecided prepare, so one transaction prepared on a shard the
    /// read does not touch held back a causal SCAN's snapshot until it was decided (found by a
    /// review, 2026-12-07).
    pub(crate) fn pick_snapshot_of(&self, token: Timestamp, shards: &[ShardId]) -> Timestamp {
        let timing = self.timing();
        let mine = self.ctx.topology.shards_of(self.ctx.me);
        let read: Vec<ShardId> = mine.iter().copied().filter(|s| shards.contains(s)).collect();
        let from = if read.is_empty() { mine } else { read };
        let local = self.replicas.get().and_then(|replicas| {
            let safe_times = from.into_iter().filter_map(|s| {
                replicas.note_causal_reader(s);
                replicas.safe_time(s)
            });
            freshest_common(safe_times, timing.retention_ms / 2)
        });
        let fresh = local.unwrap_or_else(|| {
            let behind = timing.close_lag_ms + 2 * timing.close_interval_ms;
            Timestamp::new(self.ctx.clock.now().physical_ms().saturating_sub(behind), 0)
        });
        token.max(fresh)
    }

    /// The snapshot a statement of a causal read-only transaction begun at `ts` reads: `ts`
    /// (canary [`Canary::FracturedSnapshot`]: a fresh one per statement).
    pub(crate) fn statement_snapshot(&self, ts: Timestamp) -> Timestamp {
        if canary::is(Canary::FracturedSnapshot) { self.pick_snapshot(ts) } else { ts }
    }

    /// Reads a snapshot of one shard from the nearest replica that can serve it.
    pub(crate) async fn snapshot_call(
        &self,
        shard: ShardId,
        at: SnapshotAt,
        op: SnapshotOp,
    ) -> Result<ReadResult, StatementError> {
        let mut replicas = self.ctx.topology.replicas(shard).to_vec();
        // The local replica first (no network; the minority side of a partition), unless it is
        // behind a snapshot this node fixed: then last, since it would wait `rpc_ms` before it
        // answered UNAVAILABLE (a replica `freshest_common` left out, catching up). Behind a
        // session's token it stays first: it usually catches up within a close interval.
        let local_behind = match at {
            SnapshotAt::Exactly(ts) => self
                .replicas
                .get()
                .and_then(|replicas| replicas.safe_time(shard))
                .is_some_and(|safe| safe < ts),
            SnapshotAt::AtLeast(_) => false,
        };
        if let Some(me) = replicas.iter().position(|node| *node == self.ctx.me) {
            let me = replicas.remove(me);
            if local_behind {
                replicas.push(me);
            } else {
                replicas.insert(0, me);
            }
        }
        let wait = Timing::ms(self.timing().rpc_ms);
        let mut why = String::new();
        // A replica that collected past the snapshot answers TooOld; another, behind it in
        // collection (each replica collects as it applies), may still serve it. TooOld is the
        // answer only when no replica served: it says more than "unavailable".
        let mut too_old = None;
        for node in replicas {
            let request = PeerRequest::SnapshotRead {
                shard,
                at,
                op: op.clone(),
                wait_ms: wait.as_millis() as u64,
            };
            match self.ctx.peers.call(node, request, wait * 2).await {
                Ok(PeerReply::Read(read)) => return Ok(read),
                Ok(PeerReply::TooOld(detail)) => too_old = too_old.or(Some(detail)),
                Ok(other) => why = format!("{other:?}"),
                Err(error) => why = error.to_string(),
            }
        }
        if let Some(detail) = too_old {
            return Err(StatementError::TooOld(detail));
        }
        Err(StatementError::Unavailable(format!(
            "no replica of {shard} could serve a snapshot in time ({why})"
        )))
    }

    /// A one-statement READ in a causal session: the value, the newest version observed (the
    /// session's token rises to it) and the snapshot it was served at.
    pub async fn causal_read(
        &self,
        key: Key,
        token: Timestamp,
    ) -> Result<(Option<Value>, Timestamp, Timestamp), StatementError> {
        self.check_key(&key)?;
        let shard = self.ctx.topology.shard_of(&key);
        let read =
            self.snapshot_call(shard, SnapshotAt::AtLeast(token), SnapshotOp::Read { key }).await?;
        let value = read.rows.into_iter().next().map(|(_, value)| value);
        Ok((value, read.version_ts, read.snapshot_ts))
    }

    /// A one-statement SCAN in a causal session: one snapshot for every shard it covers. Returns
    /// the rows, the newest version observed and the snapshot.
    pub async fn causal_scan(
        &self,
        from: Key,
        to: Option<Key>,
        limit: Option<usize>,
        token: Timestamp,
    ) -> Result<(Vec<(Key, Value)>, Timestamp, Timestamp), StatementError> {
        self.check_range(&from, to.as_deref())?;
        let max = self.ctx.config.limits.scan_rows_max;
        let limit = limit.unwrap_or(max).min(max);
        let shards: Vec<ShardId> = self
            .ctx
            .topology
            .split_range(&from, to.as_deref())
            .into_iter()
            .map(|(s, _, _)| s)
            .collect();
        let ts = self.pick_snapshot_of(token, &shards);
        let (rows, seen) = self.snapshot_scan(ts, &from, to.as_deref(), limit).await?;
        Ok((rows, seen, ts))
    }

    /// The rows of `[from, to)` at snapshot `ts`, shard by shard, at most `limit`, and the
    /// newest version among them.
    pub(crate) async fn snapshot_scan(
        &self,
        ts: Timestamp,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<(Key, Value)>, Timestamp), StatementError> {
        let mut rows = Vec::new();
        let mut seen = Timestamp::ZERO;
        for (shard, part_from, part_to) in self.ctx.topology.split_range(from, to) {
            if rows.len() >= limit {
                break;
            }
            let op = SnapshotOp::Scan { from: part_from, to: part_to, limit: limit - rows.len() };
            let read = self.snapshot_call(shard, SnapshotAt::Exactly(ts), op).await?;
            seen = seen.max(read.version_ts);
            rows.extend(read.rows);
            check_scan_bytes(&rows)?;
        }
        Ok((rows, seen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::new(ms, 0)
    }

    #[test]
    fn the_common_snapshot_leaves_out_replicas_that_cannot_serve() {
        // The smallest of the fresh ones.
        assert_eq!(freshest_common([at(99_990), at(99_950)], 1_000), Some(at(99_950)));
        // A replica with no close yet, and one far behind the others, are left out.
        let safe = [at(99_990), Timestamp::ZERO, at(20_000), at(99_980)];
        assert_eq!(freshest_common(safe, 1_000), Some(at(99_980)));
        // Exactly at the bound still counts.
        assert_eq!(freshest_common([at(99_000), at(100_000)], 1_000), Some(at(99_000)));
        // All behind together (the minority side of a partition): all still serve.
        assert_eq!(freshest_common([at(20_000), at(20_500)], 1_000), Some(at(20_000)));
        // Nothing left: the caller estimates.
        assert_eq!(freshest_common([Timestamp::ZERO], 1_000), None);
        assert_eq!(freshest_common([], 1_000), None);
    }
}
