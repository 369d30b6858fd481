//! What the client library takes for "the request never reached a server", on real loopback
//! connections: only a connection that could not be made. A server's UNAVAILABLE answer (which
//! may mean "outcome unknown") and a connection that broke after the request went out are not.

use client::error::Error;
use client::error::is_connect_failure;
use client::error::not_sent;
use client::link::status_of;
use proto::kv::SessionError;
use proto::kv::SessionRequest;
use proto::kv::kv_client::KvClient;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tonic::Status;

/// Opens a session stream to `addr` (sending nothing on it) and returns its error.
async fn open_error(addr: &str) -> Status {
    let mut kv = KvClient::new(client::connector::endpoint(addr).connect_lazy());
    let requests = tonic::codegen::tokio_stream::pending::<SessionRequest>();
    match kv.session(requests).await {
        Ok(_) => panic!("{addr} accepted a session"),
        Err(status) => status,
    }
}

#[tokio::test]
async fn only_a_connection_that_could_not_be_made_counts_as_not_sent() {
    // Nobody listens: refused.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let closed = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let refused = open_error(&closed).await;
    assert!(is_connect_failure(&refused), "refused: {refused:?}");

    // A listener that reads what the client sends, then resets the connection.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let resetting = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = socket.read(&mut buffer).await;
            let _ = socket.set_zero_linger();
            drop(socket);
        }
    });
    let reset = open_error(&resetting).await;
    assert!(!is_connect_failure(&reset), "reset after sending: {reset:?}");

    // A server's UNAVAILABLE answer about a connection between nodes: an unknown outcome.
    let answered = Status::unavailable(
        "the outcome of the commit is unknown (node 2 unreachable: cannot connect: tcp connect \
         error); ask TxnStatus",
    );
    assert!(!is_connect_failure(&answered));
    assert!(matches!(Error::from_status(answered, true), Error::Unknown(_)));

    // A call whose stream could not open, as the library reports it.
    let unsent = not_sent("cannot connect: tcp connect error".into());
    assert!(is_connect_failure(&unsent));
    assert!(matches!(Error::from_status(unsent, true), Error::Unavailable(_)));

    // A server's UNAVAILABLE on the session stream is an unknown outcome too (a stopping
    // node's unread requests are told apart by its SessionClosing: proto/tests/mux.rs).
    let answered = SessionError {
        code: tonic::Code::Unavailable as i32,
        message: "the node is stopping".into(),
        ..SessionError::default()
    };
    assert!(!is_connect_failure(&status_of(answered.clone())));
    assert!(matches!(Error::from_status(status_of(answered), true), Error::Unknown(_)));
}
