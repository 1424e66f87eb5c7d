//! Configuration (SPEC §10): `LEASEHOLD_*` environment variables over an optional
//! `leasehold.toml`, validated once at start into one typed struct.

mod blob;
mod http;
mod keys;
mod limits;
mod source;
mod webhook;
mod worker;
mod x402;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use blob::{BlobConfig, S3Config, StaticCredentials};
pub use http::HttpConfig;
pub use keys::{HARNESS_PREFIXES, KEYS, OTHER_VARIABLES};
pub use limits::Limits;
pub use webhook::{DEFAULT_WEBHOOK_RETRY_SCHEDULE, WebhookConfig};
pub use worker::WorkerConfig;
pub use x402::{Network, X402Config, is_evm_address};

use self::blob::blob_config;
use self::http::http_config;
use self::keys::check_known_keys;
use self::limits::limits;
use self::source::{Source, cidrs, is_sqlite_url, read_toml, validate_url};
use self::webhook::webhook_config;
use self::worker::worker_config;
use self::x402::x402_config;
use crate::pricing::Tariff;
use crate::secret::Secret;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// `User-Agent` fragments of link-preview bots (matched case-insensitively): they get a
/// metadata page from a claim URL and consume nothing.
pub const DEFAULT_LINK_PREVIEW_BOTS: &[&str] = &[
    "Slackbot",
    "Slack-ImgProxy",
    "Twitterbot",
    "facebookexternalhit",
    "Facebot",
    "Discordbot",
    "TelegramBot",
    "WhatsApp",
    "LinkedInBot",
    "SkypeUriPreview",
    "MicrosoftPreview",
    "Microsoft Office",
    "Teams",
    "Outlook",
    "Iframely",
    "Embedly",
    "redditbot",
    "Applebot",
    "Googlebot",
    "bingbot",
    "Mastodon",
];

/// A configuration value that cannot be used; names the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct ConfigError {
    /// The offending key, as its environment variable name.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    fn new(key: &str, message: impl Into<String>) -> Self {
        let key = if key.starts_with("LEASEHOLD_") { key.to_owned() } else { format!("LEASEHOLD_{key}") };
        Self { key, message: message.into() }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The whole validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address the API listens on.
    pub listen: SocketAddr,
    /// Base of every URL the API hands out (no trailing slash).
    pub public_url: String,
    /// Directory of the embedded database, blob files and dev key.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Size of the database connection pool.
    pub database_max_connections: u32,
    /// How long a request waits for a pooled database connection before it answers
    /// `503 unavailable`.
    pub database_acquire_timeout: Duration,
    /// Client connection bounds.
    pub http: HttpConfig,
    /// Where bytes live.
    pub blob: BlobConfig,
    /// Token of the operator API; `/admin/*` answers 404 without it.
    pub admin_token: Option<Secret>,
    /// Log line format.
    pub log_format: LogFormat,
    /// `tracing` filter directive (`info`, `leasehold_api=debug,info`).
    pub log_level: String,
    /// Bound on finishing in-flight requests after a shutdown signal.
    pub shutdown_timeout: Duration,
    /// Prices.
    pub tariff: Tariff,
    /// Limits of SPEC §9.
    pub limits: Limits,
    /// Background worker.
    pub worker: WorkerConfig,
    /// Peers whose `X-Forwarded-For` is believed when finding a drop's client IP (load
    /// balancers); empty: the socket peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// 32-byte key (64 hex characters) that encrypts stored secrets; `None` on SQLite
    /// means a generated key file in the data dir.
    pub secret_key: Option<Secret>,
    /// `User-Agent` fragments of link-preview bots (lower case).
    pub link_preview_bots: Vec<String>,
    /// Webhook delivery.
    pub webhook: WebhookConfig,
    /// x402 payments (SPEC §4.2); `None` when off.
    pub x402: Option<X402Config>,
}

impl Config {
    /// Loads from the process environment and `leasehold.toml` (or the file named by
    /// `LEASEHOLD_CONFIG`), then validates.
    pub fn from_env() -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("LEASEHOLD_")).collect();
        let file = match env.get("LEASEHOLD_CONFIG") {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from("leasehold.toml")).filter(|p| p.exists()),
        };
        let file_values = match file {
            Some(path) => read_toml(&path)?,
            None => BTreeMap::new(),
        };
        Self::from_sources(&env, &file_values)
    }

    /// Builds from environment-style values (`LEASEHOLD_*`) over file values (lower-case
    /// keys without the prefix). Unknown file keys are an error; environment wins.
    pub fn from_sources(env: &BTreeMap<String, String>, file: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        check_known_keys(env, file)?;
        let src = Source { env, file };
        let data_dir = PathBuf::from(src.get("DATA_DIR").unwrap_or_else(|| "./leasehold-data".into()));
        let listen: SocketAddr = src.parse("LISTEN", "127.0.0.1:8080", "a socket address like 127.0.0.1:8080")?;
        let public_url = match src.get("PUBLIC_URL") {
            Some(url) => validate_url("PUBLIC_URL", &url)?,
            None => format!("http://{listen}"),
        };
        let database_url = src
            .get("DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("leasehold.db").display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new("DATABASE_URL", "must start with sqlite:, postgres:// or postgresql://"));
        }
        let log_format = match src.get("LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(ConfigError::new("LOG_FORMAT", format!("expected json or text, got {other:?}"))),
        };
        let database_url_for_worker = database_url.clone();
        let tariff = Tariff {
            micros_per_gb_day: src.number("MICROS_PER_GB_DAY", 1_000)?,
            minimum_charge_micros: src.number("MINIMUM_CHARGE_MICROS", 29)?,
        };
        let config = Self {
            listen,
            public_url,
            blob: blob_config(&src, &data_dir)?,
            database_url,
            database_max_connections: u32::try_from(src.number("DATABASE_MAX_CONNECTIONS", 10)?)
                .map_err(|_| ConfigError::new("DATABASE_MAX_CONNECTIONS", "too large"))?,
            database_acquire_timeout: Duration::from_secs(src.number("DATABASE_ACQUIRE_TIMEOUT_SECONDS", 5)?),
            http: http_config(&src)?,
            data_dir,
            admin_token: src.get("ADMIN_TOKEN").filter(|t| !t.is_empty()).map(Secret::new),
            log_format,
            log_level: src.get("LOG_LEVEL").unwrap_or_else(|| "info".into()),
            shutdown_timeout: Duration::from_secs(src.number("SHUTDOWN_TIMEOUT_SECONDS", 30)?),
            tariff,
            limits: limits(&src)?,
            worker: worker_config(&src, is_sqlite_url(&database_url_for_worker))?,
            trusted_proxies: cidrs(&src, "TRUSTED_PROXIES")?,
            webhook: webhook_config(&src)?,
            x402: x402_config(&src)?,
            secret_key: secret_key(&src)?,
            link_preview_bots: link_preview_bots(&src),
        };
        config.validate()?;
        Ok(config)
    }

    /// True when the metadata database is SQLite (the embedded shape).
    pub fn is_sqlite(&self) -> bool {
        is_sqlite_url(&self.database_url)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        if l.min_duration_seconds == 0 {
            return Err(ConfigError::new("MIN_DURATION_SECONDS", "must be at least 1"));
        }
        if l.max_duration_seconds < l.min_duration_seconds {
            return Err(ConfigError::new("MAX_DURATION_SECONDS", "must not be below LEASEHOLD_MIN_DURATION_SECONDS"));
        }
        if l.checkpoint_default_body_bytes > l.checkpoint_max_body_bytes {
            return Err(ConfigError::new(
                "CHECKPOINT_DEFAULT_BODY_BYTES",
                "must not exceed LEASEHOLD_CHECKPOINT_MAX_BODY_BYTES",
            ));
        }
        if l.checkpoint_default_versions == 0 || l.checkpoint_default_versions > l.checkpoint_max_versions {
            return Err(ConfigError::new(
                "CHECKPOINT_DEFAULT_VERSIONS",
                "must be between 1 and LEASEHOLD_CHECKPOINT_MAX_VERSIONS",
            ));
        }
        if self.secret_key.is_none() && !self.is_sqlite() {
            return Err(ConfigError::new(
                "SECRET_KEY",
                "required with PostgreSQL (every pod and worker must share it); generate one with `openssl rand -hex 32`",
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log_level) {
            return Err(ConfigError::new(
                "LOG_LEVEL",
                format!(
                    "expected a tracing filter like info or leasehold_api=debug,info, got {:?}: {e}",
                    self.log_level
                ),
            ));
        }
        if l.mcp_inline_max_bytes == 0 || l.mcp_inline_max_bytes > 64 * MIB {
            return Err(ConfigError::new("MCP_INLINE_MAX_BYTES", "must be 1..=67108864 (64 MiB)"));
        }
        if l.long_poll_max_seconds == 0 {
            return Err(ConfigError::new("LONG_POLL_MAX_SECONDS", "must be at least 1"));
        }
        for (key, value) in [
            ("DATABASE_ACQUIRE_TIMEOUT_SECONDS", self.database_acquire_timeout),
            ("HEADER_READ_TIMEOUT_SECONDS", self.http.header_read_timeout),
            ("IDLE_TIMEOUT_SECONDS", self.http.idle_timeout),
            ("BODY_TIMEOUT_SECONDS", self.http.body_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if self.http.max_connections < 16 {
            return Err(ConfigError::new("MAX_CONNECTIONS", "must be at least 16"));
        }
        if self.database_max_connections == 0 {
            return Err(ConfigError::new("DATABASE_MAX_CONNECTIONS", "must be at least 1"));
        }
        if let BlobConfig::S3(s3) = &self.blob
            && s3.part_size < 5 * MIB as usize
        {
            return Err(ConfigError::new("S3_PART_SIZE_BYTES", "must be at least 5 MiB (S3's smallest part)"));
        }
        Ok(())
    }
}

fn secret_key(src: &Source<'_>) -> Result<Option<Secret>, ConfigError> {
    match src.get("SECRET_KEY").filter(|k| !k.is_empty()) {
        None => Ok(None),
        Some(k) if k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(Some(Secret::new(k))),
        Some(_) => Err(ConfigError::new("SECRET_KEY", "expected 64 hex characters (32 random bytes)")),
    }
}

/// The `User-Agent` fragments of link-preview bots, lower case.
fn link_preview_bots(src: &Source<'_>) -> Vec<String> {
    match src.get("LINK_PREVIEW_BOTS") {
        Some(list) => list.split(',').map(|b| b.trim().to_ascii_lowercase()).filter(|b| !b.is_empty()).collect(),
        None => DEFAULT_LINK_PREVIEW_BOTS.iter().map(|b| b.to_ascii_lowercase()).collect(),
    }
}

/// Environment-style values for the unit tests of this module and its children.
#[cfg(test)]
fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::{Config, env};

    #[test]
    fn defaults_are_embedded() {
        let c = Config::from_sources(&BTreeMap::new(), &BTreeMap::new()).expect("defaults");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert!(c.is_sqlite());
        assert!(matches!(c.blob, BlobConfig::Fs { .. }));
        assert_eq!(c.limits, Limits::default());
        assert!(c.admin_token.is_none());
        assert!(c.worker.embedded, "SQLite runs the worker in-process");
        let pg = Config::from_sources(
            &env(&[("LEASEHOLD_DATABASE_URL", "postgres://h/db"), ("LEASEHOLD_SECRET_KEY", &"ab".repeat(32))]),
            &BTreeMap::new(),
        )
        .expect("postgres");
        assert!(!pg.worker.embedded, "PostgreSQL runs separate workers");
        let err = Config::from_sources(&env(&[("LEASEHOLD_WORKER_CONCURRENCY", "0")]), &BTreeMap::new())
            .expect_err("zero workers");
        assert_eq!(err.key, "LEASEHOLD_WORKER_CONCURRENCY");
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let err = Config::from_sources(&env(&[("LEASEHOLD_MAX_FILE_BYTES", "lots")]), &BTreeMap::new())
            .expect_err("must fail");
        assert_eq!(err.key, "LEASEHOLD_MAX_FILE_BYTES");
        assert!(err.to_string().contains("LEASEHOLD_MAX_FILE_BYTES"));
        let err =
            Config::from_sources(&env(&[("LEASEHOLD_LISTEN", "nowhere")]), &BTreeMap::new()).expect_err("must fail");
        assert_eq!(err.key, "LEASEHOLD_LISTEN");
    }

    #[test]
    fn a_log_level_that_is_no_tracing_filter_is_refused() {
        for bad in ["nonsense[[[", "info,=debug[", "leasehold_api=loud"] {
            let err = Config::from_sources(&env(&[("LEASEHOLD_LOG_LEVEL", bad)]), &BTreeMap::new()).expect_err(bad);
            assert_eq!(err.key, "LEASEHOLD_LOG_LEVEL", "{bad}");
        }
        for good in ["info", "warn", "leasehold_api=debug,info", "sqlx=warn,info"] {
            Config::from_sources(&env(&[("LEASEHOLD_LOG_LEVEL", good)]), &BTreeMap::new()).expect(good);
        }
    }

    #[test]
    fn trusted_proxies_and_secret_keys_are_validated() {
        let c =
            Config::from_sources(&env(&[("LEASEHOLD_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")]), &BTreeMap::new())
                .expect("valid");
        assert_eq!(c.trusted_proxies.len(), 3);
        assert!(c.trusted_proxies[1].contains(&"127.0.0.1".parse::<std::net::IpAddr>().expect("ip")));
        let err = Config::from_sources(&env(&[("LEASEHOLD_TRUSTED_PROXIES", "lb.local")]), &BTreeMap::new())
            .expect_err("hostnames are not addresses");
        assert_eq!(err.key, "LEASEHOLD_TRUSTED_PROXIES");
        let err =
            Config::from_sources(&env(&[("LEASEHOLD_SECRET_KEY", "short")]), &BTreeMap::new()).expect_err("short");
        assert_eq!(err.key, "LEASEHOLD_SECRET_KEY");
        let err = Config::from_sources(&env(&[("LEASEHOLD_DATABASE_URL", "postgres://h/db")]), &BTreeMap::new())
            .expect_err("distributed needs a shared key");
        assert_eq!(err.key, "LEASEHOLD_SECRET_KEY");
    }

    #[test]
    fn admin_token_is_not_printed_by_debug() {
        let c = Config::from_sources(&env(&[("LEASEHOLD_ADMIN_TOKEN", "hunter2")]), &BTreeMap::new()).expect("valid");
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
