//! The README's tour, `docs/tour.sh`, run as a new user runs it: against a fresh server that
//! starts the way `leasehold-api` starts (this test binary runs itself again as
//! `leasehold-api`, like `worker_process.rs` does for the worker), with only the
//! environment the README names. Embedded: the default data dir in a fresh working
//! directory, the key read from the dev key file there. Distributed: a fresh database and key
//! prefix, `leasehold-api migrate` and `accounts create`, one API process and one worker.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Parser;
use leasehold_core::config::BlobConfig;
use leasehold_server::cli::Cli;
use leasehold_tests::{Backend, SECRET_KEY, backend_tests};

use crate::worker_process::spawn_worker_process;

backend_tests!(the_readme_tour_runs_as_written);

/// Marks the child process and carries its `leasehold-api` arguments.
const CHILD: &str = "TOUR_LEASEHOLD_API";

/// Entry point of the child process: `leasehold-api` with the arguments in `CHILD`, parsed
/// by the real command line; a no-op anywhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run only as a child process by the tour tests"]
async fn run_api_process() {
    let Ok(args) = std::env::var(CHILD) else { return };
    let cli = Cli::try_parse_from(std::iter::once("leasehold-api").chain(args.split_whitespace()))
        .expect("leasehold-api arguments");
    let config = leasehold_core::Config::from_env().expect("leasehold-api config");
    leasehold_core::telemetry::init(&config);
    leasehold_server::cli::run(cli, config).await.expect("leasehold-api");
}

/// `leasehold-api <args>` in `cwd` with exactly `env` as its `LEASEHOLD_*` settings.
fn leasehold_api(args: &str, cwd: &Path, env: &[(String, String)]) -> tokio::process::Command {
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(["--exact", "tour::run_api_process", "--ignored", "--nocapture", "--test-threads=1"]);
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("LEASEHOLD_")) {
        cmd.env_remove(name);
    }
    cmd.env(CHILD, args).envs(env.iter().cloned()).current_dir(cwd).stdin(Stdio::null()).kill_on_drop(true);
    cmd
}

/// The settings of the distributed shape (database, bucket, secret key), as
/// `docs/DEPLOY.md` gives them to every pod and worker.
async fn distributed_env(backend: &Backend, dir: &Path) -> Vec<(String, String)> {
    let Backend::Distributed { .. } = backend else { return Vec::new() };
    let BlobConfig::S3(s3) = backend.fresh_blob(dir) else { unreachable!("distributed means S3") };
    let mut env = vec![
        ("LEASEHOLD_DATABASE_URL", backend.fresh_database(dir).await),
        ("LEASEHOLD_SECRET_KEY", SECRET_KEY.to_owned()),
        ("LEASEHOLD_BLOB_STORE", "s3".to_owned()),
        ("LEASEHOLD_S3_BUCKET", s3.bucket),
        ("LEASEHOLD_S3_ENDPOINT", s3.endpoint.unwrap_or_default()),
        ("LEASEHOLD_S3_REGION", s3.region),
        ("LEASEHOLD_S3_FORCE_PATH_STYLE", "true".to_owned()),
        ("LEASEHOLD_S3_PREFIX", s3.prefix),
    ];
    if let Some(creds) = s3.credentials {
        env.push(("AWS_ACCESS_KEY_ID", creds.access_key_id));
        env.push(("AWS_SECRET_ACCESS_KEY", creds.secret_access_key.expose().to_owned()));
    }
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Runs a one-shot `leasehold-api` command; returns its stdout.
async fn run_once(args: &str, cwd: &Path, env: &[(String, String)]) -> String {
    let out = leasehold_api(args, cwd, env).output().await.expect("run leasehold-api");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "leasehold-api {args} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Starts `leasehold-api` (serving, as the README runs it) on a free port and waits for `/healthz`; retries on another
/// port if the process ends first (the port was taken meanwhile).
async fn serve(cwd: &Path, env: &[(String, String)], log: &Path) -> (tokio::process::Child, String) {
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let base = format!("http://127.0.0.1:{}", free_port());
        let mut env = env.to_vec();
        env.push(("LEASEHOLD_LISTEN".into(), base.trim_start_matches("http://").to_owned()));
        env.push(("LEASEHOLD_WEBHOOK_ALLOW_PRIVATE".into(), "true".into()));
        let stdout = std::fs::File::create(log).expect("server log");
        let stderr = stdout.try_clone().expect("server log");
        let mut child = leasehold_api("", cwd, &env).stdout(stdout).stderr(stderr).spawn().expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && child.try_wait().expect("server state").is_none() {
            if client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
                return (child, base);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        child.kill().await.ok();
    }
    panic!("leasehold-api did not start:\n{}", std::fs::read_to_string(log).unwrap_or_default());
}

fn tour_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/tour.sh")
}

async fn the_readme_tour_runs_as_written(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = distributed_env(&backend, dir.path()).await;
    let mut key = None;
    let mut worker = None;
    if backend.is_distributed() {
        assert!(run_once("migrate", dir.path(), &env).await.contains("migrations applied"));
        let created = run_once("accounts create --name ops --credit-micros 1000000", dir.path(), &env).await;
        let json = &created[created.find('{').expect("account JSON")..=created.rfind('}').expect("account JSON")];
        let account: serde_json::Value = serde_json::from_str(json).expect("account JSON");
        key = Some(account["api_key"].as_str().expect("api_key").to_owned());
        let mut worker_env = env.clone();
        worker_env.push(("LEASEHOLD_WORKER_LISTEN".into(), "127.0.0.1:0".into()));
        worker_env.push(("LEASEHOLD_WEBHOOK_ALLOW_PRIVATE".into(), "true".into()));
        worker = Some(spawn_worker_process(worker_env, &dir.path().join("worker.log")));
    }
    let log = dir.path().join("server.log");
    let (mut server, base) = serve(dir.path(), &env, &log).await;

    let mut tour = tokio::process::Command::new("bash");
    tour.arg(tour_script()).current_dir(dir.path()).env("TOUR_URL", &base).env("TOUR_WEBHOOK", "yes");
    tour.env_remove("TOUR_KEY").env_remove("TOUR_KEY_FILE");
    if let Some(key) = &key {
        tour.env("TOUR_KEY", key);
    }
    let run = tokio::time::timeout(Duration::from_secs(120), tour.kill_on_drop(true).output()).await;
    server.kill().await.ok();
    if let Some(mut worker) = worker {
        worker.kill().await.ok();
    }
    let out = run.expect("the tour finishes within 2 minutes").expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = || {
        format!(
            "{stdout}\n{}\n--- server log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    };
    assert!(out.status.success(), "docs/tour.sh failed:\n{}", report());
    assert!(stdout.trim_end().ends_with("passed, 0 failed"), "docs/tour.sh did not finish:\n{}", report());
    assert!(!stdout.contains("skipped"), "every step ran:\n{}", report());
}
