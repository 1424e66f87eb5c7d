//! Injected time, so behaviour that depends on it can be tested without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Source of "now" in unix milliseconds.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Offset added to the system time; tests move it forward instead of sleeping.
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The real wall clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// Current time in unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        wall.saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}
