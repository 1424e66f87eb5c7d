//! Starts a `leasehold-api` process for a benchmark and reads its memory use; starts a
//! `leasehold-worker` process configured like it.

use std::ffi::OsString;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use leasehold_core::config::{BlobConfig, S3Config};
use tokio::process::{Child, Command};

use crate::{BlobBackend, Target};

/// Admin token of benchmark servers.
pub const ADMIN: &str = "bench-admin";

/// `LEASEHOLD_SECRET_KEY` of benchmark servers.
pub const SECRET_KEY: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";

/// A running API process on its own data dir, database and blob prefix.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The blob store the server writes to, for the direct baseline.
    pub blob: BlobConfig,
    /// The environment the API was started with (the worker gets the same).
    env: Vec<(OsString, OsString)>,
    _dir: tempfile::TempDir,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Server {
    /// Starts the binary and waits until `/readyz` answers.
    pub async fn start(target: &Target) -> anyhow::Result<Self> {
        Self::start_with(target, &[]).await
    }

    /// Starts the binary with extra `LEASEHOLD_*` settings.
    pub async fn start_with(target: &Target, extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let mut cmd = Command::new(&target.api_bin);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LEASEHOLD_LISTEN", format!("127.0.0.1:{port}"))
            .env("LEASEHOLD_DATA_DIR", dir.path())
            .env("LEASEHOLD_ADMIN_TOKEN", ADMIN)
            .env("LEASEHOLD_SECRET_KEY", SECRET_KEY)
            .env("LEASEHOLD_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "HOME"] {
            if let Ok(v) = std::env::var(var) {
                cmd.env(var, v);
            }
        }
        if let Some(url) = &target.database_url {
            let name = format!("lh_bench_{}", std::process::id());
            let admin = sea_orm_admin(url).await?;
            admin(&format!("DROP DATABASE IF EXISTS {name}")).await?;
            admin(&format!("CREATE DATABASE {name}")).await?;
            cmd.env("LEASEHOLD_DATABASE_URL", replace_db(url, &name));
        }
        let blob = match target.backend {
            BlobBackend::Fs => BlobConfig::Fs { root: dir.path().join("blobs") },
            BlobBackend::S3 => {
                let endpoint = target.s3_endpoint.clone().context("--s3-endpoint is required with --backend s3")?;
                let bucket = target.s3_bucket.clone().context("--s3-bucket is required with --backend s3")?;
                let prefix = format!("bench-{}/", std::process::id());
                cmd.env("LEASEHOLD_BLOB_STORE", "s3")
                    .env("LEASEHOLD_S3_ENDPOINT", &endpoint)
                    .env("LEASEHOLD_S3_BUCKET", &bucket)
                    .env("LEASEHOLD_S3_FORCE_PATH_STYLE", "true")
                    .env("LEASEHOLD_S3_PREFIX", &prefix);
                BlobConfig::S3(S3Config {
                    bucket,
                    endpoint: Some(endpoint),
                    region: "us-east-1".into(),
                    force_path_style: true,
                    prefix: format!("bench-direct-{}/", std::process::id()),
                    part_size: 8 * 1024 * 1024,
                    credentials: None,
                })
            }
        };
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let env = cmd.as_std().get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))).collect();
        let child = cmd.spawn().with_context(|| format!("starting {}", target.api_bin))?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(Self { child, base, blob, env, _dir: dir });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the API did not become ready")
    }

    /// Starts a `leasehold-worker` binary with the API's settings (database, blob store,
    /// secret key, data dir, limits) and its metrics on a free port; waits until its
    /// `/healthz` answers (it has connected and set up its queue). Drop the worker before
    /// the server: they share the data dir.
    pub async fn start_worker(&self, bin: &str) -> anyhow::Result<Child> {
        let port = free_port()?;
        let mut child = Command::new(bin)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("LEASEHOLD_WORKER_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("the worker exited: {status}");
            }
            let health = client.get(format!("http://127.0.0.1:{port}/healthz")).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(child);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the worker did not become ready")
    }

    /// (current RSS, peak RSS) of the API process in bytes, from /proc.
    pub fn rss(&self) -> anyhow::Result<(u64, u64)> {
        let pid = self.child.id().context("server exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let line = status.lines().find(|l| l.starts_with(name)).with_context(|| format!("{name} missing"))?;
            let kb: u64 = line.split_whitespace().nth(1).context("value")?.parse()?;
            Ok(kb * 1024)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// Resets the peak RSS counter so the next phase's peak can be read.
    pub fn reset_peak(&self) -> anyhow::Result<()> {
        let pid = self.child.id().context("server exited")?;
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5")?;
        Ok(())
    }

    /// Creates an account with plenty of credit; returns its API key.
    pub async fn api_key(&self) -> anyhow::Result<String> {
        let res = reqwest::Client::new()
            .post(format!("{}/admin/accounts", self.base))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({ "name": "bench", "credit_micros": 1_000_000_000_000i64 }))
            .send()
            .await?;
        let body: serde_json::Value = res.error_for_status()?.json().await?;
        Ok(body["api_key"].as_str().context("api_key")?.to_owned())
    }
}

async fn sea_orm_admin(
    url: &str,
) -> anyhow::Result<impl Fn(&str) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>>>>> {
    let db = leasehold_core::db::connect_url(url, 1).await?;
    Ok(move |sql: &str| {
        let db = db.clone();
        let sql = sql.to_owned();
        Box::pin(async move {
            sea_orm::ConnectionTrait::execute_unprepared(&db, &sql).await?;
            Ok(())
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>>>>
    })
}

/// Replaces the database name of a PostgreSQL URL.
pub fn replace_db(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host = base[scheme_end..].find('/').map_or(base, |i| &base[..scheme_end + i]);
    query.map_or_else(|| format!("{host}/{name}"), |q| format!("{host}/{name}?{q}"))
}
