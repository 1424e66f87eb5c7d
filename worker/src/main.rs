//! `leasehold-worker`: loads config, sets up logging, runs the worker.

fn main() -> std::process::ExitCode {
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
    leasehold_core::telemetry::init(&config);
    let result = run(config).await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("leasehold-worker: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: leasehold_core::Config) -> anyhow::Result<()> {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = std::sync::Arc::new(leasehold_worker::WorkerMetrics::register(&mut registry));
    let listener = tokio::net::TcpListener::bind(config.worker.listen).await?;
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
