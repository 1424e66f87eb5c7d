//! Token buckets keyed by string (drop rate limits per client IP and per Mailbox), with
//! time passed in so the logic is testable without sleeping.

use std::collections::HashMap;
use std::sync::Mutex;

/// Buckets kept before idle (full) ones are dropped.
const MAX_IDLE_BUCKETS: usize = 100_000;

/// A rate: `per_second` tokens refill each second, up to `burst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Refill per second.
    pub per_second: u64,
    /// Bucket size.
    pub burst: u64,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tokens in thousandths, so refills of whole milliseconds are exact.
    milli_tokens: u64,
    updated_ms: i64,
}

/// Many token buckets of one rate.
#[derive(Debug)]
pub struct Limiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    /// A limiter with every bucket of this rate. A rate of 0 per second disables it.
    pub fn new(rate: Rate) -> Self {
        Self { rate, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token from `key`'s bucket, or says how many milliseconds until one is
    /// there.
    pub fn take(&self, key: &str, now_ms: i64) -> Result<(), u64> {
        if self.rate.per_second == 0 {
            return Ok(());
        }
        let full = self.rate.burst.max(1) * 1000;
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_IDLE_BUCKETS && !buckets.contains_key(key) {
            self.drop_full(&mut buckets, now_ms);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { milli_tokens: full, updated_ms: now_ms });
        let elapsed = u64::try_from(now_ms.saturating_sub(bucket.updated_ms)).unwrap_or(0);
        bucket.milli_tokens =
            full.min(bucket.milli_tokens.saturating_add(elapsed.saturating_mul(self.rate.per_second)));
        bucket.updated_ms = bucket.updated_ms.max(now_ms);
        if bucket.milli_tokens >= 1000 {
            bucket.milli_tokens -= 1000;
            Ok(())
        } else {
            Err((1000 - bucket.milli_tokens).div_ceil(self.rate.per_second).max(1))
        }
    }

    /// Forgets buckets that have refilled completely (they behave like new ones).
    fn drop_full(&self, buckets: &mut HashMap<String, Bucket>, now_ms: i64) {
        let full = self.rate.burst.max(1) * 1000;
        let per_ms = self.rate.per_second;
        buckets.retain(|_, b| {
            let elapsed = u64::try_from(now_ms.saturating_sub(b.updated_ms)).unwrap_or(0);
            b.milli_tokens.saturating_add(elapsed.saturating_mul(per_ms)) < full
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_applies() {
        let l = Limiter::new(Rate { per_second: 10, burst: 3 });
        for _ in 0..3 {
            assert_eq!(l.take("ip", 0), Ok(()));
        }
        assert_eq!(l.take("ip", 0), Err(100), "one token every 100 ms");
        assert_eq!(l.take("ip", 50), Err(50));
        assert_eq!(l.take("ip", 100), Ok(()));
        assert_eq!(l.take("other", 100), Ok(()), "keys have their own buckets");
        assert_eq!(l.take("ip", 10_000), Ok(()), "refills up to the burst");
        assert_eq!(l.take("ip", 10_000), Ok(()));
        assert_eq!(l.take("ip", 10_000), Ok(()));
        assert!(l.take("ip", 10_000).is_err());
    }

    #[test]
    fn a_zero_rate_disables_the_limit() {
        let l = Limiter::new(Rate { per_second: 0, burst: 0 });
        for _ in 0..1000 {
            assert_eq!(l.take("x", 0), Ok(()));
        }
    }

    #[test]
    fn full_buckets_are_forgotten_when_the_map_is_large() {
        let l = Limiter::new(Rate { per_second: 1000, burst: 1 });
        let mut buckets = HashMap::new();
        buckets.insert("old".to_owned(), Bucket { milli_tokens: 0, updated_ms: 0 });
        buckets.insert("busy".to_owned(), Bucket { milli_tokens: 0, updated_ms: 10 });
        l.drop_full(&mut buckets, 10);
        assert!(!buckets.contains_key("old") && buckets.contains_key("busy"));
    }
}
