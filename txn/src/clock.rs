//! A hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014).
//!
//! Every node keeps one. Local events take [`Hlc::now`]; every message carries the sender's
//! clock and the receiver calls [`Hlc::observe`] (Lamport's rule), so an event that causally
//! follows another gets a larger timestamp, whatever the physical clocks say. The physical time
//! is passed in by the caller (milliseconds since the Unix epoch), which keeps this type free of
//! I/O: the server reads the system clock, the simulation reads simulated time plus a skew.
//!
//! Invariants: the readings a clock hands out strictly increase; every reading is at least every
//! observed timestamp.

use crate::types::Timestamp;

/// A hybrid logical clock.
#[derive(Debug, Default)]
pub struct Hlc {
    /// The last timestamp handed out or observed.
    last: Timestamp,
}

impl Hlc {
    /// A clock that has seen nothing yet.
    pub fn new() -> Hlc {
        Hlc { last: Timestamp::ZERO }
    }

    /// A reading for a local event, given the physical time in milliseconds.
    pub fn now(&mut self, physical_ms: u64) -> Timestamp {
        let candidate = Timestamp::new(physical_ms, 0);
        let next = if candidate > self.last { candidate } else { self.last.next() };
        assert!(next > self.last, "hlc went backwards: {next} after {}", self.last);
        self.last = next;
        next
    }

    /// Advances the clock past a timestamp received in a message.
    pub fn observe(&mut self, remote: Timestamp) {
        if remote > self.last {
            self.last = remote;
        }
    }

    /// The last reading handed out or observed, without advancing.
    pub fn last(&self) -> Timestamp {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_increase_even_when_physical_time_stands_still_or_goes_back() {
        let mut clock = Hlc::new();
        let a = clock.now(1000);
        let b = clock.now(1000);
        let c = clock.now(999);
        assert!(a < b && b < c);
        assert_eq!(c.physical_ms(), 1000);
    }

    #[test]
    fn observing_a_later_clock_moves_past_it() {
        let mut clock = Hlc::new();
        clock.now(1000);
        let remote = Timestamp::new(5000, 7);
        clock.observe(remote);
        assert!(clock.now(1001) > remote);
    }
}
