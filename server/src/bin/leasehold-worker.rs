//! `leasehold-worker`: parses the command line, loads config, sets up logging, runs the
//! worker.

use clap::Parser;

/// The background worker of the distributed shape (PostgreSQL + S3).
#[derive(Debug, Parser)]
#[command(
    name = "leasehold-worker",
    version,
    about = "Leasehold's background worker: expiry, deletion, reaping and webhook delivery (PostgreSQL only)",
    after_help = "Settings come from LEASEHOLD_* environment variables or leasehold.toml (see the README's configuration table). With SQLite the worker runs inside leasehold-api instead."
)]
struct Cli {}

fn main() -> std::process::ExitCode {
    // `--help` and `--version` answer (and exit) before anything else happens.
    let Cli {} = Cli::parse();
    match leasehold_core::runtime::build() {
        Ok(runtime) => runtime.block_on(start()),
        Err(e) => {
            eprintln!("leasehold-worker: cannot start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn start() -> std::process::ExitCode {
    let config = match leasehold_core::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("leasehold-worker: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // Two processes on one SQLite file are not supported (docs/API.md, Deployment).
    if config.is_sqlite() {
        eprintln!(
            "leasehold-worker: LEASEHOLD_DATABASE_URL is SQLite, where the worker runs inside leasehold-api \
             (LEASEHOLD_EMBEDDED_WORKER) and a second process on the same file is not supported; \
             run leasehold-worker only with LEASEHOLD_DATABASE_URL=postgres://…"
        );
        return std::process::ExitCode::from(2);
    }
    leasehold_core::telemetry::init(&config);
    let result = run(config).await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "leasehold-worker failed");
            eprintln!("leasehold-worker: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: leasehold_core::Config) -> anyhow::Result<()> {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = std::sync::Arc::new(leasehold_worker::WorkerMetrics::register(&mut registry));
    let listener = leasehold_core::telemetry::bind(config.worker.listen, "LEASEHOLD_WORKER_LISTEN").await?;
    tracing::info!(address = %listener.local_addr()?, "worker metrics listening");
    let config = std::sync::Arc::new(config);
    let ctx = leasehold_worker::WorkerContext::connect(config, leasehold_core::Clock::system(), metrics).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(leasehold_worker::serve_metrics(
        listener,
        std::sync::Arc::new(registry),
        stop.clone().cancelled_owned(),
    ));
    let result = leasehold_worker::run(ctx, leasehold_core::telemetry::shutdown_signal()).await;
    stop.cancel();
    server.await??;
    result
}
