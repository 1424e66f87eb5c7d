use std::time::Duration;

use leasehold_api::bootstrap::{DevKey, ensure_dev_account};
use leasehold_tests::{Backend, TestApp, backend_tests};

backend_tests!(
    shutdown_lets_an_in_flight_upload_finish,
    concurrent_migrations_all_succeed,
    embedded_first_start_creates_the_local_account_and_dev_key,
);

async fn shutdown_lets_an_in_flight_upload_finish(backend: Backend) {
    let mut app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    let req = app
        .client
        .post(app.url("/api/store"))
        .bearer_auth(&key)
        .header("X-File-Name", "slow.txt")
        .header("X-Size-Bytes", "10")
        .header("X-Duration-Seconds", "60")
        .body(reqwest::Body::wrap_stream(tokio_stream_from(rx)));
    let upload = tokio::spawn(async move { req.send().await.expect("upload").status().as_u16() });
    tx.send(Ok(bytes::Bytes::from_static(b"hello"))).await.expect("first half");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let finish = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        tx.send(Ok(bytes::Bytes::from_static(b"world"))).await.expect("second half");
        drop(tx);
    };
    let (stopped, ()) = tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(app.shutdown(), finish) })
        .await
        .expect("stopped in time");
    stopped.expect("serve");
    assert_eq!(upload.await.expect("task"), 201);
    assert_eq!(app.blob_keys().await.len(), 1);
    let refused = app.client.get(app.url("/healthz")).send().await;
    assert!(refused.is_err(), "a stopped server accepts nothing");
}

fn tokio_stream_from<T: Send + 'static>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn concurrent_migrations_all_succeed(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = backend.fresh_database(dir.path()).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let db = leasehold_core::db::connect_url(&url, 2).await.expect("connect");
            leasehold_core::db::migrate(&db).await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("migrate");
    }
    let db = leasehold_core::db::connect_url(&url, 1).await.expect("connect");
    assert_eq!(leasehold_core::accounts::count(&db).await.expect("count"), 0);
}

async fn embedded_first_start_creates_the_local_account_and_dev_key(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let created = ensure_dev_account(&app.state).await.expect("bootstrap");
    if backend.is_distributed() {
        assert!(matches!(created, DevKey::Existing), "only the embedded shape creates a dev account");
        return;
    }
    let DevKey::Created { key, path } = created else { panic!("expected a new dev account") };
    let on_disk = std::fs::read_to_string(&path).expect("dev key file");
    assert_eq!(on_disk.trim(), key);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
    }
    let (status, body) = app.get_json(&key, "/v1/account").await;
    assert_eq!(status, 200);
    assert_eq!(body["name"], "local");
    assert_eq!(body["balance_micros"], "1000000");
    assert!(matches!(ensure_dev_account(&app.state).await.expect("again"), DevKey::Existing));
}
