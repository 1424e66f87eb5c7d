//! Handoff helpers.

use serde_json::Value;

use crate::TestApp;

/// `POST /api/handoff/{lease_id}` with a JSON body; status and JSON.
pub async fn issue(app: &TestApp, key: &str, lease_id: &str, body: Value) -> (u16, Value) {
    let res = app
        .client
        .post(app.url(&format!("/api/handoff/{lease_id}")))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("issue handoff");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The claim URL's path of an issue answer.
pub fn claim_path(issued: &Value) -> String {
    format!("/api/claim/{}", issued["handoff_token"].as_str().expect("token"))
}

/// `GET` a claim through `app`: status, headers and the whole body.
pub async fn claim(app: &TestApp, path: &str) -> (u16, reqwest::header::HeaderMap, bytes::Bytes) {
    let res = app.client.get(app.url(path)).send().await.expect("claim");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.unwrap_or_default())
}
