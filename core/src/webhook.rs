//! Webhooks (SPEC §8): the events a lease emits, their signatures, the retry schedule,
//! and the checks of a receiver's URL (its addresses through the SSRF guard of
//! [`crate::ssrf`]).
//!
//! An event is a `webhook_event` row written in the transaction that causes it, together
//! with the apalis job that delivers it; the worker alone sends it. The row holds the body
//! exactly as sent, so every attempt carries the same bytes and the same `webhook-id`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::Engine;
use hmac::{KeyInit, Mac};
use leasehold_entities::{lease, webhook_event};
use sea_orm::{ConnectionTrait, DbErr, Set};
use serde_json::{Map, Value};

use crate::config::WebhookConfig;
use crate::queue::{self, DeliverWebhook, RunAt};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Event types.
pub mod event {
    /// A message was dropped into a Mailbox.
    pub const MESSAGE_RECEIVED: &str = "mailbox.message.received";
    /// A claim of a Handoff completed.
    pub const HANDOFF_CLAIMED: &str = "handoff.claimed";
    /// A Handoff's last claim completed.
    pub const HANDOFF_EXHAUSTED: &str = "handoff.exhausted";
    /// The lease expires in `X-Expiry-Warning-Seconds`.
    pub const LEASE_EXPIRING: &str = "lease.expiring";
    /// The lease expired.
    pub const LEASE_EXPIRED: &str = "lease.expired";
}

/// Delivery states of an event.
pub mod state {
    /// Waiting for its (next) attempt at `next_attempt_at`.
    pub const PENDING: &str = "pending";
    /// A receiver answered 2xx.
    pub const DELIVERED: &str = "delivered";
    /// Stopped for good: the receiver answered 410, or the address is forbidden.
    pub const FAILED: &str = "failed";
    /// Every attempt of the schedule failed, or the lease ended before the next one.
    pub const EXHAUSTED: &str = "exhausted";
}

/// Context under which webhook secrets are sealed: the API seals them, the worker opens
/// them.
pub const SECRET_CONTEXT: &str = "webhook-secret";

/// Longest accepted webhook URL.
pub const MAX_URL_LEN: usize = 2048;
/// Prefix of minted secrets (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";
/// Longest response body read from a receiver.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

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

/// Delay before the next attempt after `attempts_made` failed ones, or `None` when the
/// schedule is spent. A receiver's `Retry-After` replaces the scheduled delay, bounded to
/// 1 s ..= `retry_after_max`; otherwise the scheduled delay is spread by ±jitter
/// (`unit` is a uniform random number in `0..1`).
pub fn next_delay(
    config: &WebhookConfig,
    attempts_made: usize,
    retry_after: Option<Duration>,
    unit: f64,
) -> Option<Duration> {
    let scheduled = *config.retry_schedule.get(attempts_made)?;
    if let Some(asked) = retry_after {
        return Some(asked.clamp(Duration::from_secs(1), config.retry_after_max.max(Duration::from_secs(1))));
    }
    let spread = config.retry_jitter_percent as f64 / 100.0;
    let factor = 1.0 + spread * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
    Some(scheduled.mul_f64(factor.max(0.0)))
}

/// A uniform random number in `0..1` from the OS RNG.
pub fn random_unit() -> f64 {
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date (relative to `now_ms`).
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?.timestamp_millis();
    Some(Duration::from_millis(u64::try_from(at.saturating_sub(now_ms)).unwrap_or(0)))
}

pub use crate::ssrf::{AddressPolicy, Refusal, is_public};

/// Why a webhook URL is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    /// Not an absolute http(s) URL with a host, or too long.
    #[error("{0}")]
    Malformed(&'static str),
    /// The host does not resolve.
    #[error("host {0} does not resolve")]
    Unresolvable(String),
    /// The host is, or resolves to, an address deliveries may not go to.
    #[error("host {host} resolves to {ip}, {why}")]
    Forbidden {
        /// The URL's host.
        host: String,
        /// The refused address.
        ip: IpAddr,
        /// The registry entry that refuses it.
        why: Refusal,
    },
}

/// Checks the form of a webhook URL: http or https, a host, at most 2048 characters.
pub fn parse_url(raw: &str) -> Result<url::Url, UrlRefusal> {
    if raw.len() > MAX_URL_LEN {
        return Err(UrlRefusal::Malformed("must be at most 2048 characters"));
    }
    if raw.bytes().any(|b| b <= 0x20 || b == 0x7f) {
        return Err(UrlRefusal::Malformed("must not contain spaces or control characters"));
    }
    let rest = raw.split_once("://").map(|(_, rest)| rest).unwrap_or_default();
    if rest.is_empty() || rest.starts_with(['/', '\\', '?', '#', ':', '@']) {
        return Err(UrlRefusal::Malformed("must be an http:// or https:// URL naming a host"));
    }
    let url = url::Url::parse(raw).map_err(|_| UrlRefusal::Malformed("must be an absolute http:// or https:// URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefusal::Malformed("must be an http:// or https:// URL"));
    }
    match url.host_str() {
        Some(h) if !h.is_empty() => Ok(url),
        _ => Err(UrlRefusal::Malformed("must name a host")),
    }
}

/// How long a name lookup may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves the URL's host and checks every address it resolves to; returns them. An IP
/// literal is checked as is.
pub async fn resolve_checked(policy: &AddressPolicy, url: &url::Url) -> Result<Vec<SocketAddr>, UrlRefusal> {
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(url::Host::Domain(name)) => resolve_name(policy, name, port).await?,
        None => return Err(UrlRefusal::Malformed("must name a host")),
    };
    let host = url.host_str().unwrap_or_default();
    check_addrs(policy, host, addrs)
}

/// Resolves a host name and checks every address (used for deliveries' connections too,
/// so they go exactly to checked addresses).
pub async fn resolve_name(policy: &AddressPolicy, name: &str, port: u16) -> Result<Vec<SocketAddr>, UrlRefusal> {
    let lookup = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port))).await;
    let addrs: Vec<SocketAddr> = match lookup {
        Ok(Ok(found)) => found.collect(),
        _ => Vec::new(),
    };
    if addrs.is_empty() {
        return Err(UrlRefusal::Unresolvable(name.to_owned()));
    }
    check_addrs(policy, name, addrs)
}

fn check_addrs(policy: &AddressPolicy, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, UrlRefusal> {
    for a in &addrs {
        policy.check(a.ip()).map_err(|why| UrlRefusal::Forbidden { host: host.to_owned(), ip: a.ip(), why })?;
    }
    Ok(addrs)
}

/// The webhook settings a new lease is created with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hook {
    /// Receiver URL.
    pub url: Option<String>,
    /// The secret, sealed.
    pub secret_sealed: Option<String>,
    /// Seconds before expiry at which `lease.expiring` is sent.
    pub expiry_warning_seconds: Option<i64>,
}

/// An event about to be recorded.
#[derive(Clone, Debug)]
pub struct NewEvent<'a> {
    /// The lease it is about (which must have a webhook).
    pub lease_id: &'a str,
    /// One of [`event`].
    pub event_type: &'static str,
    /// The event's own fields; the body adds `type`, `event_id`, `lease_id`, `occurred_at`.
    pub fields: Map<String, Value>,
    /// When it occurred (unix ms); its first attempt is due then (or now, if earlier).
    pub occurred_at: i64,
}

/// Records one event and enqueues its delivery, in the caller's transaction; returns the
/// event id.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    lease_id: &str,
    event_type: &'static str,
    fields: Map<String, Value>,
    occurred_at: i64,
    now: i64,
) -> Result<String, DbErr> {
    let ids = record_many(conn, vec![NewEvent { lease_id, event_type, fields, occurred_at }], now).await?;
    Ok(ids.into_iter().next().unwrap_or_default())
}

/// Records events and enqueues their deliveries with one `INSERT` each for the rows and
/// the jobs, in the caller's transaction; returns the event ids.
pub async fn record_many<C: ConnectionTrait>(
    conn: &C,
    events: Vec<NewEvent<'_>>,
    now: i64,
) -> Result<Vec<String>, DbErr> {
    use sea_orm::EntityTrait;
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows = Vec::with_capacity(events.len());
    let mut jobs = Vec::with_capacity(events.len());
    for e in events {
        let id = crate::ids::event_id();
        let mut body = Map::new();
        body.insert("type".into(), e.event_type.into());
        body.insert("event_id".into(), id.clone().into());
        body.insert("lease_id".into(), e.lease_id.into());
        body.insert("occurred_at".into(), crate::time::rfc3339(e.occurred_at).into());
        body.extend(e.fields);
        let due_at = e.occurred_at.max(now);
        rows.push(webhook_event::ActiveModel {
            id: Set(id.clone()),
            lease_id: Set(e.lease_id.to_owned()),
            event_type: Set(e.event_type.to_owned()),
            body: Set(Value::Object(body).to_string()),
            state: Set(state::PENDING.to_owned()),
            attempts: Set(0),
            last_status_code: Set(None),
            last_error: Set(None),
            next_attempt_at: Set(Some(due_at)),
            locked_until: Set(None),
            created_at: Set(e.occurred_at),
            delivered_at: Set(None),
        });
        let run_at = if due_at <= now { RunAt::Now } else { RunAt::NotBefore(due_at) };
        jobs.push((DeliverWebhook { event_id: id }, run_at));
    }
    webhook_event::Entity::insert_many(rows).exec(conn).await?;
    let queued: Vec<(&DeliverWebhook, RunAt, Option<String>)> =
        jobs.iter().map(|(job, at)| (job, *at, Some(format!("deliver:{}:0", job.event_id)))).collect();
    queue::enqueue_many(conn, &queued, now).await?;
    Ok(jobs.into_iter().map(|(job, _)| job.event_id).collect())
}

/// True when the lease has a receiver to send events to.
pub fn wants_events(lease: &lease::Model) -> bool {
    lease.webhook_url.is_some()
}

/// At creation: schedules `lease.expiring` for `expires_at - warning` when asked for.
pub async fn schedule_expiry_warning<C: ConnectionTrait>(
    conn: &C,
    lease: &lease::Model,
    now: i64,
) -> Result<(), DbErr> {
    let Some(warning) = lease.expiry_warning_seconds.filter(|_| wants_events(lease)) else { return Ok(()) };
    let at = lease.expires_at.saturating_sub(warning.saturating_mul(1000)).max(now);
    let mut fields = Map::new();
    fields.insert("expires_at".into(), crate::time::rfc3339(lease.expires_at).into());
    fields.insert("expires_in_seconds".into(), ((lease.expires_at - at) / 1000).into());
    record(conn, &lease.id, event::LEASE_EXPIRING, fields, at, now).await?;
    Ok(())
}

/// `lease.expired` for every lease just turned into an expired tombstone (in the
/// transaction that turned them).
pub async fn record_expired<C: ConnectionTrait>(conn: &C, expired: &[lease::Model], now: i64) -> Result<(), DbErr> {
    let events = expired
        .iter()
        .filter(|l| wants_events(l))
        .map(|l| {
            let mut fields = Map::new();
            fields.insert("variant".into(), l.variant.clone().into());
            fields.insert("expires_at".into(), crate::time::rfc3339(l.expires_at).into());
            NewEvent { lease_id: &l.id, event_type: event::LEASE_EXPIRED, fields, occurred_at: l.expires_at }
        })
        .collect();
    record_many(conn, events, now).await?;
    Ok(())
}

/// Deletion cancels a `lease.expiring` warning that is not due yet (in the deleting
/// transaction); events already caused are still delivered.
pub async fn cancel_expiry_warning<C: ConnectionTrait>(conn: &C, lease_id: &str, now: i64) -> Result<(), DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    webhook_event::Entity::delete_many()
        .filter(webhook_event::Column::LeaseId.eq(lease_id))
        .filter(webhook_event::Column::EventType.eq(event::LEASE_EXPIRING))
        .filter(webhook_event::Column::Attempts.eq(0))
        .filter(webhook_event::Column::NextAttemptAt.gt(now))
        .exec(conn)
        .await?;
    Ok(())
}

/// A lease's events in creation order, after the `evt_` id `after`, at most `limit`.
pub async fn events_of(
    db: &impl ConnectionTrait,
    lease_id: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<webhook_event::Model>, DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    let mut query = webhook_event::Entity::find().filter(webhook_event::Column::LeaseId.eq(lease_id));
    if let Some(after) = after {
        query = query.filter(webhook_event::Column::Id.gt(after));
    }
    query.order_by_asc(webhook_event::Column::Id).limit(limit).all(db).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_with_a_host_and_short() {
        for bad in ["ftp://example.com", "file:///etc/passwd", "https://", "http:///x", "example.com", "http://a b"] {
            assert!(matches!(parse_url(bad), Err(UrlRefusal::Malformed(_))), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(3000));
        assert!(parse_url(&long).is_err());
        assert!(parse_url("https://example.com:8443/hook?x=1").is_ok());
    }

    #[tokio::test]
    async fn literals_and_names_are_checked_against_the_policy() {
        let strict = AddressPolicy::default();
        for url in ["http://127.0.0.1/x", "http://[::1]:9/x", "http://localhost/x", "http://169.254.169.254/latest"] {
            let parsed = parse_url(url).expect("well-formed");
            assert!(matches!(resolve_checked(&strict, &parsed).await, Err(UrlRefusal::Forbidden { .. })), "{url}");
        }
        let public = parse_url("https://93.184.216.34:8443/hook").expect("url");
        assert_eq!(
            resolve_checked(&strict, &public).await.expect("public"),
            vec!["93.184.216.34:8443".parse().expect("addr")]
        );
    }

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

    #[test]
    fn the_schedule_spreads_and_retry_after_is_bounded() {
        let config = WebhookConfig {
            allow_private: false,
            allow_cidrs: vec![],
            retry_schedule: [0, 5, 30].iter().map(|s| Duration::from_secs(*s)).collect(),
            retry_jitter_percent: 20,
            retry_after_max: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        };
        assert_eq!(next_delay(&config, 1, None, 0.0), Some(Duration::from_secs(4)));
        assert_eq!(next_delay(&config, 1, None, 1.0), Some(Duration::from_secs(6)));
        assert_eq!(next_delay(&config, 2, None, 0.5), Some(Duration::from_secs(30)));
        assert_eq!(next_delay(&config, 3, None, 0.5), None);
        assert_eq!(next_delay(&config, 1, Some(Duration::from_secs(3600)), 0.5), Some(Duration::from_secs(60)));
        assert_eq!(next_delay(&config, 1, Some(Duration::ZERO), 0.5), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 7 ", 0), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 4000), Some(Duration::from_secs(6)));
        assert_eq!(parse_retry_after("soon", 0), None);
    }
}
