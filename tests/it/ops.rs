use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests};
use serde_json::Value;

backend_tests!(
    health_and_readiness_answer_ok,
    readiness_fails_with_503_when_the_blob_store_is_gone,
    metrics_count_requests_by_route_and_bytes,
    every_response_carries_a_request_id,
    unknown_routes_and_methods_get_the_error_envelope,
    answers_sent_before_the_body_was_read_close_the_connection,
);

async fn health_and_readiness_answer_ok(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let res = app.client.get(app.url("/healthz")).send().await.expect("healthz");
    assert_eq!(res.status(), 200);
    let res = app.client.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["blob_store"], if backend.is_distributed() { "s3" } else { "fs" });
}

async fn readiness_fails_with_503_when_the_blob_store_is_gone(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| {
        if let leasehold_core::config::BlobConfig::S3(s3) = &mut c.blob {
            s3.bucket = "leasehold-no-such-bucket".into();
        }
    })
    .await;
    if let leasehold_core::config::BlobConfig::Fs { root } = &app.state.config.blob {
        std::fs::remove_dir_all(root).expect("remove blob root");
    }
    let res = app.client.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["code"], "unavailable");
    assert!(!body["error"].as_str().expect("error").contains('/'), "no internals in the body");
}

async fn metrics_count_requests_by_route_and_bytes(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    let (_, body) = Upload::new(&key, "m.bin", vec![9u8; 1234]).send(&app).await;
    let got = app.client.get(body["download_url"].as_str().expect("url")).bearer_auth(&key).send().await.expect("get");
    assert_eq!(got.bytes().await.expect("bytes").len(), 1234);
    let text = app.client.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(
        text.contains(r#"leasehold_http_requests_total{method="POST",route="/api/store",status="201"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"leasehold_http_request_duration_seconds_count{method="POST",route="/api/store"} 1"#));
    assert!(text.contains("leasehold_bytes_in_total 1234"));
    assert!(text.contains("leasehold_bytes_out_total 1234"));
    assert!(text.contains(r#"leasehold_leases{variant="storage",state="active"} 1"#));
}

async fn every_response_carries_a_request_id(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let res = app.client.get(app.url("/healthz")).send().await.expect("healthz");
    let id = res.headers()["x-request-id"].to_str().expect("id").to_owned();
    assert_eq!(id.len(), 26);
    let res = app.client.get(app.url("/nope")).header("X-Request-Id", "abc-123").send().await.expect("nope");
    assert_eq!(res.headers()["x-request-id"], "abc-123");
}

async fn unknown_routes_and_methods_get_the_error_envelope(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let res = app.client.get(app.url("/api/nothing-here")).send().await.expect("get");
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.expect("json");
    assert_eq!((body["status"].as_str(), body["code"].as_str()), (Some("error"), Some("not_found")));
    let res = app.client.put(app.url("/api/store")).send().await.expect("put");
    assert_eq!(res.status(), 405);
    assert_eq!(res.json::<Value>().await.expect("json")["status"], "error");
}

async fn answers_sent_before_the_body_was_read_close_the_connection(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    // Refused before the body is read: the connection cannot be reused.
    let res = Upload::new("rs_live_wrong", "a.bin", vec![0u8; 256 * 1024]).request(&app).send().await.expect("send");
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["connection"], "close");
    // Read to the end: keep-alive as usual.
    let res = Upload::new(&key, "a.bin", vec![0u8; 1024]).request(&app).send().await.expect("send");
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("connection").is_none());
    let res = app.client.get(app.url("/healthz")).send().await.expect("get");
    assert!(res.headers().get("connection").is_none());
}
