//! `leasehold-api`: loads config, sets up logging, runs the command.

use clap::Parser;

// jemalloc returns freed memory to the OS steadily; glibc's per-thread arenas keep large
// upload buffers resident, which showed as RSS growth under streaming load.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    match leasehold_core::runtime::build() {
        Ok(runtime) => runtime.block_on(start()),
        Err(e) => {
            eprintln!("leasehold-api: cannot start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn start() -> std::process::ExitCode {
    let cli = leasehold_server::cli::Cli::parse();
    let config = match leasehold_core::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("leasehold-api: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    leasehold_core::telemetry::init(&config);
    match leasehold_server::cli::run(cli, config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "leasehold-api failed");
            eprintln!("leasehold-api: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
