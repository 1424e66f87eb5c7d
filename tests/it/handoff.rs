use std::time::Duration;

use leasehold_tests::checkpoint;
use leasehold_tests::handoff::{claim, claim_path, issue};
use leasehold_tests::mailbox::Mailbox;
use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests, eventually};
use serde_json::{Value, json};

backend_tests!(
    a_storage_claim_sends_the_file_with_the_claim_headers,
    head_and_link_preview_bots_consume_nothing,
    revoking_stops_future_claims_and_is_idempotent,
    ttl_is_clamped_to_the_lease_and_an_expired_lease_answers_410,
    delete_on_claim_deletes_the_lease_and_its_bytes_after_the_last_claim,
    a_mailbox_claim_returns_every_message_in_seq_order,
    refusals_carry_the_claim_headers_even_for_an_undecodable_token,
    a_mailbox_claim_streams_large_and_many_messages_intact,
    a_checkpoint_claim_returns_the_current_version,
    handoffs_are_listed_and_shown_with_their_claim_log,
    bad_handoff_requests_get_the_documented_codes,
    a_slot_held_by_a_crashed_process_is_freed_after_15_minutes,
);

async fn stored(app: &TestApp, key: &str, body: &'static [u8]) -> String {
    let (status, created) =
        Upload::new(key, "report final.pdf", body).with("Content-Type", "application/pdf").send(app).await;
    assert_eq!(status, 201, "{created}");
    created["lease_id"].as_str().expect("id").to_owned()
}

fn code(bytes: &[u8]) -> String {
    serde_json::from_slice::<Value>(bytes)
        .map(|v| v["code"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

async fn a_storage_claim_sends_the_file_with_the_claim_headers(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let lease = stored(&app, &key, b"%PDF the bytes").await;
    let (status, issued) = issue(&app, &key, &lease, json!({ "max_claims": 2 })).await;
    assert_eq!(status, 201, "{issued}");
    assert!(issued["handoff_id"].as_str().expect("id").starts_with("hnd_"));
    assert_eq!(issued["handoff_token"].as_str().expect("token").len(), 64);
    assert_eq!(issued["claim_url"], app.url(&claim_path(&issued)));
    assert_eq!((issued["variant"].clone(), issued["max_claims"].clone()), (json!("storage"), json!(2)));
    assert_eq!(issued["delete_on_claim"], false);
    assert_eq!(issued["expires_at"], issued["lease_expires_at"], "default ttl: the lease's remaining life");
    let (status, headers, body) = claim(&app, &claim_path(&issued)).await;
    assert_eq!((status, body.as_ref()), (200, &b"%PDF the bytes"[..]));
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(headers["content-length"], "14");
    assert!(
        headers["content-disposition"].to_str().expect("cd").starts_with("attachment; filename=\"report final.pdf\"")
    );
    assert_eq!(headers["x-claims-remaining"], "1");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers.contains_key("x-lease-expires-at"));
    let (status, _, _) = claim(&app, &claim_path(&issued)).await;
    assert_eq!(status, 200);
    let (status, _, body) = claim(&app, &claim_path(&issued)).await;
    assert_eq!((status, code(&body)), (410, "handoff_exhausted".to_owned()));
    let (status, _, body) = claim(&app, &format!("/api/claim/{}", "0".repeat(64))).await;
    assert_eq!((status, code(&body)), (404, "handoff_not_found".to_owned()));
    let (status, _, body) = claim(&app, "/api/claim/not-a-token").await;
    assert_eq!((status, code(&body)), (404, "handoff_not_found".to_owned()));
}

async fn head_and_link_preview_bots_consume_nothing(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let lease = stored(&app, &key, b"one shot").await;
    let (_, issued) = issue(&app, &key, &lease, json!({})).await;
    let url = app.url(&claim_path(&issued));
    for _ in 0..3 {
        let res = app.client.head(&url).send().await.expect("head");
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-length"], "8");
        assert_eq!(res.headers()["x-claims-remaining"], "1");
    }
    for ua in
        ["Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "Twitterbot/1.0", "facebookexternalhit/1.1"]
    {
        let res = app.client.get(&url).header("User-Agent", ua).send().await.expect("bot");
        assert_eq!(res.status(), 200, "{ua}");
        assert!(res.headers()["content-type"].to_str().expect("ct").starts_with("text/html"));
        let page = res.text().await.expect("page");
        assert!(page.contains("Leasehold handoff") && !page.contains("one shot"), "{page}");
    }
    let (status, _, body) = claim(&app, &claim_path(&issued)).await;
    assert_eq!((status, body.as_ref()), (200, &b"one shot"[..]), "the single claim is still there");
    let (_, shown) = app.get_json(&key, &format!("/api/handoffs/{}", issued["handoff_id"].as_str().expect("id"))).await;
    assert_eq!(shown["claims_completed"], 1);
    assert_eq!(shown["claims"].as_array().expect("log").len(), 1, "HEAD and bots left no claim");
}

async fn revoking_stops_future_claims_and_is_idempotent(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let lease = stored(&app, &key, b"data").await;
    let (_, issued) = issue(&app, &key, &lease, json!({ "max_claims": 5 })).await;
    assert_eq!(claim(&app, &claim_path(&issued)).await.0, 200);
    let id = issued["handoff_id"].as_str().expect("id");
    let revoke =
        |target: String| app.client.delete(app.url(&format!("/api/handoffs/{target}"))).bearer_auth(&key).send();
    let first: Value = revoke(id.to_owned()).await.expect("revoke").json().await.expect("json");
    assert_eq!((first["status"].clone(), first["claims_completed"].clone()), (json!("ok"), json!(1)));
    assert!(first["revoked_at"].is_string());
    let token = issued["handoff_token"].as_str().expect("token").to_owned();
    let again = revoke(token).await.expect("revoke by token");
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.expect("json")["revoked_at"], first["revoked_at"], "idempotent");
    let (status, _, body) = claim(&app, &claim_path(&issued)).await;
    assert_eq!((status, code(&body)), (410, "handoff_revoked".to_owned()));
    let (_, stranger) = app.create_account(0).await;
    assert_eq!(revoke(id.to_owned()).await.expect("owner").status(), 200);
    let res =
        app.client.delete(app.url(&format!("/api/handoffs/{id}"))).bearer_auth(&stranger).send().await.expect("x");
    assert_eq!(res.status(), 404);
    assert_eq!(code(&res.bytes().await.expect("body")), "handoff_not_found");
}

async fn ttl_is_clamped_to_the_lease_and_an_expired_lease_answers_410(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let lease = stored(&app, &key, b"data").await;
    let (_, long) = issue(&app, &key, &lease, json!({ "ttl_seconds": 999_999_999u64 })).await;
    assert_eq!(long["expires_at"], long["lease_expires_at"], "clamped to the lease");
    let (_, short) = issue(&app, &key, &lease, json!({ "ttl_seconds": 60 })).await;
    assert_ne!(short["expires_at"], short["lease_expires_at"]);
    app.state.clock.advance(Duration::from_secs(61));
    let (status, _, body) = claim(&app, &claim_path(&short)).await;
    assert_eq!((status, code(&body)), (410, "handoff_expired".to_owned()));
    app.state.clock.advance(Duration::from_secs(3600));
    let (status, _, body) = claim(&app, &claim_path(&long)).await;
    assert_eq!(status, 410);
    assert!(["lease_expired", "handoff_expired"].contains(&code(&body).as_str()), "{body:?}");
    // A handoff that outlives nothing: the lease ended first (deleted by its owner).
    let other = stored(&app, &key, b"data").await;
    let (_, issued) = issue(&app, &key, &other, json!({})).await;
    let res =
        app.client.delete(app.url(&format!("/api/store/{other}"))).bearer_auth(&key).send().await.expect("delete");
    assert_eq!(res.status(), 200);
    let (status, _, body) = claim(&app, &claim_path(&issued)).await;
    assert_eq!((status, code(&body)), (410, "lease_deleted".to_owned()));
}

async fn delete_on_claim_deletes_the_lease_and_its_bytes_after_the_last_claim(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let _worker = if backend.is_distributed() { Some(app.start_worker().await) } else { None };
    let (_, key) = app.create_account(10_000).await;
    let lease = stored(&app, &key, b"burn after reading").await;
    let (_, issued) = issue(&app, &key, &lease, json!({ "max_claims": 2, "delete_on_claim": true })).await;
    assert_eq!(claim(&app, &claim_path(&issued)).await.0, 200);
    let (status, _) = app.get_json(&key, &format!("/api/leases/{lease}")).await;
    assert_eq!(status, 200, "not the last claim yet");
    assert_eq!(claim(&app, &claim_path(&issued)).await.0, 200);
    let deleted = eventually(Duration::from_secs(5), || async {
        let (status, body) = app.get_json(&key, &format!("/api/leases/{lease}")).await;
        (status == 410 && body["code"] == "lease_deleted").then_some(())
    })
    .await;
    assert!(deleted.is_some(), "the last claim deleted the lease");
    let gone = eventually(Duration::from_secs(15), || async { app.blob_keys().await.is_empty().then_some(()) }).await;
    assert!(gone.is_some(), "its bytes are gone from the blob store");
}

async fn a_mailbox_claim_returns_every_message_in_seq_order(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let mb = Mailbox::create(&app, &key, 10_000, &[]).await;
    assert_eq!(mb.drop_into(&app, "application/json", r#"{"n":1}"#).await.0, 201);
    assert_eq!(mb.drop_into(&app, "image/png", vec![0u8, 255, 1]).await.0, 201);
    assert_eq!(mb.drop_into(&app, "application/json; charset=utf-8", r#"[true]"#).await.0, 201);
    let (_, issued) = issue(&app, &key, &mb.lease_id, json!({})).await;
    let (status, headers, body) = claim(&app, &claim_path(&issued)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&body).expect("claim json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["lease_id"], mb.lease_id.as_str());
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.iter().map(|i| i["seq"].as_i64().expect("seq")).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(items[0]["body"], json!({"n": 1}));
    assert_eq!(items[1]["body_base64"], "AP8B");
    assert!(items[1].get("body").is_none());
    assert_eq!(items[2]["body"], json!([true]));
    assert!(items[0]["id"].as_str().expect("id").starts_with("msg_"));
}

async fn a_mailbox_claim_streams_large_and_many_messages_intact(backend: Backend) {
    use base64::Engine;
    let app = TestApp::spawn_with(&backend, leasehold_tests::no_drop_limits).await;
    let (_, key) = app.create_account(10_000_000).await;
    let mb = Mailbox::create(&app, &key, 64 << 20, &[("X-Max-Message-Bytes", "4194304")]).await;
    // Binary bodies of lengths around chunk sizes (base64 carries bytes across chunks), a
    // JSON body over the 1 MiB inline limit, a JSON-typed body that does not parse, and
    // enough small messages to need several pages.
    let sizes = [(3 << 20) + 1, (1 << 20) + 2, 5];
    let binary = |n: usize| (0..n).map(|i| (i * 7 % 256) as u8).collect::<Vec<u8>>();
    for n in sizes {
        assert_eq!(mb.drop_into(&app, "application/octet-stream", binary(n)).await.0, 201);
    }
    let big_json = format!("[{}0]", "1,".repeat(600_000));
    assert_eq!(mb.drop_into(&app, "application/json", big_json.clone()).await.0, 201);
    assert_eq!(mb.drop_into(&app, "application/json", "{not json").await.0, 201);
    for i in 0..150 {
        assert_eq!(mb.drop_into(&app, "application/json", format!(r#"{{"i":{i}}}"#)).await.0, 201);
    }
    let (_, issued) = issue(&app, &key, &mb.lease_id, json!({})).await;
    let (status, _, body) = claim(&app, &claim_path(&issued)).await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_slice(&body).expect("claim json");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 155);
    let decode =
        |v: &Value| base64::engine::general_purpose::STANDARD.decode(v.as_str().expect("base64")).expect("b64");
    for (item, n) in items.iter().zip(sizes) {
        assert_eq!(decode(&item["body_base64"]), binary(n), "binary message of {n} bytes");
    }
    assert_eq!(decode(&items[3]["body_base64"]), big_json.as_bytes(), "JSON over 1 MiB is given as base64");
    assert_eq!(decode(&items[4]["body_base64"]), b"{not json");
    for (i, item) in items[5..].iter().enumerate() {
        assert_eq!(item["body"], json!({ "i": i }));
    }
    let seqs: Vec<i64> = items.iter().map(|i| i["seq"].as_i64().expect("seq")).collect();
    assert_eq!(seqs, (1..=155).collect::<Vec<_>>());
}

async fn refusals_carry_the_claim_headers_even_for_an_undecodable_token(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    for path in ["/api/claim/%FF", &format!("/api/claim/{}", "ab".repeat(32))] {
        let res = app.client.get(app.url(path)).send().await.expect("claim");
        assert_eq!(res.status(), 404, "{path}");
        for (name, value) in
            [("cache-control", "no-store"), ("referrer-policy", "no-referrer"), ("x-content-type-options", "nosniff")]
        {
            assert_eq!(res.headers().get(name).and_then(|v| v.to_str().ok()), Some(value), "{path}: {name}");
        }
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["code"], "handoff_not_found");
    }
}

async fn a_checkpoint_claim_returns_the_current_version(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let (_, created) = checkpoint::create(&app, &key, "wf", r#"{"v":1}"#, &[]).await;
    assert_eq!(checkpoint::put(&app, &key, "wf", r#"{"v":2}"#, None).await.0, 200);
    let (_, issued) = issue(&app, &key, created["lease_id"].as_str().expect("id"), json!({})).await;
    assert_eq!(issued["variant"], "checkpoint");
    let (status, headers, body) = claim(&app, &claim_path(&issued)).await;
    assert_eq!((status, body.as_ref()), (200, &br#"{"v":2}"#[..]));
    assert_eq!(headers["x-checkpoint-version"], "2");
    assert_eq!(headers["x-workflow-id"], "wf");
    assert_eq!(headers["etag"], "\"2\"");
}

async fn handoffs_are_listed_and_shown_with_their_claim_log(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let lease = stored(&app, &key, b"data").await;
    let other = stored(&app, &key, b"more").await;
    let (_, a) = issue(&app, &key, &lease, json!({ "max_claims": 3 })).await;
    let (_, _b) = issue(&app, &key, &other, json!({})).await;
    let res = app.client.get(app.url(&claim_path(&a))).header("User-Agent", "agent-007/1.0").send().await.expect("c");
    assert_eq!(res.bytes().await.expect("body").as_ref(), b"data");
    let (status, list) = app.get_json(&key, &format!("/api/handoffs?lease_id={lease}")).await;
    assert_eq!(status, 200);
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["handoff_id"], a["handoff_id"]);
    assert!(items[0].get("handoff_token").is_none(), "never the token");
    assert!(!list.to_string().contains(a["handoff_token"].as_str().expect("token")));
    let (_, all) = app.get_json(&key, "/api/handoffs").await;
    assert_eq!(all["items"].as_array().expect("items").len(), 2);
    let shown = eventually(Duration::from_secs(5), || async {
        let (_, shown) = app.get_json(&key, &format!("/api/handoffs/{}", a["handoff_id"].as_str().expect("id"))).await;
        (shown["claims_completed"] == 1).then_some(shown)
    })
    .await
    .expect("counted");
    assert_eq!(shown["claims_in_flight"], 0);
    let log = shown["claims"].as_array().expect("log");
    assert_eq!(log.len(), 1);
    assert_eq!((log[0]["outcome"].clone(), log[0]["bytes_sent"].clone()), (json!("completed"), json!(4)));
    assert_eq!(log[0]["user_agent"], "agent-007/1.0");
    assert!(log[0]["at"].is_string());
}

async fn bad_handoff_requests_get_the_documented_codes(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let (_, stranger) = app.create_account(10_000).await;
    let lease = stored(&app, &key, b"data").await;
    for body in [
        json!({ "max_claims": 0 }),
        json!({ "max_claims": 10_001 }),
        json!({ "ttl_seconds": 0 }),
        json!({ "bogus": 1 }),
    ] {
        let (status, answer) = issue(&app, &key, &lease, body.clone()).await;
        assert_eq!((status, answer["code"].clone()), (400, json!("bad_request")), "{body}");
    }
    let res = app
        .client
        .post(app.url(&format!("/api/handoff/{lease}")))
        .bearer_auth(&key)
        .header("Content-Type", "application/json")
        .body("{nope")
        .send()
        .await
        .expect("bad json");
    assert_eq!(res.status(), 400);
    assert_eq!(code(&res.bytes().await.expect("body")), "invalid_json");
    let (status, answer) = issue(&app, &stranger, &lease, json!({})).await;
    assert_eq!((status, answer["code"].clone()), (404, json!("not_found")), "another owner's lease");
    let (status, _) = app.get_json(&key, "/api/handoffs?lease_id=nope").await;
    assert_eq!(status, 400);
    let (status, answer) = app.get_json(&key, &format!("/api/handoffs/hnd_{}", ulid::Ulid::generate())).await;
    assert_eq!((status, answer["code"].clone()), (404, json!("handoff_not_found")));
    let res =
        app.client.post(app.url(&format!("/api/handoff/{lease}"))).json(&json!({})).send().await.expect("no auth");
    assert_eq!(res.status(), 401);
}

async fn a_slot_held_by_a_crashed_process_is_freed_after_15_minutes(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let lease = stored(&app, &key, b"data").await;
    let (_, issued) = issue(&app, &key, &lease, json!({})).await;
    let id = issued["handoff_id"].as_str().expect("id");
    // A process takes the slot and dies: no completion, no release, no heartbeat.
    let slot = leasehold_core::handoff::acquire(&app.state.db, id, Some("crashed"), app.state.now())
        .await
        .expect("db")
        .expect("slot");
    assert_eq!(slot.handoff.claims_in_flight, 1);
    let (status, _, body) = claim(&app, &claim_path(&issued)).await;
    assert_eq!((status, code(&body)), (409, "claim_in_progress".to_owned()));
    app.state.clock.advance(Duration::from_secs(14 * 60));
    assert_eq!(claim(&app, &claim_path(&issued)).await.0, 409, "still held at 14 minutes");
    app.state.clock.advance(Duration::from_secs(61));
    let (status, _, body) = claim(&app, &claim_path(&issued)).await;
    assert_eq!((status, body.as_ref()), (200, &b"data"[..]), "freed after 15 minutes");
    let shown = eventually(Duration::from_secs(5), || async {
        let (_, shown) = app.get_json(&key, &format!("/api/handoffs/{id}")).await;
        (shown["claims_completed"] == 1).then_some(shown)
    })
    .await
    .expect("counted");
    let outcomes: Vec<&str> =
        shown["claims"].as_array().expect("log").iter().filter_map(|c| c["outcome"].as_str()).collect();
    assert_eq!(outcomes, vec!["abandoned", "completed"]);
}
