//! Connections are bounded (SPEC §10): silent, half-sent and idle sockets are closed by
//! their timeouts, a stalled body is aborted with nothing kept, and a pod full of idle
//! sockets still answers `/healthz`.

use std::time::{Duration, Instant};

use leasehold_tests::{Backend, TestApp, backend_tests};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

backend_tests!(
    silent_and_half_sent_requests_are_closed_by_the_header_read_timeout,
    idle_kept_alive_connections_are_closed_by_the_idle_timeout,
    a_stalled_upload_body_is_aborted_and_nothing_is_kept,
    a_pod_full_of_idle_sockets_still_answers_healthz,
);

async fn bounded(backend: &Backend, max_connections: usize) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.http.header_read_timeout = Duration::from_secs(1);
        c.http.idle_timeout = Duration::from_secs(2);
        c.http.body_timeout = Duration::from_secs(1);
        c.http.max_connections = max_connections;
    })
    .await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://")).await.expect("connect")
}

/// Reads until the server closes the socket; how long that took.
async fn closed_within(mut socket: TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), socket.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the socket was still open after {limit:?}"),
        }
    }
}

async fn silent_and_half_sent_requests_are_closed_by_the_header_read_timeout(backend: Backend) {
    let app = bounded(&backend, 64).await;
    let partials: [&[u8]; 3] = [b"", b"GET /heal", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: "];
    let mut waits = Vec::new();
    for partial in partials {
        let mut socket = connect(&app).await;
        socket.write_all(partial).await.expect("write");
        waits.push(tokio::spawn(closed_within(socket, Duration::from_secs(5))));
    }
    for wait in waits {
        let took = wait.await.expect("join");
        assert!(took >= Duration::from_millis(500), "closed too early: {took:?}");
    }
}

async fn idle_kept_alive_connections_are_closed_by_the_idle_timeout(backend: Backend) {
    let app = bounded(&backend, 64).await;
    let mut socket = connect(&app).await;
    socket.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut buf = [0u8; 1024];
    let n = socket.read(&mut buf).await.expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    // Well past the header-read timeout, within the idle one: still usable.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    socket.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let n = socket.read(&mut buf).await.expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "kept alive between requests");
    let took = closed_within(socket, Duration::from_secs(6)).await;
    assert!(took >= Duration::from_millis(1500), "closed by the idle timeout, not before: {took:?}");
}

async fn a_stalled_upload_body_is_aborted_and_nothing_is_kept(backend: Backend) {
    let app = bounded(&backend, 64).await;
    let (_, key) = app.create_account(1_000_000).await;
    let before = app.balance(&key).await;
    let mut socket = connect(&app).await;
    let head = format!(
        "POST /api/store HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nX-File-Name: s.bin\r\n\
         X-Size-Bytes: 100000\r\nX-Duration-Seconds: 3600\r\nContent-Length: 100000\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.expect("head");
    socket.write_all(&[7u8; 5000]).await.expect("some of the body");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(6), socket.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the stalled upload was not cut off");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(app.balance(&key).await, before, "nothing charged");
    let (status, leases) = app.get_json(&key, "/api/leases").await;
    assert_eq!(status, 200);
    assert_eq!(leases["items"].as_array().map(Vec::len), Some(0), "{leases}");
    assert!(app.blob_keys().await.is_empty(), "no bytes kept");
    assert!(app.fs_files().is_empty(), "no temp file left: {:?}", app.fs_files());
}

async fn a_pod_full_of_idle_sockets_still_answers_healthz(backend: Backend) {
    let app = bounded(&backend, 16).await;
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(connect(&app).await);
    }
    let started = Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(2), app.client.get(app.url("/healthz")).send())
        .await
        .expect("healthz within 2 s")
        .expect("healthz");
    assert_eq!(res.status(), 200, "after {:?}", started.elapsed());
    // At most the cap stays open: the rest were closed to make room.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut open = 0;
    for socket in &mut idle {
        let mut buf = [0u8; 1];
        if tokio::time::timeout(Duration::from_millis(20), socket.read(&mut buf)).await.is_err() {
            open += 1;
        }
    }
    let mut tally = crate::faults::Tally::new("40 idle sockets on a cap of 16");
    tally.check(open <= 16, || format!("{open} of 40 idle sockets still open with a cap of 16"));
    tally.check(open >= 8, || format!("the newest idle sockets stay open: {open}"));
    tally.finish();
}
