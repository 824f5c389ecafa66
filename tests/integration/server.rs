//! The HTTP server under clients that send slowly: headers must arrive in time, bodies too.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use huckleberry::server::{self, Timeouts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves `router` on loopback with the header timeout shortened to `header_read`.
async fn start(router: Router, header_read: Duration) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let timeouts = Timeouts {
        header_read,
        ..Timeouts::default()
    };
    tokio::spawn(server::serve(
        listener,
        router,
        timeouts,
        std::future::pending(),
    ));
    addr
}

/// A route echoing its body, which must arrive whole within 300 ms.
async fn echo_with_a_body_deadline() -> std::net::SocketAddr {
    let router = huckleberry::with_body_timeout(
        Router::new().route("/", post(|body: String| async move { body })),
        Duration::from_millis(300),
    );
    start(router, Duration::from_secs(5)).await
}

/// Reads until the server closes the connection (or 5 s pass), returning what arrived.
async fn read_until_closed(stream: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received));
    read.await
        .expect("the server closed the connection within 5 s")
        .expect("the read succeeds");
    (received, started.elapsed())
}

#[tokio::test]
async fn a_client_that_sends_its_headers_slowly_is_disconnected() {
    let router = Router::new().route("/", get(|| async { "ok" }));
    let addr = start(router, Duration::from_millis(500)).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");

    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .expect("the first header line is sent");
    let (received, waited) = read_until_closed(&mut stream).await;

    assert!(
        waited >= Duration::from_millis(400),
        "closed after {waited:?}"
    );
    assert!(
        !String::from_utf8_lossy(&received).contains(" 200 "),
        "no answer to a request that never finished its headers"
    );
}

#[tokio::test]
async fn a_client_that_sends_its_headers_in_time_is_answered() {
    let router = Router::new().route("/", get(|| async { "ok" }));
    let addr = start(router, Duration::from_millis(500)).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");

    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("the request is sent");
    let (received, _) = read_until_closed(&mut stream).await;

    let answer = String::from_utf8_lossy(&received);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_body_that_trickles_in_to_the_app_is_cut_off() {
    let addr = echo_with_a_body_deadline().await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");

    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nabc")
        .await
        .expect("the headers and a little of the body are sent");
    let (received, waited) = read_until_closed(&mut stream).await;

    let answer = String::from_utf8_lossy(&received);
    assert!(waited < Duration::from_secs(3), "cut off after {waited:?}");
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_body_that_keeps_trickling_in_is_cut_off_at_its_deadline() {
    let addr = echo_with_a_body_deadline().await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n")
        .await
        .expect("the headers are sent");
    // A byte every 100 ms: never a pause as long as the deadline, but never done either.
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..40 {
            if writer.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let started = Instant::now();
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut received))
        .await
        .expect("the server answered within 5 s")
        .expect("the read succeeds");
    let waited = started.elapsed();
    trickle.abort();

    let answer = String::from_utf8_lossy(&received);
    assert!(waited < Duration::from_secs(2), "cut off after {waited:?}");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}
