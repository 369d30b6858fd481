//! Errors of the public API as gRPC statuses. The codes are a contract (`kv.proto`):
//!
//! | error                                  | code                 |
//! |----------------------------------------|----------------------|
//! | bad input (nothing changed)            | INVALID_ARGUMENT     |
//! | not allowed now (nothing changed)      | FAILED_PRECONDITION  |
//! | unknown transaction handle             | NOT_FOUND            |
//! | transaction aborted                    | ABORTED + metadata `kv-abort-reason`, `kv-retryable` |
//! | no answer in time / outcome unknown    | UNAVAILABLE          |

use tonic::Status;
use tonic::metadata::MetadataValue;
use txn::command::AbortReason;

use crate::coordinator::StatementError;

/// Metadata key naming the abort reason.
pub const ABORT_REASON_KEY: &str = "kv-abort-reason";
/// Metadata key saying whether a retry may succeed.
pub const RETRYABLE_KEY: &str = "kv-retryable";

/// An ABORTED status carrying the reason.
pub fn aborted(reason: AbortReason, detail: &str) -> Status {
    let mut status = Status::aborted(format!("{reason}: {detail}"));
    let metadata = status.metadata_mut();
    metadata.insert(ABORT_REASON_KEY, MetadataValue::from_static(reason.name()));
    metadata.insert(
        RETRYABLE_KEY,
        MetadataValue::from_static(if reason.is_retryable() { "true" } else { "false" }),
    );
    status
}

/// The status of a statement error.
pub fn to_status(error: StatementError) -> Status {
    match error {
        StatementError::Aborted { reason, detail } => aborted(reason, &detail),
        StatementError::Invalid(why) => Status::invalid_argument(why),
        StatementError::NotAllowed(why) => Status::failed_precondition(why),
        StatementError::NotFound(why) => Status::not_found(why),
        StatementError::Unavailable(why) => Status::unavailable(why),
        StatementError::TooOld(why) => Status::out_of_range(why),
    }
}

/// The proto enum value of an abort reason.
pub fn reason_to_proto(reason: AbortReason) -> proto::kv::AbortReason {
    use proto::kv::AbortReason as P;
    match reason {
        AbortReason::User => P::User,
        AbortReason::Deadlock => P::Deadlock,
        AbortReason::LockTimeout => P::LockTimeout,
        AbortReason::LeaderChanged => P::LeaderChanged,
        AbortReason::CoordinatorLost => P::CoordinatorLost,
        AbortReason::IdleTimeout => P::IdleTimeout,
        AbortReason::Unavailable => P::Unavailable,
        AbortReason::TooLarge => P::TooLarge,
        AbortReason::TooOld => P::TooOld,
    }
}
