//! `Kv/Session`: the calls of `kv.v1.Kv` on one long-lived stream (`proto::mux` has the
//! framing). Each request is handled by the same method as its unary call, in a task of its
//! own; an error becomes the `SessionError` that carries what the unary call's status would
//! have carried (code, message, abort reason, retryable), so that the two answer alike.
//! Transactions begun on a stream are aborted when it closes ([`SessionTxns`]).

use std::sync::Arc;
use std::sync::Weak;

use proto::kv::SessionClosing;
use proto::kv::SessionError;
use proto::kv::SessionRequest;
use proto::kv::SessionResponse;
use proto::kv::TxnHandle;
use proto::kv::kv_server::Kv;
use proto::kv::session_request::Request as Call;
use proto::kv::session_response::Response as Answer;
use tonic::Code;
use tonic::Request;
use tonic::Status;

use crate::api::kv_service::KvService;
use crate::api::kv_service::txn_id_of;
use crate::api::session_txns::SessionTxns;
use crate::api::status::ABORT_REASON_KEY;
use crate::api::status::RETRYABLE_KEY;
use crate::node::Node;

/// Handles one request of a session stream whose open transactions are `txns`: a transaction
/// begun here is registered there (one whose Commit or Abort arrived was unregistered when the
/// request was read, [`ends_txn`]; a Commit refused as bad input registers it again).
pub async fn handle(
    node: Arc<Node>,
    txns: Weak<SessionTxns>,
    request: SessionRequest,
) -> SessionResponse {
    let coordinator = node.coordinator().clone();
    let service = KvService::new(node);
    let begun = |handle: Option<&TxnHandle>| {
        if let Some(handle) = handle {
            SessionTxns::begun(&txns, &coordinator, txn_id_of(handle));
        }
    };
    let answer = match request.request {
        Some(Call::Begin(r)) => service.begin(Request::new(r)).await.map(|r| {
            let r = r.into_inner();
            begun(r.txn.as_ref());
            Answer::Begin(r)
        }),
        Some(Call::Read(r)) => service.read(Request::new(r)).await.map(|r| {
            let r = r.into_inner();
            begun(r.txn.as_ref());
            Answer::Read(r)
        }),
        Some(Call::Write(r)) => {
            service.write(Request::new(r)).await.map(|r| Answer::Write(r.into_inner()))
        }
        Some(Call::Scan(r)) => {
            service.scan(Request::new(r)).await.map(|r| Answer::Scan(r.into_inner()))
        }
        Some(Call::Commit(r)) => {
            let handle = r.txn;
            let mut request = Request::new(r);
            if handle.is_some() {
                request.extensions_mut().insert(crate::api::kv_service::EndCounted);
            }
            let committed = service.commit(request).await;
            // Refused as bad input, the transaction stays open: it is the stream's again,
            // unless another END of it was received meanwhile and may be running.
            if let (Err(status), Some(handle)) = (&committed, &handle)
                && matches!(status.code(), Code::InvalidArgument | Code::FailedPrecondition)
                && !coordinator.end_received(&txn_id_of(handle))
            {
                SessionTxns::begun(&txns, &coordinator, txn_id_of(handle));
            }
            committed.map(|r| Answer::Commit(r.into_inner()))
        }
        Some(Call::Abort(r)) => {
            service.abort(Request::new(r)).await.map(|r| Answer::Abort(r.into_inner()))
        }
        Some(Call::TxnStatus(r)) => {
            service.txn_status(Request::new(r)).await.map(|r| Answer::TxnStatus(r.into_inner()))
        }
        None => Err(Status::invalid_argument("a session request without a call")),
    };
    let response = answer.unwrap_or_else(|status| Answer::Error(error_of(&status)));
    SessionResponse { id: request.id, response: Some(response) }
}

/// What a unary call's status carries.
pub fn error_of(status: &Status) -> SessionError {
    let metadata = status.metadata();
    SessionError {
        code: status.code() as i32,
        message: status.message().to_string(),
        abort_reason: metadata
            .get(ABORT_REASON_KEY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        retryable: metadata.get(RETRYABLE_KEY).and_then(|v| v.to_str().ok()) == Some("true"),
    }
}

/// A stopping node's last word on a Session stream (kv.proto, `SessionClosing`): it read no
/// request above `read_through`, and the client sends those to another node.
pub fn closing(read_through: u64) -> SessionResponse {
    SessionResponse { id: 0, response: Some(Answer::Closing(SessionClosing { read_through })) }
}

/// The transaction a request ends (a Commit or Abort with a handle), if any. The stream's
/// reader unregisters it as it reads the request, before the request's task runs: a stream
/// that closes right after it (a client that sends END and exits) must not abandon what the
/// client has ended itself (a review found the unregistering inside the task raced the
/// abandon, 2026-12-05).
pub fn ends_txn(request: &SessionRequest) -> Option<txn::types::TxnId> {
    match &request.request {
        Some(Call::Abort(r)) => r.txn.as_ref().map(txn_id_of),
        _ => commits_txn(request),
    }
}

/// The transaction a Commit request ends, if it names one: the stream's reader counts its END
/// as received as it reads the request (`TxnEntry::ending`).
pub fn commits_txn(request: &SessionRequest) -> Option<txn::types::TxnId> {
    match &request.request {
        Some(Call::Commit(r)) => r.txn.as_ref().map(txn_id_of),
        _ => None,
    }
}
