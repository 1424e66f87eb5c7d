//! The retry schedule of a delivery: pure domain logic (the worker supplies the random
//! unit and the clock), separate from any infrastructure retry.

use std::time::Duration;

use crate::config::WebhookConfig;

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

#[cfg(test)]
mod tests {
    use super::*;

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
