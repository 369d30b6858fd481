//! A record of single-key writes and what each key may read back as.
//!
//! A write acknowledged OK must be readable until a later write replaces it. A write that
//! failed with an outcome the client cannot know (`Unknown`, a timeout, a lost connection) may
//! or may not have applied, possibly later than the writes after it: its value stays
//! *acceptable* for the key forever, never *required* (the "unknown stays unknown" rule of
//! Jepsen histories). A final read must return the last acknowledged value or one of the
//! uncertain ones.

use std::collections::BTreeMap;
use std::time::Duration;

use client::Client;
use client::Error;

/// Deadline of one write attempt (the client's own deadlines are longer).
pub const WRITE_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(12);

/// What one key may read back as.
#[derive(Clone, Debug, Default)]
pub struct KeyHistory {
    /// The value of the last write acknowledged OK.
    pub acked: Option<String>,
    /// Values whose writes failed in a way that does not rule out that they applied.
    pub uncertain: Vec<String>,
}

impl KeyHistory {
    /// True when `read` is acceptable for this key.
    pub fn accepts(&self, read: Option<&str>) -> bool {
        match read {
            None => self.acked.is_none(),
            Some(value) => {
                self.acked.as_deref() == Some(value) || self.uncertain.iter().any(|u| u == value)
            }
        }
    }
}

/// Every key written and what it may read back as.
#[derive(Clone, Debug, Default)]
pub struct AckedWrites {
    keys: BTreeMap<String, KeyHistory>,
    /// Writes that failed (their outcome stays uncertain).
    pub failures: Vec<(String, String, String)>,
}

impl AckedWrites {
    /// An empty record.
    pub fn new() -> AckedWrites {
        AckedWrites::default()
    }

    /// The number of keys written.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The record of `key`.
    pub fn history(&self, key: &str) -> Option<&KeyHistory> {
        self.keys.get(key)
    }

    /// Adds another record's keys (written by another task; the key sets must not overlap).
    pub fn merge(&mut self, other: AckedWrites) {
        for (key, history) in other.keys {
            let previous = self.keys.insert(key.clone(), history);
            assert!(previous.is_none(), "{key} was written by two records");
        }
        self.failures.extend(other.failures);
    }

    /// The number of writes acknowledged OK so far, over all keys (the last per key).
    pub fn acked(&self) -> usize {
        self.keys.values().filter(|h| h.acked.is_some()).count()
    }

    /// Writes `key = value` once and records the outcome.
    pub async fn write(&mut self, client: &Client, key: &str, value: &str) -> Result<(), String> {
        let result = tokio::time::timeout(WRITE_ATTEMPT_TIMEOUT, client.put(key, value)).await;
        let history = self.keys.entry(key.to_string()).or_default();
        let why = match result {
            Ok(Ok(())) => {
                history.acked = Some(value.to_string());
                return Ok(());
            }
            // Bad input is certain to have changed nothing; the tests never send any here.
            Ok(Err(error @ Error::Invalid(_))) => {
                panic!("write {key}={value} was invalid: {error}")
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {WRITE_ATTEMPT_TIMEOUT:?}"),
        };
        history.uncertain.push(value.to_string());
        self.failures.push((key.to_string(), value.to_string(), why.clone()));
        Err(why)
    }

    /// Writes `key` until a write is acknowledged, each attempt with a fresh value
    /// (`{value}.{attempt}` after the first), within `within`.
    pub async fn write_until_acked(
        &mut self,
        client: &Client,
        key: &str,
        value: &str,
        within: Duration,
    ) {
        let deadline = tokio::time::Instant::now() + within;
        for attempt in 1.. {
            let value = if attempt == 1 { value.to_string() } else { format!("{value}.{attempt}") };
            let Err(why) = self.write(client, key, &value).await else { return };
            if tokio::time::Instant::now() >= deadline {
                panic!("no write of {key} was acknowledged within {within:?}; the last: {why}");
            }
            tokio::time::sleep(crate::poll::POLL_PERIOD).await;
        }
    }

    /// Reads every key back (retrying reads that fail, within `within` in all) and panics with
    /// every key whose value is not acceptable. Returns the number of keys checked.
    pub async fn verify(&self, client: &Client, within: Duration) -> usize {
        let mut wrong = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        for (key, history) in &self.keys {
            let read = loop {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                match tokio::time::timeout(left, client.get(key)).await {
                    Ok(Ok(value)) => break value,
                    Ok(Err(error)) if tokio::time::Instant::now() < deadline => {
                        eprintln!("reading {key} back failed, retrying: {error}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Ok(Err(error)) => panic!("reading {key} back failed: {error}"),
                    Err(_) => panic!("reading every key back took over {within:?}"),
                }
            };
            let read = read.map(|v| String::from_utf8_lossy(&v).into_owned());
            if !history.accepts(read.as_deref()) {
                wrong.push(format!("{key}: read {read:?}, expected {history:?}"));
            }
        }
        assert!(
            wrong.is_empty(),
            "{} of {} keys lost an acknowledged write:\n{}",
            wrong.len(),
            self.keys.len(),
            wrong.join("\n")
        );
        self.keys.len()
    }
}
