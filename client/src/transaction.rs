//! An interactive transaction: every statement goes to its coordinator node.
//!
//! A transaction begun with [`Client::begin_near`] is not begun yet: its first statement
//! begins it at its coordinator. A first READ carries the BEGIN (`ReadRequest.begin`, one
//! round trip for both); any other first statement sends BEGIN before itself. A first READ
//! that fails leaves nothing at the server (it aborts and forgets what it began); one whose
//! answer is lost may leave a transaction there that nobody holds the handle of, with the
//! READ's lock, until the coordinator's idle limit aborts it (as a crashed client's would).
//!
//! After the server aborts the transaction (a deadlock, a lock timeout...), every later
//! statement fails with the same abort until the transaction is ended. `commit` answers
//! COMMITTED or the abort; if the answer is lost it asks `TxnStatus` (which decides an undecided
//! transaction ABORTED) and reports [`Error::Unknown`] only if that fails too.
//!
//! A transaction dropped open once begun (never ended: an error returned early with `?`, a
//! future cancelled between statements) is aborted in the background, on the runtime it is
//! dropped in, so that its locks go at once rather than at the coordinator's idle limit (30 s
//! by default). One dropped during its END is not: the END may be committing it, and its
//! outcome is the record's. One dropped during the statement that would have begun it (its
//! handle not known yet), or while a panic unwinds, is left to the idle limit.

use proto::kv::AbortRequest;
use proto::kv::BeginRequest;
use proto::kv::CommitRequest;
use proto::kv::ReadRequest;
use proto::kv::ReadResponse;
use proto::kv::ScanRequest;
use proto::kv::TxnHandle;
use proto::kv::WriteRequest;

use crate::client::Client;
use crate::client::Consistency;
use crate::client::TxnOutcome;
use crate::client::UnknownHome;
use crate::error::Error;
use crate::error::is_connect_failure;
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
    /// `None` until the first statement of a transaction begun by `begin_near`.
    handle: Option<TxnHandle>,
    /// For a transaction not begun yet: the nodes to try next (last first) if `addr` cannot
    /// be reached at all.
    fallback: Vec<String>,
    read_only: bool,
    /// A causal READ ONLY transaction: it reads a snapshot and holds nothing, so a statement
    /// that got no answer leaves it open (kv.proto) and may be sent again.
    snapshot: bool,
    home: Option<u32>,
    aborted: Option<Error>,
    /// An END was sent: dropped now, the transaction is not aborted (the END settles it).
    ending: bool,
}

impl Drop for Transaction {
    /// Aborts a transaction dropped open, in the background (see the module docs). Outside a
    /// tokio runtime nothing can be sent: the coordinator's idle limit ends it.
    fn drop(&mut self) {
        // While a panic unwinds, nothing that could panic again (a poisoned lock).
        if self.ending || std::thread::panicking() {
            return;
        }
        let Some(handle) = self.handle.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let abort = self.send_abort(handle);
        runtime.spawn(async move {
            let _ = abort.await;
        });
    }
}

/// What an answer's `outcome` field says about a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Said {
    Committed,
    Aborted,
    /// A value this client does not know (unset, or a newer server's): it says nothing about
    /// the transaction, so the caller treats the outcome as unknown, never as aborted (an
    /// abort taken for granted is how a committed transaction gets run twice).
    Nothing,
}

/// What the proto `outcome` value says (see [`Said`]).
pub(crate) fn outcome_said(outcome: i32) -> Said {
    match proto::kv::Outcome::try_from(outcome) {
        Ok(proto::kv::Outcome::Committed) => Said::Committed,
        Ok(proto::kv::Outcome::Aborted) => Said::Aborted,
        Ok(proto::kv::Outcome::Unspecified) | Err(_) => Said::Nothing,
    }
}

/// The error of a Commit answered ABORTED, from its abort info.
pub(crate) fn aborted_error(abort: Option<proto::kv::AbortInfo>) -> Error {
    let abort = abort.unwrap_or_default();
    Error::Aborted {
        reason: reason_name(abort.reason).to_string(),
        message: abort.message,
        retryable: abort.retryable,
    }
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
        R::TooOld => "TOO_OLD",
        R::Unspecified => "UNKNOWN",
    }
}

impl Transaction {
    pub(crate) fn new(
        client: Client,
        addr: String,
        handle: TxnHandle,
        read_only: bool,
        snapshot: bool,
    ) -> Transaction {
        Transaction {
            client,
            addr,
            handle: Some(handle),
            fallback: Vec::new(),
            read_only,
            snapshot,
            home: None,
            aborted: None,
            ending: false,
        }
    }

    /// A read-write transaction that its first statement will begin at the first of `order`
    /// (at the next one while a node cannot be reached at all).
    pub(crate) fn deferred(client: Client, mut order: Vec<String>) -> Transaction {
        order.reverse();
        let addr = order.pop().expect("at least one node");
        Transaction {
            client,
            addr,
            handle: None,
            fallback: order,
            read_only: false,
            snapshot: false,
            home: None,
            aborted: None,
            ending: false,
        }
    }

    /// The transaction's handle; `None` before the first statement of a transaction begun
    /// with [`Client::begin_near`] (nothing exists at the server yet).
    pub fn handle(&self) -> Option<&TxnHandle> {
        self.handle.as_ref()
    }

    /// The handle, beginning the transaction at its coordinator first if it is not begun yet
    /// (at the next node of `begin_near`'s order while one cannot be reached at all).
    async fn begun(&mut self) -> Result<TxnHandle, Error> {
        if let Some(handle) = self.handle {
            return Ok(handle);
        }
        self.check_open()?;
        loop {
            let request = BeginRequest {
                read_only: false,
                consistency: Consistency::Sequential.to_proto(),
                causal_token: self.client.token(),
            };
            let kv = self.client.kv(&self.addr);
            let call = async move { kv.begin(request).await };
            let answer = self.awaiting(call).await;
            let error = match answer {
                Ok(Ok(response)) => {
                    let Some(handle) = response.into_inner().txn else {
                        return Err(
                            self.note(Error::Unavailable("BEGIN answered without a handle".into()))
                        );
                    };
                    self.handle = Some(handle);
                    return Ok(handle);
                }
                Ok(Err(status)) if self.fall_back(&status) => continue,
                Ok(Err(status)) => Error::from_status(status, false),
                Err(_) => Error::Unavailable(format!("{} did not answer in time", self.addr)),
            };
            return Err(self.note(error));
        }
    }

    /// Before anything of the transaction exists at a node: moves on to the next node of
    /// `begin_near`'s order when the chosen one could not be reached at all (`status` says
    /// that nothing was sent). False when the statement's error stands.
    fn fall_back(&mut self, status: &tonic::Status) -> bool {
        if self.handle.is_some() || !is_connect_failure(status) {
            return false;
        }
        match self.fallback.pop() {
            Some(next) => {
                self.addr = next;
                true
            }
            None => false,
        }
    }

    /// The shard of its record, once it wrote something with a statement (`put`, `delete`);
    /// writes sent with END ([`Transaction::commit_with`]) make the first one's shard the home
    /// of a transaction that wrote nothing before. For [`Client::txn_status`] after an END
    /// left unknown, the client that ran it remembers the home either way.
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

    /// Waits for a statement's answer (at most the client's timeout). Until it comes the
    /// transaction counts as ended by a lost statement: if the caller drops this future first
    /// (a timeout or `select!` around the statement), the statement may still run at the
    /// coordinator, so the transaction must commit nothing after it (`commit` then aborts it).
    /// Called with the transaction open (after `check_open`).
    async fn awaiting<T>(
        &mut self,
        call: impl std::future::Future<Output = T>,
    ) -> Result<T, tokio::time::error::Elapsed> {
        debug_assert!(self.aborted.is_none(), "a statement of an ended transaction");
        if self.snapshot {
            // Nothing held: a statement given up leaves the transaction open (`note`).
            return tokio::time::timeout(self.client.inner.timeout, call).await;
        }
        self.aborted = Some(Error::Aborted {
            reason: "UNAVAILABLE".into(),
            message: "a statement was given up before its answer came".into(),
            retryable: true,
        });
        let answer = tokio::time::timeout(self.client.inner.timeout, call).await;
        self.aborted = None;
        answer
    }

    fn check_open(&self) -> Result<(), Error> {
        match &self.aborted {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// Records a statement's failure: an abort (or a lost statement) ends the transaction. A
    /// transaction its coordinator does not know (NotFound: the node restarted, or forgot it
    /// after an idle abort) is gone with nothing of it applied, since this handle never ended
    /// it: that is the abort COORDINATOR_LOST, retryable, and so it is returned (until
    /// 2026-12-06 a bare NotFound, which `Client::transaction` did not retry and the shell
    /// printed as an error with the transaction still open; found by a review). A statement of
    /// a snapshot transaction that got no answer leaves it open: it holds nothing (kv.proto).
    fn note(&mut self, error: Error) -> Error {
        let error = match error {
            Error::NotFound(message) => Error::Aborted {
                reason: "COORDINATOR_LOST".into(),
                message: format!("its coordinator no longer knows the transaction: {message}"),
                retryable: true,
            },
            other => other,
        };
        match &error {
            Error::Aborted { .. } => self.aborted = Some(error.clone()),
            Error::Unavailable(message) | Error::Unknown(message) if !self.snapshot => {
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
        match self.awaiting(call(kv)).await {
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
        let begin = self.handle.is_none();
        let request = ReadRequest {
            txn: self.handle,
            key: key.to_vec().into(),
            consistency: 0,
            causal_token: self.client.token(),
            for_update,
            begin,
        };
        let response = if begin {
            self.begin_and_read(request).await?
        } else {
            self.send(false, |kv| async move { kv.read(request).await }).await?
        };
        self.client.observe_token(response.causal_token);
        Ok(response.found.then(|| response.value.to_vec()))
    }

    /// The first READ of a transaction not begun yet, carrying its BEGIN: sent to the
    /// coordinator chosen, or to the next node while one cannot be reached at all (nothing
    /// was sent, so nothing began there). Any other failure ends the attempt as a failed
    /// statement does, with the same errors (a READ has no outcome to be unknown): an answer
    /// from the node means it aborted and forgot what it began; a lost answer may leave a
    /// transaction there until the idle limit. On success the transaction has its handle.
    async fn begin_and_read(&mut self, request: ReadRequest) -> Result<ReadResponse, Error> {
        self.check_open()?;
        loop {
            let kv = self.client.kv(&self.addr);
            let attempt = request.clone();
            let call = async move { kv.read(attempt).await };
            let answer = self.awaiting(call).await;
            let error = match answer {
                Ok(Ok(response)) => {
                    let response = response.into_inner();
                    let Some(handle) = response.txn else {
                        return Err(self.note(Error::Unavailable(format!(
                            "{} answered a READ with BEGIN without a transaction handle",
                            self.addr
                        ))));
                    };
                    self.handle = Some(handle);
                    self.client.learn_leader(&request.key, response.leader);
                    return Ok(response);
                }
                Ok(Err(status)) if self.fall_back(&status) => continue,
                Ok(Err(status)) => Error::from_status(status, false),
                Err(_) => Error::Unavailable(format!("{} did not answer in time", self.addr)),
            };
            return Err(self.note(error));
        }
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
        let handle = self.begun().await?;
        let request = WriteRequest {
            txn: Some(handle),
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
        let handle = self.begun().await?;
        let request = ScanRequest {
            txn: Some(handle),
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
    pub async fn commit_with(mut self, writes: Vec<Mutation>) -> Result<CommitInfo, Error> {
        if let Some(error) = self.aborted.clone() {
            let _ = self.abort().await;
            return Err(error);
        }
        let handle = match self.handle {
            Some(handle) => handle,
            // Never begun and nothing to write: an empty transaction, committed as such.
            None if writes.is_empty() => return Ok(CommitInfo { commit_ts: 0 }),
            None => self.begun().await?,
        };
        // From here the END settles the transaction: not aborted when dropped (see the module
        // docs); `self.ending` tells `Drop` so.
        self.ending = true;
        let first_key = writes.first().map(|write| write.key.clone());
        let writes = writes.iter().map(Mutation::to_proto).collect();
        // The token: the commit goes above what the session saw since BEGIN (another
        // session's reads it imported, its own one-statement reads meanwhile).
        let token = self.client.token();
        let request = CommitRequest { txn: Some(handle), writes, causal_token: token };
        let kv = self.client.kv(&self.addr);
        let answer = tokio::time::timeout(self.client.inner.timeout, async move {
            let kv = kv;
            kv.commit(request).await
        })
        .await;
        let lost = match answer {
            Ok(Ok(response)) => {
                let response = response.into_inner();
                match outcome_said(response.outcome) {
                    Said::Committed => {
                        self.client.observe_token(response.causal_token);
                        return Ok(CommitInfo { commit_ts: response.commit_ts });
                    }
                    Said::Aborted => {
                        return Err(aborted_error(response.abort));
                    }
                    Said::Nothing => {
                        format!(
                            "{} answered an outcome this client does not know ({})",
                            self.addr, response.outcome
                        )
                    }
                }
            }
            // NotFound: the coordinator does not know the transaction (restarted, or forgot
            // it): the record tells whether anything committed, as for a lost answer.
            Ok(Err(status)) => match Error::from_status(status, true) {
                Error::Unknown(message)
                | Error::Unavailable(message)
                | Error::NotFound(message) => message,
                refused @ (Error::Invalid(_) | Error::NotAllowed(_)) => {
                    self.ending = false;
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
                    self.client.remember_unknown_home(&handle, UnknownHome::ShardOf(key));
                    return Err(Error::Unknown(format!(
                        "{lost}; the home shard could not be learned either: {error}"
                    )));
                }
            },
        };
        match self.client.txn_status(&handle, home).await {
            Ok(TxnOutcome::Committed(commit_ts)) => {
                self.client.observe_token(commit_ts);
                Ok(CommitInfo { commit_ts })
            }
            // The node's word on retrying, as for an abort END answered (until 2026-12-07 it
            // was worked out here from the reason's name, and a reason this client did not
            // know counted as retryable on this path only; found by a review).
            Ok(TxnOutcome::Aborted { reason, message, retryable }) => {
                Err(Error::Aborted { reason, message, retryable })
            }
            Err(error) => {
                // Kept for the `txn_status(handle, None)` that `Error::Unknown` invites: a
                // home that came from these writes is known to no one else.
                if let Some(home) = home {
                    self.client.remember_unknown_home(&handle, UnknownHome::Shard(home));
                }
                Err(Error::Unknown(format!("{lost}; TxnStatus failed too: {error}")))
            }
        }
    }

    /// The ABORT request of `handle` to the coordinator, within the client's timeout (owning
    /// what it needs, so that `Drop` can send it from a task of its own).
    fn send_abort(
        &self,
        handle: TxnHandle,
    ) -> impl std::future::Future<
        Output = Result<
            Result<tonic::Response<proto::kv::AbortResponse>, tonic::Status>,
            tokio::time::error::Elapsed,
        >,
    > + Send
    + 'static {
        let kv = self.client.kv(&self.addr);
        let deadline = self.client.inner.timeout;
        async move {
            let request = AbortRequest { txn: Some(handle) };
            tokio::time::timeout(deadline, kv.abort(request)).await
        }
    }

    /// ABORT. Idempotent; errors are ignored when the transaction is already gone.
    pub async fn abort(mut self) -> Result<(), Error> {
        // Never begun: nothing exists at the server.
        let Some(handle) = self.handle else { return Ok(()) };
        let answer = self.send_abort(handle).await;
        // Answered: not aborted again when dropped. (Dropped before this, `Drop` sends it.)
        self.handle = None;
        match answer {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => match Error::from_status(status, false) {
                Error::NotFound(_) => Ok(()),
                other => Err(other),
            },
            Err(_) => Err(Error::Unavailable(format!("{} did not answer in time", self.addr))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_the_client_does_not_know_says_nothing() {
        assert_eq!(outcome_said(proto::kv::Outcome::Committed as i32), Said::Committed);
        assert_eq!(outcome_said(proto::kv::Outcome::Aborted as i32), Said::Aborted);
        // Unset, or a value a newer server may add: never taken as aborted.
        assert_eq!(outcome_said(proto::kv::Outcome::Unspecified as i32), Said::Nothing);
        assert_eq!(outcome_said(7), Said::Nothing);
        assert_eq!(outcome_said(-1), Said::Nothing);
    }
}
