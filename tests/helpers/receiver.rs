//! A real webhook receiver (axum on 127.0.0.1:0) that records every request and answers
//! from a script, and an independent check of both signatures.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::Value;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    /// Request headers.
    pub headers: HeaderMap,
    /// Raw body.
    pub body: Bytes,
    /// When it arrived.
    pub at: Instant,
    /// When it arrived by the followed clock (see [`Receiver::follow`]), in unix ms.
    pub at_ms: Option<i64>,
    /// The status it was answered with.
    pub answered: u16,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

/// An answer of the script.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Status.
    pub status: u16,
    /// `Retry-After` to send.
    pub retry_after: Option<&'static str>,
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    script: VecDeque<Answer>,
    delay: Duration,
    clock: Option<leasehold_core::Clock>,
}

/// The receiver; dropped with the test.
#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    /// Base URL, `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Receiver {
    /// Starts a receiver that answers 200 unless scripted otherwise.
    pub async fn start() -> Self {
        Self::start_with(Vec::new(), Duration::ZERO).await
    }

    /// Starts a receiver that answers from `script` first (then 200), each answer after
    /// `delay`.
    pub async fn start_with(script: Vec<Answer>, delay: Duration) -> Self {
        let inner = Arc::new(Mutex::new(Inner { received: Vec::new(), script: script.into(), delay, clock: None }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = inner.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let shared = shared.clone();
            async move { answer(shared, headers, body).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { inner, base }
    }

    /// The hook URL (`/hook` on the receiver).
    pub fn url(&self) -> String {
        format!("{}/hook", self.base)
    }

    /// Stamps every request from now on with this clock's time too (`Received::at_ms`), for
    /// tests that move time with the clock instead of waiting.
    pub fn follow(&self, clock: &leasehold_core::Clock) {
        self.lock().clock = Some(clock.clone());
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Waits until at least `n` requests arrived (or `timeout`), then returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn answer(shared: Arc<Mutex<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let at = Instant::now();
    let (script, delay, at_ms) = {
        let mut inner = shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (inner.script.pop_front(), inner.delay, inner.clock.as_ref().map(leasehold_core::Clock::now_ms))
    };
    tokio::time::sleep(delay).await;
    let answer = script.unwrap_or(Answer { status: 200, retry_after: None });
    shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner).received.push(Received {
        headers,
        body,
        at,
        at_ms,
        answered: answer.status,
    });
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    match answer.retry_after {
        Some(ra) => (status, [("retry-after", ra)], "scripted").into_response(),
        None => (status, "ok").into_response(),
    }
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("hmac key");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Checks both signatures of a delivery the way a receiver would, written from SPEC §8
/// and the Standard Webhooks specification (not with the server's code): panics with the
/// reason if either is wrong.
pub fn verify(r: &Received, secret: &str) {
    let expected = hex::encode(hmac(secret.as_bytes(), &r.body));
    assert_eq!(r.header("x-mailbox-signature"), expected, "X-Mailbox-Signature");
    // Standard Webhooks: key = base64-decoded part after whsec_ (or the raw secret);
    // signed content = "{webhook-id}.{webhook-timestamp}.{body}"; header = space-separated
    // "v1,<base64>" entries; the timestamp must be within 5 minutes.
    let id = r.header("webhook-id");
    let ts = r.header("webhook-timestamp");
    let key = match secret.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64).expect("whsec_ base64"),
        None => secret.as_bytes().to_vec(),
    };
    let mut content = format!("{id}.{ts}.").into_bytes();
    content.extend_from_slice(&r.body);
    let want = base64::engine::general_purpose::STANDARD.encode(hmac(&key, &content));
    let ok = r.header("webhook-signature").split(' ').any(|sig| sig.strip_prefix("v1,") == Some(want.as_str()));
    assert!(ok, "webhook-signature {} does not verify", r.header("webhook-signature"));
    let ts: i64 = ts.parse().expect("webhook-timestamp is unix seconds");
    let now = chrono::Utc::now().timestamp();
    assert!((now - ts).abs() <= 300, "webhook-timestamp {ts} within 5 minutes of {now}");
    assert!(id.starts_with("evt_"), "webhook-id {id}");
    assert_eq!(r.json()["event_id"], id, "the body's event_id is the webhook-id");
    assert_eq!(r.header("content-type"), "application/json");
}
