//! `proto::mux` over real gRPC on loopback: replies find their calls whatever order they come
//! in, a stream that cannot connect says the request never left, and a receiver that stops ends
//! its streams, failing the calls in flight at once instead of at their deadlines.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::time::Duration;

use proto::mux;
use proto::mux::Mux;
use proto::mux::MuxError;
use proto::peer::Frame;
use proto::peer::RaftResponse;
use proto::peer::SnapshotChunk;
use proto::peer::peer_client::PeerClient;
use proto::peer::peer_server::Peer;
use proto::peer::peer_server::PeerServer;
use tokio::sync::Notify;
use tokio::sync::watch;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::Streaming;
use tonic::transport::Channel;
use tonic::transport::server::TcpIncoming;

/// Answers each frame after sleeping as many milliseconds as its shard field says, with its
/// payload echoed; tells `arrived` of each frame it starts on.
struct Echo {
    stopping: watch::Receiver<bool>,
    arrived: Arc<Notify>,
    /// Whether a stopping stream answers what comes with [`refused`] (`serve_bounded`'s
    /// `refuse`) instead of leaving it unread.
    refusing: bool,
    /// How many streams were opened to it.
    streams: Arc<AtomicUsize>,
}

/// A stopping receiver's answer to a request it did not handle.
fn refused() -> Frame {
    Frame { id: 0, kind: 3, shard: 0, payload: Default::default(), error: "not handled".into() }
}

#[tonic::async_trait]
impl Peer for Echo {
    type MuxStream = mux::Replies<Frame>;

    async fn mux(
        &self,
        request: Request<Streaming<Frame>>,
    ) -> Result<Response<Self::MuxStream>, Status> {
        self.streams.fetch_add(1, Ordering::SeqCst);
        let arrived = self.arrived.clone();
        let handler = move |frame: Frame| {
            arrived.notify_one();
            echo(frame)
        };
        let refuse: Option<mux::Refuse<Frame>> = match self.refusing {
            true => Some(Arc::new(refused)),
            false => None,
        };
        let stopping = self.stopping.clone();
        Ok(Response::new(mux::serve_bounded(request.into_inner(), handler, stopping, None, refuse)))
    }

    async fn snapshot(
        &self,
        _request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

async fn echo(frame: Frame) -> Frame {
    tokio::time::sleep(Duration::from_millis(u64::from(frame.shard))).await;
    Frame { id: 0, kind: 3, shard: 0, payload: frame.payload, error: String::new() }
}

/// A served Echo on a loopback port; setting the sender to true stops its streams.
async fn echo_server() -> (String, watch::Sender<bool>, Arc<Notify>) {
    let (addr, stop, arrived, _) = serve_echo(false).await;
    (addr, stop, arrived)
}

/// An Echo server; also returns its count of streams opened.
async fn serve_echo(
    refusing: bool,
) -> (String, watch::Sender<bool>, Arc<Notify>, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let (stop, stopping) = watch::channel(false);
    let arrived = Arc::new(Notify::new());
    let streams = Arc::new(AtomicUsize::new(0));
    let echo = Echo { stopping, arrived: arrived.clone(), refusing, streams: streams.clone() };
    let service = PeerServer::new(echo);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    (addr, stop, arrived, streams)
}

fn mux_to(addr: &str) -> Mux<Frame, Frame> {
    let channel = Channel::from_shared(format!("http://{addr}")).expect("uri").connect_lazy();
    let client = PeerClient::new(channel);
    let opener: mux::Opener<Frame, Frame> = Arc::new(move |outbound| {
        let mut client = client.clone();
        Box::pin(async move { client.mux(outbound).await.map(|r| r.into_inner()) })
    });
    Mux::new(opener, |status| status.message().contains("connect"))
}

fn frame(delay_ms: u32, payload: &'static str) -> Frame {
    Frame { id: 0, kind: 2, shard: delay_ms, payload: payload.into(), error: String::new() }
}

const DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_that_come_back_out_of_order_reach_their_own_calls() {
    let (addr, _stop, _) = echo_server().await;
    let mux = mux_to(&addr);
    let (slow, fast, middle) = tokio::join!(
        mux.call(frame(300, "slow"), DEADLINE),
        mux.call(frame(0, "fast"), DEADLINE),
        mux.call(frame(150, "middle"), DEADLINE),
    );
    assert_eq!(slow.expect("slow").payload, "slow");
    assert_eq!(fast.expect("fast").payload, "fast");
    assert_eq!(middle.expect("middle").payload, "middle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_cannot_connect_says_the_request_never_left() {
    // A port that was just free: nothing listens there.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").to_string()
    };
    let mux = mux_to(&addr);
    match mux.call(frame(0, "lost"), DEADLINE).await {
        Err(MuxError::NotSent(_)) => {}
        other => panic!("expected NotSent, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_receiver_fails_the_calls_in_flight_at_once_and_the_next_call_reopens() {
    let (addr, stop, arrived) = echo_server().await;
    let mux = mux_to(&addr);
    assert_eq!(mux.call(frame(0, "first"), DEADLINE).await.expect("first").payload, "first");
    arrived.notified().await; // the permit that "first" left

    // A call that its handler would answer only long after the grace period: it fails as
    // broken when the stream ends, not as a timeout at its deadline.
    let in_flight = mux.call(frame(60_000, "never"), DEADLINE);
    let stopper = async {
        arrived.notified().await;
        stop.send_replace(true);
    };
    let (outcome, ()) = tokio::join!(in_flight, stopper);
    match outcome {
        Err(MuxError::Broken(_)) => {}
        other => panic!("expected Broken, got {other:?}"),
    }

    // The stream is gone; the server keeps running (only its streams stopped): a new call
    // opens a new stream, which the stopped receiver ends at once after its grace period.
    stop.send_replace(false);
    assert_eq!(mux.call(frame(0, "again"), DEADLINE).await.expect("again").payload, "again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_receiver_that_refuses_answers_what_comes_not_handled() {
    let (addr, stop, arrived, streams) = serve_echo(true).await;
    let mux = mux_to(&addr).retiring_on(|reply| reply.error == "not handled");
    assert_eq!(mux.call(frame(0, "first"), DEADLINE).await.expect("first").payload, "first");
    arrived.notified().await; // the permit that "first" left

    // A call in flight when the stop comes, whose handler answers only long after the grace.
    let in_flight = mux.call(frame(60_000, "never"), DEADLINE);
    let after_stop = async {
        arrived.notified().await;
        stop.send_replace(true);
        // The stream is still open (its grace): a request sent on it now is read and refused,
        // not left unread to fail as broken with its outcome unknown.
        let late = mux.call(frame(0, "late"), DEADLINE).await;
        // The refusal retired the stream (still open, the call above in flight on it): the
        // next call opens a new one, which the stopping receiver refuses at once, instead of
        // going out on the old one, which it soon stops reading.
        let opened = streams.load(Ordering::SeqCst);
        let next = mux.call(frame(0, "next"), DEADLINE).await;
        (late, opened, next, streams.load(Ordering::SeqCst))
    };
    let (outcome, (late, opened, next, reopened)) = tokio::join!(in_flight, after_stop);
    assert_eq!(late.expect("an answer").error, "not handled");
    assert_eq!(next.expect("an answer").error, "not handled");
    assert_eq!((opened, reopened), (1, 2), "the call after a refusal opened a new stream");
    match outcome {
        Err(MuxError::Broken(_)) => {}
        other => panic!("the call in flight: expected Broken, got {other:?}"),
    }
}
