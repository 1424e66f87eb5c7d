//! A path segment that does not decode (bad UTF-8 in its percent-encoding) answers the
//! JSON error envelope with a status the document lists, on every operation with a path
//! parameter: axum's own `Path` rejection would answer `text/plain`.

use leasehold_tests::{ADMIN_TOKEN, Backend, TestApp, backend_tests};
use serde_json::Value;

backend_tests!(an_undecodable_path_segment_answers_a_documented_json_error_on_every_operation);

async fn an_undecodable_path_segment_answers_a_documented_json_error_on_every_operation(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000_000).await;
    let doc: Value =
        app.client.get(app.url("/api/openapi.json")).send().await.expect("req").json().await.expect("json");
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.contains('{') {
            continue;
        }
        for (method, op) in item.as_object().expect("item") {
            let token = if path.starts_with("/admin/") { ADMIN_TOKEN } else { key.as_str() };
            // Every parameter gets the undecodable segment, so the extractor of whichever
            // segment is read first refuses it.
            let uri = path.split('/').map(|s| if s.starts_with('{') { "%FF" } else { s }).collect::<Vec<_>>().join("/");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let res = app.client.request(method.clone(), app.url(&uri)).bearer_auth(token).send().await.expect("req");
            let status = res.status().as_u16().to_string();
            assert!(op["responses"].get(&status).is_some(), "{method} {uri}: {status} is not documented");
            if method != reqwest::Method::HEAD {
                let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                assert_eq!(ct, "application/json", "{method} {uri} answered {status} with {ct}");
                let body: Value = res.json().await.expect("json");
                assert_eq!(body["status"], "error", "{method} {uri}: {body}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} operations have path parameters");
}
