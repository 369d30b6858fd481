//! An interactive transaction: every statement goes to its coordinator node.
//!
//! After the server aborts the transaction (a deadlock, a lock timeout...), every later
//! statement fails with the same abort until the transaction is ended. `commit` answers
//! COMMITTED or the abort; if the answer is lost it asks `TxnStatus` (which decides an undecided
//! transaction ABORTED) and reports [`Error::Unknown`] only if that fails too.

use proto::kv::AbortRequest;
use proto::kv::CommitRequest;
use proto::kv::ReadRequest;
use proto::kv::ScanRequest;
use proto::kv::TxnHandle;
use proto::kv::WriteRequest;

use crate::client::Client;
use crate::client::TxnOutcome;
use crate::error::Error;
use crate::mutation::Mutation;

/// What a successful commit returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// The commit timestamp (0 for a read-only transaction).
    pub commit_ts: u64,
}

/// An open interactive transaction.
pub struct Transaction {
    client: Client,
    addr: String,
    handle: TxnHandle,
    read_only: bool,
    home: Option<u32>,
    aborted: Option<Error>,
}

/// The contract name of a proto abort reason.
pub fn reason_name(reason: i32) -> &'static str {
    use proto::kv::AbortReason as R;
    match R::try_from(reason).unwrap_or(R::Unspecified) {
        R::User => "USER",
        R::Deadlock => "DEADLOCK",
        R::LockTimeout => "LOCK_TIMEOUT",
        R::LeaderChanged => "LEADER_CHANGED",
        R::CoordinatorLost => "COORDINATOR_LOST",
        R::IdleTimeout => "IDLE_TIMEOUT",
        R::Unavailable => "UNAVAILABLE",
        R::TooLarge => "TOO_LARGE",
        R::Unspecified => "UNKNOWN",
    }
}

impl Transaction {
    pub(crate) fn new(
        client: Client,
        addr: String,
        handle: TxnHandle,
        read_only: bool,
    ) -> Transaction {
        Transaction { client, addr, handle, read_only, home: None, aborted: None }
    }

    /// The transaction's handle.
    pub fn handle(&self) -> &TxnHandle {
        &self.handle
    }

    /// The shard of its record, once it wrote something.
    pub fn home_shard(&self) -> Option<u32> {
        self.home
    }

    /// The address of its coordinator.
    pub fn coordinator(&self) -> &str {
        &self.addr
    }

    /// True for a READ ONLY transaction.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The server abort that ended it, if any (statements fail until it is ended).
    pub fn abort_error(&self) -> Option<&Error> {
        self.aborted.as_ref()
    }

    fn check_open(&self) -> Result<(), Error> {
        match &self.aborted {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// Records a statement's failure: an abort (or a lost statement) ends the transaction.
    fn note(&mut self, error: Error) -> Error {
        match &error {
            Error::Aborted { .. } => self.aborted = Some(error.clone()),
            Error::Unavailable(message) | Error::Unknown(message) => {
                self.aborted = Some(Error::Aborted {
                    reason: "UNAVAILABLE".into(),
                    message: format!("a statement got no answer: {message}"),
                    retryable: true,
                });
            }
            _ => {}
        }
        error
    }

    async fn send<T, F, Fut>(&mut self, effect: bool, call: F) -> Result<T, Error>
    where
        F: FnOnce(std::sync::Arc<crate::link::KvLink>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.check_open()?;
        let kv = self.client.kv(&self.addr);
        match tokio::time::timeout(self.client.inner.timeout, call(kv)).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(self.note(Error::from_status(status, effect))),
            Err(_) => {
                Err(self.note(Error::Unavailable(format!("{} did not answer in time", self.addr))))
            }
        }
    }

    /// READ (a shared lock).
    pub async fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        self.read(key.as_ref(), false).await
    }

    /// READ under an exclusive lock, for a key the transaction will write (SQL's `SELECT ...
    /// FOR UPDATE`): two read-modify-writes of one key then queue at the read instead of
    /// deadlocking when both upgrade to write.
    pub async fn get_for_update(
        &mut self,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.read(key.as_ref(), true).await
    }

    async fn read(&mut self, key: &[u8], for_update: bool) -> Result<Option<Vec<u8>>, Error> {
        let request = ReadRequest {
            txn: Some(self.handle),
            key: key.to_vec().into(),
            consistency: 0,
            causal_token: self.client.token(),
            for_update,
        };
        let response = self.send(false, |kv| async move { kv.read(request).await }).await?;
        self.client.observe_token(response.causal_token);
        Ok(response.found.then(|| response.value.to_vec()))
    }

    /// WRITE (buffered at the coordinator until commit, under an exclusive lock).
    pub async fn put(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<(), Error> {
        self.write(key.as_ref(), Some(value.as_ref())).await
    }

    /// DELETE.
    pub async fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<(), Error> {
        self.write(key.as_ref(), None).await
    }

    async fn write(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), Error> {
        let request = WriteRequest {
            txn: Some(self.handle),
            key: key.to_vec().into(),
            value: value.unwrap_or_default().to_vec().into(),
            delete: value.is_none(),
            causal_token: 0,
        };
        let response = self.send(false, |kv| async move { kv.write(request).await }).await?;
        if self.home.is_none() {
            self.home = response.home_shard;
        }
        Ok(())
    }

    /// SCAN `[from, to)` (`to` empty: to the end), at most `limit` rows.
    pub async fn scan(
        &mut self,
        from: impl AsRef<[u8]>,
        to: impl AsRef<[u8]>,
        limit: Option<u32>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, Error> {
        let request = ScanRequest {
            txn: Some(self.handle),
            from: from.as_ref().to_vec().into(),
            to: to.as_ref().to_vec().into(),
            limit,
            consistency: 0,
            causal_token: self.client.token(),
        };
        let response = self.send(false, |kv| async move { kv.scan(request).await }).await?;
        self.client.observe_token(response.causal_token);
        Ok(response.rows.into_iter().map(|row| (row.key.to_vec(), row.value.to_vec())).collect())
    }

    /// END: commits, or reports the abort. A lost answer is settled through `TxnStatus`.
    pub async fn commit(self) -> Result<CommitInfo, Error> {
        self.commit_with(Vec::new()).await
    }

    /// END with the transaction's last writes: they are applied in order as if each had been
    /// a `put`/`delete` just before END, and their locks are taken as part of the commit, so
    /// the whole batch costs one round trip instead of one per write (see [`Mutation`]).
    /// Writes the server refuses (an empty or oversized key or value, a READ ONLY
    /// transaction, the transaction's size limit) change nothing: the transaction is then
    /// aborted and the error returned.
    pub async fn commit_with(self, writes: Vec<Mutation>) -> Result<CommitInfo, Error> {
        if let Some(error) = self.aborted.clone() {
            let _ = self.abort().await;
            return Err(error);
        }
        let first_key = writes.first().map(|write| write.key.clone());
        let writes = writes.iter().map(Mutation::to_proto).collect();
        let request = CommitRequest { txn: Some(self.handle), writes, causal_token: 0 };
        let kv = self.client.kv(&self.addr);
        let answer = tokio::time::timeout(self.client.inner.timeout, async move {
            let kv = kv;
            kv.commit(request).await
        })
        .await;
        let lost = match answer {
            Ok(Ok(response)) => {
                let response = response.into_inner();
                if response.outcome == proto::kv::Outcome::Committed as i32 {
                    self.client.observe_token(response.causal_token);
                    return Ok(CommitInfo { commit_ts: response.commit_ts });
                }
                let abort = response.abort.unwrap_or_default();
                return Err(Error::Aborted {
                    reason: reason_name(abort.reason).to_string(),
                    message: abort.message,
                    retryable: abort.retryable,
                });
            }
            Ok(Err(status)) => match Error::from_status(status, true) {
                Error::Unknown(message) | Error::Unavailable(message) => message,
                refused @ (Error::Invalid(_) | Error::NotAllowed(_)) => {
                    let _ = self.abort().await;
                    return Err(refused);
                }
                other => return Err(other),
            },
            Err(_) => format!("{} did not answer in time", self.addr),
        };
        // The outcome is unknown: ask the record, never guess, never re-run blindly. Writes
        // sent with END make the first one's shard the home if nothing was written before.
        let home = match (self.home, first_key) {
            (Some(home), _) => Some(home),
            (None, None) => None,
            (None, Some(key)) => match self.client.shard_of(&key).await {
                Ok(shard) => Some(shard),
                Err(error) => {
                    return Err(Error::Unknown(format!(
                        "{lost}; the home shard could not be learned either: {error}"
                    )));
                }
            },
        };
        match self.client.txn_status(&self.handle, home).await {
            Ok(TxnOutcome::Committed(commit_ts)) => {
                self.client.observe_token(commit_ts);
                Ok(CommitInfo { commit_ts })
            }
            Ok(TxnOutcome::Aborted { reason, message }) => {
                let retryable = reason != "USER" && reason != "TOO_LARGE";
                Err(Error::Aborted { reason, message, retryable })
            }
            Err(error) => Err(Error::Unknown(format!("{lost}; TxnStatus failed too: {error}"))),
        }
    }

    /// ABORT. Idempotent; errors are ignored when the transaction is already gone.
    pub async fn abort(self) -> Result<(), Error> {
        let request = AbortRequest { txn: Some(self.handle) };
        let kv = self.client.kv(&self.addr);
        match tokio::time::timeout(self.client.inner.timeout, kv.abort(request)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => match Error::from_status(status, false) {
                Error::NotFound(_) => Ok(()),
                other => Err(other),
            },
            Err(_) => Err(Error::Unavailable(format!("{} did not answer in time", self.addr))),
        }
    }
}
