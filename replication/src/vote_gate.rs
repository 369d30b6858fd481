//! The vote gate of one replica: whether it may grant votes in an election, and from which
//! term on.
//!
//! Raft's safety rests on every voter remembering its log and its vote. A node whose data
//! directory was lost (a replaced disk) and that starts again under its old id remembers
//! neither: with an empty log it would vote for any candidate, so a stale replica could be
//! elected without entries that were committed on the lost disk and one other node, and it
//! could vote twice in a term it had voted in before. (openraft's FAQ, "Can I wipe out the data
//! of ONE node", draws the first case.) The node cannot tell a lost disk from the very first
//! start of a new cluster, so every replica starts with its gate closed on a fresh data
//! directory, and `server::participant::rejoin` opens it once that is safe:
//!
//! - it asks the other replicas for their term and last log id until a majority of the shard's
//!   replicas *other than itself* answered (so that, with any majority that stored an entry,
//!   they share a replica that still has it);
//! - it waits until it has applied, durably, an entry at or above the largest last log id
//!   they reported (every entry committed before it started is then in its log: Raft's log
//!   matching and leader completeness), or none of them holds anything past the initial
//!   membership (a new cluster: nothing was ever committed); meanwhile it does not campaign
//!   either (its vote for itself is a vote);
//! - it opens the gate with a *floor*, the largest term they reported: it never grants a vote
//!   in a term at or below it, any term in which it may have voted before it lost its data.
//!
//! Both the closed gate and the floor are stored durably (`store::identity`), so a restart in
//! the middle changes nothing. A closed gate answers every vote and pre-vote request "not
//! granted".
//!
//! A closed gate also bounds whose entries the replica takes. Appends and snapshots are how it
//! catches up, but an emptied replica starts at term 0, so openraft would take them from any
//! leader, a deposed one too, whose term its lost disk would have refused: acknowledged, they
//! let that leader commit with it as the majority's second member, over entries the lost disk
//! had helped commit under a later leader (found by a review, 2026-12-07: a leader of term 5,
//! cut off while term 6 committed a write with this replica, then healed towards it once its
//! disk was replaced and the term-6 leader was down). So until the others answered (step one
//! above) it takes none, and then only from a leader whose term is at least the largest they
//! reported ([`VoteGate::takes_entries_from`]): once it has taken one, openraft's own vote
//! refuses lower terms, and the gate opens only after it caught up through such a leader.
//!
//! # Quiet after a start
//!
//! A leader serves reads by lease (`docs/consistency.md`): a majority acknowledged its
//! heartbeat, and each of those followers refuses to vote for another candidate, or to
//! campaign, until an election timeout (`election_max_ms`, openraft's `leader_lease`) after it
//! received it. openraft keeps that promise in memory only: a replica that restarts within the
//! lease starts with none (its `vote` lease is zero) and would grant a vote at once, so a new
//! leader could commit writes while the old one still answered reads by its lease (a stale
//! read; found by a review, 2026-12-06). So every replica starts *quiet* for `election_max_ms`
//! (its start is after any heartbeat its previous life received): it grants no vote or pre-vote
//! except to a leadership transfer (the leader that started it gave its lease up), and does not
//! campaign (`server::participant::Shard::campaign_if_allowed`) unless such a transfer names
//! it. On a new cluster's first start
//! this delays the first election by up to that long.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

/// One replica's vote gate.
#[derive(Debug)]
pub struct VoteGate {
    open: AtomicBool,
    floor: AtomicU64,
    /// While closed: the lowest leader term whose entries and snapshots the replica takes
    /// (`u64::MAX`, none, until the others answered).
    leaders_from: AtomicU64,
    /// The end of the quiet after the start.
    quiet_until: Instant,
}

impl VoteGate {
    /// A gate as stored (`None` closed, else open with that floor), quiet for `quiet` from now.
    pub fn new(stored: Option<u64>, quiet: Duration) -> VoteGate {
        VoteGate {
            open: AtomicBool::new(stored.is_some()),
            floor: AtomicU64::new(stored.unwrap_or(0)),
            leaders_from: AtomicU64::new(u64::MAX),
            quiet_until: Instant::now() + quiet,
        }
    }

    /// Whether a vote (or pre-vote) for a candidate of `term` may be granted; `transfer` if the
    /// candidate campaigns for a leadership transfer.
    pub fn allows(&self, term: u64, transfer: bool) -> bool {
        // The floor is stored before the gate opens (Release/Acquire pair).
        self.open.load(Ordering::Acquire)
            && term > self.floor.load(Ordering::Relaxed)
            && (transfer || !self.is_quiet())
    }

    /// Whether the replica may take entries or a snapshot from a leader of `term`: any once
    /// the gate is open (openraft's vote decides), else only at or above the terms the other
    /// replicas reported ([`VoteGate::learned`]), none before they did.
    pub fn takes_entries_from(&self, term: u64) -> bool {
        self.is_open() || term >= self.leaders_from.load(Ordering::Acquire)
    }

    /// The other replicas answered with terms up to `floor`: a closed gate takes entries from
    /// leaders of that term or later.
    pub fn learned(&self, floor: u64) {
        self.leaders_from.store(floor, Ordering::Release);
    }

    /// Whether the replica may campaign: the gate is open and the quiet over.
    pub fn may_campaign(&self) -> bool {
        self.is_open() && !self.is_quiet()
    }

    /// Whether the quiet after the start still runs.
    pub fn is_quiet(&self) -> bool {
        Instant::now() < self.quiet_until
    }

    /// When the quiet after the start ends.
    pub fn quiet_until(&self) -> Instant {
        self.quiet_until
    }

    /// Whether the gate is open.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Opens the gate with `floor` (already stored durably by the caller).
    pub fn open(&self, floor: u64) {
        assert!(!self.is_open(), "a vote gate opens once");
        self.floor.store(floor, Ordering::Relaxed);
        self.open.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_gate_grants_nothing_and_an_open_one_only_above_its_floor() {
        let gate = VoteGate::new(None, Duration::ZERO);
        assert!(!gate.allows(1, false) && !gate.allows(u64::MAX, true));
        assert!(!gate.may_campaign());
        gate.open(5);
        assert!(!gate.allows(5, false), "not at the floor");
        assert!(gate.allows(6, false) && gate.may_campaign());
        assert!(VoteGate::new(Some(0), Duration::ZERO).allows(1, false), "a gate stored open");
    }

    #[test]
    fn a_closed_gate_takes_entries_only_from_leaders_at_the_terms_the_others_reported() {
        let gate = VoteGate::new(None, Duration::ZERO);
        assert!(!gate.takes_entries_from(u64::MAX - 1), "none before the others answered");
        gate.learned(6);
        assert!(!gate.takes_entries_from(5), "not from a leader the others have deposed");
        assert!(gate.takes_entries_from(6) && gate.takes_entries_from(7));
        gate.open(6);
        assert!(gate.takes_entries_from(1), "open: openraft's own vote decides");
        assert!(VoteGate::new(Some(0), Duration::ZERO).takes_entries_from(0), "stored open");
    }

    #[tokio::test]
    async fn a_started_replica_grants_only_transfers_until_its_quiet_ends() {
        let gate = VoteGate::new(Some(0), Duration::from_secs(60));
        assert!(!gate.allows(1, false) && !gate.may_campaign(), "quiet");
        assert!(gate.allows(1, true), "a leadership transfer");
        let gate = VoteGate::new(Some(0), Duration::from_millis(20));
        assert!(gate.is_quiet());
        tokio::time::sleep_until(gate.quiet_until()).await;
        assert!(gate.allows(1, false) && gate.may_campaign(), "the quiet is over");
    }
}
