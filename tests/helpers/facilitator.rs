//! A chain-less x402 facilitator (axum on 127.0.0.1:0) and a payer that signs the way
//! the official clients do.
//!
//! The facilitator verifies for real: it recovers the signer of the EIP-712
//! `TransferWithAuthorization` from the domain `{name, version, chainId,
//! verifyingContract = asset}` of the requirements, and checks `from`, `to = payTo`,
//! `value ≥ amount`, the validity window and that the nonce was never settled. It records
//! every settlement, and can be told to refuse settlements or to answer 503.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use leasehold_core::evm::{self, Address, B256, Domain, TestKey, U256};
use serde_json::{Value, json};

/// One settled payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    /// Payer (EIP-55).
    pub payer: String,
    /// Amount in atomic units.
    pub value: u128,
    /// Nonce.
    pub nonce: String,
    /// The transaction hash given out.
    pub transaction: String,
}

/// How the facilitator behaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Verify and settle honestly.
    #[default]
    Honest,
    /// Verify honestly, refuse to settle with this reason.
    RefuseSettle(String),
    /// Answer every call 503.
    Down,
}

#[derive(Default)]
struct Inner {
    mode: Mode,
    settlements: Vec<Settlement>,
    settled_nonces: HashSet<(String, String)>,
    verifies: usize,
}

/// The running facilitator.
#[derive(Clone)]
pub struct TestFacilitator {
    /// Base URL.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl TestFacilitator {
    /// Starts one.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .route("/verify", axum::routing::post(verify))
            .route("/settle", axum::routing::post(settle))
            .route("/supported", axum::routing::get(supported))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Self { url, inner }
    }

    /// Changes the behaviour.
    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().expect("lock").mode = mode;
    }

    /// Every settlement so far.
    pub fn settlements(&self) -> Vec<Settlement> {
        self.inner.lock().expect("lock").settlements.clone()
    }

    /// How many `/verify` calls came.
    pub fn verifies(&self) -> usize {
        self.inner.lock().expect("lock").verifies
    }
}

type Shared = Arc<Mutex<Inner>>;

fn now_s() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default()
}

/// The reason a payment is invalid, or its payer and value.
fn check(body: &Value, settled: &HashSet<(String, String)>) -> Result<(String, u128, String), String> {
    let req = &body["paymentRequirements"];
    let payload = &body["paymentPayload"]["payload"];
    let auth = &payload["authorization"];
    let text = |v: &Value| v.as_str().map(str::to_owned).ok_or_else(|| "invalid_payload".to_owned());
    let network = text(&req["network"])?;
    let chain_id = evm::chain_id(&network).ok_or("invalid_network")?;
    let amount: u128 = text(if req["amount"].is_string() { &req["amount"] } else { &req["maxAmountRequired"] })?
        .parse()
        .map_err(|_| "invalid_payment_requirements")?;
    let domain = Domain {
        name: text(&req["extra"]["name"])?,
        version: text(&req["extra"]["version"])?,
        chain_id,
        verifying_contract: evm::parse_address(&text(&req["asset"])?.to_ascii_lowercase()).ok_or("invalid_asset")?,
    };
    let addr = |v: &Value| -> Result<Address, String> {
        evm::parse_address(&text(v)?.to_ascii_lowercase()).ok_or_else(|| "invalid_payload".to_owned())
    };
    let value: u128 = text(&auth["value"])?.parse().map_err(|_| "invalid_payload")?;
    let authorization = evm::Authorization {
        from: addr(&auth["from"])?,
        to: addr(&auth["to"])?,
        value: U256::from(value),
        valid_after: text(&auth["validAfter"])?.parse().map_err(|_| "invalid_payload")?,
        valid_before: text(&auth["validBefore"])?.parse().map_err(|_| "invalid_payload")?,
        nonce: text(&auth["nonce"])?.parse::<B256>().map_err(|_| "invalid_payload")?,
    };
    let signer = evm::recover_transfer_signer(&domain, &authorization, &text(&payload["signature"])?)
        .map_err(|_| "invalid_exact_evm_payload_signature")?;
    if signer != authorization.from {
        return Err("invalid_exact_evm_payload_signature".into());
    }
    if authorization.to != addr(&req["payTo"])? {
        return Err("invalid_exact_evm_payload_recipient_mismatch".into());
    }
    if value < amount {
        return Err("invalid_exact_evm_payload_authorization_value".into());
    }
    let now = now_s();
    if now < authorization.valid_after {
        return Err("invalid_exact_evm_payload_authorization_valid_after".into());
    }
    if now >= authorization.valid_before {
        return Err("invalid_exact_evm_payload_authorization_valid_before".into());
    }
    let payer = evm::checksum(&signer);
    let nonce = format!("{:#x}", authorization.nonce);
    if settled.contains(&(payer.clone(), nonce.clone())) {
        return Err("invalid_exact_evm_payload_authorization_nonce_used".into());
    }
    Ok((payer, value, nonce))
}

async fn verify(State(inner): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut inner = inner.lock().expect("lock");
    inner.verifies += 1;
    if inner.mode == Mode::Down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match check(&body, &inner.settled_nonces) {
        Ok((payer, _, _)) => Json(json!({ "isValid": true, "payer": payer })).into_response(),
        Err(reason) => Json(json!({ "isValid": false, "invalidReason": reason })).into_response(),
    }
}

async fn settle(State(inner): State<Shared>, Json(body): Json<Value>) -> Response {
    let mut inner = inner.lock().expect("lock");
    let network = body["paymentRequirements"]["network"].clone();
    let refused =
        |reason: &str| Json(json!({ "success": false, "errorReason": reason, "transaction": "", "network": network }));
    match inner.mode.clone() {
        Mode::Down => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Mode::RefuseSettle(reason) => return refused(&reason).into_response(),
        Mode::Honest => {}
    }
    match check(&body, &inner.settled_nonces) {
        Ok((payer, value, nonce)) => {
            let transaction = format!("0x{}", leasehold_core::tokens::sha256_hex(nonce.as_bytes()));
            inner.settled_nonces.insert((payer.clone(), nonce.clone()));
            inner.settlements.push(Settlement { payer: payer.clone(), value, nonce, transaction: transaction.clone() });
            Json(json!({ "success": true, "transaction": transaction, "network": network, "payer": payer }))
                .into_response()
        }
        Err(reason) => refused(&reason).into_response(),
    }
}

async fn supported() -> Json<Value> {
    Json(json!({ "kinds": [
        { "x402Version": 1, "scheme": "exact", "network": "base-sepolia" },
        { "x402Version": 2, "scheme": "exact", "network": "eip155:84532" },
    ], "extensions": [], "signers": {} }))
}

/// x402 settings of a test instance paying to `pay_to` through this facilitator, on
/// base-sepolia.
pub fn config(facilitator: &TestFacilitator) -> leasehold_core::config::X402Config {
    leasehold_core::config::X402Config {
        pay_to: PAY_TO.into(),
        facilitator_url: facilitator.url.clone(),
        network: leasehold_core::config::Network::BaseSepolia,
        asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
        asset_name: "USDC".into(),
        asset_version: "2".into(),
        max_timeout: std::time::Duration::from_secs(3600),
        facilitator_timeout: std::time::Duration::from_secs(5),
    }
}

/// The wallet test instances are paid to.
pub const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

/// A wallet that pays the way the official clients sign: `validAfter` = now − 600 s,
/// `validBefore` = now + `maxTimeoutSeconds`, a random 32-byte nonce.
pub struct Payer {
    /// The key.
    pub key: TestKey,
}

impl Payer {
    /// The wallet of this seed.
    pub fn new(seed: u8) -> Self {
        Self { key: TestKey::from_seed(seed) }
    }

    /// Its EIP-55 address.
    pub fn address(&self) -> String {
        evm::checksum(&self.key.address())
    }

    /// The signed `payload` for requirements (v1 `maxAmountRequired` or v2 `amount`),
    /// paying `value` (default: the amount asked).
    pub fn sign(&self, req: &Value, value: Option<u128>) -> Value {
        let now = now_s();
        let window = (now - 600, now + req["maxTimeoutSeconds"].as_u64().expect("timeout"));
        self.sign_window(req, value, window)
    }

    /// [`Payer::sign`] with a chosen validity window `(validAfter, validBefore)`.
    pub fn sign_window(&self, req: &Value, value: Option<u128>, (valid_after, valid_before): (u64, u64)) -> Value {
        let amount: u128 =
            req["amount"].as_str().or(req["maxAmountRequired"].as_str()).and_then(|a| a.parse().ok()).expect("amount");
        let value = value.unwrap_or(amount);
        let nonce: B256 = leasehold_core::tokens::random_hex32().parse().expect("32 random bytes");
        let pay_to = req["payTo"].as_str().expect("payTo");
        let auth = evm::Authorization {
            from: self.key.address(),
            to: evm::parse_address(&pay_to.to_ascii_lowercase()).expect("payTo"),
            value: U256::from(value),
            valid_after,
            valid_before,
            nonce,
        };
        let domain = Domain {
            name: req["extra"]["name"].as_str().expect("name").into(),
            version: req["extra"]["version"].as_str().expect("version").into(),
            chain_id: evm::chain_id(req["network"].as_str().expect("network")).expect("chain"),
            verifying_contract: evm::parse_address(&req["asset"].as_str().expect("asset").to_ascii_lowercase())
                .expect("asset"),
        };
        let signature = self.key.sign_prehash(&evm::transfer_hash(&domain, &auth));
        json!({
            "signature": signature,
            "authorization": {
                "from": self.address(),
                "to": pay_to,
                "value": value.to_string(),
                "validAfter": auth.valid_after.to_string(),
                "validBefore": auth.valid_before.to_string(),
                "nonce": format!("{:#x}", auth.nonce),
            }
        })
    }

    /// `X-PAYMENT` for a `402` body (v1).
    pub fn pay_v1(&self, body_402: &Value) -> String {
        let req = &body_402["accepts"][0];
        let payment =
            json!({ "x402Version": 1, "scheme": "exact", "network": req["network"], "payload": self.sign(req, None) });
        b64(&payment)
    }

    /// `PAYMENT-SIGNATURE` for a `PAYMENT-REQUIRED` header (v2).
    pub fn pay_v2(&self, payment_required: &str) -> String {
        let now = now_s();
        let required = decode(payment_required);
        let timeout = required["accepts"][0]["maxTimeoutSeconds"].as_u64().expect("timeout");
        self.pay_v2_window(payment_required, (now - 600, now + timeout))
    }

    /// [`Payer::pay_v2`] valid only within `(validAfter, validBefore)` (unix seconds).
    pub fn pay_v2_window(&self, payment_required: &str, window: (u64, u64)) -> String {
        let required = decode(payment_required);
        let accepted = &required["accepts"][0];
        let payload = self.sign_window(accepted, None, window);
        b64(&json!({ "x402Version": 2, "resource": required["resource"], "accepted": accepted, "payload": payload }))
    }

    /// `X-PAYMENT` (v1) for these requirements, as given (the test may have altered them).
    pub fn pay_v1_for(&self, req: &Value) -> String {
        b64(&json!({ "x402Version": 1, "scheme": "exact", "network": req["network"], "payload": self.sign(req, None) }))
    }
}

/// Base64 of JSON.
pub fn b64(value: &Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(value.to_string())
}

/// JSON of a base64 header.
pub fn decode(value: &str) -> Value {
    let bytes = base64::engine::general_purpose::STANDARD.decode(value).expect("base64");
    serde_json::from_slice(&bytes).expect("json")
}
