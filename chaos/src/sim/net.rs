//! tonic over turmoil's simulated TCP: the transport seam of the simulation.
//!
//! Simulated TCP never retransmits: one segment lost to a partition wedges the connection for
//! good. The shared endpoint settings (`client::connector::endpoint`) send HTTP/2 keep-alive
//! pings, so such a connection is torn down within about a second and the next call reconnects;
//! every call also has its own deadline.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::Context;
use std::task::Poll;

use client::connector::Connector;
use client::connector::endpoint;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncRead;
use tokio::io::AsyncWrite;
use tokio::io::ReadBuf;
use tonic::transport::Channel;
use tonic::transport::Uri;
use tonic::transport::server::Connected;
use tonic::transport::server::TcpConnectInfo;
use turmoil::net::TcpListener;
use turmoil::net::TcpStream;

/// The port every simulated node listens on.
pub const NODE_PORT: u16 = 7000;

/// A simulated TCP connection accepted by a node.
pub struct SimConn(pub TcpStream);

impl Connected for SimConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        TcpConnectInfo {
            local_addr: self.0.local_addr().ok(),
            remote_addr: self.0.peer_addr().ok(),
        }
    }
}

impl AsyncRead for SimConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The accepted connections of a listener, for `Server::serve_with_incoming`.
pub fn incoming(
    listener: TcpListener,
) -> impl futures::Stream<Item = io::Result<SimConn>> + Send + 'static {
    async_stream::stream! {
        loop {
            yield listener.accept().await.map(|(stream, _)| SimConn(stream));
        }
    }
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<TokioIo<TcpStream>>> + Send>>;

/// Makes channels over simulated TCP.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimConnector;

impl Connector for SimConnector {
    fn channel(&self, addr: &str) -> Channel {
        let connect = tower::service_fn(|uri: Uri| {
            Box::pin(async move {
                let authority = uri
                    .authority()
                    .ok_or_else(|| io::Error::other("no authority in uri"))?
                    .to_string();
                Ok(TokioIo::new(TcpStream::connect(authority).await?))
            }) as ConnectFuture
        });
        endpoint(addr).connect_with_connector_lazy(connect)
    }
}
