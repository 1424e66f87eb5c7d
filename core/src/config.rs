//! Configuration (SPEC §10): `LEASEHOLD_*` environment variables over an optional
//! `leasehold.toml`, validated once at start into one typed struct.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::pricing::Tariff;
use crate::secret::Secret;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Every key this service understands, as its environment variable suffix. The
/// `leasehold.toml` key is the same in lower case (`max_file_bytes`).
pub const KEYS: &[&str] = &[
    "LISTEN",
    "PUBLIC_URL",
    "DATA_DIR",
    "DATABASE_URL",
    "DATABASE_MAX_CONNECTIONS",
    "DATABASE_ACQUIRE_TIMEOUT_SECONDS",
    "HEADER_READ_TIMEOUT_SECONDS",
    "IDLE_TIMEOUT_SECONDS",
    "BODY_TIMEOUT_SECONDS",
    "MAX_CONNECTIONS",
    "BLOB_STORE",
    "S3_BUCKET",
    "S3_ENDPOINT",
    "S3_REGION",
    "S3_FORCE_PATH_STYLE",
    "S3_PREFIX",
    "S3_PART_SIZE_BYTES",
    "ADMIN_TOKEN",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "SHUTDOWN_TIMEOUT_SECONDS",
    "MICROS_PER_GB_DAY",
    "MINIMUM_CHARGE_MICROS",
    "MIN_DURATION_SECONDS",
    "MAX_DURATION_SECONDS",
    "MAX_FILE_BYTES",
    "MAX_MAILBOX_CAPACITY_BYTES",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_MAX_MESSAGES",
    "CHECKPOINT_DEFAULT_BODY_BYTES",
    "CHECKPOINT_MAX_BODY_BYTES",
    "CHECKPOINT_DEFAULT_VERSIONS",
    "CHECKPOINT_MAX_VERSIONS",
    "HANDOFF_MAX_CLAIMS",
    "DROP_RATE_PER_IP",
    "DROP_BURST_PER_IP",
    "DROP_RATE_PER_MAILBOX",
    "DROP_BURST_PER_MAILBOX",
    "LONG_POLL_MAX_SECONDS",
    "TOMBSTONE_RETENTION_SECONDS",
    "EMBEDDED_WORKER",
    "WORKER_LISTEN",
    "WORKER_CONCURRENCY",
    "SWEEP_INTERVAL_SECONDS",
    "SWEEP_GRACE_SECONDS",
    "REAP_INTERVAL_SECONDS",
    "ORPHAN_AGE_SECONDS",
    "TRUSTED_PROXIES",
    "SECRET_KEY",
    "LINK_PREVIEW_BOTS",
    "WEBHOOK_ALLOW_PRIVATE",
    "WEBHOOK_ALLOW_CIDRS",
    "WEBHOOK_RETRY_SCHEDULE_SECONDS",
    "WEBHOOK_RETRY_JITTER_PERCENT",
    "WEBHOOK_RETRY_AFTER_MAX_SECONDS",
    "WEBHOOK_TIMEOUT_SECONDS",
];

/// `LEASEHOLD_*` variables that are not settings of the server but are accepted beside
/// them: `CONFIG` (the path of `leasehold.toml`), and `URL` and `API_KEY` of the
/// `leasehold` client, often exported in the same shell.
pub const OTHER_VARIABLES: &[&str] = &["CONFIG", "URL", "API_KEY"];

/// Prefixes of variables the test and benchmark harnesses read (`LEASEHOLD_TEST_*`,
/// `LEASEHOLD_BENCH_*`): never settings, so a developer with them exported can still
/// run the server.
pub const HARNESS_PREFIXES: &[&str] = &["TEST_", "BENCH_"];

/// Default delays before each delivery attempt of a webhook event (SPEC §8): at once,
/// then 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h after the previous failure.
pub const DEFAULT_WEBHOOK_RETRY_SCHEDULE: &[u64] = &[0, 5, 30, 120, 600, 1800, 3600, 10_800, 21_600];

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

/// Static S3 credentials; only for tests and programs that embed Leasehold. Configuration
/// from the environment never sets them: the standard AWS chain applies.
#[derive(Clone, Debug)]
pub struct StaticCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret,
}

/// Settings of the S3 blob backend.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// Bucket holding every object.
    pub bucket: String,
    /// Custom endpoint (MinIO, Garage, R2); `None` for AWS.
    pub endpoint: Option<String>,
    /// Signing region.
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`), needed by most self-hosted stores.
    pub force_path_style: bool,
    /// Key prefix under which this deployment keeps its objects (empty or ending in `/`).
    pub prefix: String,
    /// Multipart part size; uploads larger than one part use multipart.
    pub part_size: usize,
    /// Explicit credentials instead of the AWS chain (tests only).
    pub credentials: Option<StaticCredentials>,
}

/// Which blob backend holds the bytes.
#[derive(Clone, Debug)]
pub enum BlobConfig {
    /// Files under a directory.
    Fs {
        /// Root directory of the blob tree.
        root: PathBuf,
    },
    /// An S3-compatible bucket.
    S3(S3Config),
}

/// Limits and defaults of SPEC §9.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Shortest lease.
    pub min_duration_seconds: u64,
    /// Longest lease.
    pub max_duration_seconds: u64,
    /// Largest Storage file.
    pub max_file_bytes: u64,
    /// Largest Mailbox capacity.
    pub max_mailbox_capacity_bytes: u64,
    /// Default per-message cap of a Mailbox (also bounded by its capacity).
    pub default_max_message_bytes: u64,
    /// Default message-count cap of a Mailbox.
    pub default_max_messages: u64,
    /// Default Checkpoint body cap.
    pub checkpoint_default_body_bytes: u64,
    /// Largest Checkpoint body cap.
    pub checkpoint_max_body_bytes: u64,
    /// Default number of Checkpoint versions kept.
    pub checkpoint_default_versions: u64,
    /// Largest number of Checkpoint versions kept.
    pub checkpoint_max_versions: u64,
    /// Largest `max_claims` of a Handoff.
    pub handoff_max_claims: u64,
    /// Drops per second per client IP.
    pub drop_rate_per_ip: u64,
    /// Drop burst per client IP.
    pub drop_burst_per_ip: u64,
    /// Drops per second per Mailbox.
    pub drop_rate_per_mailbox: u64,
    /// Drop burst per Mailbox.
    pub drop_burst_per_mailbox: u64,
    /// Longest long-poll wait.
    pub long_poll_max_seconds: u64,
    /// How long an expired or deleted lease answers 410 before it answers 404.
    pub tombstone_retention_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            min_duration_seconds: 60,
            max_duration_seconds: 30 * 86_400,
            max_file_bytes: 5 * GIB,
            max_mailbox_capacity_bytes: GIB,
            default_max_message_bytes: MIB,
            default_max_messages: 10_000,
            checkpoint_default_body_bytes: 256 * KIB,
            checkpoint_max_body_bytes: 16 * MIB,
            checkpoint_default_versions: 10,
            checkpoint_max_versions: 100,
            handoff_max_claims: 10_000,
            drop_rate_per_ip: 20,
            drop_burst_per_ip: 40,
            drop_rate_per_mailbox: 100,
            drop_burst_per_mailbox: 200,
            long_poll_max_seconds: 30,
            tombstone_retention_seconds: 7 * 86_400,
        }
    }
}

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
            http: HttpConfig {
                header_read_timeout: Duration::from_secs(src.number("HEADER_READ_TIMEOUT_SECONDS", 10)?),
                idle_timeout: Duration::from_secs(src.number("IDLE_TIMEOUT_SECONDS", 60)?),
                body_timeout: Duration::from_secs(src.number("BODY_TIMEOUT_SECONDS", 30)?),
                max_connections: usize::try_from(src.number("MAX_CONNECTIONS", 4096)?)
                    .map_err(|_| ConfigError::new("MAX_CONNECTIONS", "too large"))?,
            },
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
            secret_key: secret_key(&src)?,
            link_preview_bots: match src.get("LINK_PREVIEW_BOTS") {
                Some(list) => {
                    list.split(',').map(|b| b.trim().to_ascii_lowercase()).filter(|b| !b.is_empty()).collect()
                }
                None => DEFAULT_LINK_PREVIEW_BOTS.iter().map(|b| b.to_ascii_lowercase()).collect(),
            },
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

/// Refuses a `LEASEHOLD_*` variable or a `leasehold.toml` key that is no setting (a typo
/// would otherwise be ignored silently), naming the nearest known key.
fn check_known_keys(env: &BTreeMap<String, String>, file: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for name in env.keys() {
        let Some(suffix) = name.strip_prefix("LEASEHOLD_") else { continue };
        if KEYS.contains(&suffix)
            || OTHER_VARIABLES.contains(&suffix)
            || HARNESS_PREFIXES.iter().any(|p| suffix.starts_with(p))
        {
            continue;
        }
        let hint = format!("unknown setting; did you mean LEASEHOLD_{}?", nearest_key(suffix));
        return Err(ConfigError::new(name, hint));
    }
    for key in file.keys() {
        let upper = key.to_ascii_uppercase();
        if !KEYS.contains(&upper.as_str()) {
            let hint =
                format!("unknown key in leasehold.toml; did you mean {}?", nearest_key(&upper).to_ascii_lowercase());
            return Err(ConfigError::new(&upper, hint));
        }
    }
    Ok(())
}

/// The known key with the smallest edit distance to `name` (upper case, no prefix).
fn nearest_key(name: &str) -> &'static str {
    KEYS.iter().copied().min_by_key(|k| edit_distance(name, k)).unwrap_or("LISTEN")
}

/// Levenshtein distance over bytes (keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb)).min(above + 1).min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

struct Source<'a> {
    env: &'a BTreeMap<String, String>,
    file: &'a BTreeMap<String, String>,
}

impl Source<'_> {
    fn get(&self, key: &str) -> Option<String> {
        self.env
            .get(&format!("LEASEHOLD_{key}"))
            .or_else(|| self.file.get(&key.to_ascii_lowercase()))
            .map(|v| v.trim().to_owned())
    }

    fn parse<T: std::str::FromStr>(&self, key: &str, default: &str, expected: &str) -> Result<T, ConfigError> {
        let raw = self.get(key).unwrap_or_else(|| default.to_owned());
        raw.parse().map_err(|_| ConfigError::new(key, format!("expected {expected}, got {raw:?}")))
    }

    fn number(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        self.parse(key, &default.to_string(), "a whole number")
    }

    fn flag(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key).as_deref().map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(ConfigError::new(key, format!("expected true or false, got {other:?}"))),
        }
    }
}

fn is_sqlite_url(url: &str) -> bool {
    url.starts_with("sqlite:")
}

fn worker_config(src: &Source<'_>, sqlite: bool) -> Result<WorkerConfig, ConfigError> {
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

/// A comma-separated list of addresses or CIDRs (`LEASEHOLD_TRUSTED_PROXIES`,
/// `LEASEHOLD_WEBHOOK_ALLOW_CIDRS`).
fn cidrs(src: &Source<'_>, key: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let raw = src.get(key).unwrap_or_default();
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| ConfigError::new(key, format!("expected addresses or CIDRs, got {p:?}")))
        })
        .collect()
}

fn webhook_config(src: &Source<'_>) -> Result<WebhookConfig, ConfigError> {
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

fn secret_key(src: &Source<'_>) -> Result<Option<Secret>, ConfigError> {
    match src.get("SECRET_KEY").filter(|k| !k.is_empty()) {
        None => Ok(None),
        Some(k) if k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(Some(Secret::new(k))),
        Some(_) => Err(ConfigError::new("SECRET_KEY", "expected 64 hex characters (32 random bytes)")),
    }
}

fn blob_config(src: &Source<'_>, data_dir: &Path) -> Result<BlobConfig, ConfigError> {
    match src.get("BLOB_STORE").as_deref() {
        None | Some("fs") => Ok(BlobConfig::Fs { root: data_dir.join("blobs") }),
        Some("s3") => {
            let bucket = src
                .get("S3_BUCKET")
                .filter(|b| !b.is_empty())
                .ok_or_else(|| ConfigError::new("S3_BUCKET", "required when LEASEHOLD_BLOB_STORE=s3"))?;
            let endpoint = match src.get("S3_ENDPOINT").filter(|e| !e.is_empty()) {
                Some(e) => Some(validate_url("S3_ENDPOINT", &e)?),
                None => None,
            };
            let mut prefix = src.get("S3_PREFIX").unwrap_or_default();
            if !prefix.is_empty() && !prefix.ends_with('/') {
                prefix.push('/');
            }
            Ok(BlobConfig::S3(S3Config {
                bucket,
                endpoint,
                region: src.get("S3_REGION").unwrap_or_else(|| "us-east-1".into()),
                force_path_style: src.flag("S3_FORCE_PATH_STYLE", false)?,
                prefix,
                part_size: usize::try_from(src.number("S3_PART_SIZE_BYTES", 8 * MIB)?)
                    .map_err(|_| ConfigError::new("S3_PART_SIZE_BYTES", "too large"))?,
                credentials: None,
            }))
        }
        Some(other) => Err(ConfigError::new("BLOB_STORE", format!("expected fs or s3, got {other:?}"))),
    }
}

fn limits(src: &Source<'_>) -> Result<Limits, ConfigError> {
    let d = Limits::default();
    Ok(Limits {
        min_duration_seconds: src.number("MIN_DURATION_SECONDS", d.min_duration_seconds)?,
        max_duration_seconds: src.number("MAX_DURATION_SECONDS", d.max_duration_seconds)?,
        max_file_bytes: src.number("MAX_FILE_BYTES", d.max_file_bytes)?,
        max_mailbox_capacity_bytes: src.number("MAX_MAILBOX_CAPACITY_BYTES", d.max_mailbox_capacity_bytes)?,
        default_max_message_bytes: src.number("DEFAULT_MAX_MESSAGE_BYTES", d.default_max_message_bytes)?,
        default_max_messages: src.number("DEFAULT_MAX_MESSAGES", d.default_max_messages)?,
        checkpoint_default_body_bytes: src.number("CHECKPOINT_DEFAULT_BODY_BYTES", d.checkpoint_default_body_bytes)?,
        checkpoint_max_body_bytes: src.number("CHECKPOINT_MAX_BODY_BYTES", d.checkpoint_max_body_bytes)?,
        checkpoint_default_versions: src.number("CHECKPOINT_DEFAULT_VERSIONS", d.checkpoint_default_versions)?,
        checkpoint_max_versions: src.number("CHECKPOINT_MAX_VERSIONS", d.checkpoint_max_versions)?,
        handoff_max_claims: src.number("HANDOFF_MAX_CLAIMS", d.handoff_max_claims)?,
        drop_rate_per_ip: src.number("DROP_RATE_PER_IP", d.drop_rate_per_ip)?,
        drop_burst_per_ip: src.number("DROP_BURST_PER_IP", d.drop_burst_per_ip)?,
        drop_rate_per_mailbox: src.number("DROP_RATE_PER_MAILBOX", d.drop_rate_per_mailbox)?,
        drop_burst_per_mailbox: src.number("DROP_BURST_PER_MAILBOX", d.drop_burst_per_mailbox)?,
        long_poll_max_seconds: src.number("LONG_POLL_MAX_SECONDS", d.long_poll_max_seconds)?,
        tombstone_retention_seconds: src.number("TOMBSTONE_RETENTION_SECONDS", d.tombstone_retention_seconds)?,
    })
}

fn validate_url(key: &str, url: &str) -> Result<String, ConfigError> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(url.trim_end_matches('/').to_owned()),
        _ => Err(ConfigError::new(key, format!("expected an http:// or https:// URL, got {url:?}"))),
    }
}

fn read_toml(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("CONFIG", format!("cannot read {}: {e}", path.display())))?;
    let table: toml::Table =
        text.parse().map_err(|e| ConfigError::new("CONFIG", format!("{} is not valid TOML: {e}", path.display())))?;
    table
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(ConfigError::new(
                        &key.to_ascii_uppercase(),
                        format!("expected a string, number or boolean, got {}", other.type_str()),
                    ));
                }
            };
            Ok((key, text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

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
    fn s3_needs_a_bucket() {
        let err =
            Config::from_sources(&env(&[("LEASEHOLD_BLOB_STORE", "s3")]), &BTreeMap::new()).expect_err("must fail");
        assert_eq!(err.key, "LEASEHOLD_S3_BUCKET");
        let c = Config::from_sources(
            &env(&[
                ("LEASEHOLD_BLOB_STORE", "s3"),
                ("LEASEHOLD_S3_BUCKET", "b"),
                ("LEASEHOLD_S3_PREFIX", "p"),
                ("LEASEHOLD_S3_FORCE_PATH_STYLE", "true"),
            ]),
            &BTreeMap::new(),
        )
        .expect("valid");
        let BlobConfig::S3(s3) = c.blob else { panic!("expected s3") };
        assert_eq!(s3.prefix, "p/");
        assert!(s3.force_path_style);
    }

    #[test]
    fn env_overrides_the_file_and_unknown_file_keys_fail() {
        let file = env(&[("max_file_bytes", "10"), ("listen", "127.0.0.1:9000")]);
        let c = Config::from_sources(&env(&[("LEASEHOLD_MAX_FILE_BYTES", "20")]), &file).expect("valid");
        assert_eq!(c.limits.max_file_bytes, 20);
        assert_eq!(c.listen.port(), 9000);
        let err = Config::from_sources(&BTreeMap::new(), &env(&[("max_fiel_bytes", "1")])).expect_err("typo");
        assert_eq!(err.key, "LEASEHOLD_MAX_FIEL_BYTES");
        assert!(err.to_string().contains("did you mean max_file_bytes?"), "{err}");
    }

    #[test]
    fn an_unknown_environment_variable_is_refused_naming_the_nearest_key() {
        let err =
            Config::from_sources(&env(&[("LEASEHOLD_LISTN", "127.0.0.1:9000")]), &BTreeMap::new()).expect_err("typo");
        assert_eq!(err.key, "LEASEHOLD_LISTN");
        assert!(err.to_string().contains("did you mean LEASEHOLD_LISTEN?"), "{err}");
        let err = Config::from_sources(&env(&[("LEASEHOLD_S3_BUKET", "b")]), &BTreeMap::new()).expect_err("typo");
        assert!(err.to_string().contains("LEASEHOLD_S3_BUCKET"), "{err}");
    }

    #[test]
    fn harness_client_and_config_path_variables_are_not_settings_but_are_accepted() {
        let vars = env(&[
            ("LEASEHOLD_CONFIG", "leasehold.toml"),
            ("LEASEHOLD_URL", "http://127.0.0.1:8080"),
            ("LEASEHOLD_API_KEY", "rs_live_x"),
            ("LEASEHOLD_TEST_DATABASE_URL", "postgres://h/db"),
            ("LEASEHOLD_TEST_S3_BUCKET", "b"),
            ("LEASEHOLD_BENCH_DATABASE_URL", "postgres://h/db"),
        ]);
        let c = Config::from_sources(&vars, &BTreeMap::new()).expect("accepted");
        assert!(c.is_sqlite(), "harness variables configure nothing");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
    }

    #[test]
    fn every_known_key_is_its_own_nearest_key() {
        for key in KEYS {
            assert_eq!(nearest_key(key), *key);
        }
        assert_eq!(edit_distance("LISTN", "LISTEN"), 1);
        assert_eq!(edit_distance("", "ABC"), 3);
        assert_eq!(edit_distance("KITTEN", "SITTING"), 3);
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
    fn inconsistent_limits_are_refused() {
        let err = Config::from_sources(
            &env(&[("LEASEHOLD_MIN_DURATION_SECONDS", "100"), ("LEASEHOLD_MAX_DURATION_SECONDS", "50")]),
            &BTreeMap::new(),
        )
        .expect_err("must fail");
        assert_eq!(err.key, "LEASEHOLD_MAX_DURATION_SECONDS");
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
