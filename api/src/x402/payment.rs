//! A payment as it arrives: decoded from `X-PAYMENT` (v1) or `PAYMENT-SIGNATURE` (v2) and
//! matched against the offer for this very request (SPEC §4.2): scheme, network, asset,
//! recipient, amount ≥ the price, and for v2 the `accepted` requirements equal to what
//! was offered. Anything else is `402 payment_invalid` with a `reason`, before the
//! facilitator is asked anything.

use axum::http::{HeaderMap, HeaderName};
use serde::Serialize;
use serde_json::Value;

use super::offer::Offer;
use super::wire::{self, Authorization, PaymentV1, PaymentV2};
use crate::error::ApiError;

/// `X-PAYMENT` (v1).
pub const X_PAYMENT: HeaderName = HeaderName::from_static("x-payment");
/// `PAYMENT-SIGNATURE` (v2).
pub const PAYMENT_SIGNATURE: HeaderName = HeaderName::from_static("payment-signature");
/// `X-PAYMENT-RESPONSE` (v1 receipt).
pub const X_PAYMENT_RESPONSE: HeaderName = HeaderName::from_static("x-payment-response");
/// `PAYMENT-RESPONSE` (v2 receipt).
pub const PAYMENT_RESPONSE: HeaderName = HeaderName::from_static("payment-response");

/// A decoded payment of either version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payment {
    /// From `X-PAYMENT`.
    V1(Box<PaymentV1>),
    /// From `PAYMENT-SIGNATURE`.
    V2(Box<PaymentV2>),
}

/// Why a payment is refused before the facilitator sees it (the `reason` of
/// `402 payment_invalid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// Not decodable.
    InvalidPayload,
    /// Not `exact`.
    Scheme,
    /// Another network.
    Network,
    /// Another token.
    Asset,
    /// Not paid to us.
    Recipient,
    /// Less than the price.
    Amount,
    /// v2 `accepted` differs from the offer.
    Accepted,
}

impl Mismatch {
    /// The `reason` text.
    pub fn reason(self) -> &'static str {
        match self {
            Self::InvalidPayload => "invalid_payload",
            Self::Scheme => "invalid_scheme",
            Self::Network => "invalid_network",
            Self::Asset => "invalid_asset",
            Self::Recipient => "invalid_exact_evm_payload_recipient_mismatch",
            Self::Amount => "invalid_exact_evm_payload_authorization_value",
            Self::Accepted => "accepted_requirements_mismatch",
        }
    }
}

impl Payment {
    /// The payment the request carries, if any: `PAYMENT-SIGNATURE` first, then
    /// `X-PAYMENT`. `Err` holds the reason a present header cannot be read.
    pub fn from_headers(headers: &HeaderMap) -> Option<Result<Self, String>> {
        let text = |name: &HeaderName| headers.get(name).map(|v| v.to_str().map_err(|_| "not ASCII".to_owned()));
        if let Some(value) = text(&PAYMENT_SIGNATURE) {
            return Some(value.and_then(wire::decode::<PaymentV2>).and_then(|p| {
                if p.x402_version == 2 { Ok(Self::V2(Box::new(p))) } else { Err("x402Version must be 2".into()) }
            }));
        }
        let value = text(&X_PAYMENT)?;
        Some(value.and_then(wire::decode::<PaymentV1>).and_then(|p| {
            if p.x402_version == 1 { Ok(Self::V1(Box::new(p))) } else { Err("x402Version must be 1".into()) }
        }))
    }

    /// The protocol version (1 or 2).
    pub fn version(&self) -> u8 {
        match self {
            Self::V1(_) => 1,
            Self::V2(_) => 2,
        }
    }

    /// The signed authorization.
    pub fn authorization(&self) -> &Authorization {
        match self {
            Self::V1(p) => &p.payload.authorization,
            Self::V2(p) => &p.payload.authorization,
        }
    }

    /// The payer as sent (the authorization's `from`).
    pub fn payer(&self) -> &str {
        &self.authorization().from
    }

    /// Checks the payment against the offer for this request.
    pub fn check(&self, offer: &Offer) -> Result<(), Mismatch> {
        let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        let (scheme, network, asset, pay_to, wanted_network) = match self {
            Self::V1(p) => (&p.scheme, &p.network, &offer.v1.asset, &offer.v1.pay_to, &offer.v1.network),
            Self::V2(p) => {
                if p.accepted != offer.v2 {
                    return Err(Mismatch::Accepted);
                }
                (&p.accepted.scheme, &p.accepted.network, &p.accepted.asset, &p.accepted.pay_to, &offer.v2.network)
            }
        };
        if scheme != "exact" {
            return Err(Mismatch::Scheme);
        }
        if network != wanted_network {
            return Err(Mismatch::Network);
        }
        if !same(asset, &offer.v1.asset) {
            return Err(Mismatch::Asset);
        }
        let auth = self.authorization();
        if !same(pay_to, &offer.v1.pay_to) || !same(&auth.to, &offer.v1.pay_to) {
            return Err(Mismatch::Recipient);
        }
        let value: u128 = auth.value.parse().map_err(|_| Mismatch::InvalidPayload)?;
        if value < u128::try_from(offer.amount_micros).unwrap_or(u128::MAX) {
            return Err(Mismatch::Amount);
        }
        if !is_nonce(&auth.nonce) || !leasehold_core::config::is_evm_address(&auth.from) {
            return Err(Mismatch::InvalidPayload);
        }
        Ok(())
    }

    /// The facilitator call's arguments: `(version, paymentPayload, paymentRequirements)`.
    pub fn for_facilitator(&self, offer: &Offer) -> (u8, Value, Value) {
        match self {
            Self::V1(p) => (1, json(p.as_ref()), json(&offer.v1)),
            Self::V2(p) => (2, json(p.as_ref()), json(&offer.v2)),
        }
    }
}

fn json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// `0x` + 64 hex digits.
fn is_nonce(nonce: &str) -> bool {
    nonce.strip_prefix("0x").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `402 payment_invalid` for a refused payment, with the offer again so the client can
/// pay anew.
pub fn invalid(offer: &Offer, reason: &str) -> ApiError {
    offer.answer("payment_invalid", &format!("the payment was refused: {reason}"), Some(reason))
}
