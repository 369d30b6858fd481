//! Choosing the coordinator node of a transaction.
//!
//! A client begins each transaction on the next node of its list (round robin), so a test that
//! needs a transaction coordinated by one node begins until it lands there (at most one round
//! over the nodes), or, inside a `client.transaction` body, fails the attempt with a retryable
//! abort so that the next attempt begins on the next node.

use client::Client;
use client::Error;
use client::Transaction;

/// The abort reason [`require_coordinator`] uses.
pub const WRONG_COORDINATOR: &str = "E2E_WRONG_COORDINATOR";

/// Begins a transaction coordinated by the node at `addr`.
pub async fn begin_on(client: &Client, addr: &str) -> Transaction {
    try_begin_on(client, addr).await.unwrap_or_else(|why| panic!("{why}"))
}

/// Begins a transaction coordinated by the node at `addr`, or says why it could not (the node
/// may be down).
pub async fn try_begin_on(client: &Client, addr: &str) -> Result<Transaction, String> {
    for _ in 0..16 {
        let txn = client.begin().await.map_err(|e| format!("BEGIN: {e}"))?;
        if txn.coordinator() == addr {
            return Ok(txn);
        }
        let _ = txn.abort().await;
    }
    Err(format!("no transaction could be begun on {addr}"))
}

/// For a `client.transaction` body: `Ok` when `txn` is coordinated by the node at `addr`, else
/// a retryable abort (the retry begins on the next node).
pub fn require_coordinator(txn: &Transaction, addr: &str) -> Result<(), Error> {
    if txn.coordinator() == addr {
        return Ok(());
    }
    Err(Error::Aborted {
        reason: WRONG_COORDINATOR.into(),
        message: format!("begun on {}, wanted {addr}", txn.coordinator()),
        retryable: true,
    })
}
