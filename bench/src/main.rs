//! Leasehold benchmarks. Each prints its figure next to the baseline the issue names,
//! measured in the same run, and the ratio. See `docs/BENCHMARKS.md`.

mod checkpoint;
mod cli;
mod expiry;
mod handoff;
mod load;
mod mailbox;
mod mcp;
mod scenario;
mod server;
mod storage;
mod webhook;
mod x402;

use clap::{Parser, Subcommand, ValueEnum};

/// Leasehold benchmarks.
#[derive(Debug, Parser)]
#[command(name = "leasehold-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which blob backend to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BlobBackend {
    /// Files under a temp dir, SQLite metadata (the embedded shape).
    Fs,
    /// S3 (endpoint and bucket from the options, keys from AWS_* variables), PostgreSQL
    /// metadata when `--database-url` is given.
    S3,
}

/// Where the server under test gets its backends.
#[derive(Clone, Debug, clap::Args)]
pub struct Target {
    /// Blob backend.
    #[arg(long, value_enum, default_value = "fs")]
    pub backend: BlobBackend,
    /// The `leasehold-api` binary to start (build it with --release first).
    #[arg(long, default_value = "target/release/leasehold-api")]
    pub api_bin: String,
    /// PostgreSQL server URL; a fresh database is created on it (default: SQLite).
    #[arg(long)]
    pub database_url: Option<String>,
    /// S3 endpoint.
    #[arg(long)]
    pub s3_endpoint: Option<String>,
    /// S3 bucket (must exist).
    #[arg(long)]
    pub s3_bucket: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Upload and download of one large file through the API vs. straight into the blob
    /// store; API process RSS growth.
    Storage {
        #[command(flatten)]
        target: Target,
        /// File size in MiB.
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        /// Rounds of API and direct runs, alternating; the best of each is reported.
        #[arg(long, default_value_t = 2)]
        rounds: u32,
    },
    /// Leases expiring in one window, purged by a worker: deletion lag and rate.
    Expiry {
        #[command(flatten)]
        target: Target,
        /// Number of leases.
        #[arg(long, default_value_t = 10_000)]
        leases: usize,
        /// Width of the window their expiry instants fall in, in seconds (0: all at once).
        #[arg(long, default_value_t = 10)]
        window_seconds: u64,
    },
    /// 1 KiB JSON drops at a concurrency vs. raw blob-store PUTs of the same size; drop →
    /// long-poll wake-up latency.
    Mailbox {
        #[command(flatten)]
        target: Target,
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds per phase.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Message size in bytes.
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// Rounds of one API phase and one raw phase, alternating; totals are reported.
        #[arg(long, default_value_t = 10)]
        rounds: u32,
    },
    /// PUT then GET of a 16 KiB checkpoint state at a concurrency vs. raw blob-store put
    /// then get of the same size.
    Checkpoint {
        #[command(flatten)]
        target: Target,
        /// Concurrent clients (one workflow each).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Seconds per phase.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// State size in bytes.
        #[arg(long, default_value_t = 16 * 1024)]
        size: usize,
        /// Rounds of one API phase and one raw phase, alternating; totals are reported.
        #[arg(long, default_value_t = 10)]
        rounds: u32,
    },
    /// Claim of one large Storage file through a handoff vs. a direct read from the same
    /// store; API process RSS growth.
    HandoffLarge {
        #[command(flatten)]
        target: Target,
        /// File size in MiB.
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        /// Rounds of one claim and one direct read, alternating; the best of each.
        #[arg(long, default_value_t = 2)]
        rounds: u32,
    },
    /// API RSS growth during concurrent claims of a large Mailbox, next to concurrent
    /// claims of a Storage file of the same size.
    HandoffMailboxRss {
        #[command(flatten)]
        target: Target,
        /// Mailbox size in MiB (1 MiB messages).
        #[arg(long, default_value_t = 256)]
        size_mib: u64,
        /// Concurrent claims.
        #[arg(long, default_value_t = 4)]
        claimers: usize,
    },
    /// Claims per second of a small file (max_claims 10,000 per handoff) at a concurrency.
    HandoffRate {
        #[command(flatten)]
        target: Target,
        /// Concurrent claimers.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds of claiming.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// File size in bytes.
        #[arg(long, default_value_t = 4096)]
        size: u64,
    },
    /// `leasehold_quote` through `/mcp` next to `GET /api/quote`: calls/s, p50, p99.
    Mcp {
        #[command(flatten)]
        target: Target,
        /// Concurrent callers.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Seconds per phase.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Alternating rounds after a warm-up.
        #[arg(long, default_value_t = 2)]
        rounds: u32,
    },
    /// The `leasehold` CLI's upload and download of one large file next to curl's, plain
    /// and with --encrypt; the CLI's peak RSS.
    Cli {
        #[command(flatten)]
        target: Target,
        /// The `leasehold` binary (build it with --release first).
        #[arg(long, default_value = "target/release/leasehold")]
        cli_bin: String,
        /// File size in MiB.
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        /// Alternating rounds; the best of each side is reported.
        #[arg(long, default_value_t = 2)]
        rounds: u32,
    },
    /// Creation latency of a small Storage lease paid with x402 (a facilitator in process
    /// that answers at once) next to the same creation paid with an API key.
    X402 {
        #[command(flatten)]
        target: Target,
        /// Concurrent creators.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Seconds per phase.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Alternating rounds (after a warm-up round).
        #[arg(long, default_value_t = 3)]
        rounds: u32,
    },
    /// Drop → webhook received latency at a steady drop rate (open loop), and webhook
    /// deliveries per second after a burst of drops vs. the rate the API accepted them.
    Webhook {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        options: webhook::Options,
    },
    /// The production shape under faults: nginx, N pods, M workers, PostgreSQL + S3, a
    /// mixed workload while processes are SIGKILLed; invariants as tried / held /
    /// violated (exit 1 on any violation). `--compare-pods 1,3`: throughput per pod count.
    Scenario {
        #[command(flatten)]
        options: scenario::Options,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Storage { target, size_mib, rounds } => storage::run(&target, size_mib, rounds).await,
        Command::Expiry { target, leases, window_seconds } => expiry::run(&target, leases, window_seconds).await,
        Command::HandoffLarge { target, size_mib, rounds } => handoff::large(&target, size_mib, rounds).await,
        Command::HandoffMailboxRss { target, size_mib, claimers } => {
            handoff::mailbox_rss(&target, size_mib, claimers).await
        }
        Command::HandoffRate { target, concurrency, seconds, size } => {
            handoff::rate(&target, concurrency, seconds, size).await
        }
        Command::Checkpoint { target, concurrency, seconds, size, rounds } => {
            checkpoint::run(&target, concurrency, seconds, size, rounds).await
        }
        Command::Mailbox { target, concurrency, seconds, size, rounds } => {
            mailbox::run(&target, concurrency, seconds, size, rounds).await
        }
        Command::Webhook { target, options } => webhook::run(&target, &options).await,
        Command::Scenario { options } => scenario::run(&options).await,
        Command::Mcp { target, concurrency, seconds, rounds } => mcp::run(&target, concurrency, seconds, rounds).await,
        Command::Cli { target, cli_bin, size_mib, rounds } => cli::run(&target, &cli_bin, size_mib, rounds).await,
        Command::X402 { target, concurrency, seconds, rounds } => {
            x402::run(&target, concurrency, seconds, rounds).await
        }
    }
}
