//! The Rust client library and the kvsh shell.
//!
//! ```no_run
//! # async fn demo() -> Result<(), client::Error> {
//! let client = client::Client::connect(&["127.0.0.1:7001", "127.0.0.1:7002"]).await?;
//! client.put("greeting", "hello").await?;
//! let balance = client
//!     .transaction(|txn| Box::pin(async move {
//!         let a: i64 = txn.get("alice").await?.map_or(0, |v| String::from_utf8_lossy(&v).parse().unwrap_or(0));
//!         txn.put("alice", (a - 10).to_string()).await?;
//!         txn.put("bob", "10").await?;
//!         Ok(a - 10)
//!     }))
//!     .await?;
//! # let _ = balance; Ok(()) }
//! ```
//!
//! - [`client`]: a session: routing, retries, one-statement operations, transactions.
//! - [`link`]: the stream to one node that carries every statement (`Kv/Session`).
//! - [`transaction`]: an interactive transaction.
//! - [`mutation`]: a write sent with END (`Transaction::commit_with`).
//! - [`error`]: errors grouped by what the caller does next.
//! - [`connector`]: how a channel to a node is made (the transport seam).
//! - [`shell`]: the statement language and the REPL of `kvsh`.

pub mod client;
pub mod connector;
pub mod error;
pub mod link;
pub mod mutation;
pub mod shell;
pub mod transaction;

pub use client::Client;
pub use client::Consistency;
pub use client::Routing;
pub use client::TxnOutcome;
pub use error::Error;
pub use mutation::Mutation;
pub use transaction::CommitInfo;
pub use transaction::Transaction;
