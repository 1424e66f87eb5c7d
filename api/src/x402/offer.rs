//! What this server asks a wallet to pay for one request: the v1 requirements (in the
//! `402` body, with RelayStation's `required` and the error envelope's `code`) and the v2
//! requirements (in the `PAYMENT-REQUIRED` header). Both official clients read this
//! answer: with both present they pay with v2, with the body alone with v1.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use leasehold_core::config::X402Config;
use serde_json::json;

use super::wire::{self, Extra, PaymentRequiredV2, RequirementsV1, RequirementsV2, Resource};
use crate::error::ApiError;

/// `PAYMENT-REQUIRED`.
pub const PAYMENT_REQUIRED: HeaderName = HeaderName::from_static("payment-required");

/// The requirements of one request in both protocol versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// Price in micros (= USDC atomic units).
    pub amount_micros: i64,
    /// v1 requirements.
    pub v1: RequirementsV1,
    /// v2 requirements.
    pub v2: RequirementsV2,
    /// v2 resource.
    pub resource: Resource,
}

/// The decimal USDC of an amount in micros (`29` → `"0.000029"`).
pub fn usdc(micros: i64) -> String {
    let micros = micros.max(0);
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

impl Offer {
    /// The offer for a request to `url` costing `amount_micros`.
    pub fn new(x: &X402Config, url: &str, description: &str, amount_micros: i64) -> Self {
        let extra = Extra { name: x.asset_name.clone(), version: x.asset_version.clone() };
        let amount = amount_micros.max(0).to_string();
        let timeout = x.max_timeout.as_secs();
        let mime_type = "application/json".to_owned();
        let v1 = RequirementsV1 {
            scheme: "exact".into(),
            network: x.network.v1_name().into(),
            max_amount_required: amount.clone(),
            resource: url.to_owned(),
            description: description.to_owned(),
            mime_type: mime_type.clone(),
            pay_to: x.pay_to.clone(),
            max_timeout_seconds: timeout,
            asset: x.asset.clone(),
            extra: extra.clone(),
        };
        let v2 = RequirementsV2 {
            scheme: "exact".into(),
            network: x.network.caip2().into(),
            amount,
            asset: x.asset.clone(),
            pay_to: x.pay_to.clone(),
            max_timeout_seconds: timeout,
            extra: Some(extra),
        };
        let resource =
            Resource { url: url.to_owned(), description: Some(description.to_owned()), mime_type: Some(mime_type) };
        Self { amount_micros, v1, v2, resource }
    }

    /// The `402` answer: `code` (`payment_required`, or `payment_invalid` with `reason`
    /// after a refused payment), the v1 body and the v2 header.
    pub fn answer(&self, code: &'static str, message: &str, reason: Option<&str>) -> ApiError {
        let required = PaymentRequiredV2 {
            x402_version: 2,
            error: message.to_owned(),
            resource: self.resource.clone(),
            accepts: vec![self.v2.clone()],
        };
        let mut error = ApiError::new(StatusCode::PAYMENT_REQUIRED, code, message)
            .with("x402Version", 1)
            .with("accepts", json!([self.v1]))
            .with(
                "required",
                json!({
                    "amount_usdc": usdc(self.amount_micros),
                    "amount_micros": self.amount_micros.to_string(),
                    "wallet_address": self.v1.pay_to,
                    "network": self.v1.network,
                }),
            );
        if let Some(reason) = reason {
            error = error.with("reason", reason);
        }
        match HeaderValue::from_str(&wire::encode(&required)) {
            Ok(value) => error.with_header(PAYMENT_REQUIRED, value),
            Err(_) => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usdc_has_six_decimals() {
        assert_eq!(usdc(29), "0.000029");
        assert_eq!(usdc(1_500_000), "1.500000");
        assert_eq!(usdc(0), "0.000000");
    }
}
