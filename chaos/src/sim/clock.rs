//! Simulated physical time with a per-node skew the nemesis moves: the clock seam.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::sync::atomic::Ordering;

use server::clock::PhysicalClock;

/// A node's physical clock: turmoil's simulated wall time plus a skew in milliseconds.
#[derive(Clone, Debug, Default)]
pub struct SimClock {
    skew_ms: Arc<AtomicI64>,
}

impl SimClock {
    /// A clock whose skew is shared with the driver.
    pub fn new(skew_ms: Arc<AtomicI64>) -> SimClock {
        SimClock { skew_ms }
    }
}

impl PhysicalClock for SimClock {
    fn now_ms(&self) -> u64 {
        let now = turmoil::since_epoch().map(|d| d.as_millis() as i64).unwrap_or(0);
        (now + self.skew_ms.load(Ordering::SeqCst)).max(0) as u64
    }
}
