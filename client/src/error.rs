//! The client library's errors, grouped by what the caller does next.
//!
//! | variant          | what happened                                  | what to do            |
//! |------------------|------------------------------------------------|-----------------------|
//! | `Aborted`        | the transaction aborted, nothing of it applied | retry if `retryable`  |
//! | `Invalid`        | bad input, nothing changed                     | fix the input         |
//! | `NotAllowed`     | not allowed in this state, nothing changed     | fix the program       |
//! | `NotFound`       | the transaction is not open (ended, expired)¹  | begin a new one       |
//! | `Unavailable`    | no node answered; nothing happened             | retry later           |
//! | `Unknown`        | a commit's outcome could not be learned        | ask `txn_status` later|
//!
//! ¹ A [`crate::Transaction`]'s statements never return `NotFound`: a transaction its
//! coordinator no longer knows (the node restarted, or forgot it after an abort) is returned as
//! `Aborted` `COORDINATOR_LOST`, retryable, and its commit asks `TxnStatus`.

use std::fmt;

use tonic::Code;
use tonic::Status;

/// Metadata key naming the abort reason (see `kv.proto`).
pub const ABORT_REASON_KEY: &str = "kv-abort-reason";
/// Metadata key saying whether a retry may succeed.
pub const RETRYABLE_KEY: &str = "kv-retryable";

/// A client library error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The transaction aborted; none of its writes is visible.
    Aborted {
        /// The reason's contract name (`DEADLOCK`, `LOCK_TIMEOUT`, ...).
        reason: String,
        /// For people.
        message: String,
        /// True when running the transaction again may succeed.
        retryable: bool,
    },
    /// Bad input; nothing changed.
    Invalid(String),
    /// Not allowed now; nothing changed.
    NotAllowed(String),
    /// No such open transaction.
    NotFound(String),
    /// No node answered in time; the request had no effect. (A statement of an open
    /// transaction that got no answer may have run, but its transaction is then aborted and
    /// can no longer commit: `Transaction` answers every later statement with that abort.)
    Unavailable(String),
    /// The outcome of a write or commit is unknown (it may or may not have applied).
    Unknown(String),
}

impl Error {
    /// True when running the whole transaction again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Aborted { retryable, .. } => *retryable,
            Error::Unavailable(_) => true,
            _ => false,
        }
    }

    /// The abort reason, for an abort.
    pub fn abort_reason(&self) -> Option<&str> {
        match self {
            Error::Aborted { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// Maps a gRPC status. `effect_possible` says whether the request could have taken effect
    /// if it got no answer (a write or commit that was sent): then silence is `Unknown`.
    pub fn from_status(status: Status, effect_possible: bool) -> Error {
        let message = status.message().to_string();
        match status.code() {
            Code::Aborted => {
                let metadata = status.metadata();
                let reason = metadata
                    .get(ABORT_REASON_KEY)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("UNKNOWN")
                    .to_string();
                let retryable =
                    metadata.get(RETRYABLE_KEY).and_then(|v| v.to_str().ok()) == Some("true");
                let message =
                    message.strip_prefix(&format!("{reason}: ")).unwrap_or(&message).to_string();
                Error::Aborted { reason, message, retryable }
            }
            Code::InvalidArgument | Code::OutOfRange => Error::Invalid(message),
            Code::FailedPrecondition => Error::NotAllowed(message),
            Code::NotFound => Error::NotFound(message),
            _ if is_connect_failure(&status) => Error::Unavailable(message),
            _ if effect_possible => Error::Unknown(message),
            _ => Error::Unavailable(message),
        }
    }
}

/// True when the request never reached a server: this client's transport could not connect.
/// tonic reports that as a [`tonic::ConnectError`] in the status's source chain, for real TCP
/// and for the simulation's connector alike ([`not_sent`] marks the same way a call whose
/// stream could not open). A status that a server sent has no source, whatever its message
/// says: an UNAVAILABLE answer may mean "outcome unknown" and mention a connection between
/// nodes ("node 2 unreachable: cannot connect ..."), which must never pass for "not sent"
/// (that would make a commit that may have applied look certainly failed). A connection reset
/// after sending is not UNAVAILABLE at all (tonic reports it as UNKNOWN or CANCELLED).
pub fn is_connect_failure(status: &Status) -> bool {
    if status.code() != Code::Unavailable {
        return false;
    }
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if error.is::<tonic::ConnectError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// The status of a call that never left this client (its stream could not connect):
/// UNAVAILABLE, and [`is_connect_failure`].
pub fn not_sent(why: String) -> Status {
    Status::from_error(Box::new(tonic::ConnectError(why.into())))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Aborted { reason, message, .. } if message.is_empty() => write!(f, "{reason}"),
            Error::Aborted { reason, message, .. } => write!(f, "{reason}: {message}"),
            Error::Invalid(message) | Error::NotAllowed(message) | Error::NotFound(message) => {
                f.write_str(message)
            }
            Error::Unavailable(message) => write!(f, "unavailable: {message}"),
            Error::Unknown(message) => write!(f, "outcome unknown: {message}"),
        }
    }
}

impl std::error::Error for Error {}
