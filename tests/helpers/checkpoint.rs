//! Checkpoint helpers.

use serde_json::Value;

use crate::TestApp;

/// `POST /api/checkpoint` for `workflow` with a body and extra headers (an hour unless
/// they say otherwise); status and JSON.
pub async fn create(app: &TestApp, key: &str, workflow: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url("/api/checkpoint"))
        .bearer_auth(key)
        .header("X-Workflow-Id", workflow)
        .body(body.to_owned());
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("X-Duration-Seconds")) {
        req = req.header("X-Duration-Seconds", "3600");
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.expect("create checkpoint");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// `PUT /api/checkpoint/{workflow}`, optionally with `If-Match`; status and JSON.
pub async fn put(app: &TestApp, key: &str, workflow: &str, body: &str, if_match: Option<&str>) -> (u16, Value) {
    let mut req =
        app.client.put(app.url(&format!("/api/checkpoint/{workflow}"))).bearer_auth(key).body(body.to_owned());
    if let Some(tag) = if_match {
        req = req.header("If-Match", tag);
    }
    let res = req.send().await.expect("put checkpoint");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// `GET /api/checkpoint/{path}`: status, headers and body text.
pub async fn get(app: &TestApp, key: &str, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let res = app.client.get(app.url(&format!("/api/checkpoint/{path}"))).bearer_auth(key).send().await.expect("get");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.text().await.expect("body"))
}
