//! Webhook delivery settings (SPEC §8): the address policy, the retry schedule and the
//! per-attempt timeout.

use std::time::Duration;

use super::ConfigError;
use super::source::{Source, cidrs};

/// Default delays before each delivery attempt of a webhook event (SPEC §8): at once,
/// then 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h after the previous failure.
pub const DEFAULT_WEBHOOK_RETRY_SCHEDULE: &[u64] = &[0, 5, 30, 120, 600, 1800, 3600, 10_800, 21_600];

/// Webhook delivery (SPEC §8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Deliver to loopback, private, link-local, CGNAT, unique-local, multicast and
    /// unspecified addresses too (tests, private networks).
    pub allow_private: bool,
    /// Networks allowed even though they are private (an internal receiver).
    pub allow_cidrs: Vec<ipnet::IpNet>,
    /// Delay before each attempt; the first is usually 0. Its length is the number of
    /// attempts.
    pub retry_schedule: Vec<Duration>,
    /// Random spread of each retry delay, in percent either way.
    pub retry_jitter_percent: u64,
    /// Longest `Retry-After` a receiver can ask for.
    pub retry_after_max: Duration,
    /// Per-attempt timeout (connect, send, answer).
    pub timeout: Duration,
}

pub(super) fn webhook_config(src: &Source<'_>) -> Result<WebhookConfig, ConfigError> {
    let retry_schedule = match src.get("WEBHOOK_RETRY_SCHEDULE_SECONDS") {
        None => DEFAULT_WEBHOOK_RETRY_SCHEDULE.iter().map(|s| Duration::from_secs(*s)).collect(),
        Some(raw) => raw
            .split(',')
            .map(|p| {
                p.trim().parse::<u64>().map(Duration::from_secs).map_err(|_| {
                    ConfigError::new(
                        "WEBHOOK_RETRY_SCHEDULE_SECONDS",
                        format!("expected comma-separated whole seconds like 0,5,30, got {raw:?}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    if retry_schedule.is_empty() || retry_schedule.len() > 100 {
        return Err(ConfigError::new("WEBHOOK_RETRY_SCHEDULE_SECONDS", "must list 1 to 100 delays"));
    }
    let retry_jitter_percent = src.number("WEBHOOK_RETRY_JITTER_PERCENT", 20)?;
    if retry_jitter_percent > 100 {
        return Err(ConfigError::new("WEBHOOK_RETRY_JITTER_PERCENT", "must be between 0 and 100"));
    }
    let timeout = src.number("WEBHOOK_TIMEOUT_SECONDS", 10)?;
    if !(1..=300).contains(&timeout) {
        return Err(ConfigError::new("WEBHOOK_TIMEOUT_SECONDS", "must be between 1 and 300"));
    }
    Ok(WebhookConfig {
        allow_private: src.flag("WEBHOOK_ALLOW_PRIVATE", false)?,
        allow_cidrs: cidrs(src, "WEBHOOK_ALLOW_CIDRS")?,
        retry_schedule,
        retry_jitter_percent,
        retry_after_max: Duration::from_secs(src.number("WEBHOOK_RETRY_AFTER_MAX_SECONDS", 3600)?),
        timeout: Duration::from_secs(timeout),
    })
}
