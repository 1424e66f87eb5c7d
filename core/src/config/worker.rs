//! Settings of the background worker (SPEC §5).

use std::net::SocketAddr;
use std::time::Duration;

use super::ConfigError;
use super::source::Source;

/// Settings of the background worker (SPEC §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Run the worker inside `leasehold-api` (default: on with SQLite, off with PostgreSQL).
    pub embedded: bool,
    /// Address of the standalone worker's `/metrics` and `/healthz`.
    pub listen: SocketAddr,
    /// Jobs run at once per worker process.
    pub concurrency: usize,
    /// How often the sweep looks for leases whose job was lost.
    pub sweep_interval: Duration,
    /// How long past its end a lease is left to its own job before the sweep takes it.
    pub sweep_grace: Duration,
    /// How often tombstones and orphan blobs are reaped.
    pub reap_interval: Duration,
    /// Age after which a blob with no committed lease is an orphan (a crash mid-upload).
    pub orphan_age: Duration,
}

pub(super) fn worker_config(src: &Source<'_>, sqlite: bool) -> Result<WorkerConfig, ConfigError> {
    let seconds = |key: &str, default: u64| -> Result<Duration, ConfigError> {
        let n = src.number(key, default)?;
        if n == 0 {
            return Err(ConfigError::new(key, "must be at least 1"));
        }
        Ok(Duration::from_secs(n))
    };
    let concurrency = usize::try_from(src.number("WORKER_CONCURRENCY", 32)?)
        .ok()
        .filter(|n| (1..=1024).contains(n))
        .ok_or_else(|| ConfigError::new("WORKER_CONCURRENCY", "must be between 1 and 1024"))?;
    Ok(WorkerConfig {
        embedded: src.flag("EMBEDDED_WORKER", sqlite)?,
        listen: src.parse("WORKER_LISTEN", "127.0.0.1:9091", "a socket address like 127.0.0.1:9091")?,
        concurrency,
        sweep_interval: seconds("SWEEP_INTERVAL_SECONDS", 5)?,
        sweep_grace: seconds("SWEEP_GRACE_SECONDS", 10)?,
        reap_interval: seconds("REAP_INTERVAL_SECONDS", 60)?,
        orphan_age: seconds("ORPHAN_AGE_SECONDS", 3600)?,
    })
}
