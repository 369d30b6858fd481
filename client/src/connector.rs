//! How a client (or a node) reaches a node over gRPC: the transport seam.
//!
//! Production connects over real TCP ([`TcpConnector`]); the simulation supplies a connector
//! over turmoil's simulated TCP. Either way a [`Channel`] is returned that connects lazily and
//! reconnects by itself, with HTTP/2 keep-alives so that a dead connection (a crashed peer, a
//! partition that silently dropped a segment) is torn down within a couple of seconds instead
//! of hanging forever. Callers still put a deadline on every call.

use std::time::Duration;

use tonic::transport::Channel;
use tonic::transport::Endpoint;

/// How long a TCP connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// HTTP/2 keep-alive ping period.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_millis(500);
/// A keep-alive ping unanswered this long closes the connection.
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(1);
/// The largest gRPC message either side accepts (a Raft append may carry many large values).
pub const MESSAGE_BYTES_MAX: usize = 256 << 20;
/// How long HTTP/2 remembers a stream this side reset (a call given up on its deadline), so
/// that late frames for it are ignored. h2 measures this on the wall clock; kept far longer
/// than any simulated run, it never expires during one, and the simulation stays a function
/// of its seed (the number remembered is capped by [`RESET_STREAMS_MAX`] instead, by count).
pub const RESET_STREAM_MEMORY: Duration = Duration::from_secs(24 * 3600);
/// Reset streams remembered per connection; beyond this the oldest are forgotten.
pub const RESET_STREAMS_MAX: usize = 256;

/// Makes channels to nodes by address (HOST:PORT).
pub trait Connector: Send + Sync + 'static {
    /// A lazily connecting channel to `addr`.
    fn channel(&self, addr: &str) -> Channel;
}

/// Real TCP.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn channel(&self, addr: &str) -> Channel {
        endpoint(addr).connect_lazy()
    }
}

/// The endpoint settings every connector shares.
pub fn endpoint(addr: &str) -> Endpoint {
    let uri = format!("http://{addr}");
    let endpoint = match Endpoint::from_shared(uri) {
        Ok(endpoint) => endpoint,
        // An address that is not a valid URI authority: connecting will fail with a clear error.
        Err(_) => Endpoint::from_static("http://invalid.address.invalid:1"),
    };
    endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .http2_reset_stream_duration(RESET_STREAM_MEMORY)
        .http2_max_concurrent_reset_streams(RESET_STREAMS_MAX)
}
