//! `X-Webhook-Url`, `X-Webhook-Secret` and `X-Expiry-Warning-Seconds` at lease creation
//! (SPEC §8): validated here, the URL through the SSRF guard, before anything is charged
//! or stored; the secret is sealed for the worker that delivers events.

use axum::http::{HeaderMap, StatusCode};
use leasehold_core::secretbox::SecretBox;
use leasehold_core::webhook::{self, AddressPolicy, Hook};

use crate::error::ApiError;
use crate::extract::header_text;

const URL: &str = "X-Webhook-Url";
const SECRET: &str = "X-Webhook-Secret";
const WARNING: &str = "X-Expiry-Warning-Seconds";

/// A lease's webhook settings, as requested.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Webhook {
    /// Receiver URL.
    pub url: Option<String>,
    /// The signing secret (given or minted).
    pub secret: Option<String>,
    /// True when the server minted the secret (it is then returned once).
    pub minted: bool,
    /// Seconds before expiry at which `lease.expiring` is sent.
    pub expiry_warning_seconds: Option<u64>,
}

impl Webhook {
    /// The settings to store, the secret sealed.
    pub fn hook(&self, secrets: &SecretBox) -> Hook {
        Hook {
            url: self.url.clone(),
            secret_sealed: self.secret.as_deref().map(|s| secrets.seal(webhook::SECRET_CONTEXT, s)),
            expiry_warning_seconds: self.expiry_warning_seconds.map(|w| i64::try_from(w).unwrap_or(i64::MAX)),
        }
    }

    /// The secret to show in the creation response: only one the server minted.
    pub fn shown_secret(&self) -> Option<&str> {
        self.secret.as_deref().filter(|_| self.minted)
    }

    /// What identifies these settings in an `Idempotency-Key` fingerprint (the secret by
    /// its hash).
    pub fn fingerprint(&self) -> String {
        let secret = self.secret.as_deref().map(|s| leasehold_core::tokens::sha256_hex(s.as_bytes()));
        format!(
            "{}|{}|{}",
            self.url.as_deref().unwrap_or(""),
            secret.as_deref().unwrap_or(""),
            self.expiry_warning_seconds.map(|w| w.to_string()).unwrap_or_default()
        )
    }
}

/// Reads and validates the headers of a lease of `duration_seconds`. A secret or warning
/// without a URL is refused; a URL without a secret gets a minted one; the URL's host
/// must resolve to addresses the policy permits.
pub async fn read(headers: &HeaderMap, policy: &AddressPolicy, duration_seconds: u64) -> Result<Webhook, ApiError> {
    let webhook = parse(headers, duration_seconds)?;
    if let Some(url) = &webhook.url {
        let parsed = webhook::parse_url(url).map_err(forbidden)?;
        webhook::resolve_checked(policy, &parsed).await.map_err(forbidden)?;
    }
    Ok(webhook)
}

fn forbidden(why: webhook::UrlRefusal) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "webhook_url_forbidden", format!("X-Webhook-Url {why}"))
}

/// The header checks that need no network.
fn parse(headers: &HeaderMap, duration_seconds: u64) -> Result<Webhook, ApiError> {
    let url = header_text(headers, URL)?.filter(|u| !u.is_empty());
    let secret = header_text(headers, SECRET)?.filter(|s| !s.is_empty());
    let warning = match header_text(headers, WARNING)?.filter(|w| !w.is_empty()) {
        None => None,
        Some(w) => match w.parse::<u64>() {
            Ok(n) if n >= 1 && n < duration_seconds => Some(n),
            _ => {
                return Err(ApiError::invalid_header(
                    WARNING,
                    format!("must be a whole number of seconds from 1 to below the duration ({duration_seconds})"),
                ));
            }
        },
    };
    let Some(url) = url else {
        if secret.is_some() {
            return Err(ApiError::invalid_header(SECRET, "needs X-Webhook-Url"));
        }
        if warning.is_some() {
            return Err(ApiError::invalid_header(WARNING, "needs X-Webhook-Url"));
        }
        return Ok(Webhook::default());
    };
    webhook::parse_url(url).map_err(forbidden)?;
    if let Some(s) = secret {
        webhook::check_secret(s).map_err(|why| ApiError::invalid_header(SECRET, why))?;
    }
    Ok(match secret {
        Some(s) => Webhook {
            url: Some(url.to_owned()),
            secret: Some(s.to_owned()),
            minted: false,
            expiry_warning_seconds: warning,
        },
        None => Webhook {
            url: Some(url.to_owned()),
            secret: Some(webhook::mint_secret()),
            minted: true,
            expiry_warning_seconds: warning,
        },
    })
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
        let w = parse(&headers(&[("x-webhook-url", "https://example.com/hook")]), 60).expect("valid");
        assert!(w.minted);
        assert_eq!(webhook::check_secret(w.shown_secret().expect("shown")), Ok(()));
        let given =
            parse(&headers(&[("x-webhook-url", "http://h/x"), ("x-webhook-secret", "s3cret")]), 60).expect("ok");
        assert_eq!((given.secret.as_deref(), given.minted, given.shown_secret()), (Some("s3cret"), false, None));
        assert_eq!(parse(&HeaderMap::new(), 60).expect("none"), Webhook::default());
    }

    #[test]
    fn bad_urls_warnings_and_lonely_secrets_are_refused() {
        let long = format!("https://example.com/{}", "a".repeat(3000));
        for bad in ["ftp://example.com", "file:///etc/passwd", "https://", "http:///x", "example.com", long.as_str()] {
            let err = parse(&headers(&[("x-webhook-url", bad)]), 60).expect_err(bad);
            assert_eq!(err.code(), "webhook_url_forbidden", "{bad}");
        }
        let err = parse(&headers(&[("x-webhook-secret", "s")]), 60).expect_err("secret alone");
        assert_eq!(err.code(), "invalid_header");
        let err = parse(&headers(&[("x-expiry-warning-seconds", "5")]), 60).expect_err("warning alone");
        assert_eq!(err.code(), "invalid_header");
        for w in ["0", "60", "-1", "soon"] {
            let h = headers(&[("x-webhook-url", "https://example.com/"), ("x-expiry-warning-seconds", w)]);
            assert_eq!(parse(&h, 60).expect_err(w).code(), "invalid_header", "{w}");
        }
        let h = headers(&[("x-webhook-url", "https://example.com/"), ("x-expiry-warning-seconds", "59")]);
        assert_eq!(parse(&h, 60).expect("59 < 60").expiry_warning_seconds, Some(59));
        let h = headers(&[("x-webhook-url", "https://example.com/"), ("x-webhook-secret", "whsec_%%%")]);
        assert_eq!(parse(&h, 60).expect_err("bad whsec").code(), "invalid_header");
    }
}
