//! Bad input answers 400, never 5xx, on every backend: query values are checked before
//! they reach SQL (a NUL is an encoding error on PostgreSQL), a control header sent twice
//! is refused naming it, and `.`/`..` are not workflow ids.

use leasehold_tests::checkpoint;
use leasehold_tests::mailbox::{Mailbox, create_raw};
use leasehold_tests::upload::Upload;
use leasehold_tests::{ADMIN_TOKEN, Backend, TestApp, backend_tests};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

backend_tests!(
    query_values_are_checked_before_they_reach_the_database,
    a_control_header_sent_twice_is_refused_naming_it,
    dot_workflow_ids_are_refused_on_creation_and_in_paths,
    control_characters_in_admin_bodies_are_refused,
);

async fn query_values_are_checked_before_they_reach_the_database(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000_000).await;
    let mb = Mailbox::create(&app, &key, 1024, &[]).await;
    let id = &mb.lease_id;
    let lease = format!("lse_{}", ulid::Ulid::generate());
    let cases = [
        ("/api/leases?cursor=%00".to_owned(), "cursor"),
        ("/api/leases?cursor=nope".to_owned(), "cursor"),
        ("/api/leases?cursor=%FF".to_owned(), "cursor"),
        (format!("/api/leases?cursor=evt_{}", ulid::Ulid::generate()), "cursor"),
        ("/api/leases?variant=%00".to_owned(), "variant"),
        ("/api/leases?state=a%0Ab".to_owned(), "state"),
        ("/api/leases?limit=1&limit=2".to_owned(), "limit"),
        ("/api/leases?limit=x".to_owned(), "limit"),
        ("/api/leases?_=%00".to_owned(), "_"),
        ("/v1/account/ledger?cursor=%00".to_owned(), "cursor"),
        (format!("/v1/account/ledger?cursor={lease}"), "cursor"),
        ("/v1/account/ledger?limit=0".to_owned(), "limit"),
        (format!("/api/mailbox/{id}/messages?after=%00"), "after"),
        (format!("/api/mailbox/{id}/messages?after=-1"), "after"),
        (format!("/api/mailbox/{id}/messages?limit=%00"), "limit"),
        (format!("/api/mailbox/{id}/messages?wait=%00"), "wait"),
        (format!("/api/mailbox/{id}/messages?wait=99"), "wait"),
        ("/api/handoffs?lease_id=%00".to_owned(), "lease_id"),
        ("/api/handoffs?lease_id=lse_x".to_owned(), "lease_id"),
        (format!("/api/leases/{id}/deliveries?cursor=%00"), "cursor"),
        (format!("/api/leases/{id}/deliveries?limit=%C3"), "limit"),
        ("/api/quote?size_bytes=%00&duration_seconds=60".to_owned(), "size_bytes"),
        ("/api/quote?size_bytes=1&duration_seconds=%00".to_owned(), "duration_seconds"),
    ];
    for (path, parameter) in cases {
        let (status, body) = app.get_json(&key, &path).await;
        assert_eq!(
            (status, body["code"].as_str(), body["parameter"].as_str()),
            (400, Some("bad_request"), Some(parameter)),
            "{path}: {body}"
        );
    }
    // The cursors the server hands out still page.
    Upload::new(&key, "second.txt", "x").send(&app).await;
    for path in ["/api/leases?limit=1", "/v1/account/ledger?limit=1"] {
        let (status, first) = app.get_json(&key, path).await;
        let next = first["next_cursor"].as_str().unwrap_or_else(|| panic!("{path}: a full page has a cursor: {first}"));
        let (status2, second) = app.get_json(&key, &format!("{path}&cursor={next}")).await;
        assert_eq!((status, status2), (200, 200), "{path}: {second}");
        assert_ne!(first["items"][0], second["items"][0], "{path}: the second page moved on");
    }
}

fn refused_naming(status: u16, body: &Value, header: &str, what: &str) {
    assert_eq!(
        (status, body["code"].as_str(), body["header"].as_str()),
        (400, Some("invalid_header"), Some(header)),
        "{what}: {body}"
    );
}

async fn a_control_header_sent_twice_is_refused_naming_it(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000_000).await;
    let mb = Mailbox::create(&app, &key, 4096, &[]).await;
    checkpoint::create(&app, &key, "wf-twice", "{}", &[]).await;
    let (_, stored) = Upload::new(&key, "kept.txt", "hello").send(&app).await;
    let balance = app.balance(&key).await;
    let hook = "https://93.184.216.34/hook";

    // Storage creation: each header once more, with a different value.
    for (header, second) in [
        ("X-Size-Bytes", "4"),
        ("X-Duration-Seconds", "60"),
        ("X-File-Name", "other.txt"),
        ("Content-Type", "text/plain"),
        ("Idempotency-Key", "k2"),
        ("X-Webhook-Url", "https://93.184.216.35/hook"),
        ("X-Webhook-Secret", "s2"),
        ("X-Expiry-Warning-Seconds", "20"),
        ("Authorization", "Bearer rs_live_other"),
    ] {
        let upload = Upload::new(&key, "f.txt", "hello")
            .with("Idempotency-Key", "k1")
            .with("X-Webhook-Url", hook)
            .with("X-Webhook-Secret", "s1")
            .with("X-Expiry-Warning-Seconds", "10");
        let res = upload.request(&app).header(header, second).send().await.expect("upload");
        let status = res.status().as_u16();
        refused_naming(status, &res.json().await.unwrap_or_default(), header, &format!("store {header}"));
    }
    // Mailbox creation.
    for header in ["X-Capacity-Bytes", "X-Max-Message-Bytes", "X-Max-Messages"] {
        let (status, body) = create_raw(&app, &key, 2048, 3600, &[(header, "100"), (header, "200")]).await;
        refused_naming(status, &body, header, &format!("mailbox {header}"));
    }
    // Checkpoint creation, writes and reads.
    for header in ["X-Workflow-Id", "X-Max-Body-Bytes", "X-Max-Versions", "X-Duration-Seconds"] {
        let (status, body) = checkpoint::create(&app, &key, "wf-new", "{}", &[(header, "60"), (header, "61")]).await;
        refused_naming(status, &body, header, &format!("checkpoint {header}"));
    }
    let put = app.client.put(app.url("/api/checkpoint/wf-twice")).bearer_auth(&key).body("{}");
    let res = put.header("If-Match", "\"1\"").header("If-Match", "\"2\"").send().await.expect("put");
    refused_naming(res.status().as_u16(), &res.json().await.unwrap_or_default(), "If-Match", "put");
    let get = app.client.get(app.url("/api/checkpoint/wf-twice")).bearer_auth(&key);
    let res = get.header("If-None-Match", "\"1\"").header("If-None-Match", "\"2\"").send().await.expect("get");
    refused_naming(res.status().as_u16(), &res.json().await.unwrap_or_default(), "If-None-Match", "get");
    // A drop and a handoff.
    let drop = app.client.post(app.url(mb.drop_path())).body("x");
    let res = drop.header("Content-Type", "text/plain").header("Content-Type", "text/html").send().await.expect("drop");
    refused_naming(res.status().as_u16(), &res.json().await.unwrap_or_default(), "Content-Type", "drop");
    let issue = app.client.post(app.url(&format!("/api/handoff/{}", mb.lease_id))).bearer_auth(&key).json(&json!({}));
    let res = issue.header("Idempotency-Key", "a").header("Idempotency-Key", "b").send().await.expect("issue");
    refused_naming(res.status().as_u16(), &res.json().await.unwrap_or_default(), "Idempotency-Key", "handoff");
    let read = app.client.get(app.url("/api/leases")).bearer_auth(&key).header("Authorization", "Bearer x");
    let res = read.send().await.expect("list");
    refused_naming(res.status().as_u16(), &res.json().await.unwrap_or_default(), "Authorization", "list");

    // A repeated Range is a multi-range request: ignored, the whole file served.
    let download = app.client.get(app.url(&format!("/api/download/{}", stored["lease_id"].as_str().expect("id"))));
    let res = download.bearer_auth(&key).header("Range", "bytes=0-1").header("Range", "bytes=2-3").send().await;
    let res = res.expect("download");
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.expect("body"), "hello");

    assert_eq!(app.balance(&key).await, balance, "nothing was charged");
    let (_, messages) = mb.messages(&app, &key, "").await;
    assert_eq!(messages["items"].as_array().map(Vec::len), Some(0), "nothing was dropped: {messages}");
}

/// Sends a request as written (no client normalises its path); status and body.
async fn raw(app: &TestApp, method: &str, path: &str, key: &str) -> (u16, String) {
    let addr = app.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Length: 2\r\n\
         Connection: close\r\n\r\n{{}}"
    );
    socket.write_all(head.as_bytes()).await.expect("request");
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.expect("answer");
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

async fn dot_workflow_ids_are_refused_on_creation_and_in_paths(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000_000).await;
    let balance = app.balance(&key).await;
    for id in [".", ".."] {
        let (status, body) = checkpoint::create(&app, &key, id, "{}", &[]).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid_workflow_id")), "{id:?}: {body}");
    }
    assert_eq!(app.balance(&key).await, balance, "nothing was charged");
    for (method, path) in [
        ("GET", "/api/checkpoint/.."),
        ("GET", "/api/checkpoint/%2E%2E"),
        ("PUT", "/api/checkpoint/."),
        ("DELETE", "/api/checkpoint/.."),
        ("GET", "/api/checkpoint/../versions"),
        ("GET", "/api/checkpoint/./versions/1"),
    ] {
        let (status, answer) = raw(&app, method, path, &key).await;
        assert_eq!(status, 400, "{method} {path}: {answer}");
        assert!(answer.contains("\"invalid_workflow_id\""), "{method} {path}: {answer}");
    }
    let (status, body) = checkpoint::create(&app, &key, "...", "{}", &[]).await;
    assert_eq!(status, 201, "three dots are a name: {body}");
}

async fn control_characters_in_admin_bodies_are_refused(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let admin = |path: &str| app.client.post(app.url(path)).bearer_auth(ADMIN_TOKEN);
    let res = admin("/admin/accounts").json(&json!({ "name": "a\u{0}b" })).send().await.expect("create");
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.expect("json")["code"], "bad_request");
    let (account, _) = app.create_account(0).await;
    let path = format!("/admin/accounts/{account}/credits");
    let res = admin(&path).json(&json!({ "amount_micros": 5, "memo": "x\u{0}" })).send().await.expect("credit");
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.expect("json")["code"], "bad_request");
    let res = admin(&path).json(&json!({ "amount_micros": 5, "memo": "line\nline" })).send().await.expect("credit");
    assert_eq!(res.status(), 200, "newlines are fine in a memo");
}
