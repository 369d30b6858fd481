//! The node-to-node message stream (`Peer.Mux`): every Raft and transaction message from one
//! node to another as a numbered [`Frame`] on one long-lived stream (`proto::mux` has the
//! protocol and its invariants).
//!
//! ```text
//!   node a: PeerMux(b).call(kind, shard, payload) ─► Frame{id, kind, shard, payload} ─► node b
//!   node a: ◄── Frame{id, REPLY, payload | error} ◄── handler (a task per frame) ◄────────┘
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proto::mux;
use proto::mux::Mux;
use proto::peer::Frame;
use proto::peer::Kind;
use proto::peer::peer_client::PeerClient;
use tokio::sync::watch;
use tonic::Streaming;

pub use proto::mux::Replies;

use crate::handshake::PeerChannel;

/// Why a call to another node got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    /// No answer within the deadline (the request may or may not have been handled).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The stream could not be opened or broke, or the receiver could not handle the request.
    #[error("{0}")]
    Unreachable(String),
}

/// The stream to one node. Cheap to share; opens its stream lazily and again after it breaks.
pub struct PeerMux {
    mux: Mux<Frame, Frame>,
}

impl PeerMux {
    /// The stream to the node that `client` reaches.
    pub fn new(client: PeerClient<PeerChannel>) -> PeerMux {
        let opener: mux::Opener<Frame, Frame> = Arc::new(move |outbound| {
            let mut client = client.clone();
            Box::pin(async move { client.mux(outbound).await.map(|r| r.into_inner()) })
        });
        // Node-to-node messages are safe to lose or repeat at this layer (Raft and the
        // transaction protocol both are), so whether a request left does not matter here.
        PeerMux { mux: Mux::new(opener, |_| false) }
    }

    /// Sends one request and waits for its reply's payload until `deadline` elapses.
    pub async fn call(
        &self,
        kind: Kind,
        shard: u32,
        payload: Bytes,
        deadline: Duration,
    ) -> Result<Bytes, MuxError> {
        let frame = Frame { id: 0, kind: kind.into(), shard, payload, error: String::new() };
        match self.mux.call(frame, deadline).await {
            Err(mux::MuxError::Timeout(deadline)) => Err(MuxError::Timeout(deadline)),
            Err(other) => Err(MuxError::Unreachable(other.to_string())),
            Ok(reply) if !reply.error.is_empty() => Err(MuxError::Unreachable(reply.error)),
            Ok(reply) => Ok(reply.payload),
        }
    }
}

/// The receiving side of a stream from another node, until that node ends it or `stopping`
/// becomes true (see `proto::mux::serve`). `handler` answers each Raft or transaction request
/// with the reply's payload, or why it could not handle the request at all; a frame of another
/// kind is answered with an error without reaching it.
pub fn serve<H, F>(
    inbound: Streaming<Frame>,
    handler: H,
    stopping: watch::Receiver<bool>,
) -> Replies<Frame>
where
    H: Fn(Kind, u32, Bytes) -> F + Send + Sync + 'static,
    F: Future<Output = Result<Bytes, String>> + Send + 'static,
{
    let handle = move |request: Frame| {
        let handled = match Kind::try_from(request.kind) {
            Ok(kind @ (Kind::Raft | Kind::Call)) => {
                Ok(handler(kind, request.shard, request.payload))
            }
            _ => Err(format!("unknown frame kind {}", request.kind)),
        };
        async move {
            let outcome = match handled {
                Ok(handling) => handling.await,
                Err(error) => Err(error),
            };
            let (payload, error) = match outcome {
                Ok(payload) => (payload, String::new()),
                Err(error) => (Bytes::new(), error),
            };
            Frame { id: 0, kind: Kind::Reply.into(), shard: 0, payload, error }
        }
    };
    mux::serve(inbound, handle, stopping)
}
