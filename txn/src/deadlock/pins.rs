//! [`Pins`]: the confirmation marks a shard keeps on waiting requests, so that a cycle being
//! confirmed is not broken under it by the abort of another victim. See "CONFIRMATION" in the
//! [module docs](super).

use std::collections::BTreeMap;

use crate::lock::RequestId;
use crate::types::TxnId;

/// The most live pins a shard keeps. Pins grow with the confirmations in flight, which a crowd
/// of transactions upgrading one key multiplies (every pair of them is a two-cycle): past this
/// bound a confirmation is dropped instead ([`Pins::pin`]), and its cycle found again later.
pub const MAX_PINS: usize = 4096;

/// Pins of one shard (one per shard leader term, like its lock table): for a waiting request,
/// the victims of the confirmation passes that checked its edge and have not finished, each
/// until an expiry time. Time is the caller's (ticks in the harness, milliseconds in the
/// server); a pin must outlive the confirmation pass that set it, which takes one message per
/// shard change along the cycle.
#[derive(Clone, Debug)]
pub struct Pins {
    /// How long a pin lasts, in the caller's time unit.
    lifetime: u64,
    /// Request to victim to expiry time. Never an empty inner map.
    by_request: BTreeMap<RequestId, BTreeMap<TxnId, u64>>,
}

impl Pins {
    /// No pins; each pin set later lasts `lifetime`.
    pub fn new(lifetime: u64) -> Pins {
        assert!(lifetime > 0, "pins that expire at once protect nothing");
        Pins { lifetime, by_request: BTreeMap::new() }
    }

    /// Pins `request` for the confirmation of the cycle whose victim is `victim`, from `now`.
    /// False (nothing pinned) when [`MAX_PINS`] live pins are held: the caller drops the
    /// confirmation. Until 2026-12-06 this was an assertion, which load could reach while the
    /// shard's state lock was held (found by a review).
    pub fn pin(&mut self, request: RequestId, victim: TxnId, now: u64) -> bool {
        let until = now.checked_add(self.lifetime).expect("pin expiry overflows");
        if self.len() >= MAX_PINS {
            self.expire(now);
            if self.len() >= MAX_PINS {
                return false;
            }
        }
        let victims = self.by_request.entry(request).or_default();
        victims.retain(|_, expiry| *expiry > now);
        let expiry = victims.entry(victim).or_insert(until);
        *expiry = (*expiry).max(until);
        true
    }

    /// The youngest other victim whose live pin protects `request` from being cancelled as
    /// `victim`, if any.
    pub fn blocking(&self, request: RequestId, victim: TxnId, now: u64) -> Option<TxnId> {
        self.by_request
            .get(&request)?
            .iter()
            .filter(|(other, expiry)| **other != victim && **expiry > now)
            .map(|(other, _)| *other)
            .next_back()
    }

    /// Forgets the pins that have expired by `now`.
    pub fn expire(&mut self, now: u64) {
        self.by_request.retain(|_, victims| {
            victims.retain(|_, expiry| *expiry > now);
            !victims.is_empty()
        });
    }

    /// Pins held (live or not yet collected).
    pub fn len(&self) -> usize {
        self.by_request.values().map(BTreeMap::len).sum()
    }

    /// True when no pin is held.
    pub fn is_empty(&self) -> bool {
        self.by_request.is_empty()
    }
}
