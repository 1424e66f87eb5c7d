//! The webhook receiver: answers 200 at once and keeps, per `webhook-id`, how many
//! deliveries came with both signatures valid and how many did not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use bytes::Bytes;
use hmac::{KeyInit, Mac};

/// The secret every scenario lease is created with (`X-Webhook-Secret`).
pub const SECRET: &str = "scenario-webhook-secret";

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Deliveries by event id: (valid, invalid).
#[derive(Default)]
pub struct Receiver {
    events: Mutex<HashMap<String, (u32, u32)>>,
    addr: Mutex<String>,
}

impl Receiver {
    /// Starts the receiver on a free loopback port.
    pub async fn start() -> anyhow::Result<Arc<Self>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let this = Arc::new(Self::default());
        *this.addr.lock().unwrap_or_else(PoisonError::into_inner) = format!("http://{}/hook", listener.local_addr()?);
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(this.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(this)
    }

    pub fn url(&self) -> String {
        self.addr.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// (valid, invalid) deliveries of an event.
    pub fn deliveries(&self, event_id: &str) -> (u32, u32) {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).get(event_id).copied().unwrap_or_default()
    }

    /// Every delivery that failed verification, with its event id.
    pub fn invalid(&self) -> Vec<String> {
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        events.iter().filter(|(_, (_, bad))| *bad > 0).map(|(id, _)| id.clone()).collect()
    }
}

async fn receive(State(this): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let id = header("webhook-id");
    let valid =
        verify(&header("x-mailbox-signature"), &id, &header("webhook-timestamp"), &header("webhook-signature"), &body);
    let mut events = this.events.lock().unwrap_or_else(PoisonError::into_inner);
    let entry = events.entry(id).or_default();
    if valid {
        entry.0 += 1;
    } else {
        entry.1 += 1;
    }
    StatusCode::OK
}

/// Both signatures of docs/WEBHOOKS.md: the hex HMAC of the body, and the Standard
/// Webhooks `v1,` HMAC of `{id}.{timestamp}.{body}`, keyed with the secret's bytes.
fn verify(mailbox: &str, id: &str, timestamp: &str, signatures: &str, body: &[u8]) -> bool {
    let mut mac = HmacSha256::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    if hex != mailbox || id.is_empty() {
        return false;
    }
    let mut mac = HmacSha256::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    signatures.split(' ').any(|s| s == expected)
}
