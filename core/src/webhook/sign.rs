//! Webhook secrets and signatures: `X-Mailbox-Signature` (hex HMAC-SHA256 of the body)
//! and Standard Webhooks' `webhook-signature`.

use base64::Engine;
use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Prefix of minted secrets (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";

/// `whsec_<base64 of 32 random bytes>`.
pub fn mint_secret() -> String {
    let raw = hex::decode(crate::tokens::random_hex32()).unwrap_or_default();
    format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(raw))
}

/// Checks a caller-chosen secret: 1 to 255 printable ASCII characters; one that starts
/// with `whsec_` must carry base64 after it (Standard Webhooks libraries decode it).
pub fn check_secret(secret: &str) -> Result<(), &'static str> {
    if secret.is_empty() || secret.len() > 255 || !secret.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err("must be 1 to 255 printable ASCII characters");
    }
    if let Some(b64) = secret.strip_prefix(SECRET_PREFIX)
        && base64::engine::general_purpose::STANDARD.decode(b64).map_or(true, |k| k.is_empty())
    {
        return Err("a secret starting with whsec_ must continue with base64");
    }
    Ok(())
}

/// The key of the Standard Webhooks signature: the base64-decoded part after `whsec_`, or
/// the secret's own bytes.
pub fn standard_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// `X-Mailbox-Signature`: lowercase hex HMAC-SHA256 of the body keyed with the secret
/// string's bytes (RelayStation compatible).
pub fn mailbox_signature(secret: &str, body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), &[body]))
}

/// `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
pub fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let mac = hmac_sha256(&standard_key(secret), &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_published_algorithms() {
        // Standard Webhooks' reference example (standard-webhooks/spec).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = standard_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(
            mailbox_signature("key", b"The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        assert_eq!(standard_key("plain"), b"plain".to_vec());
    }

    #[test]
    fn secrets_are_checked_and_minted_ones_decode() {
        let minted = mint_secret();
        assert_eq!(check_secret(&minted), Ok(()));
        assert_eq!(standard_key(&minted).len(), 32);
        assert!(check_secret("whsec_!!!").is_err());
        assert!(check_secret("with space").is_err());
        assert_eq!(check_secret("s3cret"), Ok(()));
    }
}
