//! The facilitator client: `POST /verify`, `POST /settle` and `GET /supported` on the
//! configured facilitator, each bounded by `LEASEHOLD_X402_FACILITATOR_TIMEOUT_SECONDS`.
//! An unreachable facilitator, a timeout, a 5xx or an answer that is not the protocol's
//! JSON is [`Unavailable`]: the request answers `503 unavailable` and nothing is stored
//! or settled.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::wire::{SettleResponse, VerifyResponse};

/// The facilitator could not give an answer.
#[derive(Debug, thiserror::Error)]
#[error("the payment facilitator is unavailable: {0}")]
pub struct Unavailable(pub String);

/// A facilitator at a base URL.
#[derive(Clone, Debug)]
pub struct Facilitator {
    base: String,
    client: reqwest::Client,
}

impl Facilitator {
    /// A client of the facilitator at `base` (no trailing slash).
    pub fn new(base: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("leasehold/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), client })
    }

    /// `POST /verify` of a payment against the requirements it answers.
    pub async fn verify(
        &self,
        version: u8,
        payment: &Value,
        requirements: &Value,
    ) -> Result<VerifyResponse, Unavailable> {
        self.post("verify", &body(version, payment, requirements)).await
    }

    /// `POST /settle`: executes the payment.
    pub async fn settle(
        &self,
        version: u8,
        payment: &Value,
        requirements: &Value,
    ) -> Result<SettleResponse, Unavailable> {
        self.post("settle", &body(version, payment, requirements)).await
    }

    /// `GET /supported`: the kinds the facilitator settles.
    pub async fn supported(&self) -> Result<Value, Unavailable> {
        let response = self
            .client
            .get(format!("{}/supported", self.base))
            .send()
            .await
            .map_err(|e| Unavailable(e.without_url().to_string()))?;
        read(response, "supported").await
    }

    async fn post<T: DeserializeOwned>(&self, what: &str, body: &Value) -> Result<T, Unavailable> {
        let response = self
            .client
            .post(format!("{}/{what}", self.base))
            .json(body)
            .send()
            .await
            .map_err(|e| Unavailable(format!("{what}: {}", e.without_url())))?;
        read(response, what).await
    }
}

/// The answer's JSON. A 4xx that carries the protocol's answer (`isValid: false`,
/// `success: false`) is an answer; any other non-2xx is unavailability.
async fn read<T: DeserializeOwned>(response: reqwest::Response, what: &str) -> Result<T, Unavailable> {
    let status = response.status();
    if status.is_server_error() {
        return Err(Unavailable(format!("{what}: HTTP {status}")));
    }
    let bytes = response.bytes().await.map_err(|e| Unavailable(format!("{what}: {}", e.without_url())))?;
    serde_json::from_slice(&bytes).map_err(|e| Unavailable(format!("{what}: HTTP {status}, unreadable answer: {e}")))
}

fn body(version: u8, payment: &Value, requirements: &Value) -> Value {
    json!({ "x402Version": version, "paymentPayload": payment, "paymentRequirements": requirements })
}
