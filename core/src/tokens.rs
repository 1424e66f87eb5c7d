//! Secrets handed to clients (SPEC §2): random, shown once, stored only as SHA-256.

use sha2::{Digest, Sha256};

/// Prefix of account API keys.
pub const API_KEY_PREFIX: &str = "rs_live_";
/// Length of the display prefix of an API key.
pub const API_KEY_DISPLAY_LEN: usize = 12;

/// 32 bytes from the operating system's CSPRNG, as lowercase hex.
pub fn random_hex32() -> String {
    let mut bytes = [0u8; 32];
    // The OS RNG failing is unrecoverable for a service that mints secrets.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("operating system RNG unavailable");
    hex::encode(bytes)
}

/// A new API key, `rs_live_<64 hex>`.
pub fn new_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", random_hex32())
}

/// Prefix of Mailbox drop tokens.
pub const DROP_TOKEN_PREFIX: &str = "drp_";

/// A new drop token, `drp_<64 hex>`.
pub fn new_drop_token() -> String {
    format!("{DROP_TOKEN_PREFIX}{}", random_hex32())
}

/// True when `token` has the shape of a drop token (anything else cannot match one).
pub fn is_drop_token(token: &str) -> bool {
    token
        .strip_prefix(DROP_TOKEN_PREFIX)
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
}

/// True when `token` has the shape of a handoff token (64 lowercase hex).
pub fn is_handoff_token(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The display prefix of an API key (its first 12 characters).
pub fn display_prefix(key: &str) -> &str {
    key.get(..API_KEY_DISPLAY_LEN).unwrap_or(key)
}

/// Lowercase hex SHA-256, the only form in which secrets are stored and looked up.
pub fn sha256_hex(value: &[u8]) -> String {
    hex::encode(Sha256::digest(value))
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (ha, hb) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    ha.iter().zip(hb.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_have_the_documented_shape() {
        let key = new_api_key();
        assert_eq!(key.len(), 8 + 64);
        assert!(key.starts_with("rs_live_"));
        assert!(key[8..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(display_prefix(&key).len(), 12);
        assert_ne!(key, new_api_key());
    }

    #[test]
    fn drop_tokens_have_the_documented_shape() {
        let t = new_drop_token();
        assert!(is_drop_token(&t), "{t}");
        assert!(!is_drop_token(&t.to_uppercase()));
        assert!(!is_drop_token("drp_abc"));
        assert!(!is_drop_token(&t[4..]));
    }

    #[test]
    fn hashes_are_sha256_hex() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn constant_time_eq_compares_values() {
        assert!(constant_time_eq("token", "token"));
        assert!(!constant_time_eq("token", "tokem"));
        assert!(!constant_time_eq("token", "token2"));
    }
}
