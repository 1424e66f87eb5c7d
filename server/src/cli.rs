//! Command line: serve (default), migrate, and the operator's account commands, which work
//! directly on the database.

use clap::{Parser, Subcommand};
use leasehold_core::{Clock, Config, accounts, db};

use leasehold_api::AppState;
use leasehold_api::api_json;
use leasehold_api::bootstrap::{DevKey, ensure_dev_account};

/// Leasehold API server.
#[derive(Debug, Parser)]
#[command(
    name = "leasehold-api",
    version,
    propagate_version = true,
    about = "Leasehold: paid, expiring leases for AI agents",
    after_help = "Settings come from LEASEHOLD_* environment variables or leasehold.toml (see the README's configuration table)."
)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Operator commands on accounts.
    #[command(subcommand)]
    Accounts(AccountCommand),
}

/// Account operations, the same as the admin HTTP API.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account and print its first API key (shown once).
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Opening credit in micros.
        #[arg(long, default_value_t = 0)]
        credit_micros: i64,
    },
    /// Add credit to an account.
    Credit {
        /// Account id (`acct_…`).
        account_id: String,
        /// Amount in micros.
        #[arg(long)]
        amount_micros: i64,
        /// Note kept in the ledger.
        #[arg(long)]
        memo: Option<String>,
    },
    /// Show an account and its balance.
    Show {
        /// Account id (`acct_…`).
        account_id: String,
    },
}

/// Runs the parsed command line.
pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let conn = db::connect(&config).await?;
            db::migrate(&conn).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Accounts(cmd) => accounts_command(cmd, config).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Bound first: an address in use stops the start before anything is created.
    let listener = leasehold_core::telemetry::bind(config.listen, "LEASEHOLD_LISTEN").await?;
    let state = AppState::build(config, Clock::system()).await?;
    state.blobs.check().await?;
    match ensure_dev_account(&state).await? {
        DevKey::Created { key, path } => {
            println!("Created account `local` with 1,000,000 micros.");
            println!("Dev API key (shown once, also written to {}):", path.display());
            println!("  {key}");
        }
        DevKey::Existing => {
            let path = state.config.data_dir.join("dev-api-key");
            if state.config.is_sqlite() && path.exists() {
                println!("Dev API key: {}", path.display());
            }
        }
    }
    tracing::info!(address = %listener.local_addr()?, blob_store = state.blobs.kind(), "leasehold-api listening");
    println!("Leasehold listening on http://{}", listener.local_addr()?);
    crate::serve(listener, state, leasehold_core::telemetry::shutdown_signal()).await?;
    tracing::info!("leasehold-api stopped");
    Ok(())
}

async fn accounts_command(cmd: AccountCommand, config: Config) -> anyhow::Result<()> {
    let conn = db::connect(&config).await?;
    db::migrate(&conn).await?;
    let now = Clock::system().now_ms();
    let out = match cmd {
        AccountCommand::Create { name, credit_micros } => {
            let created = accounts::create(&conn, &name, credit_micros, now).await?;
            let mut v = api_json::account(&created.account);
            v["api_key"] = created.api_key.into();
            v
        }
        AccountCommand::Credit { account_id, amount_micros, memo } => {
            api_json::account(&accounts::credit(&conn, &account_id, amount_micros, memo.as_deref(), now).await?)
        }
        AccountCommand::Show { account_id } => api_json::account(&accounts::find(&conn, &account_id).await?),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
