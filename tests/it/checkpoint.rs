use std::time::Duration;

use leasehold_entities::lease;
use leasehold_tests::checkpoint::{create, get, put};
use leasehold_tests::{Backend, TestApp, backend_tests, eventually, fast_expiry};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

backend_tests!(
    a_checkpoint_starts_at_version_1_and_reads_back_with_its_headers,
    puts_make_new_versions_and_if_match_guards_them,
    pruning_keeps_exactly_max_versions_and_deletes_the_pruned_bytes,
    a_workflow_has_one_active_checkpoint_until_it_expires,
    an_expired_checkpoint_loses_every_version,
);

async fn a_checkpoint_starts_at_version_1_and_reads_back_with_its_headers(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let (status, body) = create(&app, &key, "wf-1", r#"{"step":1}"#, &[]).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["version"], 1);
    assert_eq!(body["workflow_id"], "wf-1");
    assert_eq!(body["size_bytes"], 10);
    assert_eq!(body["max_body_bytes"], 262_144);
    assert_eq!(body["max_versions"], 10);
    assert_eq!(body["cost_micros"], "29", "priced as a reservation of max_body_bytes");
    assert_eq!(body["checkpoint_url"], app.url("/api/checkpoint/wf-1"));
    assert!(body["lease_id"].as_str().expect("id").starts_with("lse_"));
    let (status, headers, text) = get(&app, &key, "wf-1").await;
    assert_eq!((status, text.as_str()), (200, r#"{"step":1}"#));
    assert_eq!(headers["x-checkpoint-version"], "1");
    assert_eq!(headers["etag"], "\"1\"");
    assert_eq!(headers["x-workflow-id"], "wf-1");
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.contains_key("last-modified"));
    let res = app
        .client
        .get(app.url("/api/checkpoint/wf-1"))
        .bearer_auth(&key)
        .header("If-None-Match", "\"1\"")
        .send()
        .await
        .expect("conditional get");
    assert_eq!(res.status(), 304);
    assert_eq!(res.headers()["etag"], "\"1\"");
    let (_, lease) = app.get_json(&key, &format!("/api/leases/{}", body["lease_id"].as_str().expect("id"))).await;
    assert_eq!(lease["lease"]["variant"], "checkpoint");
    assert_eq!(lease["lease"]["workflow_id"], "wf-1");
    assert_eq!(lease["lease"]["current_version"], 1);
    let (status, plain) = create(&app, &key, "wf-text", "not json at all", &[("Content-Type", "text/plain")]).await;
    assert_eq!(status, 201, "{plain}");
}

async fn puts_make_new_versions_and_if_match_guards_them(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    assert_eq!(create(&app, &key, "wf", r#"{"v":1}"#, &[]).await.0, 201);
    let (status, two) = put(&app, &key, "wf", r#"{"v":2}"#, None).await;
    assert_eq!((status, two["version"].clone()), (200, json!(2)), "{two}");
    assert!(two["updated_at"].is_string());
    let (status, three) = put(&app, &key, "wf", r#"{"v":3}"#, Some("\"2\"")).await;
    assert_eq!((status, three["version"].clone()), (200, json!(3)));
    let (status, stale) = put(&app, &key, "wf", r#"{"v":"stale"}"#, Some("\"2\"")).await;
    assert_eq!(status, 412);
    assert_eq!((stale["code"].clone(), stale["current_version"].clone()), (json!("version_conflict"), json!(3)));
    let (_, headers, text) = get(&app, &key, "wf").await;
    assert_eq!((headers["x-checkpoint-version"].to_str().expect("v"), text.as_str()), ("3", r#"{"v":3}"#));
    let (status, list) = app.get_json(&key, "/api/checkpoint/wf/versions").await;
    assert_eq!(status, 200);
    assert_eq!(list["current_version"], 3);
    let versions: Vec<i64> =
        list["items"].as_array().expect("items").iter().filter_map(|v| v["version"].as_i64()).collect();
    assert_eq!(versions, vec![3, 2, 1], "newest first");
    let (status, headers, text) = get(&app, &key, "wf/versions/1").await;
    assert_eq!((status, text.as_str()), (200, r#"{"v":1}"#));
    assert_eq!(headers["x-checkpoint-version"], "1");
    assert_eq!(app.blob_keys().await.len(), 3, "the refused write left no bytes");
}

async fn pruning_keeps_exactly_max_versions_and_deletes_the_pruned_bytes(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    assert_eq!(create(&app, &key, "wf", r#"{"v":1}"#, &[("X-Max-Versions", "3")]).await.0, 201);
    for v in 2..=7 {
        assert_eq!(put(&app, &key, "wf", &format!(r#"{{"v":{v}}}"#), None).await.0, 200);
    }
    let (_, list) = app.get_json(&key, "/api/checkpoint/wf/versions").await;
    let versions: Vec<i64> =
        list["items"].as_array().expect("items").iter().filter_map(|v| v["version"].as_i64()).collect();
    assert_eq!(versions, vec![7, 6, 5]);
    assert_eq!(app.blob_keys().await.len(), 3, "pruned versions' bytes are gone from the blob store");
    let (status, _, text) = get(&app, &key, "wf/versions/4").await;
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!((status, body["code"].clone()), (410, json!("version_pruned")));
    let (status, _, text) = get(&app, &key, "wf/versions/8").await;
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!((status, body["code"].clone()), (404, json!("version_not_found")));
    let (status, _, text) = get(&app, &key, "wf/versions/5").await;
    assert_eq!((status, text.as_str()), (200, r#"{"v":5}"#));
}

async fn a_workflow_has_one_active_checkpoint_until_it_expires(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let (_, other) = app.create_account(10_000).await;
    let (_, first) = create(&app, &key, "wf", r#"{"old":true}"#, &[]).await;
    let (status, body) = create(&app, &key, "wf", "{}", &[]).await;
    assert_eq!((status, body["code"].clone()), (409, json!("workflow_exists")));
    assert_eq!(app.balance(&key).await, 10_000 - 29, "the refused creation charged nothing");
    assert_eq!(app.blob_keys().await.len(), 1, "and stored nothing");
    assert_eq!(create(&app, &other, "wf", "{}", &[]).await.0, 201, "workflow ids are per owner");
    app.state.clock.advance(Duration::from_secs(3601));
    let (status, _, text) = get(&app, &key, "wf").await;
    assert_eq!(status, 410);
    assert_eq!(serde_json::from_str::<Value>(&text).expect("json")["code"], "lease_expired");
    let (status, second) = create(&app, &key, "wf", r#"{"new":true}"#, &[]).await;
    assert_eq!(status, 201, "the workflow id is free from the expiry instant: {second}");
    assert_ne!(second["lease_id"], first["lease_id"]);
    let (status, _, text) = get(&app, &key, "wf").await;
    assert_eq!((status, text.as_str()), (200, r#"{"new":true}"#));
    let old = lease::Entity::find_by_id(first["lease_id"].as_str().expect("id")).one(&app.state.db).await.expect("row");
    assert_eq!(old.map(|l| l.state.as_str()), Some("expired"), "the old lease is a tombstone");
}

async fn an_expired_checkpoint_loses_every_version(backend: Backend) {
    let app = TestApp::spawn_with(&backend, fast_expiry).await;
    let _worker = if backend.is_distributed() { Some(app.start_worker().await) } else { None };
    let (_, key) = app.create_account(10_000).await;
    let (status, body) = create(&app, &key, "short", "{}", &[("X-Duration-Seconds", "2")]).await;
    assert_eq!(status, 201, "{body}");
    for v in 2..=4 {
        assert_eq!(put(&app, &key, "short", &format!("{{\"v\":{v}}}"), None).await.0, 200);
    }
    let id = body["lease_id"].as_str().expect("id").to_owned();
    let purged = eventually(Duration::from_secs(15), || async {
        lease::Entity::find_by_id(&id).one(&app.state.db).await.expect("row")?.purged_at
    })
    .await;
    assert!(purged.is_some(), "purged by the worker");
    assert!(app.blob_keys().await.is_empty(), "every version's bytes are gone");
    let (status, _, _) = get(&app, &key, "short").await;
    assert_eq!(status, 410);
}
