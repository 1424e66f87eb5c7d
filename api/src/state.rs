//! Shared state of the API: everything a handler needs, cheap to clone.

use std::sync::Arc;

use leasehold_core::blob::BlobStore;
use leasehold_core::mailbox::{Committer, TokenCache};
use leasehold_core::ratelimit::{Limiter, Rate};
use leasehold_core::secretbox::SecretBox;
use leasehold_core::{Clock, Config};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::after_commit::AfterCommit;
use crate::metrics::Metrics;
use crate::wake::Wake;
use crate::x402::Facilitator;

/// How long a looked-up drop token is reused without reading its row again.
const DROP_TOKEN_TTL_MS: i64 = 1000;

/// Drop rate limits of this instance (SPEC §9).
#[derive(Debug)]
pub struct DropLimits {
    /// Per client IP.
    pub per_ip: Limiter,
    /// Per Mailbox.
    pub per_mailbox: Limiter,
}

/// State of one API instance. It holds nothing another pod needs.
#[derive(Clone)]
pub struct AppState {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Database pool.
    pub db: DatabaseConnection,
    /// Blob store.
    pub blobs: BlobStore,
    /// Source of "now".
    pub clock: Clock,
    /// Prometheus metrics of this instance.
    pub metrics: Arc<Metrics>,
    /// Seals stored secrets.
    pub secrets: SecretBox,
    /// Wakes long polls and event streams when drops commit.
    pub wake: Wake,
    /// Drop rate limits.
    pub drop_limits: Arc<DropLimits>,
    /// Group commit of drops.
    pub drops: Committer,
    /// Recently used drop tokens.
    pub drop_tokens: Arc<TokenCache>,
    /// Cancelled when the server starts shutting down: long polls and event streams end.
    pub shutting_down: CancellationToken,
    /// Announces committed writes to whoever composed this instance.
    pub after_commit: AfterCommit,
    /// The x402 facilitator, when payments are on.
    pub facilitator: Option<Facilitator>,
}

impl AppState {
    /// Connects to the database (running migrations) and opens the blob store.
    pub async fn build(config: Config, clock: Clock) -> anyhow::Result<Self> {
        let db = leasehold_core::db::connect(&config).await?;
        leasehold_core::db::migrate(&db).await?;
        leasehold_core::queue::setup(&db, &config.database_url).await?;
        let blobs = BlobStore::open(&config.blob).await?;
        let metrics = Arc::new(Metrics::new());
        let secrets = SecretBox::from_config(&config)?;
        let wake = Wake::start(&db, &config.database_url).await?;
        let facilitator = match &config.x402 {
            Some(x) => Some(Facilitator::new(&x.facilitator_url, x.facilitator_timeout)?),
            None => None,
        };
        let l = &config.limits;
        let drop_limits = Arc::new(DropLimits {
            per_ip: Limiter::new(Rate { per_second: l.drop_rate_per_ip, burst: l.drop_burst_per_ip }),
            per_mailbox: Limiter::new(Rate { per_second: l.drop_rate_per_mailbox, burst: l.drop_burst_per_mailbox }),
        });
        Ok(Self {
            config: Arc::new(config),
            db: db.clone(),
            blobs,
            clock,
            metrics,
            secrets,
            wake,
            drop_limits,
            drops: Committer::start(db.clone()),
            drop_tokens: Arc::new(TokenCache::new(DROP_TOKEN_TTL_MS)),
            shutting_down: CancellationToken::new(),
            after_commit: AfterCommit::default(),
            facilitator,
        })
    }

    /// Which addresses webhook URLs may point at.
    pub fn webhook_policy(&self) -> leasehold_core::webhook::AddressPolicy {
        leasehold_core::webhook::AddressPolicy::from_config(&self.config.webhook)
    }

    /// Current time in unix milliseconds.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// An absolute URL under the public base.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.public_url)
    }
}
