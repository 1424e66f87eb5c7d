use std::time::Duration;

use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests};
use serde_json::Value;

backend_tests!(
    a_repeated_key_replays_the_first_response_and_charges_once,
    a_reused_key_with_a_different_request_is_refused,
    a_failed_request_releases_its_key,
    keys_are_scoped_per_owner_and_expire_after_a_day,
    concurrent_requests_with_one_key_create_one_lease,
);

async fn a_repeated_key_replays_the_first_response_and_charges_once(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    let upload = Upload::new(&key, "i.txt", "once only").with("Idempotency-Key", "req-1");
    let first = upload.request(&app).send().await.expect("first");
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body: Value = first.json().await.expect("json");
    let second = upload.request(&app).send().await.expect("second");
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.headers()["x-lease-id"], first_body["lease_id"].as_str().expect("id"));
    let second_body: Value = second.json().await.expect("json");
    assert_eq!(first_body, second_body);
    assert_eq!(app.balance(&key).await, 1_000 - 29);
    assert_eq!(app.blob_keys().await.len(), 1);
}

async fn a_reused_key_with_a_different_request_is_refused(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    let (status, _) = Upload::new(&key, "a.txt", "aaa").with("Idempotency-Key", "k").send(&app).await;
    assert_eq!(status, 201);
    let (status, body) = Upload::new(&key, "b.txt", "bbb").with("Idempotency-Key", "k").send(&app).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("idempotency_key_reused")));
    let (status, body) = Upload::new(&key, "b.txt", "bbb").with("Idempotency-Key", "has space").send(&app).await;
    assert_eq!((status, body["header"].as_str()), (400, Some("Idempotency-Key")));
    assert_eq!(app.balance(&key).await, 1_000 - 29);
}

async fn a_failed_request_releases_its_key(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (account_id, key) = app.create_account(10).await;
    let upload = Upload::new(&key, "p.txt", "pay later").with("Idempotency-Key", "retry-me");
    assert_eq!(upload.send(&app).await.0, 402);
    let short = Upload::new(&key, "p.txt", "pay").with("Idempotency-Key", "retry-me").with("X-Size-Bytes", "9");
    assert_eq!(short.send(&app).await.0, 400);
    leasehold_core::accounts::credit(&app.state.db, &account_id, 100, None, app.state.now()).await.expect("credit");
    let (status, body) = upload.send(&app).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(app.balance(&key).await, 110 - 29);
}

async fn keys_are_scoped_per_owner_and_expire_after_a_day(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, alice) = app.create_account(1_000).await;
    let (_, bob) = app.create_account(1_000).await;
    let (s1, a) = Upload::new(&alice, "x.txt", "x").with("Idempotency-Key", "shared").send(&app).await;
    let (s2, b) = Upload::new(&bob, "x.txt", "x").with("Idempotency-Key", "shared").send(&app).await;
    assert_eq!((s1, s2), (201, 201));
    assert_ne!(a["lease_id"], b["lease_id"]);
    app.state.clock.advance(Duration::from_secs(24 * 3600));
    let mut upload = Upload::new(&alice, "x.txt", "x").with("Idempotency-Key", "shared");
    upload.duration = 3600;
    let res = upload.request(&app).send().await.expect("after a day");
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("idempotent-replayed").is_none());
    assert_eq!(app.balance(&alice).await, 1_000 - 58);
}

async fn concurrent_requests_with_one_key_create_one_lease(backend: Backend) {
    let a = TestApp::spawn(&backend).await;
    let b = a.second_instance().await;
    let (_, key) = a.create_account(1_000).await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let app = if i % 2 == 0 { &a } else { &b };
        let req = Upload::new(&key, "race.bin", vec![1u8; 64 * 1024]).with("Idempotency-Key", "race").request(app);
        tasks.push(tokio::spawn(async move { req.send().await.expect("upload").status().as_u16() }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    assert!(statuses.contains(&201));
    assert_eq!(a.balance(&key).await, 1_000 - 29, "charged exactly once");
    assert_eq!(a.blob_keys().await.len(), 1);
    let (_, leases) = b.get_json(&key, "/api/leases").await;
    assert_eq!(leases["items"].as_array().expect("items").len(), 1);
}
