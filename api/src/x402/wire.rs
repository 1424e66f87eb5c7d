//! The x402 messages as they travel (serde), v1 and v2, and the base64 header codec.
//!
//! v1: the `402` JSON body `{x402Version: 1, accepts: [requirements]}`, the payment in
//! `X-PAYMENT`, the receipt in `X-PAYMENT-RESPONSE`. v2: `PAYMENT-REQUIRED`,
//! `PAYMENT-SIGNATURE` and `PAYMENT-RESPONSE` headers, each base64 of JSON; networks are
//! CAIP-2 names and the payment repeats the requirements it accepted.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `extra` of the `exact` EVM scheme: the token's EIP-712 domain name and version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extra {
    /// Domain name (`USD Coin`).
    pub name: String,
    /// Domain version (`2`).
    pub version: String,
}

/// v1 payment requirements (one entry of `accepts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequirementsV1 {
    /// `exact`.
    pub scheme: String,
    /// v1 network name (`base`).
    pub network: String,
    /// Atomic units (micro-USDC), as a decimal string.
    pub max_amount_required: String,
    /// The URL paid for.
    pub resource: String,
    /// What is bought.
    pub description: String,
    /// What the paid response is.
    pub mime_type: String,
    /// Recipient.
    pub pay_to: String,
    /// Validity the authorization must have.
    pub max_timeout_seconds: u64,
    /// Token contract.
    pub asset: String,
    /// EIP-712 domain of the token.
    pub extra: Extra,
}

/// v2 `ResourceInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// The URL paid for.
    pub url: String,
    /// What is bought.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What the paid response is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// v2 payment requirements (one entry of `accepts`, and a payment's `accepted`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequirementsV2 {
    /// `exact`.
    pub scheme: String,
    /// CAIP-2 network (`eip155:8453`).
    pub network: String,
    /// Atomic units, as a decimal string.
    pub amount: String,
    /// Token contract.
    pub asset: String,
    /// Recipient.
    pub pay_to: String,
    /// Validity the authorization must have.
    pub max_timeout_seconds: u64,
    /// EIP-712 domain of the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Extra>,
}

/// The v2 `PAYMENT-REQUIRED` header's message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequiredV2 {
    /// 2.
    pub x402_version: u8,
    /// Why payment is required.
    pub error: String,
    /// What is bought.
    pub resource: Resource,
    /// The acceptable payments.
    pub accepts: Vec<RequirementsV2>,
}

/// EIP-3009 `TransferWithAuthorization` parameters, as sent (decimal strings, hex nonce).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// Payer.
    pub from: String,
    /// Recipient.
    pub to: String,
    /// Atomic units.
    pub value: String,
    /// Unix seconds; not valid before.
    pub valid_after: String,
    /// Unix seconds; not valid at or after.
    pub valid_before: String,
    /// 32-byte hex nonce.
    pub nonce: String,
}

/// The `exact` EVM scheme's payload: the signed authorization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactPayload {
    /// 65-byte hex EIP-712 signature.
    pub signature: String,
    /// What was signed.
    pub authorization: Authorization,
}

/// A v1 payment (`X-PAYMENT`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentV1 {
    /// 1.
    pub x402_version: u8,
    /// `exact`.
    pub scheme: String,
    /// v1 network name.
    pub network: String,
    /// The signed authorization.
    pub payload: ExactPayload,
}

/// A v2 payment (`PAYMENT-SIGNATURE`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentV2 {
    /// 2.
    pub x402_version: u8,
    /// The resource, as the client saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    /// The requirements the client accepted: must equal what was offered.
    pub accepted: RequirementsV2,
    /// The signed authorization.
    pub payload: ExactPayload,
    /// Extensions echoed by the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Map<String, Value>>,
}

/// A facilitator's `/verify` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// The payment is valid.
    pub is_valid: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// The payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
}

/// A facilitator's `/settle` answer, and the receipt sent to the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    /// Settled.
    pub success: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// The payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// Transaction hash (empty when it failed).
    #[serde(default)]
    pub transaction: String,
    /// The network, as named in the request's version.
    #[serde(default)]
    pub network: String,
}

/// Base64 (standard alphabet, padded) of a message's JSON.
pub fn encode<T: Serialize>(message: &T) -> String {
    STANDARD.encode(serde_json::to_vec(message).unwrap_or_default())
}

/// The message in a base64 header value; accepts padded or unpadded standard or URL-safe
/// base64 (clients differ), then strict JSON.
pub fn decode<T: for<'de> Deserialize<'de>>(value: &str) -> Result<T, String> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let value = value.trim();
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(value).ok())
        .ok_or_else(|| "not base64".to_owned())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("not a payment message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_examples_round_trip() {
        let v2 = r#"{"x402Version":2,"resource":{"url":"https://api.example.com/premium-data","description":"Access","mimeType":"application/json"},"accepted":{"scheme":"exact","network":"eip155:84532","amount":"10000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","maxTimeoutSeconds":60,"extra":{"name":"USDC","version":"2"}},"payload":{"signature":"0x2d","authorization":{"from":"0x857b06519E91e3A54538791bDbb0E22373e36b66","to":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","value":"10000","validAfter":"1740672089","validBefore":"1740672154","nonce":"0xf3"}},"extensions":{}}"#;
        let payment: PaymentV2 = decode(&STANDARD.encode(v2)).expect("v2 payment");
        assert_eq!(payment.accepted.amount, "10000");
        assert_eq!(payment.payload.authorization.valid_before, "1740672154");
        let again: PaymentV2 = decode(&encode(&payment)).expect("round trip");
        assert_eq!(again, payment);
        let unpadded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v2);
        assert_eq!(decode::<PaymentV2>(&unpadded).expect("url-safe"), payment);
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert_eq!(decode::<PaymentV1>("%%%").expect_err("not base64"), "not base64");
        assert!(decode::<PaymentV1>(&STANDARD.encode("{}")).expect_err("fields").starts_with("not a payment"));
    }
}
