//! Test harness: a real server per test on port 0, its own database (fresh SQLite file, or a
//! fresh PostgreSQL database) and its own blob directory or S3 key prefix.

pub mod backend;
pub mod balancer;
pub mod checkpoint;
pub mod facilitator;
pub mod fake_s3;
pub mod handoff;
pub mod jobs;
pub mod log_capture;
pub mod mailbox;
pub mod pg_cluster;
pub mod receiver;
pub mod s3_server;
pub mod upload;

use std::future::Future;
use std::time::Duration;

use leasehold_api::AppState;
use leasehold_core::config::BlobConfig;
use leasehold_core::secret::Secret;
use leasehold_core::{Clock, Config};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use backend::Backend;

/// Token of the operator API in tests.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// `LEASEHOLD_SECRET_KEY` of every test instance and worker.
pub const SECRET_KEY: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

/// One running API instance.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The instance's state (database, blob store, clock, config).
    pub state: AppState,
    /// HTTP client.
    pub client: reqwest::Client,
    backend: Backend,
    database_url: String,
    blob: BlobConfig,
    _dir: std::sync::Arc<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    embedded_worker: Option<std::sync::Arc<leasehold_worker::WorkerMetrics>>,
    /// What [`TestApp::run_jobs`] runs jobs with.
    jobs: leasehold_worker::WorkerContext,
    /// Set once the test drove jobs with the harness: then it must leave none behind.
    jobs_driven: std::sync::atomic::AtomicBool,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.check_jobs_on_drop();
    }
}

impl TestApp {
    /// Starts an instance on fresh storage with default limits.
    pub async fn spawn(backend: &Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts an instance on fresh storage, letting the test adjust the configuration.
    pub async fn spawn_with(backend: &Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = std::sync::Arc::new(tempfile::tempdir().expect("tempdir"));
        let database_url = backend.fresh_database(dir.path()).await;
        let blob = backend.fresh_blob(dir.path());
        Self::start(backend.clone(), dir, database_url, blob, Clock::system(), adjust).await
    }

    /// Starts an instance on a database of the caller's (a throwaway cluster's, see
    /// [`pg_cluster`]), with its own blob directory and no embedded worker.
    pub async fn spawn_on_database(database_url: String, adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = std::sync::Arc::new(tempfile::tempdir().expect("tempdir"));
        let blob = Backend::Embedded.fresh_blob(dir.path());
        Self::start(Backend::Embedded, dir, database_url, blob, Clock::system(), |c| {
            c.worker.embedded = false;
            adjust(c);
        })
        .await
    }

    /// Starts another instance on the same database and blob store, sharing the clock and
    /// the first instance's settings: two pods behind one load balancer.
    pub async fn second_instance(&self) -> Self {
        let first = self.state.config.clone();
        Self::start(
            self.backend.clone(),
            self._dir.clone(),
            self.database_url.clone(),
            self.blob.clone(),
            self.state.clock.clone(),
            move |c| {
                c.limits = first.limits.clone();
                c.tariff = first.tariff;
                c.worker = first.worker.clone();
                c.trusted_proxies = first.trusted_proxies.clone();
                c.webhook = first.webhook.clone();
                c.x402 = first.x402.clone();
            },
        )
        .await
    }

    async fn start(
        backend: Backend,
        dir: std::sync::Arc<tempfile::TempDir>,
        database_url: String,
        blob: BlobConfig,
        clock: Clock,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        init_logs();
        let mut config = Config::from_sources(&Default::default(), &Default::default()).expect("default config");
        config.listen = addr;
        config.public_url = format!("http://{addr}");
        config.data_dir = dir.path().to_path_buf();
        config.database_url = database_url.clone();
        config.database_max_connections = 8;
        config.blob = blob.clone();
        config.admin_token = Some(Secret::new(ADMIN_TOKEN));
        config.secret_key = Some(Secret::new(SECRET_KEY));
        config.shutdown_timeout = Duration::from_secs(5);
        config.worker.embedded = !backend.is_distributed();
        adjust(&mut config);
        let state = AppState::build(config, clock).await.expect("app state");
        let composed = leasehold_server::Composed::new(state.clone()).expect("compose");
        let embedded_worker = composed.worker.as_ref().map(|w| w.metrics.clone());
        let jobs = jobs::harness_context(&state, embedded_worker.is_none() && !backend.is_distributed());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(composed.serve(listener, async move {
            if stopped.await.is_err() {
                std::future::pending::<()>().await;
            }
        }));
        Self {
            base: format!("http://{addr}"),
            state,
            client: reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("client"),
            backend,
            database_url,
            blob,
            _dir: dir,
            stop: Some(stop),
            server: Some(server),
            embedded_worker,
            jobs,
            jobs_driven: Default::default(),
        }
    }

    /// Stops accepting and waits for in-flight requests (bounded by the shutdown timeout).
    pub async fn shutdown(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        match self.server.take() {
            Some(server) => server.await.expect("server task"),
            None => Ok(()),
        }
    }

    /// Absolute URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates an account through the admin API; returns `(account_id, api_key)`.
    pub async fn create_account(&self, credit_micros: i64) -> (String, String) {
        let res = self
            .client
            .post(self.url("/admin/accounts"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "name": "test", "credit_micros": credit_micros }))
            .send()
            .await
            .expect("create account");
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.expect("json");
        (body["account_id"].as_str().expect("id").to_owned(), body["api_key"].as_str().expect("key").to_owned())
    }

    /// GET with an API key; returns status and JSON body.
    pub async fn get_json(&self, key: &str, path: &str) -> (u16, Value) {
        let res = self.client.get(self.url(path)).bearer_auth(key).send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Balance of the key's account, in micros.
    pub async fn balance(&self, key: &str) -> i64 {
        let (status, body) = self.get_json(key, "/v1/account").await;
        assert_eq!(status, 200, "{body}");
        body["balance_micros"].as_str().expect("balance").parse().expect("number")
    }

    /// Every object key in this test's blob store.
    pub async fn blob_keys(&self) -> Vec<String> {
        self.state.blobs.list("").await.expect("list blobs").into_iter().map(|e| e.key).collect()
    }

    /// Every file under the fs blob root, including temp files (empty for S3).
    pub fn fs_files(&self) -> Vec<std::path::PathBuf> {
        let BlobConfig::Fs { root } = &self.blob else { return Vec::new() };
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() { stack.push(path) } else { out.push(path) }
            }
        }
        out
    }

    /// Which backends this instance runs on.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }
}

/// Test logs on stderr when `LEASEHOLD_TEST_LOG` is set (a `tracing` filter, e.g. `info`).
fn init_logs() {
    if let Ok(filter) = std::env::var("LEASEHOLD_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}

/// Retries `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A worker running in this process (the distributed shape's `leasehold-worker`, minus
/// the process boundary).
pub struct WorkerHandle {
    stop: tokio_util::sync::CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    /// Its metrics.
    pub metrics: std::sync::Arc<leasehold_worker::WorkerMetrics>,
}

impl WorkerHandle {
    /// Graceful stop: jobs in flight finish.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("worker task").expect("worker");
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TestApp {
    /// Starts a worker on this instance's database and blob store.
    pub async fn start_worker(&self) -> WorkerHandle {
        let ctx = self.worker_context();
        let metrics = ctx.metrics.clone();
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(leasehold_worker::run(ctx, stop.clone().cancelled_owned()));
        WorkerHandle { stop, task: Some(task), metrics }
    }

    /// A worker context on this instance's database, blob store and clock, with metrics of
    /// its own (for a worker, or for calling jobs directly).
    pub fn worker_context(&self) -> leasehold_worker::WorkerContext {
        let mut registry = prometheus_client::registry::Registry::default();
        leasehold_worker::WorkerContext::new(
            self.state.db.clone(),
            self.state.blobs.clone(),
            self.state.clock.clone(),
            self.state.config.clone(),
            std::sync::Arc::new(leasehold_worker::WorkerMetrics::register(&mut registry)),
        )
        .expect("worker context")
    }

    /// The metrics of the worker running inside this instance (embedded shape).
    pub fn embedded_worker_metrics(&self) -> Option<std::sync::Arc<leasehold_worker::WorkerMetrics>> {
        self.embedded_worker.clone()
    }

    /// Environment that configures a `leasehold-worker` process on this instance's
    /// database and blob store.
    pub fn worker_env(&self) -> Vec<(String, String)> {
        let c = &self.state.config;
        let mut env = vec![
            ("LEASEHOLD_DATA_DIR".to_owned(), c.data_dir.display().to_string()),
            ("LEASEHOLD_DATABASE_URL".to_owned(), self.database_url.clone()),
            ("LEASEHOLD_WORKER_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("LEASEHOLD_WORKER_CONCURRENCY".to_owned(), c.worker.concurrency.to_string()),
            ("LEASEHOLD_SWEEP_INTERVAL_SECONDS".to_owned(), c.worker.sweep_interval.as_secs().to_string()),
            ("LEASEHOLD_SWEEP_GRACE_SECONDS".to_owned(), c.worker.sweep_grace.as_secs().to_string()),
            ("LEASEHOLD_LOG_LEVEL".to_owned(), "warn".to_owned()),
            ("LEASEHOLD_SECRET_KEY".to_owned(), SECRET_KEY.to_owned()),
            ("LEASEHOLD_WEBHOOK_ALLOW_PRIVATE".to_owned(), c.webhook.allow_private.to_string()),
            ("LEASEHOLD_WEBHOOK_TIMEOUT_SECONDS".to_owned(), c.webhook.timeout.as_secs().to_string()),
            ("LEASEHOLD_WEBHOOK_RETRY_JITTER_PERCENT".to_owned(), c.webhook.retry_jitter_percent.to_string()),
            (
                "LEASEHOLD_WEBHOOK_RETRY_SCHEDULE_SECONDS".to_owned(),
                c.webhook.retry_schedule.iter().map(|d| d.as_secs().to_string()).collect::<Vec<_>>().join(","),
            ),
        ];
        if let BlobConfig::S3(s3) = &self.blob {
            env.push(("LEASEHOLD_BLOB_STORE".into(), "s3".into()));
            env.push(("LEASEHOLD_S3_BUCKET".into(), s3.bucket.clone()));
            env.push(("LEASEHOLD_S3_ENDPOINT".into(), s3.endpoint.clone().unwrap_or_default()));
            env.push(("LEASEHOLD_S3_REGION".into(), s3.region.clone()));
            env.push(("LEASEHOLD_S3_FORCE_PATH_STYLE".into(), "true".into()));
            env.push(("LEASEHOLD_S3_PREFIX".into(), s3.prefix.clone()));
            if let Some(creds) = &s3.credentials {
                env.push(("AWS_ACCESS_KEY_ID".into(), creds.access_key_id.clone()));
                env.push(("AWS_SECRET_ACCESS_KEY".into(), creds.secret_access_key.expose().to_owned()));
            }
        } else {
            // The fs blob root is `<data_dir>/blobs`, which the worker derives itself.
            assert_eq!(self.fs_root(), Some(c.data_dir.join("blobs")));
        }
        env
    }

    /// The fs blob root (`None` on S3).
    pub fn fs_root(&self) -> Option<std::path::PathBuf> {
        match &self.blob {
            BlobConfig::Fs { root } => Some(root.clone()),
            BlobConfig::S3(_) => None,
        }
    }
}

/// Settings that make leases and the worker fast enough to test in real time: leases of
/// one second, a sweep every second that leaves leases to their job for one second.
pub fn fast_expiry(config: &mut Config) {
    config.limits.min_duration_seconds = 1;
    config.worker.sweep_interval = Duration::from_secs(1);
    config.worker.sweep_grace = Duration::from_secs(1);
    config.worker.concurrency = 8;
}

/// Webhooks for tests: receivers on 127.0.0.1 allowed, retries every second without
/// jitter (five attempts), a 3 s timeout.
pub fn test_webhooks(config: &mut Config) {
    config.webhook.allow_private = true;
    config.webhook.retry_schedule = vec![
        Duration::ZERO,
        Duration::from_secs(1),
        Duration::from_secs(1),
        Duration::from_secs(1),
        Duration::from_secs(1),
    ];
    config.webhook.retry_jitter_percent = 0;
    config.webhook.timeout = Duration::from_secs(3);
}

/// Lifts the drop rate limits (tests that drop hundreds of messages from one address).
pub fn no_drop_limits(config: &mut Config) {
    config.limits.drop_rate_per_ip = 0;
    config.limits.drop_rate_per_mailbox = 0;
}
