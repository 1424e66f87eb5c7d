//! `leasehold-worker`: loads config, sets up logging, runs the worker.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = match leasehold_core::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("leasehold-worker: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    let init = match config.log_format {
        leasehold_core::config::LogFormat::Json => builder.json().flatten_event(true).try_init(),
        leasehold_core::config::LogFormat::Text => builder.try_init(),
    };
    if let Err(e) = init {
        eprintln!("leasehold-worker: logging: {e}");
    }
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
    let result = leasehold_worker::run(ctx, shutdown_signal()).await;
    stop.cancel();
    server.await??;
    result
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("leasehold-worker: cannot listen for SIGTERM: {e}");
            if let Err(e) = tokio::signal::ctrl_c().await {
                eprintln!("leasehold-worker: cannot listen for Ctrl-C: {e}");
            }
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {},
        r = tokio::signal::ctrl_c() => if let Err(e) = r { eprintln!("leasehold-worker: Ctrl-C: {e}") },
    }
}
