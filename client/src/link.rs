//! The client's stream to one node (`Kv/Session`): the calls of `kv.v1.Kv` as numbered
//! messages on one long-lived stream (`proto::mux`), with the same methods and answers as the
//! unary calls, so that the library treats both alike.
//!
//! What a failed call means, for the caller's retry rules (`error.rs`):
//! - the stream could not connect: the request never left, `UNAVAILABLE` with "cannot
//!   connect" (a connect failure: safe to send elsewhere);
//! - the node said it stopped reading before the request (it is stopping: kv.proto
//!   `SessionClosing`): as above;
//! - the stream ended before the answer: the request may have been handled, `UNKNOWN` (for a
//!   request with effects the outcome is unknown);
//! - no answer in time: `DEADLINE_EXCEEDED` (likewise).

use std::sync::Arc;
use std::time::Duration;

use proto::kv::AbortRequest;
use proto::kv::AbortResponse;
use proto::kv::BeginRequest;
use proto::kv::BeginResponse;
use proto::kv::CommitRequest;
use proto::kv::CommitResponse;
use proto::kv::ReadRequest;
use proto::kv::ReadResponse;
use proto::kv::ScanRequest;
use proto::kv::ScanResponse;
use proto::kv::SessionError;
use proto::kv::SessionRequest;
use proto::kv::SessionResponse;
use proto::kv::TxnStatusRequest;
use proto::kv::TxnStatusResponse;
use proto::kv::WriteRequest;
use proto::kv::WriteResponse;
use proto::kv::kv_client::KvClient;
use proto::kv::session_request::Request as Call;
use proto::kv::session_response::Response as Answer;
use proto::mux::Mux;
use proto::mux::MuxError;
use proto::mux::Opener;
use tonic::Code;
use tonic::Response;
use tonic::Status;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::connector::MESSAGE_BYTES_MAX;
use crate::error::ABORT_REASON_KEY;
use crate::error::RETRYABLE_KEY;
use crate::error::is_connect_failure;
use crate::error::not_sent;

/// The session stream to one node.
pub struct KvLink {
    mux: Mux<SessionRequest, SessionResponse>,
    /// The longest a call waits (callers put their own, usually shorter, deadline around it).
    deadline: Duration,
}

macro_rules! call {
    ($name:ident, $request:ty, $response:ty, $variant:ident) => {
        #[doc = concat!("The `", stringify!($variant), "` call.")]
        pub async fn $name(&self, request: $request) -> Result<Response<$response>, Status> {
            match self.call(Call::$variant(request)).await? {
                Answer::$variant(answer) => Ok(Response::new(answer)),
                other => Err(Status::internal(format!("unexpected answer {other:?}"))),
            }
        }
    };
}

impl KvLink {
    /// The stream that `client` opens, each call waiting at most `deadline`.
    pub fn new(client: KvClient<Channel>, deadline: Duration) -> KvLink {
        let opener: Opener<SessionRequest, SessionResponse> = Arc::new(move |outbound| {
            let mut client = client.clone();
            Box::pin(async move { client.session(outbound).await.map(|r| r.into_inner()) })
        });
        let mux = Mux::new(opener, is_connect_failure).closing_on(read_through);
        KvLink { mux, deadline }
    }

    async fn call(&self, request: Call) -> Result<Answer, Status> {
        // Measured with the longest id it can carry (the mux sets the real one): an id of 0 is
        // not encoded at all, and a request within 11 bytes of the limit passed this check and
        // then failed in the stream (found by a review, 2026-12-07).
        let request = SessionRequest { id: u64::MAX, request: Some(request) };
        // Refused here, not sent: over the limit, its encoding would fail inside the stream
        // and end it, failing every call in flight on it with an unknown outcome.
        let bytes = prost::Message::encoded_len(&request);
        if bytes > MESSAGE_BYTES_MAX {
            return Err(Status::invalid_argument(format!(
                "the request is {bytes} bytes, over the {MESSAGE_BYTES_MAX}-byte message limit: not sent"
            )));
        }
        match self.mux.call(request, self.deadline).await {
            Ok(SessionResponse { response: Some(Answer::Error(error)), .. }) => {
                Err(status_of(error))
            }
            Ok(SessionResponse { response: Some(answer), .. }) => Ok(answer),
            Ok(SessionResponse { response: None, .. }) => {
                Err(Status::internal("a session response without an answer"))
            }
            Err(error @ MuxError::NotSent(_)) => Err(not_sent(error.to_string())),
            Err(error @ MuxError::Broken(_)) => Err(Status::unknown(error.to_string())),
            Err(error @ MuxError::Timeout(_)) => Err(Status::deadline_exceeded(error.to_string())),
        }
    }

    call!(begin, BeginRequest, BeginResponse, Begin);
    call!(read, ReadRequest, ReadResponse, Read);
    call!(write, WriteRequest, WriteResponse, Write);
    call!(scan, ScanRequest, ScanResponse, Scan);
    call!(commit, CommitRequest, CommitResponse, Commit);
    call!(abort, AbortRequest, AbortResponse, Abort);
    call!(txn_status, TxnStatusRequest, TxnStatusResponse, TxnStatus);
}

/// What a stopping node's last word on a stream says: it read no request above this id.
fn read_through(response: &SessionResponse) -> Option<u64> {
    match &response.response {
        Some(Answer::Closing(closing)) => Some(closing.read_through),
        _ => None,
    }
}

/// The status that the unary call would have returned.
pub fn status_of(error: SessionError) -> Status {
    let mut status = Status::new(Code::from_i32(error.code), error.message);
    if !error.abort_reason.is_empty()
        && let Ok(reason) = MetadataValue::try_from(error.abort_reason.as_str())
    {
        let metadata = status.metadata_mut();
        metadata.insert(ABORT_REASON_KEY, reason);
        let retryable = if error.retryable { "true" } else { "false" };
        metadata.insert(RETRYABLE_KEY, MetadataValue::from_static(retryable));
    }
    status
}
