//! x402 payments, server side (SPEC §4.2), written thin on serde and the existing reqwest:
//! the wire types of v1 and v2 with their base64 header codec (`wire`), the `402` answer
//! (`offer`), decoding and matching a payment (`payment`), the facilitator client
//! (`facilitator`), and [`Paying`], the payment path's steps that the write pipeline runs
//! around the bytes: take the nonce and verify before storing, settle after, record the
//! settlement in the lease's transaction.
//!
//! Why not a crate: x402-axum 2.0.2 answers `402` with `{x402Version, error, accepts}`
//! only (no `code`, no `required`), serves one protocol version per layer, settles
//! without verifying first and keeps no nonce record; r402-http and x402-kit are v2 only.

pub mod buyer;
pub mod client;
pub mod facilitator;
pub mod offer;
pub mod payment;
pub mod wire;

use axum::http::{HeaderMap, HeaderValue, header};
use leasehold_core::config::X402Config;
use leasehold_core::leases::{Owner, OwnerKind};
use leasehold_core::payments::{self, PaymentKey};
use sea_orm::ConnectionTrait;

pub use self::buyer::Buyer;
pub use self::facilitator::{Facilitator, Unavailable};
pub use self::offer::Offer;
pub use self::payment::Payment;
use self::payment::{PAYMENT_RESPONSE, X_PAYMENT_RESPONSE, invalid};
use self::wire::SettleResponse;
use crate::error::ApiError;
use crate::state::AppState;

/// `503 unavailable` for a facilitator that did not answer.
fn unavailable(e: &Unavailable) -> ApiError {
    tracing::error!(error = %e, "payment facilitator unavailable");
    ApiError::unavailable("the payment facilitator is unavailable")
}

/// A payment on its way through the write pipeline.
#[derive(Debug)]
pub struct Paying {
    payment: Payment,
    offer: Offer,
    network: String,
    payment_id: Option<String>,
    settled: Option<SettleResponse>,
}

impl Paying {
    /// A decoded payment matched against this request's offer (`402 payment_invalid`
    /// when it does not match).
    pub fn new(x: &X402Config, payment: Payment, offer: Offer) -> Result<Self, ApiError> {
        payment.check(&offer).map_err(|m| invalid(&offer, m.reason()))?;
        Ok(Self { payment, offer, network: x.network.v1_name().to_owned(), payment_id: None, settled: None })
    }

    /// The lease owner: the payer wallet (EIP-55).
    pub fn owner(&self) -> Owner {
        Owner { kind: OwnerKind::Wallet, id: leasehold_core::evm::checksum_str(self.payment.payer()) }
    }

    /// The offer (price and requirements) of this request.
    pub fn offer(&self) -> &Offer {
        &self.offer
    }

    /// Before the bytes: take the nonce (a used one is `402 payment_invalid`, reason
    /// `nonce_used`), then ask the facilitator to verify.
    pub async fn authorize(&mut self, state: &AppState, facilitator: &Facilitator) -> Result<(), ApiError> {
        let auth = self.payment.authorization();
        let key = PaymentKey { network: self.network.clone(), payer: auth.from.clone(), nonce: auth.nonce.clone() };
        let amount = auth.value.parse::<i64>().unwrap_or(i64::MAX);
        let Some(id) = payments::take_nonce(&state.db, &key, amount, state.now()).await? else {
            return Err(invalid(&self.offer, "nonce_used"));
        };
        self.payment_id = Some(id);
        let (version, payload, requirements) = self.payment.for_facilitator(&self.offer);
        let verified = match facilitator.verify(version, &payload, &requirements).await {
            Ok(v) => v,
            Err(e) => return Err(unavailable(&e)),
        };
        if !verified.is_valid {
            let reason = verified.invalid_reason.unwrap_or_else(|| "invalid_payment".into());
            return Err(invalid(&self.offer, &reason));
        }
        Ok(())
    }

    /// After the bytes: ask the facilitator to settle (a refusal is `402 payment_invalid`
    /// with its reason; no answer is `503 unavailable`).
    pub async fn settle(&mut self, facilitator: &Facilitator) -> Result<(), ApiError> {
        let (version, payload, requirements) = self.payment.for_facilitator(&self.offer);
        let settled = facilitator.settle(version, &payload, &requirements).await.map_err(|e| unavailable(&e))?;
        if !settled.success || settled.transaction.is_empty() {
            let reason = settled.error_reason.unwrap_or_else(|| "settlement_failed".into());
            return Err(invalid(&self.offer, &reason));
        }
        self.settled = Some(settled);
        Ok(())
    }

    /// In the lease's transaction: the payment row becomes `settled` for the lease.
    pub async fn record(&self, txn: &impl ConnectionTrait, lease_id: &str, now: i64) -> Result<(), ApiError> {
        let (Some(id), Some(settled)) = (&self.payment_id, &self.settled) else {
            return Err(ApiError::internal(&"recording a payment that was not settled"));
        };
        Ok(payments::mark_settled(txn, id, &settled.transaction, Some(lease_id), now).await?)
    }

    /// After a failure: a nonce not yet settled is given back (the payment may be sent
    /// again); a settled payment whose lease could not be committed is recorded settled
    /// without a lease, so it is never settled twice.
    pub async fn abandon(&self, state: &AppState) {
        let Some(id) = &self.payment_id else { return };
        let result = match &self.settled {
            None => payments::release_nonce(&state.db, id).await,
            Some(s) => {
                tracing::error!(payment.id = %id, tx = %s.transaction, "a settled payment's lease could not be committed");
                payments::mark_settled(&state.db, id, &s.transaction, None, state.now()).await
            }
        };
        if let Err(e) = result {
            tracing::error!(payment.id = %id, error = %e, "could not update a payment after a failed request");
        }
    }

    /// Adds `tx_hash` and `from_wallet` to a `201` body.
    pub fn decorate_body(&self, body: &mut serde_json::Value) {
        if let Some(s) = &self.settled {
            body["tx_hash"] = s.transaction.clone().into();
            body["from_wallet"] = leasehold_core::evm::checksum_str(self.payment.payer()).into();
        }
    }

    /// The receipt header of the request's version: `X-PAYMENT-RESPONSE` (v1) or
    /// `PAYMENT-RESPONSE` (v2), base64 of `{success, transaction, network, payer}`.
    pub fn decorate_headers(&self, headers: &mut HeaderMap) {
        let Some(s) = &self.settled else { return };
        let (name, network) = match &self.payment {
            Payment::V1(_) => (X_PAYMENT_RESPONSE, self.offer.v1.network.clone()),
            Payment::V2(_) => (PAYMENT_RESPONSE, self.offer.v2.network.clone()),
        };
        let receipt = SettleResponse {
            success: true,
            error_reason: None,
            payer: Some(leasehold_core::evm::checksum_str(self.payment.payer())),
            transaction: s.transaction.clone(),
            network,
        };
        if let Ok(value) = HeaderValue::from_str(&wire::encode(&receipt)) {
            headers.insert(name, value);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("PAYMENT-RESPONSE, X-PAYMENT-RESPONSE"),
            );
        }
    }
}
