//! Mailbox helpers: create one, drop into it, read its event stream.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use crate::TestApp;

/// A created Mailbox.
#[derive(Clone, Debug)]
pub struct Mailbox {
    /// `lse_…`.
    pub lease_id: String,
    /// The drop URL (with the server's base).
    pub drop_url: String,
    /// The creation response.
    pub created: Value,
}

impl Mailbox {
    /// Creates a mailbox of `capacity` bytes for an hour, with extra headers.
    pub async fn create(app: &TestApp, key: &str, capacity: u64, headers: &[(&str, &str)]) -> Self {
        let (status, body) = create_raw(app, key, capacity, 3600, headers).await;
        assert_eq!(status, 201, "{body}");
        Self {
            lease_id: body["lease_id"].as_str().expect("lease_id").to_owned(),
            drop_url: body["drop_url"].as_str().expect("drop_url").to_owned(),
            created: body,
        }
    }

    /// The drop URL's path (to send it to another instance).
    pub fn drop_path(&self) -> &str {
        let start = self.drop_url.find("/api/").expect("path");
        &self.drop_url[start..]
    }

    /// Drops `body` as `content_type` through `app`; status and JSON.
    pub async fn drop_into(&self, app: &TestApp, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let res = app
            .client
            .post(app.url(self.drop_path()))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .expect("drop");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// `DELETE …/messages/{id}` as `key`.
    pub async fn delete_message(&self, app: &TestApp, key: &str, id: &str) -> reqwest::Response {
        let url = app.url(&format!("/api/mailbox/{}/messages/{id}", self.lease_id));
        app.client.delete(url).bearer_auth(key).send().await.expect("delete message")
    }

    /// `GET …/messages?<query>` as the owner.
    pub async fn messages(&self, app: &TestApp, key: &str, query: &str) -> (u16, Value) {
        app.get_json(key, &format!("/api/mailbox/{}/messages?{query}", self.lease_id)).await
    }
}

/// `POST /api/mailbox` with the given headers; status and JSON.
pub async fn create_raw(
    app: &TestApp,
    key: &str,
    capacity: u64,
    duration: u64,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url("/api/mailbox"))
        .bearer_auth(key)
        .header("X-Capacity-Bytes", capacity.to_string())
        .header("X-Duration-Seconds", duration.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.expect("create mailbox");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// One Server-Sent Event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:`.
    pub event: String,
    /// `id:`.
    pub id: Option<String>,
    /// `data:` (lines joined).
    pub data: String,
}

/// Reads events from an open `text/event-stream` response, skipping comments.
pub struct SseReader {
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
    /// Wraps a response.
    pub fn new(res: reqwest::Response) -> Self {
        Self { stream: res.bytes_stream().boxed(), buffer: String::new() }
    }

    /// The next event, or `None` when the stream ends or `timeout` passes first.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent { event: "message".into(), ..Default::default() };
                let mut data = Vec::new();
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_owned();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim().to_owned());
                        any = true;
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                        any = true;
                    }
                }
                if any {
                    event.data = data.join("\n");
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()??.ok()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}
