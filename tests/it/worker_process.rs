//! A `leasehold-worker` as a real OS process, for tests that kill it with SIGKILL: the test
//! binary runs itself again with only this (ignored) test selected and the worker's
//! configuration in `LEASEHOLD_*` variables.

use std::process::Stdio;

/// Marks the child process.
const CHILD: &str = "LEASEHOLD_TEST_WORKER_PROCESS";

/// Entry point of the child process; a no-op anywhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run only as a child process by spawn_worker_process"]
async fn run_worker_process() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    let config = leasehold_core::Config::from_env().expect("worker config");
    let mut config = config;
    config.log_level = "info,sqlx=warn,sea_orm_migration=warn".into();
    leasehold_core::telemetry::init(&config);
    let config = std::sync::Arc::new(config);
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = std::sync::Arc::new(leasehold_worker::WorkerMetrics::register(&mut registry));
    let ctx = leasehold_worker::WorkerContext::connect(config, leasehold_core::Clock::system(), metrics)
        .await
        .expect("worker connect");
    leasehold_worker::run(ctx, std::future::pending()).await.expect("worker run");
}

/// Starts a worker process with this environment; its log goes to `log`.
pub fn spawn_worker_process(env: Vec<(String, String)>, log: &std::path::Path) -> tokio::process::Child {
    let log = std::fs::File::create(log).expect("worker log file");
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(["--exact", "worker_process::run_worker_process", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn worker process")
}
