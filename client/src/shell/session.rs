//! Executing statements against a cluster: the state of one `kvsh` session.
//!
//! ```text
//!                BEGIN                  END / ABORT
//!   no txn ───────────────► open ───────────────────────► no txn
//!                            │ server abort (DEADLOCK, LOCK_TIMEOUT...):
//!                            │   that statement prints ABORTED: <reason>
//!                            ▼
//!                          aborted: every statement but END/ABORT prints
//!                          "ERROR: transaction aborted, end it with ABORT"
//! ```
//!
//! A BEGIN that fails or is cancelled, and a statement of an open transaction cancelled with
//! Ctrl-C (the transaction is then aborted, since the statement may still take effect), leave
//! the session in the same aborted state, with no transaction: the statements after them, up
//! to END or ABORT, were meant for that transaction, and must not run on their own as
//! one-statement transactions (a review found a script's `BEGIN; WRITE a 1; WRITE b 2; END`
//! applying `WRITE b 2` alone after Ctrl-C during `WRITE a 1`, or both after a refused BEGIN).
//! There END prints the abort again and ABORT prints OK.
//!
//! A statement that fails to parse never reaches here (the line changes nothing). Statements
//! outside BEGIN run as one-statement transactions. Every statement produces its result lines
//! (DESIGN.md §7) and says whether it failed, for the exit status of `-c`/`-f`.

use crate::client::Client;
use crate::client::Consistency as ClientConsistency;
use crate::client::TxnOutcome;
use crate::error::Error;
use crate::shell::format::COMMITTED;
use crate::shell::format::OK;
use crate::shell::format::format_aborted;
use crate::shell::format::format_error;
use crate::shell::format::format_scan;
use crate::shell::format::format_value;
use crate::shell::help::help_text;
use crate::shell::statement::Consistency;
use crate::shell::statement::Statement;
use crate::transaction::Transaction;
use proto::kv::TxnHandle;

/// What a statement printed and whether it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementOutput {
    /// The result (one line, or a block for SCAN, STATUS, LOCKS, HELP).
    pub text: String,
    /// True for `ERROR:` and `ABORTED:` results.
    pub failed: bool,
}

fn ok(text: impl Into<String>) -> StatementOutput {
    StatementOutput { text: text.into(), failed: false }
}

fn error(message: &str) -> StatementOutput {
    StatementOutput { text: format_error(message), failed: true }
}

/// A STATUS or LOCKS block: when no node answered, it ends with the failure's `ERROR:` line.
fn unanswered(block: String, answered: usize) -> StatementOutput {
    if answered > 0 {
        return ok(block);
    }
    let failure = format_error("no node answered");
    StatementOutput { text: format!("{block}\n{failure}"), failed: true }
}

/// The message every statement of a server-aborted transaction answers.
pub const TXN_ABORTED_MESSAGE: &str = "transaction aborted, end it with ABORT";

/// One shell session.
pub struct Session {
    client: Client,
    txn: Option<Transaction>,
    /// A transaction block that failed without a transaction to show it (a failed BEGIN, a
    /// cancelled statement): what END prints. Never set while `txn` is.
    failed_block: Option<StatementOutput>,
    /// The statement in progress, when cancelling it takes more than aborting the open
    /// transaction.
    in_flight: Option<InFlight>,
    /// A script's session (`-c`, `-f`, piped input; [`Session::script`]): a statement of an
    /// open transaction that was sent and failed fails the block (a line that does not parse
    /// changes nothing).
    script: bool,
}

/// What END prints for a script's block that failed ([`Session::script`]).
pub const SCRIPT_BLOCK_FAILED: &str = "USER a statement of the transaction failed, and a script's \
     transaction commits whole or not at all";

/// A statement in progress whose cancellation (Ctrl-C) needs handling of its own.
enum InFlight {
    /// BEGIN: cancelled, it fails its block like a refused one.
    Begin,
    /// A one-statement WRITE or DELETE: cancelled, its outcome is unknown.
    Write,
    /// END of the transaction with this handle and home shard: cancelled, it still learns its
    /// outcome through `TxnStatus`.
    End(TxnHandle, Option<u32>),
    /// STATUS or LOCKS: cancelled, nothing changed (an open transaction stays open).
    Diagnostic,
}

/// The result line of an error from the library.
fn render(failure: &Error) -> StatementOutput {
    match failure {
        Error::Aborted { reason, message, .. } => aborted(reason, message),
        other => error(&other.to_string()),
    }
}

/// The result line of an abort: `ABORTED: <reason> <message>`.
fn aborted(reason: &str, message: &str) -> StatementOutput {
    let text = if message.is_empty() { reason.to_string() } else { format!("{reason} {message}") };
    StatementOutput { text: format_aborted(&text), failed: true }
}

impl Session {
    /// A session over `client`.
    pub fn new(client: Client) -> Session {
        Session { client, txn: None, failed_block: None, in_flight: None, script: false }
    }

    /// A session that runs a script (`-c`, `-f`, piped input), where nobody reads an error
    /// before the next statement runs. A statement of an open transaction that was sent and
    /// failed, leaving it open (bad input, a write in a READ ONLY transaction), aborts the
    /// transaction: the rest of its block answers [`TXN_ABORTED_MESSAGE`] and END prints
    /// `ABORTED:`. Interactively such a transaction stays open, and END commits the statements
    /// that succeeded (the user saw the error). A line that does not parse changes nothing in
    /// either mode (issue 3's rule for the shell; earlier builds of 2026-12-07 failed a
    /// script's block on it too).
    pub fn script(client: Client) -> Session {
        Session { script: true, ..Session::new(client) }
    }

    /// Aborts the open transaction, unless the server did already (END prints that abort),
    /// and makes the rest of its block fail.
    async fn fail_block(&mut self) {
        if self.txn.as_ref().is_none_or(|txn| txn.abort_error().is_some()) {
            return;
        }
        let txn = self.txn.take().expect("an open transaction");
        self.failed_block =
            Some(StatementOutput { text: format_aborted(SCRIPT_BLOCK_FAILED), failed: true });
        let _ = txn.abort().await;
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// True while a transaction is open (the prompt shows it).
    pub fn in_transaction(&self) -> bool {
        self.txn.is_some() || self.failed_block.is_some()
    }

    /// Executes one statement.
    pub async fn execute(&mut self, statement: Statement) -> StatementOutput {
        // A BEGIN inside an open block fails it too (its END would otherwise commit the block
        // whose statements meant to be a transaction of their own: a review, 2026-12-07).
        let of_txn = matches!(
            statement,
            Statement::Read { .. }
                | Statement::Write { .. }
                | Statement::Delete { .. }
                | Statement::Scan { .. }
                | Statement::Begin { .. }
        );
        let output = self.execute_statement(statement).await;
        if output.failed && of_txn && self.script {
            self.fail_block().await;
        }
        output
    }

    async fn execute_statement(&mut self, statement: Statement) -> StatementOutput {
        if self.failed_block.is_some() {
            return match statement {
                Statement::End => self.failed_block.take().expect("a failed block"),
                Statement::Abort => {
                    self.failed_block = None;
                    ok(OK)
                }
                Statement::Help => ok(help_text()),
                _ => error(TXN_ABORTED_MESSAGE),
            };
        }
        if let Some(txn) = &self.txn
            && txn.abort_error().is_some()
            && !matches!(statement, Statement::End | Statement::Abort | Statement::Help)
        {
            return error(TXN_ABORTED_MESSAGE);
        }
        match statement {
            Statement::Begin { read_only } => self.begin(read_only).await,
            Statement::Read { key, for_update } => {
                // FOR UPDATE outside a transaction is a plain read: it ends at once.
                let result = match &mut self.txn {
                    Some(txn) if for_update => txn.get_for_update(&key).await,
                    Some(txn) => txn.get(&key).await,
                    None => self.client.get(&key).await,
                };
                match result {
                    Ok(value) => ok(format_value(value.as_deref())),
                    Err(failure) => render(&failure),
                }
            }
            Statement::Write { key, value } => self.write(key, Some(value)).await,
            Statement::Delete { key } => self.write(key, None).await,
            Statement::Scan { from, to, limit } => {
                let result = match &mut self.txn {
                    Some(txn) => txn.scan(&from, &to, limit).await,
                    None => self.client.scan(&from, &to, limit).await,
                };
                match result {
                    Ok(rows) => ok(format_scan(&rows)),
                    Err(failure) => render(&failure),
                }
            }
            Statement::End => match self.txn.take() {
                None => error("no transaction is open (BEGIN starts one)"),
                Some(txn) => {
                    self.in_flight =
                        txn.handle().map(|handle| InFlight::End(*handle, txn.home_shard()));
                    let committed = txn.commit().await;
                    self.in_flight = None;
                    match committed {
                        Ok(_) => ok(COMMITTED),
                        Err(failure) => render(&failure),
                    }
                }
            },
            Statement::Abort => match self.txn.take() {
                // Nothing to abort is not a failure: the contract's ABORT answers OK (as
                // PostgreSQL's ROLLBACK outside a transaction does), so a script may end with
                // ABORT whatever state it reached.
                None => ok(OK),
                Some(txn) => match txn.abort().await {
                    Ok(()) => ok(OK),
                    Err(failure) => render(&failure),
                },
            },
            Statement::SetConsistency(consistency) => {
                self.client.set_consistency(match consistency {
                    Consistency::Sequential => ClientConsistency::Sequential,
                    Consistency::Causal => ClientConsistency::Causal,
                });
                ok(OK)
            }
            Statement::ShowToken => ok(self.client.token().to_string()),
            Statement::SetToken(text) => match text.trim().parse::<u64>() {
                // A token from the far future is refused before the session keeps it (it
                // could not be taken back): the library checks it.
                Ok(token) => match self.client.import_token(token) {
                    Ok(()) => ok(OK),
                    Err(refused) => render(&refused),
                },
                Err(_) => error(&format!(
                    "a token is a non-negative integer (SHOW TOKEN prints one), got {text:?}"
                )),
            },
            // A block per node, each saying whether it answered; when none did, the block's
            // last line is the failure's `ERROR:` line (the contract's "failures -> ERROR:"),
            // and the statement counts as failed for the exit status of `-c`/`-f`.
            Statement::Status => {
                let (status, answered) = self.statuses().await;
                unanswered(status, answered)
            }
            Statement::Locks => {
                let (status, answered) = self.statuses().await;
                let lines: Vec<&str> = status
                    .lines()
                    .filter(|line| {
                        line.starts_with('[')
                            || line.starts_with("lock waits")
                            || line.starts_with("  t")
                    })
                    .collect();
                unanswered(lines.join("\n"), answered)
            }
            Statement::Help => ok(help_text()),
        }
    }

    /// Every node's STATUS block and how many answered (for STATUS and LOCKS): cancelled, it
    /// leaves an open transaction alone.
    async fn statuses(&mut self) -> (String, usize) {
        self.in_flight = Some(InFlight::Diagnostic);
        let statuses = self.client.status_all_answered().await;
        self.in_flight = None;
        statuses
    }

    async fn begin(&mut self, read_only: bool) -> StatementOutput {
        if self.txn.is_some() {
            return error("a transaction is already open (END or ABORT it first)");
        }
        self.in_flight = Some(InFlight::Begin);
        let begun =
            if read_only { self.client.begin_read_only().await } else { self.client.begin().await };
        self.in_flight = None;
        match begun {
            Ok(txn) => {
                self.txn = Some(txn);
                ok(OK)
            }
            Err(failure) => {
                let output = render(&failure);
                self.failed_block = Some(output.clone());
                output
            }
        }
    }

    async fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) -> StatementOutput {
        self.in_flight = self.txn.is_none().then_some(InFlight::Write);
        let result = match (&mut self.txn, value) {
            (Some(txn), Some(value)) => txn.put(&key, &value).await,
            (Some(txn), None) => txn.delete(&key).await,
            (None, Some(value)) => self.client.put(&key, &value).await,
            (None, None) => self.client.delete(&key).await,
        };
        self.in_flight = None;
        match result {
            Ok(()) => ok(OK),
            Err(failure) => render(&failure),
        }
    }

    /// Ends the session: aborts an open transaction and says so (None if none was open).
    pub async fn close(&mut self) -> Option<StatementOutput> {
        if self.failed_block.take().is_some() {
            return Some(error("input ended inside a transaction block that had failed"));
        }
        let txn = self.txn.take()?;
        let _ = txn.abort().await;
        Some(StatementOutput {
            text: format_aborted("the transaction was still open at the end of input"),
            failed: true,
        })
    }

    /// Abandons the statement in progress (Ctrl-C): an open transaction is aborted, since the
    /// statement may still take effect on the server. An END cannot be taken back once sent:
    /// its outcome is asked of the transaction's record instead (`TxnStatus`, which decides an
    /// undecided transaction ABORTED) and printed as END would have printed it. Before
    /// 2026-12-05 the shell said the outcome was unknown and forgot the handle that could learn
    /// it (found by a review).
    pub async fn cancel(&mut self) -> StatementOutput {
        let in_flight = self.in_flight.take();
        if let Some(InFlight::End(handle, home)) = in_flight {
            return match self.client.txn_status(&handle, home).await {
                Ok(TxnOutcome::Committed(commit_ts)) => {
                    self.client.observe_token(commit_ts);
                    ok(COMMITTED)
                }
                Ok(TxnOutcome::Aborted { reason, message, .. }) => aborted(&reason, &message),
                Err(failure) => error(&format!(
                    "END cancelled, and its outcome could not be learned: {failure}"
                )),
            };
        }
        if let Some(InFlight::Diagnostic) = in_flight {
            return error("statement cancelled");
        }
        match (self.txn.take(), in_flight) {
            (Some(txn), _) => {
                // The block fails before the abort is awaited: a second Ctrl-C may give the
                // wait up (the transaction's drop then sends the abort).
                self.failed_block = Some(StatementOutput {
                    text: format_aborted("USER statement cancelled"),
                    failed: true,
                });
                let _ = txn.abort().await;
                error("statement cancelled; the transaction was aborted")
            }
            // The block's statements were meant for the transaction BEGIN did not open: they
            // must not run on their own (until 2026-12-06 they did; found by a review). A
            // transaction the node began meanwhile is aborted with this session's stream, or
            // by the idle timeout.
            (None, Some(InFlight::Begin)) => {
                let output = error("BEGIN cancelled; no transaction is open");
                self.failed_block = Some(output.clone());
                output
            }
            (None, Some(InFlight::Write)) => {
                error("statement cancelled (a write's outcome is unknown)")
            }
            (None, _) => error("statement cancelled"),
        }
    }
}
