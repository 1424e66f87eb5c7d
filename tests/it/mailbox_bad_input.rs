use std::time::Duration;

use leasehold_tests::mailbox::{Mailbox, create_raw};
use leasehold_tests::{Backend, TestApp, backend_tests};
use serde_json::{Value, json};

backend_tests!(
    bad_creation_headers_get_the_documented_codes,
    bad_drops_get_the_documented_codes,
    bad_reads_get_the_documented_codes,
    another_owners_mailbox_answers_404,
    drops_are_rate_limited_per_address_and_per_mailbox,
    forwarded_addresses_count_only_from_trusted_proxies,
);

/// Capacity, duration, extra headers, expected status and code.
type CreateCase<'a> = (u64, u64, Vec<(&'a str, &'a str)>, u16, &'a str);

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or_default()
}

async fn bad_creation_headers_get_the_documented_codes(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let gib = (1u64 << 30).to_string();
    let cases: Vec<CreateCase<'_>> = vec![
        (0, 3600, vec![], 400, "invalid_header"),
        (1024, 10, vec![], 400, "duration_out_of_range"),
        ((1 << 30) + 1, 3600, vec![], 413, "payload_too_large"),
        (1024, 3600, vec![("X-Max-Message-Bytes", "2048")], 400, "invalid_header"),
        (1024, 3600, vec![("X-Max-Message-Bytes", "0")], 400, "invalid_header"),
        (1024, 3600, vec![("X-Max-Message-Bytes", "1k")], 400, "invalid_header"),
        (1024, 3600, vec![("X-Max-Messages", "0")], 400, "invalid_header"),
        (1024, 3600, vec![("X-Max-Messages", "-5")], 400, "invalid_header"),
        (1024, 3600, vec![("X-Webhook-Url", "ftp://example.com/x")], 400, "webhook_url_forbidden"),
        (1024, 3600, vec![("X-Webhook-Url", "file:///etc/passwd")], 400, "webhook_url_forbidden"),
        (1024, 3600, vec![("X-Webhook-Secret", "lonely")], 400, "invalid_header"),
    ];
    for (capacity, duration, headers, status, expected) in cases {
        let (got, body) = create_raw(&app, &key, capacity, duration, &headers).await;
        assert_eq!((got, code(&body)), (status, expected), "{capacity} {duration} {headers:?}: {body}");
    }
    let (_, ok) = create_raw(&app, &key, 1 << 30, 60, &[]).await;
    assert_eq!(ok["capacity_bytes"].as_u64().map(|n| n.to_string()), Some(gib), "the maximum itself is fine");
    let res = app.client.post(app.url("/api/mailbox")).bearer_auth(&key).header("X-Duration-Seconds", "3600").send();
    let res = res.await.expect("no capacity");
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("json");
    assert_eq!((code(&body), body["header"].as_str()), ("invalid_header", Some("X-Capacity-Bytes")));
    let res = app.client.post(app.url("/api/mailbox")).header("X-Capacity-Bytes", "10").send().await.expect("no auth");
    assert_eq!(res.status(), 401);
    let (_, poor) = app.create_account(0).await;
    let (status, body) = create_raw(&app, &poor, 1024, 3600, &[]).await;
    assert_eq!((status, code(&body)), (402, "insufficient_balance"));
}

async fn bad_drops_get_the_documented_codes(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let mb = Mailbox::create(&app, &key, 100, &[("X-Max-Message-Bytes", "40"), ("X-Max-Messages", "3")]).await;
    let (status, body) = mb.drop_into(&app, "text/plain", "").await;
    assert_eq!((status, code(&body)), (400, "empty_message"));
    let (status, body) = mb.drop_into(&app, "text/plain", "x".repeat(41)).await;
    assert_eq!((status, code(&body)), (413, "message_too_large"));
    assert_eq!(body["max_message_bytes"], 40);
    // A chunked body (no Content-Length) is checked while it streams.
    let chunks = futures_util::stream::iter(vec![Ok::<_, std::io::Error>("x".repeat(30)), Ok("y".repeat(30))]);
    let (status, body) = mb.drop_into(&app, "text/plain", reqwest::Body::wrap_stream(chunks)).await;
    assert_eq!((status, code(&body)), (413, "message_too_large"));
    let empty = futures_util::stream::iter(Vec::<Result<String, std::io::Error>>::new());
    let (status, body) = mb.drop_into(&app, "text/plain", reqwest::Body::wrap_stream(empty)).await;
    assert_eq!((status, code(&body)), (400, "empty_message"));
    let res = app.client.post(app.url(mb.drop_path())).header("Content-Type", "tëxt/plain").body("x").send();
    let res = res.await.expect("bad content type");
    assert_eq!(res.status(), 400);
    // Capacity 100: two 40-byte messages fit, the third (40 > 20 left) does not.
    for _ in 0..2 {
        assert_eq!(mb.drop_into(&app, "text/plain", "z".repeat(40)).await.0, 201);
    }
    let (status, body) = mb.drop_into(&app, "text/plain", "z".repeat(40)).await;
    assert_eq!((status, code(&body)), (413, "mailbox_full"));
    assert_eq!(mb.drop_into(&app, "text/plain", "z".repeat(20)).await.0, 201, "what fits still fits");
    let (status, body) = mb.drop_into(&app, "text/plain", "z").await;
    assert_eq!((status, code(&body)), (413, "mailbox_full"), "the message count is exhausted too");
    let unknown = format!("/api/mailbox/drp_{}/drop", "0".repeat(64));
    for path in [unknown.as_str(), "/api/mailbox/drp_short/drop", "/api/mailbox/not-a-token/drop"] {
        let res = app.client.post(app.url(path)).body("x").send().await.expect("drop");
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(code(&res.json().await.expect("json")), "not_found");
    }
    assert_eq!(app.blob_keys().await.len(), 3, "refused drops left no bytes");
    app.state.clock.advance(Duration::from_secs(3601));
    let (status, body) = mb.drop_into(&app, "text/plain", "late").await;
    assert_eq!((status, code(&body)), (410, "lease_expired"));
    assert!(body["expires_at"].is_string());
}

async fn bad_reads_get_the_documented_codes(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let mb = Mailbox::create(&app, &key, 1000, &[]).await;
    for query in ["limit=0", "limit=1001", "wait=31", "after=-1", "after=x", "wait=1.5"] {
        let (status, body) = mb.messages(&app, &key, query).await;
        assert_eq!((status, code(&body)), (400, "bad_request"), "{query}");
    }
    let events = app.client.get(app.url(&format!("/api/mailbox/{}/events", mb.lease_id))).bearer_auth(&key);
    let res = events.header("Last-Event-ID", "seven").send().await.expect("events");
    assert_eq!(res.status(), 400);
    assert_eq!(code(&res.json().await.expect("json")), "invalid_header");
    for path in [
        format!("/api/mailbox/{}/messages/msg_{}", mb.lease_id, ulid::Ulid::generate()),
        format!("/api/mailbox/{}/messages/nonsense", mb.lease_id),
        "/api/mailbox/lse_bad/messages".to_owned(),
    ] {
        let (status, body) = app.get_json(&key, &path).await;
        assert_eq!((status, code(&body)), (404, "not_found"), "{path}");
    }
    // A Storage lease is not a mailbox.
    let (_, stored) = leasehold_tests::upload::Upload::new(&key, "f.txt", "file").send(&app).await;
    let id = stored["lease_id"].as_str().expect("id");
    let (status, _) = app.get_json(&key, &format!("/api/mailbox/{id}/messages")).await;
    assert_eq!(status, 404);
    // A long poll on a quiet mailbox returns an empty page when `wait` runs out.
    let started = tokio::time::Instant::now();
    let (status, body) = mb.messages(&app, &key, "wait=1").await;
    assert_eq!((status, body["items"].as_array().map(Vec::len)), (200, Some(0)));
    assert!(started.elapsed() >= Duration::from_millis(900), "held for the wait");
    let (status, body) = app.get_json("rs_live_wrong", &format!("/api/mailbox/{}/messages", mb.lease_id)).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"));
}

async fn another_owners_mailbox_answers_404(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, owner) = app.create_account(10_000).await;
    let (_, stranger) = app.create_account(10_000).await;
    let mb = Mailbox::create(&app, &owner, 1000, &[]).await;
    let (_, dropped) = mb.drop_into(&app, "text/plain", "secret").await;
    let msg = dropped["message_id"].as_str().expect("id");
    let base = format!("/api/mailbox/{}", mb.lease_id);
    for (method, path) in [
        (reqwest::Method::GET, format!("{base}/messages")),
        (reqwest::Method::GET, format!("{base}/messages/{msg}")),
        (reqwest::Method::DELETE, format!("{base}/messages/{msg}")),
        (reqwest::Method::GET, format!("{base}/events")),
        (reqwest::Method::DELETE, base.clone()),
        (reqwest::Method::GET, format!("/api/leases/{}", mb.lease_id)),
    ] {
        let res = app.client.request(method.clone(), app.url(&path)).bearer_auth(&stranger).send().await.expect("req");
        assert_eq!(res.status(), 404, "{method} {path}");
        assert_eq!(code(&res.json().await.expect("json")), "not_found");
    }
    let (_, page) = mb.messages(&app, &owner, "").await;
    assert_eq!(page["message_count"], 1, "nothing was deleted by the stranger");
}

async fn drops_are_rate_limited_per_address_and_per_mailbox(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| {
        c.limits.drop_rate_per_ip = 1;
        c.limits.drop_burst_per_ip = 3;
        c.limits.drop_rate_per_mailbox = 1000;
        c.limits.drop_burst_per_mailbox = 1000;
    })
    .await;
    let (_, key) = app.create_account(10_000).await;
    let mb = Mailbox::create(&app, &key, 10_000, &[]).await;
    for _ in 0..3 {
        assert_eq!(mb.drop_into(&app, "text/plain", "x").await.0, 201);
    }
    let res = app.client.post(app.url(mb.drop_path())).body("x").send().await.expect("drop");
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: Value = res.json().await.expect("json");
    assert_eq!((code(&body), body["retry_after_seconds"].clone()), ("rate_limited", json!(1)));

    let per_mailbox = TestApp::spawn_with(&backend, |c| {
        c.limits.drop_rate_per_ip = 0;
        c.limits.drop_rate_per_mailbox = 1;
        c.limits.drop_burst_per_mailbox = 2;
    })
    .await;
    let (_, key) = per_mailbox.create_account(10_000).await;
    let a = Mailbox::create(&per_mailbox, &key, 10_000, &[]).await;
    let b = Mailbox::create(&per_mailbox, &key, 10_000, &[]).await;
    assert_eq!(a.drop_into(&per_mailbox, "text/plain", "1").await.0, 201);
    assert_eq!(a.drop_into(&per_mailbox, "text/plain", "2").await.0, 201);
    let (status, body) = a.drop_into(&per_mailbox, "text/plain", "3").await;
    assert_eq!((status, code(&body)), (429, "rate_limited"));
    assert_eq!(b.drop_into(&per_mailbox, "text/plain", "1").await.0, 201, "another mailbox has its own bucket");
}

async fn forwarded_addresses_count_only_from_trusted_proxies(backend: Backend) {
    let trusted = TestApp::spawn_with(&backend, |c| {
        c.limits.drop_rate_per_ip = 1;
        c.limits.drop_burst_per_ip = 1;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("cidr")];
    })
    .await;
    let (_, key) = trusted.create_account(10_000).await;
    let mb = Mailbox::create(&trusted, &key, 10_000, &[]).await;
    let drop_as = |app: &TestApp, forwarded: &str| {
        app.client.post(app.url(mb.drop_path())).header("X-Forwarded-For", forwarded.to_owned()).body("x").send()
    };
    assert_eq!(drop_as(&trusted, "203.0.113.1").await.expect("drop").status(), 201);
    assert_eq!(drop_as(&trusted, "203.0.113.2").await.expect("drop").status(), 201, "another client");
    assert_eq!(drop_as(&trusted, "203.0.113.1").await.expect("drop").status(), 429, "same client again");
    assert_eq!(
        drop_as(&trusted, "198.51.100.7, 203.0.113.1").await.expect("drop").status(),
        429,
        "spoofed left entries"
    );

    let plain = TestApp::spawn_with(&backend, |c| {
        c.limits.drop_rate_per_ip = 1;
        c.limits.drop_burst_per_ip = 1;
    })
    .await;
    let (_, key) = plain.create_account(10_000).await;
    let other = Mailbox::create(&plain, &key, 10_000, &[]).await;
    let send =
        |f: &'static str| plain.client.post(plain.url(other.drop_path())).header("X-Forwarded-For", f).body("x").send();
    assert_eq!(send("203.0.113.1").await.expect("drop").status(), 201);
    assert_eq!(send("203.0.113.2").await.expect("drop").status(), 429, "the header is ignored without trust");
}
