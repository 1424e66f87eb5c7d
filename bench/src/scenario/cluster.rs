//! The production shape on one machine: nginx (its config rendered from the template the
//! compose file uses) in front of N `leasehold-api` processes, M `leasehold-worker`s, one
//! PostgreSQL database and one S3 bucket prefix. Any process can be SIGKILLed and started
//! again on the same port.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

use super::Options;
use crate::server::replace_db;

/// `LEASEHOLD_SECRET_KEY` of the scenario's processes.
const SECRET_KEY: &str = "5ce9a5105ce9a5105ce9a5105ce9a5105ce9a5105ce9a5105ce9a5105ce9a510";
/// Admin token of the scenario's pods.
pub const ADMIN: &str = "scenario-admin";
/// Orphan age and reap interval: short, so the end of the run can wait for the reaper.
pub const ORPHAN_AGE_SECONDS: u64 = 20;
pub const REAP_INTERVAL_SECONDS: u64 = 5;

/// What a process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Api,
    Worker,
}

/// One `leasehold-api` or `leasehold-worker` process, restartable on its port.
pub struct Process {
    pub role: Role,
    pub name: String,
    bin: String,
    port: u16,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    /// Times it was killed.
    pub kills: u32,
}

impl Process {
    fn probe(&self) -> String {
        match self.role {
            Role::Api => format!("http://127.0.0.1:{}/readyz", self.port),
            Role::Worker => format!("http://127.0.0.1:{}/healthz", self.port),
        }
    }

    /// Starts it and waits until it answers its readiness probe.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let listen = match self.role {
            Role::Api => "LEASEHOLD_LISTEN",
            Role::Worker => "LEASEHOLD_WORKER_LISTEN",
        };
        let mut cmd = Command::new(&self.bin);
        cmd.env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env(listen, format!("127.0.0.1:{}", self.port))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        if self.role == Role::Api {
            cmd.arg("serve");
        }
        let mut child = cmd.spawn().with_context(|| format!("starting {}", self.bin))?;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        for _ in 0..600 {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("{} exited at start ({status}); its log ends:\n{}", self.name, self.log_tail());
            }
            if client.get(self.probe()).send().await.is_ok_and(|r| r.status().is_success()) {
                self.child = Some(child);
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("{} did not become ready; its log ends:\n{}", self.name, self.log_tail())
    }

    /// The last 2,000 bytes or so of its log (cut at a character boundary).
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = (log.len().saturating_sub(2000)..log.len()).find(|&i| log.is_char_boundary(i)).unwrap_or(log.len());
        log[start..].to_owned()
    }

    /// SIGKILL, and wait for it to be gone.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            child.wait().await?;
            self.kills += 1;
        }
        Ok(())
    }

    /// Whether it exited by itself (a crash, not one of our kills).
    pub fn crashed(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(format!("{} exited by itself ({status}); log: {}", self.name, self.log.display())),
            _ => None,
        }
    }
}

/// The running shape.
pub struct Cluster {
    pub pods: Vec<Process>,
    pub workers: Vec<Process>,
    nginx: Child,
    /// `http://127.0.0.1:<nginx port>`: what clients use.
    pub base: String,
    /// The scenario's own database.
    pub database_url: String,
    /// The bucket prefix of this run.
    pub s3_prefix: String,
    pub dir: tempfile::TempDir,
    admin_url: String,
    db_name: String,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Cluster {
    /// Creates the database, migrates it, starts the workers, the pods and nginx.
    pub async fn start(opts: &Options, pods: usize, workers: usize, tag: &str) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("leasehold-scenario-").tempdir()?;
        let db_name = format!("lh_scenario_{}_{tag}", std::process::id());
        let admin = leasehold_core::db::connect_url(&opts.database_url, 1).await?;
        for sql in [format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"), format!("CREATE DATABASE {db_name}")] {
            sea_orm::ConnectionTrait::execute_unprepared(&admin, &sql).await?;
        }
        admin.close().await?;
        let database_url = replace_db(&opts.database_url, &db_name);
        let s3_prefix = format!("scenario-{}-{tag}/", std::process::id());
        let nginx_port = free_port()?;
        let base = format!("http://127.0.0.1:{nginx_port}");
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("LEASEHOLD_DATABASE_URL".into(), database_url.clone()),
            ("LEASEHOLD_BLOB_STORE".into(), "s3".into()),
            ("LEASEHOLD_S3_ENDPOINT".into(), opts.s3_endpoint.clone()),
            ("LEASEHOLD_S3_BUCKET".into(), opts.s3_bucket.clone()),
            ("LEASEHOLD_S3_FORCE_PATH_STYLE".into(), "true".into()),
            ("LEASEHOLD_S3_PREFIX".into(), s3_prefix.clone()),
            ("LEASEHOLD_SECRET_KEY".into(), SECRET_KEY.into()),
            ("LEASEHOLD_ADMIN_TOKEN".into(), ADMIN.into()),
            ("LEASEHOLD_PUBLIC_URL".into(), base.clone()),
            ("LEASEHOLD_TRUSTED_PROXIES".into(), "127.0.0.1".into()),
            ("LEASEHOLD_WEBHOOK_ALLOW_CIDRS".into(), "127.0.0.1/32".into()),
            ("LEASEHOLD_MIN_DURATION_SECONDS".into(), "5".into()),
            ("LEASEHOLD_DROP_RATE_PER_IP".into(), "0".into()),
            ("LEASEHOLD_DROP_RATE_PER_MAILBOX".into(), "0".into()),
            ("LEASEHOLD_ORPHAN_AGE_SECONDS".into(), ORPHAN_AGE_SECONDS.to_string()),
            ("LEASEHOLD_REAP_INTERVAL_SECONDS".into(), REAP_INTERVAL_SECONDS.to_string()),
            ("LEASEHOLD_SWEEP_INTERVAL_SECONDS".into(), "2".into()),
            ("LEASEHOLD_SWEEP_GRACE_SECONDS".into(), "3".into()),
            ("LEASEHOLD_EMBEDDED_WORKER".into(), "false".into()),
            ("LEASEHOLD_LOG_LEVEL".into(), "warn".into()),
            ("LEASEHOLD_SHUTDOWN_TIMEOUT_SECONDS".into(), "2".into()),
        ];
        for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "HOME"] {
            if let Ok(v) = std::env::var(var) {
                env.push((var.into(), v));
            }
        }
        let data = |name: &str| ("LEASEHOLD_DATA_DIR".to_owned(), dir.path().join(name).display().to_string());
        let migrate = Command::new(&opts.api_bin)
            .arg("migrate")
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env(data("migrate").0, data("migrate").1)
            .output()
            .await
            .context("leasehold-api migrate")?;
        anyhow::ensure!(migrate.status.success(), "migrate: {}", String::from_utf8_lossy(&migrate.stderr));
        let process = |role: Role, i: usize| -> anyhow::Result<Process> {
            let (name, bin) = match role {
                Role::Api => (format!("api{}", i + 1), opts.api_bin.clone()),
                Role::Worker => (format!("worker{}", i + 1), opts.worker_bin.clone()),
            };
            let mut env = env.clone();
            env.push(data(&name));
            Ok(Process {
                role,
                log: dir.path().join(format!("{name}.log")),
                name,
                bin,
                port: free_port()?,
                env,
                child: None,
                kills: 0,
            })
        };
        let mut workers = (0..workers).map(|i| process(Role::Worker, i)).collect::<anyhow::Result<Vec<_>>>()?;
        let mut pods = (0..pods).map(|i| process(Role::Api, i)).collect::<anyhow::Result<Vec<_>>>()?;
        for p in workers.iter_mut().chain(pods.iter_mut()) {
            p.start().await?;
        }
        let upstreams: Vec<String> = pods.iter().map(|p| format!("127.0.0.1:{}", p.port)).collect();
        let nginx = start_nginx(opts, dir.path(), nginx_port, &upstreams).await?;
        Ok(Self {
            pods,
            workers,
            nginx,
            base,
            database_url,
            s3_prefix,
            dir,
            admin_url: opts.database_url.clone(),
            db_name,
        })
    }

    /// Every process that exited without being killed.
    pub fn crashes(&mut self) -> Vec<String> {
        self.pods.iter_mut().chain(self.workers.iter_mut()).filter_map(Process::crashed).collect()
    }

    /// Starts every process that is down.
    pub async fn heal(&mut self) -> anyhow::Result<()> {
        for p in self.pods.iter_mut().chain(self.workers.iter_mut()) {
            if p.child.is_none() {
                p.start().await?;
            }
        }
        Ok(())
    }

    /// Stops everything and drops the database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        // SIGTERM: nginx's master stops its workers (a SIGKILL would orphan them).
        if let Some(pid) = self.nginx.id() {
            Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await.ok();
        }
        if tokio::time::timeout(Duration::from_secs(10), self.nginx.wait()).await.is_err() {
            self.nginx.start_kill().ok();
            self.nginx.wait().await.ok();
        }
        for p in self.pods.iter_mut().chain(self.workers.iter_mut()) {
            p.kill().await?;
        }
        let admin = leasehold_core::db::connect_url(&self.admin_url, 1).await?;
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db_name);
        sea_orm::ConnectionTrait::execute_unprepared(&admin, &sql).await?;
        Ok(())
    }
}

/// nginx with the config `docker/render-nginx.sh --main` renders from the template the
/// compose file's config comes from.
async fn start_nginx(opts: &Options, dir: &Path, port: u16, upstreams: &[String]) -> anyhow::Result<Child> {
    let prefix = dir.join("nginx");
    std::fs::create_dir_all(prefix.join("logs"))?;
    let rendered = Command::new("bash")
        .arg(&opts.nginx_render)
        .arg("--main")
        .arg(&prefix)
        .arg(format!("127.0.0.1:{port}"))
        .args(upstreams)
        .output()
        .await
        .context("rendering the nginx config")?;
    anyhow::ensure!(rendered.status.success(), "render-nginx.sh: {}", String::from_utf8_lossy(&rendered.stderr));
    let conf = prefix.join("nginx.conf");
    std::fs::write(&conf, &rendered.stdout)?;
    let mut child = Command::new(&opts.nginx_bin)
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(prefix.join("logs/stderr.log"))?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", opts.nginx_bin))?;
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(prefix.join("logs/stderr.log")).unwrap_or_default();
            anyhow::bail!("nginx exited ({status}): {log}");
        }
        if client.get(format!("http://127.0.0.1:{port}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(child);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("nginx did not answer")
}
