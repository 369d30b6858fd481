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

/// Checks that `addr` is HOST:PORT: an IP address (IPv6 in brackets) or a host name of
/// letters, digits, `-`, `_` and `.`, then a port from 1 to 65535. Not resolved here (a node
/// may not be up yet). A bad address made a client retry a substitute forever, or name only a
/// "dns error" (a review found `http://x:7002` and `::1:7002` accepted, 2026-12-05).
pub fn check_host_port(addr: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "{addr:?} is not HOST:PORT ({why}; e.g. 127.0.0.1:7001, node1:7001, [::1]:7001)"
        ))
    };
    if let Ok(socket) = addr.parse::<std::net::SocketAddr>() {
        return if socket.port() == 0 { bad("port 0 names no port") } else { Ok(()) };
    }
    let Some((host, port)) = addr.rsplit_once(':') else { return bad("no port") };
    match port.parse::<u16>() {
        Ok(0) => return bad("port 0 names no port"),
        Ok(_) => {}
        Err(_) => return bad("the port is not a number from 1 to 65535"),
    }
    let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if host.is_empty() || !host.chars().all(name_char) {
        return bad("the host is not an IP address or a host name");
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_takes_addresses_and_names_and_refuses_the_rest() {
        for good in
            ["127.0.0.1:7001", "[::1]:7001", "node-1.example:7001", "n_1:1", "localhost:65535"]
        {
            assert_eq!(check_host_port(good), Ok(()), "{good}");
        }
        for bad in [
            "http://x:7002",
            "::1:7002",
            ":::7002",
            "127.0.0.1:0",
            "127.0.0.1:99999",
            "127.0.0.1",
            ":7001",
            "a b:7001",
            "host/path:7001",
        ] {
            let error = check_host_port(bad).expect_err(bad);
            assert!(error.contains("is not HOST:PORT"), "{bad}: {error}");
        }
    }
}
