//! Closes on demand: how often a shard leader replicates `Close`.
//!
//! A `Close` entry costs what any Raft entry costs (an fsync'd append on every replica, an
//! apply, two rounds of messages), and only causal reads need the closed timestamp to be fresh:
//! locking reads and writes never look at it. So a leader closes every `close_interval_ms`
//! only while closes are *wanted*, and every `close_idle_interval_ms` otherwise:
//!
//! ```text
//!   replica serves a causal read ──► want() here ──► (not leader, at most every ASK_EVERY)
//!                                                     WantCloses to the leader ──► want() there
//!   leader's close tick (every close_interval_ms):
//!       due = wanted (a want() less than WANTED_FOR ago)
//!           or close_idle_interval_ms since the last close
//!           or FINISHING_PROMPT finished records queued
//! ```
//!
//! Safety does not depend on any of this: a promise is made only by a `Close` in the log, and
//! how often one is made changes staleness, never what a snapshot contains. A lost `WantCloses`
//! only leaves the shard at the idle period until the next ask; a reader whose token is newer
//! than its replica's safe time waits (up to its deadline) as it always could.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A replica asks its leader for closes at most this often per shard (while it serves causal
/// reads): an idle-to-busy switch costs one message, a busy shard one message per period.
pub const ASK_EVERY: Duration = Duration::from_millis(100);
/// Closes stay wanted this long after the last ask: several ask periods, so one lost message
/// does not slow a shard that is being read.
pub const WANTED_FOR: Duration = Duration::from_millis(1_000);
/// Finished transaction records queued at a leader that make a close due at once (they ride
/// on the close entry; a longer queue only delays garbage).
pub const FINISHING_PROMPT: usize = 512;

/// Whether, and since when, closes are wanted at this replica.
#[derive(Debug, Default)]
pub struct CloseDemand {
    /// Closes are wanted until then (set by local causal reads and by followers' asks).
    wanted_until: Mutex<Option<Instant>>,
    /// When this replica last asked its leader.
    asked_at: Mutex<Option<Instant>>,
}

impl CloseDemand {
    /// Records that a causal reader (here, or at a replica that asked) wants fresh closes.
    pub fn want(&self, now: Instant) {
        let mut until = self.wanted_until.lock().expect("close demand lock");
        let new = now + WANTED_FOR;
        if until.is_none_or(|old| old < new) {
            *until = Some(new);
        }
    }

    /// Whether closes are wanted at `now`.
    pub fn wanted(&self, now: Instant) -> bool {
        self.wanted_until.lock().expect("close demand lock").is_some_and(|until| now < until)
    }

    /// Whether this replica should ask its leader now (at most once per [`ASK_EVERY`]); if so,
    /// the ask is recorded as made.
    pub fn take_ask(&self, now: Instant) -> bool {
        let mut asked = self.asked_at.lock().expect("close demand lock");
        if asked.is_some_and(|at| now < at + ASK_EVERY) {
            return false;
        }
        *asked = Some(now);
        true
    }
}

/// Whether a leader's close tick proposes a close: see the module overview.
pub fn close_due(
    wanted: bool,
    since_last: Duration,
    idle_interval: Duration,
    finishing: usize,
) -> bool {
    wanted || since_last >= idle_interval || finishing >= FINISHING_PROMPT
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_millis(250);

    #[test]
    fn an_idle_shard_closes_only_every_idle_interval() {
        assert!(!close_due(false, Duration::from_millis(10), IDLE, 0));
        assert!(!close_due(false, Duration::from_millis(249), IDLE, 0));
        assert!(close_due(false, IDLE, IDLE, 0));
    }

    #[test]
    fn wanted_closes_or_a_long_finishing_queue_close_at_every_tick() {
        assert!(close_due(true, Duration::from_millis(10), IDLE, 0));
        assert!(close_due(false, Duration::from_millis(10), IDLE, FINISHING_PROMPT));
        assert!(!close_due(false, Duration::from_millis(10), IDLE, FINISHING_PROMPT - 1));
    }

    #[test]
    fn demand_lasts_wanted_for_after_the_last_want() {
        let demand = CloseDemand::default();
        let start = Instant::now();
        assert!(!demand.wanted(start));
        demand.want(start);
        assert!(demand.wanted(start + WANTED_FOR - Duration::from_millis(1)));
        assert!(!demand.wanted(start + WANTED_FOR));
        // A later want extends it; an earlier one (out of order) does not shorten it.
        demand.want(start + Duration::from_millis(500));
        demand.want(start);
        assert!(demand.wanted(start + WANTED_FOR + Duration::from_millis(499)));
    }

    #[test]
    fn asks_are_rate_limited() {
        let demand = CloseDemand::default();
        let start = Instant::now();
        assert!(demand.take_ask(start));
        assert!(!demand.take_ask(start + ASK_EVERY - Duration::from_millis(1)));
        assert!(demand.take_ask(start + ASK_EVERY));
    }
}
