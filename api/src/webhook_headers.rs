//! `X-Webhook-Url` / `X-Webhook-Secret` at lease creation (SPEC §8): validated here and
//! stored (the secret sealed) for the worker that delivers events.

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;

use crate::error::ApiError;
use crate::extract::header_text;

/// Longest accepted webhook URL.
pub const MAX_URL_LEN: usize = 2048;

/// A lease's webhook settings, as requested.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Webhook {
    /// Receiver URL.
    pub url: Option<String>,
    /// The signing secret (given or minted).
    pub secret: Option<String>,
    /// True when the server minted the secret (it is then returned once).
    pub minted: bool,
}

/// `whsec_<base64 of 32 random bytes>`.
pub fn mint_secret() -> String {
    let raw = hex::decode(leasehold_core::tokens::random_hex32()).unwrap_or_default();
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(raw))
}

/// Reads and validates both headers. A secret without a URL is refused; a URL without a
/// secret gets a minted one.
pub fn read(headers: &HeaderMap) -> Result<Webhook, ApiError> {
    const URL: &str = "X-Webhook-Url";
    const SECRET: &str = "X-Webhook-Secret";
    let url = header_text(headers, URL)?.filter(|u| !u.is_empty());
    let secret = header_text(headers, SECRET)?.filter(|s| !s.is_empty());
    let Some(url) = url else {
        if secret.is_some() {
            return Err(ApiError::invalid_header(SECRET, "needs X-Webhook-Url"));
        }
        return Ok(Webhook::default());
    };
    check_url(url)?;
    if let Some(s) = secret
        && (s.len() > 255 || !s.bytes().all(|b| (0x21..0x7f).contains(&b)))
    {
        return Err(ApiError::invalid_header(SECRET, "must be 1 to 255 printable ASCII characters"));
    }
    Ok(match secret {
        Some(s) => Webhook { url: Some(url.to_owned()), secret: Some(s.to_owned()), minted: false },
        None => Webhook { url: Some(url.to_owned()), secret: Some(mint_secret()), minted: true },
    })
}

fn check_url(url: &str) -> Result<(), ApiError> {
    let forbidden =
        |why: &str| ApiError::new(StatusCode::BAD_REQUEST, "webhook_url_forbidden", format!("X-Webhook-Url {why}"));
    if url.len() > MAX_URL_LEN {
        return Err(forbidden("must be at most 2048 characters"));
    }
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else { return Err(forbidden("must be an http:// or https:// URL")) };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') || url.bytes().any(|b| b <= 0x20 || b == 0x7f) {
        return Err(forbidden("must name a host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header"));
        }
        h
    }

    #[test]
    fn a_url_without_a_secret_gets_a_minted_one() {
        let w = read(&headers(&[("x-webhook-url", "https://example.com/hook")])).expect("valid");
        assert!(w.minted);
        let secret = w.secret.expect("secret");
        let raw = base64::engine::general_purpose::STANDARD.decode(&secret["whsec_".len()..]).expect("base64");
        assert_eq!(raw.len(), 32);
        let given = read(&headers(&[("x-webhook-url", "http://h/x"), ("x-webhook-secret", "s3cret")])).expect("ok");
        assert_eq!((given.secret.as_deref(), given.minted), (Some("s3cret"), false));
        assert_eq!(read(&HeaderMap::new()).expect("none"), Webhook::default());
    }

    #[test]
    fn bad_urls_and_lonely_secrets_are_refused() {
        let long = format!("https://example.com/{}", "a".repeat(3000));
        for bad in ["ftp://example.com", "file:///etc/passwd", "https://", "http:///x", "example.com", long.as_str()] {
            let err = read(&headers(&[("x-webhook-url", bad)])).expect_err(bad);
            assert_eq!(err.code(), "webhook_url_forbidden", "{bad}");
        }
        let err = read(&headers(&[("x-webhook-secret", "s")])).expect_err("secret alone");
        assert_eq!(err.code(), "invalid_header");
    }
}
