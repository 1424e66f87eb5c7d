//! Building Storage uploads.

use bytes::Bytes;
use reqwest::header::HeaderValue;

use crate::TestApp;

/// A `POST /api/store` with the usual headers, any of which a test may replace.
pub struct Upload<'a> {
    /// API key.
    pub key: &'a str,
    /// Body.
    pub body: Bytes,
    /// `X-Duration-Seconds`.
    pub duration: u64,
    headers: Vec<(&'static str, HeaderValue)>,
}

impl<'a> Upload<'a> {
    /// An upload of `body` as `name` for an hour.
    pub fn new(key: &'a str, name: &str, body: impl Into<Bytes>) -> Self {
        let body = body.into();
        let headers = vec![
            ("X-File-Name", HeaderValue::from_bytes(name.as_bytes()).expect("file name header")),
            ("X-Size-Bytes", HeaderValue::from(body.len())),
            ("Content-Type", HeaderValue::from_static("application/octet-stream")),
        ];
        Self { key, body, duration: 3600, headers }
    }

    /// Replaces (or adds) a header.
    pub fn with(mut self, name: &'static str, value: impl TryInto<HeaderValue>) -> Self {
        let value = value.try_into().ok().expect("header value");
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name, value));
        self
    }

    /// The request.
    pub fn request(&self, app: &TestApp) -> reqwest::RequestBuilder {
        let mut req = app
            .client
            .post(app.url("/api/store"))
            .bearer_auth(self.key)
            .header("X-Duration-Seconds", self.duration.to_string())
            .body(self.body.clone());
        for (name, value) in &self.headers {
            req = req.header(*name, value.clone());
        }
        req
    }

    /// Sends it and returns status and JSON body.
    pub async fn send(&self, app: &TestApp) -> (u16, serde_json::Value) {
        let res = self.request(app).send().await.expect("upload");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }
}
