//! Timestamp formatting: the database keeps unix milliseconds, the API speaks RFC 3339.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats unix milliseconds as RFC 3339 UTC with milliseconds (`2026-04-19T22:00:00.000Z`).
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Formats unix milliseconds as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_and_z() {
        assert_eq!(rfc3339(1_776_636_000_000), "2026-04-19T22:00:00.000Z");
        assert_eq!(rfc3339(1_776_636_000_123), "2026-04-19T22:00:00.123Z");
    }

    #[test]
    fn formats_http_dates() {
        assert_eq!(http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
