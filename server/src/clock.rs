//! The node's clock: a hybrid logical clock over a physical time source (the clock seam).
//!
//! Production reads the system clock; the simulation reads simulated time plus a per-node skew
//! that the nemesis moves. Every RPC carries the sender's [`NodeClock::now`] and the receiver
//! calls [`NodeClock::observe`], so causally later events get larger timestamps even when the
//! physical clocks disagree (see `txn::clock`).

use std::sync::Arc;
use std::sync::Mutex;
use std::time::SystemTime;
use std::time::UNIX_EPOCH;

use txn::clock::Hlc;
use txn::types::Timestamp;

/// How far another node's clock may be ahead of this node's physical time
/// ([`NodeClock::observe_peer`]): twice what a client's causal token may move a clock
/// ([`proto::kv::CAUSAL_TOKEN_AHEAD_MAX_MS`]), so that a node whose clock a token moved to
/// that limit is still heard by peers whose physical clocks are behind its own by less than
/// the limit again.
pub const PEER_CLOCK_AHEAD_MAX_MS: u64 = 2 * proto::kv::CAUSAL_TOKEN_AHEAD_MAX_MS;

/// A source of physical time, in milliseconds since the Unix epoch.
pub trait PhysicalClock: Send + Sync + 'static {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl PhysicalClock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

/// A node's hybrid logical clock.
#[derive(Clone)]
pub struct NodeClock {
    physical: Arc<dyn PhysicalClock>,
    hlc: Arc<Mutex<Hlc>>,
}

impl NodeClock {
    /// A clock over `physical`.
    pub fn new(physical: Arc<dyn PhysicalClock>) -> NodeClock {
        NodeClock { physical, hlc: Arc::new(Mutex::new(Hlc::new())) }
    }

    /// A fresh timestamp, above every one handed out or observed before.
    pub fn now(&self) -> Timestamp {
        let physical = self.physical.now_ms();
        self.hlc.lock().expect("clock lock").now(physical)
    }

    /// Moves the clock past a timestamp from a message.
    pub fn observe(&self, remote: Timestamp) {
        self.hlc.lock().expect("clock lock").observe(remote);
    }

    /// Moves the clock past another node's clock, carried on a peer message, unless it is
    /// further ahead of this node's physical time than [`PEER_CLOCK_AHEAD_MAX_MS`]: no node of
    /// the cluster could have made it, and adopting it would move every node's clock with it
    /// (from one near the end of time the clock could not advance at all: until 2026-12-07 a
    /// frame with the clock `u64::MAX` made the next reading overflow under the clock's lock,
    /// and the node panicked; found by a review). A clock at or below this one's moves
    /// nothing and is always taken.
    pub fn observe_peer(&self, remote: Timestamp) -> Result<(), String> {
        let physical = self.physical.now_ms();
        let mut hlc = self.hlc.lock().expect("clock lock");
        Self::within_peer_bound(&hlc, physical, remote, "a peer's clock")?;
        hlc.observe(remote);
        Ok(())
    }

    /// Refuses a timestamp that a peer's message carries in its body (a commit timestamp, the
    /// largest vote of a commit at home) by the rule of [`NodeClock::observe_peer`], without
    /// observing it: adopted or written as a version, it would move the clock as far (a review
    /// found `CommitAtHome.after = u64::MAX` overflowing the clock after the envelope's was
    /// bounded, 2026-12-07).
    pub fn check_peer(&self, ts: Timestamp, what: &str) -> Result<(), String> {
        let physical = self.physical.now_ms();
        let hlc = self.hlc.lock().expect("clock lock");
        Self::within_peer_bound(&hlc, physical, ts, what)
    }

    fn within_peer_bound(
        hlc: &Hlc,
        physical: u64,
        remote: Timestamp,
        what: &str,
    ) -> Result<(), String> {
        if remote <= hlc.last() {
            return Ok(());
        }
        let ahead = remote.physical_ms().saturating_sub(physical);
        if ahead > PEER_CLOCK_AHEAD_MAX_MS {
            return Err(format!(
                "{what} {remote} is {} s ahead of this node's clock (at most {} s)",
                ahead / 1000,
                PEER_CLOCK_AHEAD_MAX_MS / 1000
            ));
        }
        Ok(())
    }

    /// The latest reading handed out or observed, without advancing.
    pub fn latest(&self) -> Timestamp {
        self.hlc.lock().expect("clock lock").last()
    }

    /// The physical time alone (for closed timestamps and retention windows).
    pub fn physical_ms(&self) -> u64 {
        self.physical.now_ms()
    }
}
