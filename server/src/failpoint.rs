//! Pauses at chosen points of the commit protocol, for end-to-end tests that must kill a
//! coordinator at an exact moment (between the votes and the decision, or after the decision
//! and before phase 2).
//!
//! Set `KVD_PAUSE=<point>:<milliseconds>[,<point>:<milliseconds>...]` in a test's environment;
//! points: `before-decide`, `after-decide`. A pause only delays (it can never change an
//! outcome), so this seam is harmless if set by accident; nothing else reads it.
//!
//! `KVD_DISK_STALL=<file>` makes every durable commit wait while the file exists, as a disk
//! whose fsync hangs (`replication::store::writer::DISK_STALL_VAR`; the end-to-end test of the
//! stall check). It only delays writes, as a slow disk would.
//!
//! `KVD_PANIC=lock` makes the node panic when it is asked for a lock (a statement's), with the
//! shard's state lock held: the end-to-end test that a panic stops the node. `KVD_PANIC=initialize`
//! makes it panic at start-up just before it initializes its Raft groups (its identity already
//! saved): the test of a first start that dies there. A panic stops a node at once whatever
//! caused it, so this seam only crashes, as `kill -9` would.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

/// The environment variable naming the pauses.
pub const PAUSE_VAR: &str = "KVD_PAUSE";

fn pauses() -> &'static BTreeMap<String, Duration> {
    static PAUSES: OnceLock<BTreeMap<String, Duration>> = OnceLock::new();
    PAUSES.get_or_init(|| {
        let Ok(text) = std::env::var(PAUSE_VAR) else { return BTreeMap::new() };
        text.split(',')
            .filter_map(|item| {
                let (point, ms) = item.split_once(':')?;
                Some((point.trim().to_string(), Duration::from_millis(ms.trim().parse().ok()?)))
            })
            .collect()
    })
}

/// The environment variable naming the point where the node panics.
pub const PANIC_VAR: &str = "KVD_PANIC";

/// Panics if `KVD_PANIC` names `point`, holding what `hold` returns (a lock guard).
pub fn panic_at<T>(point: &str, hold: impl FnOnce() -> T) {
    static POINT: OnceLock<Option<String>> = OnceLock::new();
    let configured = POINT.get_or_init(|| std::env::var(PANIC_VAR).ok());
    if configured.as_deref() == Some(point) {
        let _held = hold();
        panic!("test failpoint {PANIC_VAR}={point}");
    }
}

/// Sleeps if a pause is configured for `point`.
pub async fn pause(point: &str) {
    if let Some(duration) = pauses().get(point) {
        tracing::warn!(point, ?duration, "pausing at a test failpoint");
        tokio::time::sleep(*duration).await;
    }
}
