//! One long-lived stream per pair of nodes for every message between them (`Peer.Mux`).
//!
//! ```text
//!   node a: Mux(b).call(kind, shard, payload) ─► Frame{id, kind, shard, payload} ─┐
//!                                                                                 │ one HTTP/2
//!   node a: the call's oneshot ◄── Frame{id, REPLY, payload} ◄── handler (spawned) ◄┘ stream
//! ```
//!
//! A unary gRPC call opens an HTTP/2 stream and sends headers, the message and trailers both
//! ways; under load that framing cost as much CPU as the Raft and transaction work it carried.
//! Here each node opens one bidirectional stream to each other node and sends every request on
//! it as a [`Frame`] with an id of its own choosing; the receiver handles each frame in a task
//! of its own and answers with a frame that repeats the id, in whatever order the handlers
//! finish. Messages that are ready together leave in one write.
//!
//! Invariants:
//! - A request's id is unique on its stream (a counter per stream), so a reply finds exactly
//!   the call that waits for it; a reply whose call gave up on its deadline finds nothing and
//!   is dropped.
//! - A call is registered as pending only while its stream is open: the stream's driver closes
//!   the stream and takes the pending calls under one lock, so a call never waits on a stream
//!   that will not answer; it fails at once as unreachable, and the next call opens a new
//!   stream.
//! - Every call has a deadline. A stream whose connection died is torn down by HTTP/2
//!   keep-alives (`client::connector`), which fails its pending calls.
//!
//! Pending calls are kept in id order (a `BTreeMap`), so that failing them all, when a stream
//! breaks, wakes them in the same order in every run of the simulation.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::channel::mpsc;
use proto::peer::Frame;
use proto::peer::Kind;
use proto::peer::peer_client::PeerClient;
use tokio::sync::oneshot;
use tokio::sync::watch;
use tonic::Status;
use tonic::Streaming;
use tonic::transport::Channel;

/// Why a call on a [`Mux`] got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    /// No answer within the deadline (the request may or may not have been handled).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The stream could not be opened, broke, or the receiver could not handle the request.
    #[error("{0}")]
    Unreachable(String),
}

/// The calling side of the stream to one node. Cheap to share; opens its stream lazily and
/// again after it breaks.
pub struct Mux {
    client: PeerClient<Channel>,
    stream: Mutex<Option<Arc<Stream>>>,
}

/// One open (or opening) stream. Dropping it (with the [`Mux`] and any call on it) ends the
/// requests, and so the stream once the last reply is in.
struct Stream {
    sender: mpsc::UnboundedSender<Frame>,
    calls: Arc<Calls>,
}

/// The calls waiting on a stream, shared with its driver.
struct Calls {
    state: Mutex<StreamState>,
}

struct StreamState {
    next_id: u64,
    pending: BTreeMap<u64, oneshot::Sender<Frame>>,
    /// Why the stream ended; once set, no call is registered on it.
    closed: Option<String>,
}

impl Mux {
    /// The stream to the node that `client` reaches.
    pub fn new(client: PeerClient<Channel>) -> Mux {
        Mux { client, stream: Mutex::new(None) }
    }

    /// Sends one request and waits for its reply's payload until `deadline` elapses.
    pub async fn call(
        &self,
        kind: Kind,
        shard: u32,
        payload: Bytes,
        deadline: Duration,
    ) -> Result<Bytes, MuxError> {
        let stream = self.open();
        let (id, answer) = {
            let mut state = stream.calls.state.lock().expect("mux stream lock");
            if let Some(why) = &state.closed {
                return Err(MuxError::Unreachable(why.clone()));
            }
            let id = state.next_id;
            state.next_id += 1;
            let (sender, answer) = oneshot::channel();
            state.pending.insert(id, sender);
            (id, answer)
        };
        let frame = Frame { id, kind: kind.into(), shard, payload, error: String::new() };
        if stream.sender.unbounded_send(frame).is_err() {
            stream.calls.forget(id);
            return Err(MuxError::Unreachable("stream closed".into()));
        }
        match tokio::time::timeout(deadline, answer).await {
            Err(_) => {
                stream.calls.forget(id);
                Err(MuxError::Timeout(deadline))
            }
            Ok(Err(_)) => Err(MuxError::Unreachable(stream.calls.why())),
            Ok(Ok(reply)) if !reply.error.is_empty() => Err(MuxError::Unreachable(reply.error)),
            Ok(Ok(reply)) => Ok(reply.payload),
        }
    }

    /// The current stream, or a new one if there is none or it has ended.
    fn open(&self) -> Arc<Stream> {
        let mut current = self.stream.lock().expect("mux lock");
        if let Some(stream) = current.as_ref()
            && stream.calls.state.lock().expect("mux stream lock").closed.is_none()
        {
            return stream.clone();
        }
        let (sender, outbound) = mpsc::unbounded();
        let calls = Arc::new(Calls {
            state: Mutex::new(StreamState { next_id: 1, pending: BTreeMap::new(), closed: None }),
        });
        tokio::spawn(drive(calls.clone(), self.client.clone(), outbound));
        let stream = Arc::new(Stream { sender, calls });
        *current = Some(stream.clone());
        stream
    }
}

impl Calls {
    fn forget(&self, id: u64) {
        self.state.lock().expect("mux stream lock").pending.remove(&id);
    }

    fn why(&self) -> String {
        let state = self.state.lock().expect("mux stream lock");
        state.closed.clone().unwrap_or_else(|| "stream closed".into())
    }

    /// Marks the stream ended and fails its pending calls (in id order).
    fn close(&self, why: String) {
        let pending = {
            let mut state = self.state.lock().expect("mux stream lock");
            state.closed = Some(why);
            std::mem::take(&mut state.pending)
        };
        drop(pending);
    }
}

/// Opens the stream and hands each reply to its call, until the stream ends.
async fn drive(
    calls: Arc<Calls>,
    mut client: PeerClient<Channel>,
    outbound: mpsc::UnboundedReceiver<Frame>,
) {
    let why = match client.mux(outbound).await {
        Err(status) => status.message().to_string(),
        Ok(response) => {
            let mut inbound = response.into_inner();
            loop {
                match inbound.message().await {
                    Ok(Some(reply)) => {
                        let waiting =
                            calls.state.lock().expect("mux stream lock").pending.remove(&reply.id);
                        if let Some(waiting) = waiting {
                            let _ = waiting.send(reply);
                        }
                    }
                    Ok(None) => break "stream ended by the receiver".to_string(),
                    Err(status) => break status.message().to_string(),
                }
            }
        }
    };
    calls.close(why);
}

/// What the receiving node does with one request: the reply's payload, or why it could not
/// handle the request at all.
pub type Handler = Arc<
    dyn Fn(Kind, u32, Bytes) -> Pin<Box<dyn Future<Output = Result<Bytes, String>> + Send>>
        + Send
        + Sync,
>;

/// The replies of a served stream.
pub type Replies = Pin<Box<dyn futures::Stream<Item = Result<Frame, Status>> + Send>>;

/// The receiving side of a stream: handles each request in a task of its own (so a slow one,
/// such as a prepare waiting for a lock, holds up no other) and streams the replies back, until
/// the caller ends the stream or `stopping` becomes true (the node is shutting down: its
/// callers then see the stream end, and their calls in flight fail as unreachable).
pub fn serve(
    mut inbound: Streaming<Frame>,
    handler: Handler,
    stopping: watch::Receiver<bool>,
) -> Replies {
    let (sender, replies) = mpsc::unbounded();
    let mut reader_stop = stopping.clone();
    tokio::spawn(async move {
        loop {
            let request = tokio::select! {
                biased;
                _ = reader_stop.wait_for(|stop| *stop) => break,
                request = inbound.message() => match request {
                    Ok(Some(request)) => request,
                    Ok(None) | Err(_) => break,
                },
            };
            let handler = handler.clone();
            let sender = sender.clone();
            tokio::spawn(async move {
                let id = request.id;
                let outcome = match Kind::try_from(request.kind) {
                    Ok(kind @ (Kind::Raft | Kind::Call)) => {
                        handler(kind, request.shard, request.payload).await
                    }
                    _ => Err(format!("unknown frame kind {}", request.kind)),
                };
                let (payload, error) = match outcome {
                    Ok(payload) => (payload, String::new()),
                    Err(error) => (Bytes::new(), error),
                };
                let reply = Frame { id, kind: Kind::Reply.into(), shard: 0, payload, error };
                let _ = sender.unbounded_send(Ok(reply));
            });
        }
    });
    let mut stopping = stopping;
    Box::pin(replies.take_until(async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    }))
}
