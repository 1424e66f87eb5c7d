use std::time::Duration;

use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests, eventually};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

backend_tests!(
    bad_headers_are_refused_naming_the_header,
    a_body_shorter_than_declared_is_a_size_mismatch,
    a_body_longer_than_declared_is_too_large,
    durations_out_of_range_are_refused,
    files_over_the_maximum_size_are_refused,
    insufficient_balance_is_402_with_the_required_amount,
    bad_file_names_are_refused,
    empty_files_are_refused,
    a_client_that_disconnects_mid_upload_leaves_nothing,
    unauthenticated_uploads_are_refused,
);

/// Nothing stored, nothing charged: no lease, no blob (nor temp file), balance and ledger
/// untouched.
async fn assert_nothing_kept(app: &TestApp, key: &str, balance: i64) {
    assert_eq!(app.balance(key).await, balance, "balance changed");
    let (_, ledger) = app.get_json(key, "/v1/account/ledger").await;
    assert!(
        ledger["items"].as_array().expect("items").iter().all(|e| e["kind"] == "credit"),
        "a charge was recorded: {ledger}"
    );
    let (_, leases) = app.get_json(key, "/api/leases").await;
    assert!(leases["items"].as_array().expect("items").is_empty(), "a lease was kept: {leases}");
    assert!(app.blob_keys().await.is_empty(), "a blob was kept");
    assert!(app.fs_files().is_empty(), "a file was left behind: {:?}", app.fs_files());
}

async fn expect_error(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "expected {status} {code}");
    let body: Value = res.json().await.expect("json body");
    assert_eq!(body["status"], "error");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    body
}

async fn bad_headers_are_refused_naming_the_header(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    let cases: &[(&str, Option<&str>)] = &[
        ("X-Size-Bytes", None),
        ("X-Size-Bytes", Some("abc")),
        ("X-Size-Bytes", Some("-5")),
        ("X-Size-Bytes", Some("5.0")),
        ("X-Size-Bytes", Some("99999999999999999999999")),
        ("X-Duration-Seconds", None),
        ("X-Duration-Seconds", Some("soon")),
        ("X-Duration-Seconds", Some("3600s")),
        ("X-File-Name", None),
    ];
    for (header, value) in cases {
        let mut req = app.client.post(app.url("/api/store")).bearer_auth(&key).body("hello");
        for (h, v) in [("X-File-Name", "a.txt"), ("X-Size-Bytes", "5"), ("X-Duration-Seconds", "3600")] {
            if h != *header {
                req = req.header(h, v);
            }
        }
        if let Some(v) = value {
            req = req.header(*header, *v);
        }
        let body = expect_error(req.send().await.expect("send"), 400, "invalid_header").await;
        assert_eq!(body["header"], *header, "{header}={value:?}");
        assert!(body["error"].as_str().expect("error").contains(header));
    }
    assert_nothing_kept(&app, &key, 1_000).await;
}

async fn a_body_shorter_than_declared_is_a_size_mismatch(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    // Content-Length says so up front.
    let res = Upload::new(&key, "s.txt", "hello").with("X-Size-Bytes", "10").request(&app).send().await.expect("send");
    expect_error(res, 400, "size_mismatch").await;
    // Chunked: only the end of the stream tells.
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"hello"))]);
    let res = app
        .client
        .post(app.url("/api/store"))
        .bearer_auth(&key)
        .header("X-File-Name", "s.txt")
        .header("X-Size-Bytes", "10")
        .header("X-Duration-Seconds", "3600")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("send");
    expect_error(res, 400, "size_mismatch").await;
    assert_nothing_kept(&app, &key, 1_000).await;
}

async fn a_body_longer_than_declared_is_too_large(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    let res =
        Upload::new(&key, "l.txt", "hello world").with("X-Size-Bytes", "5").request(&app).send().await.expect("send");
    expect_error(res, 413, "payload_too_large").await;
    let part = bytes::Bytes::from(vec![b'x'; 9 * 1024 * 1024]);
    let chunks = vec![Ok::<_, std::io::Error>(part.clone()), Ok(part)];
    let res = app
        .client
        .post(app.url("/api/store"))
        .bearer_auth(&key)
        .header("X-File-Name", "l.txt")
        .header("X-Size-Bytes", (10 * 1024 * 1024).to_string())
        .header("X-Duration-Seconds", "3600")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .expect("send");
    expect_error(res, 413, "payload_too_large").await;
    assert_nothing_kept(&app, &key, 1_000).await;
}

async fn durations_out_of_range_are_refused(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    for duration in [0u64, 59, 30 * 86_400 + 1] {
        let mut upload = Upload::new(&key, "d.txt", "x");
        upload.duration = duration;
        let body = expect_error(upload.request(&app).send().await.expect("send"), 400, "duration_out_of_range").await;
        assert_eq!(body["min"], 60);
        assert_eq!(body["max"], 2_592_000);
    }
    assert_nothing_kept(&app, &key, 1_000).await;
}

async fn files_over_the_maximum_size_are_refused(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| c.limits.max_file_bytes = 1_000).await;
    let (_, key) = app.create_account(1_000).await;
    let res = Upload::new(&key, "big.bin", vec![0u8; 1_001]).request(&app).send().await.expect("send");
    let body = expect_error(res, 413, "payload_too_large").await;
    assert_eq!(body["max_bytes"], 1_000);
    assert_eq!(Upload::new(&key, "ok.bin", vec![0u8; 1_000]).send(&app).await.0, 201);
    // The default limit, 5 GiB, is announced and enforced before any byte is read.
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000_000).await;
    let res = Upload::new(&key, "huge.bin", "x")
        .with("X-Size-Bytes", (5u64 << 30) + 1)
        .request(&app)
        .send()
        .await
        .expect("send");
    expect_error(res, 413, "payload_too_large").await;
    assert_nothing_kept(&app, &key, 1_000_000).await;
}

async fn insufficient_balance_is_402_with_the_required_amount(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(28).await;
    let res = Upload::new(&key, "p.txt", "hello").request(&app).send().await.expect("send");
    let body = expect_error(res, 402, "insufficient_balance").await;
    assert_eq!(body["required"]["amount_micros"], "29");
    assert_eq!(body["required"]["balance_micros"], "28");
    assert_nothing_kept(&app, &key, 28).await;
}

async fn bad_file_names_are_refused(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    let long = "a".repeat(300);
    let names: Vec<&[u8]> = vec![b"../", b"..", b"dir/", b"/", b"tab\there", long.as_bytes(), b"\xff\xfe.txt"];
    for name in names {
        let value = reqwest::header::HeaderValue::from_bytes(name).expect("header value");
        let res = Upload::new(&key, "x", "x").with("X-File-Name", value).request(&app).send().await.expect("send");
        let body = expect_error(res, 400, "invalid_header").await;
        assert_eq!(body["header"], "X-File-Name", "{}", String::from_utf8_lossy(name));
    }
    assert_nothing_kept(&app, &key, 1_000).await;
}

async fn empty_files_are_refused(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    let res = Upload::new(&key, "empty.txt", "").request(&app).send().await.expect("send");
    let body = expect_error(res, 400, "invalid_header").await;
    assert_eq!(body["header"], "X-Size-Bytes");
    assert_nothing_kept(&app, &key, 1_000).await;
}

async fn a_client_that_disconnects_mid_upload_leaves_nothing(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    let declared = 20 * 1024 * 1024;
    let addr = app.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /api/store HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nX-File-Name: cut.bin\r\n\
         X-Size-Bytes: {declared}\r\nX-Duration-Seconds: 3600\r\nContent-Length: {declared}\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.expect("head");
    // Half the body: more than one multipart part on S3.
    let chunk = vec![b'z'; 1024 * 1024];
    for _ in 0..10 {
        socket.write_all(&chunk).await.expect("body");
    }
    socket.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(socket);
    let settled = eventually(Duration::from_secs(10), || async {
        (app.fs_files().is_empty() && app.blob_keys().await.is_empty()).then_some(())
    })
    .await;
    assert!(settled.is_some(), "bytes left behind: {:?}", app.fs_files());
    assert_nothing_kept(&app, &key, 1_000).await;
}

async fn unauthenticated_uploads_are_refused(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    let res = app
        .client
        .post(app.url("/api/store"))
        .header("X-File-Name", "a.txt")
        .header("X-Size-Bytes", "5")
        .header("X-Duration-Seconds", "3600")
        .body("hello")
        .send()
        .await
        .expect("send");
    expect_error(res, 401, "unauthorized").await;
    let res = Upload::new("rs_live_nope", "a.txt", "hello").request(&app).send().await.expect("send");
    expect_error(res, 401, "unauthorized").await;
    assert_nothing_kept(&app, &key, 1_000).await;
}
