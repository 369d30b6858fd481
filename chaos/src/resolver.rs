//! The resolver host: asks `TxnStatus` about every transaction whose client never learned its
//! outcome, during the run, as soon as it is known to be unknown and then every
//! [`RESOLVE_EVERY`] until a node answers.
//!
//! A transaction's record is collected once the transaction is older than the retention window
//! (6 s in the simulation, `sim::cluster::sim_timing`), after which `TxnStatus` says its outcome
//! is no longer known (by design: docs/transactions.md). The checker host asks again at the
//! end, tens of seconds later: before 2026-12-07 that was the only asking, so nearly every
//! unknown outcome of a run was past the window by then and went unchecked, and a transaction
//! half applied (its record ABORTED, its writes in the final reads) passed (found by a review
//! of the harness). The answers given here are checked against the final reads as the final
//! ones are, and an answer that changes between here and the end is a finding of its own:
//! TxnStatus must be exact.

use std::sync::Arc;
use std::time::Duration;

use client::Client;
use client::Error;
use client::TxnOutcome;

use crate::sim::net::SimConnector;
use crate::world::Phase;
use crate::world::Shared;
use crate::world::Unknown;

/// How often unresolved transactions are asked about again.
pub const RESOLVE_EVERY: Duration = Duration::from_millis(500);
/// The resolver's request deadline: short, so that a node cut away costs one pass little (each
/// `TxnStatus` search gets twice this).
pub const RESOLVER_TIMEOUT: Duration = Duration::from_secs(1);

/// What `TxnStatus` said about a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// COMMITTED (true) or ABORTED (false).
    Settled(bool),
    /// Its record was collected: the outcome is no longer known.
    Forgotten,
    /// No answer (no node reachable, no leader of its home shard...).
    Unanswered,
}

/// Asks `client` for the outcome of `txn`.
pub async fn ask(client: &Client, txn: &Unknown) -> Asked {
    let home = match (txn.home, &txn.first_key) {
        (Some(home), _) => Some(home),
        (None, Some(key)) => match client.shard_of(key).await {
            Ok(shard) => Some(shard),
            Err(_) => return Asked::Unanswered,
        },
        (None, None) => None,
    };
    match client.txn_status(&txn.handle, home).await {
        Ok(TxnOutcome::Committed(_)) => Asked::Settled(true),
        Ok(TxnOutcome::Aborted { .. }) => Asked::Settled(false),
        // Started before the retention window and its record collected: the outcome is no
        // longer known, by design (docs/transactions.md). The library reports it as Unknown.
        Err(Error::Unknown(why)) if why.contains("no longer known") => Asked::Forgotten,
        Err(_) => Asked::Unanswered,
    }
}

/// The resolver host's life: until the final phase, asks about every unresolved unknown
/// outcome (all of them at once, so that one whose home shard is cut away does not hold up
/// the others), then leaves the rest to the checker host.
pub async fn resolver(world: Shared, addrs: Vec<String>, seed: u64) -> turmoil::Result {
    let client =
        Client::connect_options(&addrs, Arc::new(SimConnector), seed, RESOLVER_TIMEOUT).await?;
    loop {
        if matches!(world.borrow().phase, Phase::Final | Phase::Done) {
            return Ok(());
        }
        let pending: Vec<Unknown> = {
            let world = world.borrow();
            world
                .unknown
                .iter()
                .filter(|txn| !world.resolved.contains_key(&txn.index))
                .cloned()
                .collect()
        };
        let asked = futures::future::join_all(pending.iter().map(|txn| ask(&client, txn))).await;
        for (txn, asked) in pending.iter().zip(asked) {
            if asked != Asked::Unanswered {
                world.borrow_mut().resolved.insert(txn.index, asked);
            }
        }
        tokio::time::sleep(RESOLVE_EVERY).await;
    }
}
