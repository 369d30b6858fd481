//! `Kv/Session`: the calls of `kv.v1.Kv` on one long-lived stream (`proto::mux` has the
//! framing). Each request is handled by the same method as its unary call, in a task of its
//! own; an error becomes the `SessionError` that carries what the unary call's status would
//! have carried (code, message, abort reason, retryable), so that the two answer alike.

use std::sync::Arc;

use proto::kv::SessionError;
use proto::kv::SessionRequest;
use proto::kv::SessionResponse;
use proto::kv::kv_server::Kv;
use proto::kv::session_request::Request as Call;
use proto::kv::session_response::Response as Answer;
use tonic::Request;
use tonic::Status;

use crate::api::kv_service::KvService;
use crate::api::status::ABORT_REASON_KEY;
use crate::api::status::RETRYABLE_KEY;
use crate::node::Node;

/// Handles one request of a session stream.
pub async fn handle(node: Arc<Node>, request: SessionRequest) -> SessionResponse {
    let service = KvService::new(node);
    let answer = match request.request {
        Some(Call::Begin(r)) => {
            service.begin(Request::new(r)).await.map(|r| Answer::Begin(r.into_inner()))
        }
        Some(Call::Read(r)) => {
            service.read(Request::new(r)).await.map(|r| Answer::Read(r.into_inner()))
        }
        Some(Call::Write(r)) => {
            service.write(Request::new(r)).await.map(|r| Answer::Write(r.into_inner()))
        }
        Some(Call::Scan(r)) => {
            service.scan(Request::new(r)).await.map(|r| Answer::Scan(r.into_inner()))
        }
        Some(Call::Commit(r)) => {
            service.commit(Request::new(r)).await.map(|r| Answer::Commit(r.into_inner()))
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
