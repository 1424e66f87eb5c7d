//! The command line of SPEC §12: commands, options, and the duration and size notations.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Leasehold from a shell: store, hand off and claim files, mailboxes and checkpoints.
#[derive(Debug, Parser)]
#[command(
    name = "leasehold",
    version,
    propagate_version = true,
    after_help = "Exit codes: 0 ok, 1 the API refused (its `code` is printed on stderr) or the transfer failed, 2 usage.\n\
                  Durations: 30s, 10m, 1h, 7d or seconds. Sizes: 64KiB, 1MiB, 2GiB, 1KB, 1MB or bytes."
)]
pub struct Cli {
    /// Server base URL.
    #[arg(long, global = true, env = "LEASEHOLD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API key (`rs_live_…`) or wallet session (`rs_wallet_…`).
    #[arg(long, global = true, env = "LEASEHOLD_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Print the API's JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store a file; with --handoff, also issue a claim URL.
    Store(Store),
    /// Claim a handoff URL (no key needed); decrypts when the URL carries an age identity.
    Claim {
        /// The claim URL, with its `#AGE-SECRET-KEY-1…` fragment when the file was encrypted.
        url: String,
        /// Write here instead of the file's own name (`-` for stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Download a Storage lease's file.
    Get {
        /// The lease id `lse_…`.
        lease: String,
        /// Write here instead of the file's own name (`-` for stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Decrypt with this age identity (printed by `store --encrypt`).
        #[arg(long)]
        identity: Option<String>,
    },
    /// The price of SIZE for DURATION.
    Quote {
        /// Size (`64KiB`, `1MiB`, bytes).
        #[arg(value_parser = parse_size)]
        size: u64,
        /// Duration (`1h`, `7d`, seconds).
        #[arg(value_parser = parse_duration)]
        duration: u64,
    },
    /// List your leases.
    Leases {
        /// storage, mailbox or checkpoint.
        #[arg(long)]
        variant: Option<String>,
        /// active, expired or deleted.
        #[arg(long)]
        state: Option<String>,
    },
    /// Delete a lease now (no refund).
    Rm {
        /// The lease id `lse_…`.
        lease: String,
    },
    /// Issue a claim URL for a lease.
    Handoff {
        /// The lease id `lse_…`.
        lease: String,
        #[command(flatten)]
        handoff: HandoffOptions,
    },
    /// Revoke a handoff (its `hnd_` id or its token).
    Revoke {
        /// The handoff id or token.
        handoff: String,
    },
    /// Mailboxes.
    #[command(subcommand)]
    Mailbox(Mailbox),
    /// Checkpoints.
    #[command(subcommand)]
    Checkpoint(Checkpoint),
}

/// `store`.
#[derive(Debug, Args)]
pub struct Store {
    /// The file.
    pub file: PathBuf,
    /// How long it lives.
    #[arg(long, value_parser = parse_duration)]
    pub ttl: u64,
    /// Also issue a handoff with N claims.
    #[arg(long, value_name = "N")]
    pub handoff: Option<u64>,
    /// Delete the lease after the handoff's last claim.
    #[arg(long, requires = "handoff")]
    pub delete_on_claim: bool,
    /// Encrypt on this machine (age, X25519); the identity goes in the claim URL's #fragment.
    #[arg(long)]
    pub encrypt: bool,
    /// Content type (default application/octet-stream).
    #[arg(long)]
    pub content_type: Option<String>,
    /// File name kept with the lease (default: the file's own).
    #[arg(long)]
    pub name: Option<String>,
}

/// Options of a handoff.
#[derive(Debug, Args)]
pub struct HandoffOptions {
    /// How many claims (default 1).
    #[arg(long)]
    pub claims: Option<u64>,
    /// How long the claim URL lives (default: the lease's remaining life).
    #[arg(long, value_parser = parse_duration)]
    pub ttl: Option<u64>,
    /// Delete the lease after the last claim.
    #[arg(long)]
    pub delete_on_claim: bool,
}

/// Where a body comes from.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Body {
    /// The body as text.
    #[arg(long)]
    pub data: Option<String>,
    /// The body from a file (`-` for stdin).
    #[arg(long)]
    pub file: Option<PathBuf>,
}

/// `mailbox …`.
#[derive(Debug, Subcommand)]
pub enum Mailbox {
    /// Create a mailbox; prints its drop URL.
    Create {
        /// Total bytes it holds.
        #[arg(long, value_parser = parse_size)]
        capacity: u64,
        /// How long it lives.
        #[arg(long, value_parser = parse_duration)]
        ttl: u64,
        /// Largest message.
        #[arg(long, value_parser = parse_size)]
        max_message: Option<u64>,
        /// Receiver of signed webhooks on each drop.
        #[arg(long)]
        webhook_url: Option<String>,
    },
    /// Drop a message (no key needed).
    Drop {
        /// The drop URL.
        drop_url: String,
        #[command(flatten)]
        body: Body,
        /// Content type (default application/octet-stream).
        #[arg(long)]
        content_type: Option<String>,
    },
    /// List messages after a cursor; --wait long-polls, --follow streams until the mailbox ends.
    Poll {
        /// The mailbox's lease id.
        lease: String,
        /// Messages after this seq.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Seconds to long-poll.
        #[arg(long)]
        wait: Option<u64>,
        /// Follow the event stream, resuming after dropped connections.
        #[arg(long, conflicts_with = "wait")]
        follow: bool,
    },
    /// One message's bytes.
    Read {
        /// The mailbox's lease id.
        lease: String,
        /// The message id.
        message: String,
        /// Write here (default stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

/// `checkpoint …`.
#[derive(Debug, Subcommand)]
pub enum Checkpoint {
    /// Create a checkpoint with its first version.
    Create {
        /// The workflow id.
        workflow: String,
        /// How long it lives.
        #[arg(long, value_parser = parse_duration)]
        ttl: u64,
        #[command(flatten)]
        body: Body,
        /// Content type (default application/json).
        #[arg(long)]
        content_type: Option<String>,
    },
    /// Print the current version.
    Get {
        /// The workflow id.
        workflow: String,
    },
    /// Write the next version.
    Put {
        /// The workflow id.
        workflow: String,
        #[command(flatten)]
        body: Body,
        /// Only if the current version is N.
        #[arg(long, value_name = "N")]
        if_match: Option<u64>,
        /// Content type (default application/json).
        #[arg(long)]
        content_type: Option<String>,
    },
}

/// `30s`, `10m`, `1h`, `7d` or whole seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration (30s, 10m, 1h, 7d or seconds)"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (s, m, h, d)")),
    };
    n.checked_mul(scale).ok_or_else(|| format!("`{text}` is too long"))
}

/// `64KiB`, `1MiB`, `2GiB`, `1KB`, `1MB`, `1GB` or bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a size (64KiB, 1MiB or bytes)"))?;
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (KiB, MiB, GiB, KB, MB, GB)")),
    };
    n.checked_mul(scale).ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_as_the_spec_writes_them() {
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("90"), Ok(90));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
        assert_eq!(parse_size("64KiB"), Ok(65_536));
        assert_eq!(parse_size("1MiB"), Ok(1_048_576));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("12"), Ok(12));
        assert!(parse_size("1TiB").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
