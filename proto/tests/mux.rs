//! `proto::mux` over real gRPC on loopback: replies find their calls whatever order they come
//! in, a stream that cannot connect says the request never left, and a receiver that stops ends
//! its streams, failing the calls in flight at once instead of at their deadlines, and (with
//! `closing`) says which requests it never read.

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
    /// Whether a stopping stream says which requests it never read ([`closing`],
    /// `serve_bounded`'s `closing`).
    closing: bool,
    /// How many streams were opened to it.
    streams: Arc<AtomicUsize>,
    /// Stops its streams when the request with this number (counting from 1, over all
    /// streams) arrives: a stop in the middle of a burst of calls.
    stop_at: usize,
    stop: Arc<watch::Sender<bool>>,
    arrivals: Arc<AtomicUsize>,
}

/// A stopping receiver's last word: it read no request above `read_through`.
fn closing(read_through: u64) -> Frame {
    let shard = u32::try_from(read_through).expect("a test's ids");
    Frame { id: 0, kind: CLOSING, shard, payload: Default::default(), error: String::new() }
}

/// The kind of a [`closing`] frame.
const CLOSING: i32 = 9;

#[tonic::async_trait]
impl Peer for Echo {
    type MuxStream = mux::Replies<Frame>;

    async fn mux(
        &self,
        request: Request<Streaming<Frame>>,
    ) -> Result<Response<Self::MuxStream>, Status> {
        self.streams.fetch_add(1, Ordering::SeqCst);
        let arrived = self.arrived.clone();
        let (stop_at, stop, arrivals) = (self.stop_at, self.stop.clone(), self.arrivals.clone());
        let handler = move |frame: Frame| {
            arrived.notify_one();
            if arrivals.fetch_add(1, Ordering::SeqCst) + 1 == stop_at {
                stop.send_replace(true);
            }
            echo(frame)
        };
        let closing: Option<mux::Closing<Frame>> = match self.closing {
            true => Some(Arc::new(closing)),
            false => None,
        };
        let stopping = self.stopping.clone();
        Ok(Response::new(mux::serve_bounded(
            request.into_inner(),
            handler,
            stopping,
            None,
            closing,
        )))
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
async fn echo_server() -> (String, Arc<watch::Sender<bool>>, Arc<Notify>) {
    let (addr, stop, arrived, _) = serve_echo(false, usize::MAX).await;
    (addr, stop, arrived)
}

/// An Echo server (see [`Echo`] for `closing` and `stop_at`); also returns its count of
/// streams opened.
async fn serve_echo(
    closing: bool,
    stop_at: usize,
) -> (String, Arc<watch::Sender<bool>>, Arc<Notify>, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let (stop, stopping) = watch::channel(false);
    let stop = Arc::new(stop);
    let arrived = Arc::new(Notify::new());
    let streams = Arc::new(AtomicUsize::new(0));
    let echo = Echo {
        stopping,
        arrived: arrived.clone(),
        closing,
        streams: streams.clone(),
        stop_at,
        stop: stop.clone(),
        arrivals: Arc::default(),
    };
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

/// Calls sent in bursts while the receiver stops in the middle of one (when its 40th request
/// arrives): each is answered or fails as never sent, none is left with an unknown outcome,
/// but the one whose handler outlives the grace; and the next call opens a new stream, which
/// the stopping receiver closes at once. Without `closing`, the calls the receiver never read
/// fail as broken (checked: that is what the first part of the test sees then).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_receiver_says_which_requests_it_never_read() {
    let (addr, _stop, _, streams) = serve_echo(true, 40).await;
    let mux =
        mux_to(&addr).closing_on(|frame| (frame.kind == CLOSING).then_some(frame.shard.into()));
    let slow = mux.call(frame(60_000, "slow"), DEADLINE);
    let bursts = async {
        let mut outcomes = Vec::new();
        for _ in 0..12 {
            let burst = (0..16).map(|_| mux.call(frame(0, "burst"), DEADLINE));
            outcomes.extend(futures::future::join_all(burst).await);
        }
        outcomes
    };
    let (slow, outcomes) = tokio::join!(slow, bursts);
    let answered = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let unsent = outcomes.iter().filter(|o| matches!(o, Err(MuxError::NotSent(_)))).count();
    assert_eq!(answered + unsent, outcomes.len(), "an outcome left unknown: {outcomes:?}");
    assert!(answered >= 38 && unsent > 100, "answered {answered}, not sent {unsent}");
    assert!(matches!(slow, Err(MuxError::Broken(_))), "the slow call: {slow:?}");
    assert!(streams.load(Ordering::SeqCst) >= 2, "calls after the closing opened new streams");
}
