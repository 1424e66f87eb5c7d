//! `leasehold`: the command-line client of the Leasehold HTTP API (SPEC §12).
//!
//! Exit codes: 0 ok; 1 the API refused (its `code` and sentence on stderr) or the
//! transfer failed; 2 usage (clap's own exit code for a bad command line).

mod args;
mod checkpoint;
mod client;
mod commands;
mod crypt;
mod mailbox;
mod output;
mod transfer;

use std::process::ExitCode;

use clap::Parser;

use args::{Checkpoint, Cli, Command, Mailbox};
use client::{Api, Failure};
use output::Out;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("leasehold: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if failure.code == "usage" => {
            eprintln!("leasehold: {}", failure.message);
            ExitCode::from(2)
        }
        Err(failure) => {
            match (&failure.body, json) {
                (Some(body), true) => eprintln!("{body}"),
                _ => eprintln!("leasehold: {failure}"),
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let api = Api::new(&cli.url, cli.key.clone())?;
    let out = Out { json: cli.json };
    match &cli.command {
        Command::Store(s) => commands::store(&api, &out, s).await,
        Command::Claim { url, output } => commands::claim(&api, &out, url, output.as_deref()).await,
        Command::Get { lease, output, identity } => {
            commands::get(&api, &out, lease, output.as_deref(), identity.as_deref()).await
        }
        Command::Quote { size, duration } => commands::quote(&api, &out, *size, *duration).await,
        Command::Leases { variant, state } => commands::leases(&api, &out, variant.as_deref(), state.as_deref()).await,
        Command::Rm { lease } => commands::rm(&api, &out, lease).await,
        Command::Handoff { lease, handoff } => commands::handoff(&api, &out, lease, handoff).await,
        Command::Revoke { handoff } => commands::revoke(&api, &out, handoff).await,
        Command::Mailbox(m) => match m {
            Mailbox::Create { capacity, ttl, max_message, webhook_url } => {
                mailbox::create(&api, &out, *capacity, *ttl, *max_message, webhook_url.as_deref()).await
            }
            Mailbox::Drop { drop_url, body, content_type } => {
                mailbox::drop_message(&api, &out, drop_url, body, content_type.as_deref()).await
            }
            Mailbox::Poll { lease, after, wait, follow } => {
                mailbox::poll(&api, &out, lease, *after, *wait, *follow).await
            }
            Mailbox::Read { lease, message, output } => mailbox::read(&api, lease, message, output.as_deref()).await,
        },
        Command::Checkpoint(c) => match c {
            Checkpoint::Create { workflow, ttl, body, content_type } => {
                checkpoint::create(&api, &out, workflow, *ttl, body, content_type.as_deref()).await
            }
            Checkpoint::Get { workflow } => checkpoint::get(&api, &out, workflow).await,
            Checkpoint::Put { workflow, body, if_match, content_type } => {
                checkpoint::put(&api, &out, workflow, body, *if_match, content_type.as_deref()).await
            }
        },
    }
}
