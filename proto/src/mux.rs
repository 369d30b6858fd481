//! Many calls on one long-lived gRPC stream: the framing of `peer.v1.Peer/Mux` (node to node)
//! and `kv.v1.Kv/Session` (client to node).
//!
//! ```text
//!   caller: Mux::call(request) ── request{id} ──► one HTTP/2 stream ──► serve: handler (a task each)
//!   caller: the call's oneshot ◄── reply{id} ◄── (any order) ◄──────────────────┘
//! ```
//!
//! A unary gRPC call opens an HTTP/2 stream and sends headers, the message and trailers both
//! ways; under load that framing cost as much CPU as the work it carried. Here a caller opens
//! one bidirectional stream and sends every request on it with an id of its own choosing; the
//! receiver handles each request in a task of its own and answers with a message that repeats
//! the id, in whatever order the handlers finish. Messages that are ready together leave in one
//! write.
//!
//! Invariants:
//! - A request's id is unique on its stream (a counter per stream, from 1: id 0 is the
//!   receiver's closing word, and a request with id 0 ends the stream), so a reply finds exactly
//!   the call that waits for it; a reply whose call is gone (deadline, caller dropped) finds
//!   nothing and is dropped.
//! - A call is registered only while its stream is open: the stream's driver marks the stream
//!   ended and takes the pending calls under one lock, so a call never waits on a stream that
//!   will not answer. It fails at once, and the next call opens a new stream.
//! - A call learns whether its request surely was never handled ([`MuxError::NotSent`]: the
//!   stream could not connect, or ended before the request was queued, or the receiver said it
//!   stopped reading before it) or may have been handled
//!   ([`MuxError::Broken`], [`MuxError::Timeout`]); a caller that must not repeat a request
//!   with effects relies on the difference.
//! - Requests go out on their stream in id order (an id is taken and its request queued under
//!   one lock), so a receiver that stops reading can say which it never read by one number:
//!   the highest id it read ([`serve_bounded`]'s `closing`, [`Mux::closing_on`]). Every call
//!   above it fails as [`MuxError::NotSent`]; only those it read can end unknown.
//! - Pending calls are kept in id order (a `BTreeMap`), so that failing them all when a stream
//!   breaks wakes them in the same order in every run of the simulation.
//! - A request whose call has given up (deadline, caller dropped) before the stream took it
//!   is not sent ([`Outbound`]): the caller already treats it as maybe handled, and a
//!   receiver that fell behind would otherwise work through requests nobody waits for.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::Semaphore;
use tokio::sync::oneshot;
use tokio::sync::watch;
use tonic::Status;
use tonic::Streaming;

/// A message of a multiplexed stream: it carries the id of its call.
pub trait Numbered: Send + 'static {
    /// The call's id.
    fn id(&self) -> u64;
    /// Sets the call's id (on a request, before it is sent).
    fn set_id(&mut self, id: u64);
}

/// Why a call on a [`Mux`] got no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MuxError {
    /// No answer within the deadline (the request may or may not have been handled).
    Timeout(Duration),
    /// The request was never handled: the stream could not connect, or had ended before the
    /// request was queued on it, or the receiver said it stopped reading before the request
    /// ([`Mux::closing_on`]).
    NotSent(String),
    /// The stream ended before the answer: the request may or may not have been handled.
    Broken(String),
}

impl std::fmt::Display for MuxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MuxError::Timeout(deadline) => write!(f, "no answer within {deadline:?}"),
            MuxError::NotSent(why) => write!(f, "not sent: {why}"),
            MuxError::Broken(why) => write!(f, "stream ended before the answer: {why}"),
        }
    }
}

impl std::error::Error for MuxError {}

/// The requests of a stream, in the order they are to be sent, but those whose calls have
/// given up by the time the stream takes them (see the module's invariants).
pub struct Outbound<Req, Resp> {
    requests: mpsc::UnboundedReceiver<Req>,
    calls: std::sync::Weak<Calls<Resp>>,
}

impl<Req: Numbered, Resp> futures::Stream for Outbound<Req, Resp> {
    type Item = Req;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Req>> {
        loop {
            match self.requests.poll_next_unpin(cx) {
                std::task::Poll::Ready(Some(request)) if !self.waited_for(&request) => {}
                other => return other,
            }
        }
    }
}

impl<Req: Numbered, Resp> Outbound<Req, Resp> {
    fn waited_for(&self, request: &Req) -> bool {
        self.calls.upgrade().is_some_and(|calls| calls.is_pending(request.id()))
    }
}

/// Opens the stream: sends the requests that `outbound` yields, returns the replies.
pub type Opener<Req, Resp> = Arc<
    dyn Fn(
            Outbound<Req, Resp>,
        ) -> Pin<Box<dyn Future<Output = Result<Streaming<Resp>, Status>> + Send>>
        + Send
        + Sync,
>;

/// Tells whether a failure to open a stream means it never connected (so no request left).
pub type ConnectFailure = fn(&Status) -> bool;

/// The calling side of the stream to one receiver. Cheap to share; opens its stream lazily and
/// again after it breaks.
pub struct Mux<Req, Resp> {
    opener: Opener<Req, Resp>,
    connect_failure: ConnectFailure,
    /// Reads a stopping receiver's last word (see [`Mux::closing_on`]).
    closing: Option<fn(&Resp) -> Option<u64>>,
    stream: Mutex<Option<Arc<Stream<Req, Resp>>>>,
}

/// One open (or opening) stream. Dropping it (with the [`Mux`] and any call on it) ends the
/// requests, and so the stream once the last reply is in.
struct Stream<Req, Resp> {
    sender: mpsc::UnboundedSender<Req>,
    calls: Arc<Calls<Resp>>,
}

/// The calls waiting on a stream, shared with its driver.
struct Calls<Resp> {
    state: Mutex<CallsState<Resp>>,
}

struct CallsState<Resp> {
    next_id: u64,
    pending: BTreeMap<u64, oneshot::Sender<Result<Resp, MuxError>>>,
    /// How the stream ended; once set, no call is registered on it.
    ended: Option<MuxError>,
}

/// Forgets a pending call when its future completes or is dropped (deadline, caller gone).
struct Registered<'a, Resp> {
    calls: &'a Calls<Resp>,
    id: u64,
}

impl<Resp> Drop for Registered<'_, Resp> {
    fn drop(&mut self) {
        self.calls.state.lock().expect("mux lock").pending.remove(&self.id);
    }
}

impl<Req: Numbered, Resp: Numbered> Mux<Req, Resp> {
    /// A multiplexer whose streams `opener` opens; `connect_failure` classifies open errors.
    pub fn new(opener: Opener<Req, Resp>, connect_failure: ConnectFailure) -> Mux<Req, Resp> {
        Mux { opener, connect_failure, closing: None, stream: Mutex::new(None) }
    }

    /// Reads with `closing` each message of the receiver that answers no call (id 0): when it
    /// gives `Some(read_through)`, the receiver is stopping and read no request with a higher id
    /// (`serve_bounded`'s `closing`). The calls above it fail at once as
    /// [`MuxError::NotSent`], their callers free to send them elsewhere; the calls it read
    /// still get their replies; and the next call opens a new stream, which a stopping receiver
    /// closes at once or cannot accept.
    pub fn closing_on(mut self, closing: fn(&Resp) -> Option<u64>) -> Mux<Req, Resp> {
        self.closing = Some(closing);
        self
    }

    /// Sends one request and waits for its reply until `deadline` elapses.
    pub async fn call(&self, mut request: Req, deadline: Duration) -> Result<Resp, MuxError> {
        let stream = self.open();
        let (id, answer) = {
            let mut state = stream.calls.state.lock().expect("mux lock");
            if let Some(ended) = &state.ended {
                // It ended between `open` and here: this request was never queued on it.
                return Err(MuxError::NotSent(format!("the stream had ended ({ended})")));
            }
            let id = state.next_id;
            request.set_id(id);
            // Queued under the lock that took the id: requests go out in id order.
            if stream.sender.unbounded_send(request).is_err() {
                // The stream dropped its queue before taking this request (found by a review,
                // 2026-12-07: reported as maybe handled, a client's write answered "unknown").
                return Err(MuxError::NotSent(
                    "the stream closed before the request was queued".into(),
                ));
            }
            state.next_id += 1;
            let (sender, answer) = oneshot::channel();
            state.pending.insert(id, sender);
            (id, answer)
        };
        let _registered = Registered { calls: &stream.calls, id };
        match tokio::time::timeout(deadline, answer).await {
            Err(_) => Err(MuxError::Timeout(deadline)),
            Ok(Err(_)) => Err(MuxError::Broken("stream closed".into())),
            Ok(Ok(outcome)) => outcome,
        }
    }

    /// The current stream, or a new one if there is none or it has ended.
    fn open(&self) -> Arc<Stream<Req, Resp>> {
        let mut current = self.stream.lock().expect("mux lock");
        if let Some(stream) = current.as_ref()
            && stream.calls.ended().is_none()
        {
            return stream.clone();
        }
        let (sender, outbound) = mpsc::unbounded();
        let calls = Arc::new(Calls {
            state: Mutex::new(CallsState { next_id: 1, pending: BTreeMap::new(), ended: None }),
        });
        let outbound = Outbound { requests: outbound, calls: Arc::downgrade(&calls) };
        let opening = (self.opener)(outbound);
        tokio::spawn(drive(calls.clone(), opening, self.connect_failure, self.closing));
        let stream = Arc::new(Stream { sender, calls });
        *current = Some(stream.clone());
        stream
    }
}

impl<Resp> Calls<Resp> {
    fn is_pending(&self, id: u64) -> bool {
        self.state.lock().expect("mux lock").pending.contains_key(&id)
    }

    fn ended(&self) -> Option<MuxError> {
        self.state.lock().expect("mux lock").ended.clone()
    }

    /// Marks the stream ended and fails its pending calls (in id order).
    fn end(&self, how: MuxError) {
        let pending = {
            let mut state = self.state.lock().expect("mux lock");
            state.ended.get_or_insert(how.clone());
            std::mem::take(&mut state.pending)
        };
        for (_, waiting) in pending {
            let _ = waiting.send(Err(how.clone()));
        }
    }

    /// The receiver is stopping and read no request above `read_through`: no call is registered
    /// on the stream any more, and those above it fail as never sent (in id order). The others
    /// wait for their replies.
    fn close(&self, read_through: u64) {
        let unread = {
            let mut state = self.state.lock().expect("mux lock");
            let why = "the receiver stopped reading before it";
            state.ended.get_or_insert(MuxError::NotSent(why.into()));
            state.pending.split_off(&read_through.saturating_add(1))
        };
        for (_, waiting) in unread {
            let why = format!("the receiver is stopping and read up to request {read_through}");
            let _ = waiting.send(Err(MuxError::NotSent(why)));
        }
    }
}

/// Opens the stream and hands each reply to its call, until the stream ends.
async fn drive<Resp: Numbered>(
    calls: Arc<Calls<Resp>>,
    opening: Pin<Box<dyn Future<Output = Result<Streaming<Resp>, Status>> + Send>>,
    connect_failure: ConnectFailure,
    closing: Option<fn(&Resp) -> Option<u64>>,
) {
    let how = match opening.await {
        Err(status) if connect_failure(&status) => MuxError::NotSent(status.message().into()),
        Err(status) => MuxError::Broken(status.message().into()),
        Ok(mut inbound) => loop {
            match inbound.message().await {
                Ok(Some(reply)) if reply.id() == 0 => {
                    if let Some(read_through) = closing.and_then(|closing| closing(&reply)) {
                        calls.close(read_through);
                    }
                }
                Ok(Some(reply)) => {
                    let waiting = calls.state.lock().expect("mux lock").pending.remove(&reply.id());
                    if let Some(waiting) = waiting {
                        let _ = waiting.send(Ok(reply));
                    }
                }
                Ok(None) => break MuxError::Broken("stream ended by the receiver".into()),
                Err(status) => break MuxError::Broken(status.message().into()),
            }
        },
    };
    calls.end(how);
}

/// How long a stopping receiver, which reads no more requests, still sends the replies of
/// those it read; replies after that are not sent, and their callers see the stream end.
pub const STOP_GRACE: Duration = Duration::from_secs(1);

/// The replies of a served stream.
pub type Replies<Resp> = Pin<Box<dyn futures::Stream<Item = Result<Resp, Status>> + Send>>;

/// Whether the receiver is stopping: `stop` is true, or its sender is gone (as
/// [`unless_stopped`] takes it).
fn stop_seen(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// What `work` gives, or `None` if `stop` becomes true (or its sender goes) first.
async fn unless_stopped<T>(
    stop: &mut watch::Receiver<bool>,
    work: impl Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        biased;
        _ = stop.wait_for(|stop| *stop) => None,
        output = work => Some(output),
    }
}

/// A stopping receiver's last word on a stream, given the highest request id it read (see
/// [`serve_bounded`]).
pub type Closing<Resp> = Arc<dyn Fn(u64) -> Resp + Send + Sync>;

/// The receiving side of a stream: handles each request in a task of its own (so a slow one,
/// such as a statement waiting for a lock, holds up no other) and streams the replies back,
/// each with its request's id, until the caller ends the stream or `stopping` becomes true (the
/// receiver is shutting down): it then reads no more requests, answers those in flight for at
/// most [`STOP_GRACE`], and ends the stream; calls still in flight then fail as broken.
pub fn serve<Req, Resp, H, F>(
    inbound: Streaming<Req>,
    handler: H,
    stopping: watch::Receiver<bool>,
) -> Replies<Resp>
where
    Req: Numbered,
    Resp: Numbered,
    H: Fn(Req) -> F + Send + Sync + 'static,
    F: Future<Output = Resp> + Send + 'static,
{
    serve_bounded(inbound, handler, stopping, None, None)
}

/// [`serve`], with two options for the clients' streams.
///
/// With `in_flight_max`, at most that many requests are handled or answered and not yet sent at
/// a time: past it, the stream reads no more requests until a reply goes out, so a sender that
/// pipelines requests and reads no replies is held back by the transport's flow control instead
/// of queueing replies in this node's memory without limit (a review found that, 2026-12-05).
/// Not for a node's stream to another: it carries Raft's messages, which must never wait
/// behind lock waits.
///
/// With `closing`, a stopping receiver's last word, queued as it stops reading, is
/// `closing(read_through)` with id 0, where `read_through` is the highest request id it read:
/// the caller's [`Mux::closing_on`] fails every call above it as never sent, so that it may go
/// to another node, where without it each would fail as broken when the stream ends, its
/// outcome unknown (a review found that a rolling restart answered "unknown" to the writes sent
/// in a node's last second, 2026-12-07). The caller must send its requests in id order (as
/// [`Mux`] does) for "not read" to cover every request that was not.
pub fn serve_bounded<Req, Resp, H, F>(
    mut inbound: Streaming<Req>,
    handler: H,
    stopping: watch::Receiver<bool>,
    in_flight_max: Option<usize>,
    closing: Option<Closing<Resp>>,
) -> Replies<Resp>
where
    Req: Numbered,
    Resp: Numbered,
    H: Fn(Req) -> F + Send + Sync + 'static,
    F: Future<Output = Resp> + Send + 'static,
{
    let (sender, replies) =
        mpsc::unbounded::<(Result<Resp, Status>, Option<OwnedSemaphorePermit>)>();
    let slots = in_flight_max.map(|max| Arc::new(Semaphore::new(max)));
    let mut reader_stop = stopping.clone();
    tokio::spawn(async move {
        let mut read_through = 0;
        loop {
            if stop_seen(&reader_stop) {
                if let Some(closing) = &closing {
                    let mut last_word = closing(read_through);
                    last_word.set_id(0);
                    let _ = sender.unbounded_send((Ok(last_word), None));
                }
                break;
            }
            let next = async {
                let slot = match &slots {
                    None => None,
                    Some(slots) => Some(slots.clone().acquire_owned().await.ok()?),
                };
                Some((slot, inbound.message().await))
            };
            // Reading a message is cancel-safe (the stream keeps what it has read).
            let Some(step) = unless_stopped(&mut reader_stop, next).await else { continue };
            let Some((slot, read)) = step else { break };
            let request = match read {
                Ok(Some(request)) => request,
                Ok(None) => break,
                Err(status) => {
                    // A frame that does not decode (malformed, or over the size limit) ends
                    // the stream with its error, so the sender learns why it ended (found by a
                    // review, 2026-12-06: it ended with OK).
                    let _ = sender.unbounded_send((Err(status), None));
                    break;
                }
            };
            let id = request.id();
            if id == 0 {
                // Id 0 is the receiver's own (its closing word): a reply to request 0 would
                // read as that word, and "read through 0" could not say whether it was read.
                // Refused as a frame that does not decode is (found by a review, 2026-12-07:
                // accepted, it answered with id 0).
                let refused = Status::invalid_argument(
                    "request id 0 is reserved for the receiver's closing word: number requests \
                     from 1",
                );
                let _ = sender.unbounded_send((Err(refused), None));
                break;
            }
            read_through = read_through.max(id);
            let reply = handler(request);
            let sender = sender.clone();
            tokio::spawn(async move {
                let mut reply = reply.await;
                reply.set_id(id);
                let _ = sender.unbounded_send((Ok(reply), slot));
            });
        }
    });
    let mut stopping = stopping;
    // A reply's slot is free once the transport takes the reply to send it.
    let replies = replies.map(|(reply, _slot)| reply);
    Box::pin(replies.take_until(async move {
        let _ = stopping.wait_for(|stop| *stop).await;
        tokio::time::sleep(STOP_GRACE).await;
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request or reply that is only its id.
    #[derive(Debug, PartialEq)]
    struct Message(u64);

    impl Numbered for Message {
        fn id(&self) -> u64 {
            self.0
        }
        fn set_id(&mut self, id: u64) {
            self.0 = id;
        }
    }

    #[tokio::test]
    async fn a_request_whose_call_gave_up_is_not_sent() {
        let calls: Arc<Calls<Message>> = Arc::new(Calls {
            state: Mutex::new(CallsState { next_id: 4, pending: BTreeMap::new(), ended: None }),
        });
        let mut waiting = Vec::new();
        for id in [1, 3] {
            let (sender, answer) = oneshot::channel();
            calls.state.lock().expect("mux lock").pending.insert(id, sender);
            waiting.push(answer);
        }
        let (sender, outbound) = mpsc::unbounded();
        for id in 1..=3 {
            sender.unbounded_send(Message(id)).expect("queued");
        }
        drop(sender);
        let outbound = Outbound { requests: outbound, calls: Arc::downgrade(&calls) };
        let sent: Vec<Message> = outbound.collect().await;
        assert_eq!(sent, [Message(1), Message(3)], "call 2 gave up before the stream took it");
    }
}
