use leasehold_tests::checkpoint::{create, get, put};
use leasehold_tests::{Backend, TestApp, backend_tests};
use serde_json::{Value, json};

backend_tests!(
    bad_workflow_ids_are_refused,
    bad_bodies_and_headers_get_the_documented_codes,
    another_owners_workflow_answers_404,
);

/// Body, extra headers, expected status and code.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);

fn code(text: &str) -> String {
    serde_json::from_str::<Value>(text).map(|v| v["code"].as_str().unwrap_or_default().to_owned()).unwrap_or_default()
}

async fn bad_workflow_ids_are_refused(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let long = "x".repeat(129);
    for bad in ["", long.as_str(), "a/b", "has space", "café", "semi;colon"] {
        let (status, body) = create(&app, &key, bad, "{}", &[]).await;
        assert_eq!((status, body["code"].clone()), (400, json!("invalid_workflow_id")), "{bad:?}: {body}");
    }
    let res =
        app.client.post(app.url("/api/checkpoint")).bearer_auth(&key).header("X-Duration-Seconds", "3600").body("{}");
    let res = res.send().await.expect("no workflow header");
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.expect("json")["code"], "invalid_workflow_id");
    assert_eq!(create(&app, &key, &"x".repeat(128), "{}", &[]).await.0, 201, "128 characters are fine");
    for path in ["caf%C3%A9", "has%20space", &"y".repeat(129)] {
        let (status, _, text) = get(&app, &key, path).await;
        assert_eq!((status, code(&text)), (400, "invalid_workflow_id".to_owned()), "{path}");
    }
    assert!(app.blob_keys().await.len() == 1, "refused creations stored nothing");
}

async fn bad_bodies_and_headers_get_the_documented_codes(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let cases: Vec<Case<'_>> = vec![
        ("{not json", vec![], 400, "invalid_json"),
        ("", vec![], 400, "invalid_json"),
        ("[1,2", vec![("Content-Type", "application/vnd.state+json")], 400, "invalid_json"),
        ("{\"a\":12345}", vec![("X-Max-Body-Bytes", "10")], 413, "payload_too_large"),
        ("{}", vec![("X-Max-Body-Bytes", "16777217")], 413, "payload_too_large"),
        ("{}", vec![("X-Max-Body-Bytes", "0")], 400, "invalid_header"),
        ("{}", vec![("X-Max-Versions", "0")], 400, "invalid_header"),
        ("{}", vec![("X-Max-Versions", "101")], 400, "invalid_header"),
        ("{}", vec![("X-Duration-Seconds", "5")], 400, "duration_out_of_range"),
        ("{}", vec![("X-Webhook-Url", "ftp://x.example/")], 400, "webhook_url_forbidden"),
    ];
    for (body, headers, status, expected) in cases {
        let (got, answer) = create(&app, &key, "wf-bad", body, &headers).await;
        assert_eq!((got, answer["code"].as_str().unwrap_or_default()), (status, expected), "{body:?} {headers:?}");
    }
    assert!(app.blob_keys().await.is_empty(), "nothing stored");
    assert_eq!(app.balance(&key).await, 10_000, "nothing charged");

    assert_eq!(create(&app, &key, "wf", "{}", &[("X-Max-Body-Bytes", "16")]).await.0, 201);
    let (status, body) = put(&app, &key, "wf", "{\"broken\":", None).await;
    assert_eq!((status, body["code"].clone()), (400, json!("invalid_json")));
    let (status, body) = put(&app, &key, "wf", "{\"far\":\"too long\"}", None).await;
    assert_eq!((status, body["code"].clone()), (413, json!("payload_too_large")));
    let (status, body) = put(&app, &key, "wf", "{}", Some("three")).await;
    assert_eq!((status, body["code"].clone()), (400, json!("invalid_header")));
    let (status, body) = put(&app, &key, "wf", "{}", Some("\"9\"")).await;
    assert_eq!(
        (status, body["code"].clone(), body["current_version"].clone()),
        (412, json!("version_conflict"), json!(1))
    );
    for n in ["0", "abc", "2"] {
        let (status, _, text) = get(&app, &key, &format!("wf/versions/{n}")).await;
        assert_eq!((status, code(&text)), (404, "version_not_found".to_owned()), "{n}");
    }
    let (status, _, text) = get(&app, &key, "nobody").await;
    assert_eq!((status, code(&text)), (404, "not_found".to_owned()));
    let (status, body) = put(&app, &key, "nobody", "{}", None).await;
    assert_eq!((status, body["code"].clone()), (404, json!("not_found")));
    assert_eq!(app.blob_keys().await.len(), 1, "refused writes left no bytes");
}

async fn another_owners_workflow_answers_404(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, owner) = app.create_account(10_000).await;
    let (_, stranger) = app.create_account(10_000).await;
    assert_eq!(create(&app, &owner, "mine", "{\"secret\":1}", &[]).await.0, 201);
    for (method, path) in [
        (reqwest::Method::GET, "/api/checkpoint/mine"),
        (reqwest::Method::PUT, "/api/checkpoint/mine"),
        (reqwest::Method::DELETE, "/api/checkpoint/mine"),
        (reqwest::Method::GET, "/api/checkpoint/mine/versions"),
        (reqwest::Method::GET, "/api/checkpoint/mine/versions/1"),
    ] {
        let res = app.client.request(method.clone(), app.url(path)).bearer_auth(&stranger).body("{}").send();
        let res = res.await.expect("request");
        assert_eq!(res.status(), 404, "{method} {path}");
        assert_eq!(res.json::<Value>().await.expect("json")["code"], "not_found");
    }
    let (_, _, text) = get(&app, &owner, "mine").await;
    assert_eq!(text, "{\"secret\":1}", "untouched");
    let res = app.client.delete(app.url("/api/checkpoint/mine")).bearer_auth(&owner).send().await.expect("delete");
    assert_eq!(res.status(), 200);
    let (status, _, text) = get(&app, &owner, "mine").await;
    assert_eq!((status, code(&text)), (410, "lease_deleted".to_owned()));
}
