use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests};

backend_tests!(
    pricing_lists_rates_limits_and_endpoints,
    quote_equals_what_creation_charges,
    quote_refuses_out_of_range_input
);

async fn pricing_lists_rates_limits_and_endpoints(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let body: serde_json::Value =
        app.client.get(app.url("/api/pricing")).send().await.expect("req").json().await.expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["currency"], "USDC");
    assert_eq!(body["unit"], "micros");
    assert_eq!(body["rate"]["micros_per_gb_day"], "1000");
    assert_eq!(body["minimum_charge_micros"], "29");
    assert_eq!(body["duration_seconds"]["min"], 60);
    assert_eq!(body["duration_seconds"]["max"], 2_592_000);
    assert_eq!(body["limits"]["max_file_bytes"], 5u64 * 1024 * 1024 * 1024);
    assert_eq!(body["handoff"]["issue_micros"], "0");
    assert_eq!(body["payment"]["api_key"], true);
    let endpoints = body["endpoints"].as_array().expect("endpoints");
    assert!(endpoints.iter().any(|e| e["method"] == "POST" && e["path"] == "/api/store" && e["priced"] == true));
}

async fn quote_equals_what_creation_charges(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000_000).await;
    let quote: serde_json::Value = app
        .client
        .get(app.url("/api/quote?size_bytes=1048576&duration_seconds=3600"))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(quote["priceMicros"], "29");
    assert_eq!(quote["cost_micros"], "29");
    assert_eq!(quote["priceUsdc"], "0.000029");
    assert_eq!(quote["size_bytes"], 1_048_576);

    // A larger quote above the minimum, then the same charge on creation.
    let size = 3 * 1024 * 1024;
    let duration = 30 * 86_400;
    let quote: serde_json::Value = app
        .client
        .get(app.url(&format!("/api/quote?size_bytes={size}&duration_seconds={duration}")))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    let quoted: i64 = quote["cost_micros"].as_str().expect("str").parse().expect("int");
    assert_eq!(quoted, 95); // ceil(3 MiB × 30 d × 1000 µ/GB-day) = ceil(94.37)
    let mut upload = Upload::new(&key, "q.bin", vec![7u8; size]);
    upload.duration = duration;
    let (status, body) = upload.send(&app).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["cost_micros"], quote["cost_micros"]);
    assert_eq!(app.balance(&key).await, 1_000_000 - quoted);
}

async fn quote_refuses_out_of_range_input(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    for (query, code) in [
        ("size_bytes=1&duration_seconds=59", "duration_out_of_range"),
        ("size_bytes=1&duration_seconds=2592001", "duration_out_of_range"),
        ("size_bytes=abc&duration_seconds=60", "bad_request"),
        ("size_bytes=-1&duration_seconds=60", "bad_request"),
        ("duration_seconds=60", "bad_request"),
        ("size_bytes=99999999999999999999&duration_seconds=60", "bad_request"),
    ] {
        let res = app.client.get(app.url(&format!("/api/quote?{query}"))).send().await.expect("req");
        assert_eq!(res.status(), 400, "{query}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["code"], code, "{query}");
        assert_eq!(body["status"], "error");
    }
}
