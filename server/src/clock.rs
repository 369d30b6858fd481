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

    /// The latest reading handed out or observed, without advancing.
    pub fn latest(&self) -> Timestamp {
        self.hlc.lock().expect("clock lock").last()
    }

    /// The physical time alone (for closed timestamps and retention windows).
    pub fn physical_ms(&self) -> u64 {
        self.physical.now_ms()
    }
}
