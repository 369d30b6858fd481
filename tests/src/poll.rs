//! Waiting for a condition under a deadline.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How often a condition is checked again.
pub const POLL_PERIOD: Duration = Duration::from_millis(50);

/// Checks `check` until it returns `Ok`, and returns its value; panics after `within` with the
/// last reason it gave. `what` names the condition for the panic message.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        let last = match tokio::time::timeout_at(deadline, check()).await {
            Ok(Ok(value)) => return value,
            Ok(Err(why)) => why,
            Err(_) => "the last check itself did not finish in time".to_string(),
        };
        if Instant::now() + POLL_PERIOD >= deadline {
            panic!("timed out after {within:?} waiting for {what}: {last}");
        }
        tokio::time::sleep(POLL_PERIOD).await;
    }
}

/// How long a test waits for one answer on a raw gRPC call or stream, which has no deadline of
/// its own ([`within`]).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(20);

/// `future`'s output, if it ends within [`ANSWER_WITHIN`]; else the test fails, naming `what`
/// (a raw stream's read, or a call made without the client library's deadlines, would
/// otherwise hang the test until the runner's own limit).
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(ANSWER_WITHIN, future)
        .await
        .unwrap_or_else(|_| panic!("no {what} within {ANSWER_WITHIN:?}"))
}
