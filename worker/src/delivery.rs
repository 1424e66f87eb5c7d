//! The HTTP side of webhook delivery (SPEC §8): one signed `POST` per attempt, with the
//! SSRF guard in the client's resolver, so the connection goes exactly to the addresses
//! that were checked (a name that re-resolves to a private address between the check and
//! the connect cannot slip through). No proxies, no redirects, a per-attempt timeout and
//! at most 64 KiB of the receiver's answer read.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use leasehold_core::config::WebhookConfig;
use leasehold_core::webhook::{self, AddressPolicy, UrlRefusal};

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The receiver's status, if it answered.
    pub status: Option<u16>,
    /// Why it failed, if it did (never set for a 2xx).
    pub error: Option<String>,
    /// The receiver's `Retry-After`.
    pub retry_after: Option<Duration>,
    /// True when the SSRF guard refused every address of the receiver.
    pub refused: bool,
}

impl Attempt {
    /// An attempt that reached no receiver.
    pub fn failed(error: impl Into<String>) -> Self {
        Self { status: None, error: Some(error.into()), retry_after: None, refused: false }
    }

    fn refused(refusal: &UrlRefusal) -> Self {
        Self { refused: true, ..Self::failed(format!("refused by the SSRF guard: {refusal}")) }
    }

    /// A 2xx answer.
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Sends webhook deliveries; cheap to clone (one connection pool).
#[derive(Clone, Debug)]
pub struct Sender {
    client: reqwest::Client,
    policy: AddressPolicy,
}

/// reqwest's resolver, replaced by one that refuses non-public addresses.
#[derive(Debug)]
struct GuardedResolver {
    policy: AddressPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = webhook::resolve_name(&policy, &host, 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl Sender {
    /// A client with the guard, the timeout and no redirects or proxies.
    pub fn new(config: &WebhookConfig) -> anyhow::Result<Self> {
        let policy = AddressPolicy::from_config(config);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("Leasehold-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone() }))
            .build()?;
        Ok(Self { client, policy })
    }

    /// One attempt: `POST` the body with both signatures, stamped `now_ms`.
    pub async fn send(&self, url: &str, secret: &str, event_id: &str, body: &str, now_ms: i64) -> Attempt {
        let parsed = match webhook::parse_url(url) {
            Ok(u) => u,
            Err(e) => return Attempt::failed(format!("webhook URL {e}")),
        };
        // An IP literal never reaches the resolver: check it here.
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && let Err(why) = self.policy.check(ip)
        {
            return Attempt::refused(&UrlRefusal::Forbidden { host: ip.to_string(), ip, why });
        }
        let timestamp = now_ms.div_euclid(1000);
        let request = self
            .client
            .post(parsed)
            .header("content-type", "application/json")
            .header("x-mailbox-signature", webhook::mailbox_signature(secret, body.as_bytes()))
            .header("webhook-id", event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", webhook::standard_signature(secret, event_id, timestamp, body.as_bytes()))
            .body(body.to_owned());
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return failure(&e),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| webhook::parse_retry_after(v, now_ms));
        // Read (and discard) at most 64 KiB of the answer, so a well-behaved receiver's
        // connection can be reused and a hostile one cannot make us read forever.
        let mut read = 0usize;
        while read < webhook::MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        let error = match status {
            200..=299 => None,
            300..=399 => Some(format!("HTTP {status}: redirects are not followed")),
            _ => Some(format!("HTTP {status}")),
        };
        Attempt { status: Some(status), error, retry_after, refused: false }
    }
}

/// A transport error, with the cause that says what happened (timeout, refused, guard).
fn failure(e: &reqwest::Error) -> Attempt {
    let mut text = if e.is_timeout() { "timed out".to_owned() } else { "request failed".to_owned() };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(refusal) = s.downcast_ref::<UrlRefusal>() {
            return Attempt::refused(refusal);
        }
        text = format!("{text}: {s}");
        source = s.source();
    }
    Attempt::failed(text)
}
