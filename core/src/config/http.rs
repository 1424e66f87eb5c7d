//! Bounds on client connections (SPEC §10).

use std::time::Duration;

use super::ConfigError;
use super::source::Source;

/// Bounds on client connections (SPEC §10): slow or silent peers are cut off, and one
/// pod holds at most `max_connections` sockets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// Time a connection gets to send a request's headers in full.
    pub header_read_timeout: Duration,
    /// Time a kept-alive connection may sit between requests.
    pub idle_timeout: Duration,
    /// Time a request body may go without sending a byte before it is aborted (nothing
    /// of it is kept).
    pub body_timeout: Duration,
    /// Open connections per process; when full, the longest-idle connection is closed to
    /// make room, or the new one waits.
    pub max_connections: usize,
}

pub(super) fn http_config(src: &Source<'_>) -> Result<HttpConfig, ConfigError> {
    Ok(HttpConfig {
        header_read_timeout: Duration::from_secs(src.number("HEADER_READ_TIMEOUT_SECONDS", 10)?),
        idle_timeout: Duration::from_secs(src.number("IDLE_TIMEOUT_SECONDS", 60)?),
        body_timeout: Duration::from_secs(src.number("BODY_TIMEOUT_SECONDS", 30)?),
        max_connections: usize::try_from(src.number("MAX_CONNECTIONS", 4096)?)
            .map_err(|_| ConfigError::new("MAX_CONNECTIONS", "too large"))?,
    })
}
