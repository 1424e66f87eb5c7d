//! Limits and defaults of SPEC §9.

use super::source::Source;
use super::{ConfigError, GIB, KIB, MIB};

/// Limits and defaults of SPEC §9.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Shortest lease.
    pub min_duration_seconds: u64,
    /// Longest lease.
    pub max_duration_seconds: u64,
    /// Largest Storage file.
    pub max_file_bytes: u64,
    /// Largest Mailbox capacity.
    pub max_mailbox_capacity_bytes: u64,
    /// Default per-message cap of a Mailbox (also bounded by its capacity).
    pub default_max_message_bytes: u64,
    /// Default message-count cap of a Mailbox.
    pub default_max_messages: u64,
    /// Default Checkpoint body cap.
    pub checkpoint_default_body_bytes: u64,
    /// Largest Checkpoint body cap.
    pub checkpoint_max_body_bytes: u64,
    /// Default number of Checkpoint versions kept.
    pub checkpoint_default_versions: u64,
    /// Largest number of Checkpoint versions kept.
    pub checkpoint_max_versions: u64,
    /// Largest `max_claims` of a Handoff.
    pub handoff_max_claims: u64,
    /// Drops per second per client IP.
    pub drop_rate_per_ip: u64,
    /// Drop burst per client IP.
    pub drop_burst_per_ip: u64,
    /// Drops per second per Mailbox.
    pub drop_rate_per_mailbox: u64,
    /// Drop burst per Mailbox.
    pub drop_burst_per_mailbox: u64,
    /// Longest long-poll wait.
    pub long_poll_max_seconds: u64,
    /// How long an expired or deleted lease answers 410 before it answers 404.
    pub tombstone_retention_seconds: u64,
    /// Largest content an MCP tool result carries inline; larger content is answered
    /// with the URL to fetch it from (SPEC §11).
    pub mcp_inline_max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            min_duration_seconds: 60,
            max_duration_seconds: 30 * 86_400,
            max_file_bytes: 5 * GIB,
            max_mailbox_capacity_bytes: GIB,
            default_max_message_bytes: MIB,
            default_max_messages: 10_000,
            checkpoint_default_body_bytes: 256 * KIB,
            checkpoint_max_body_bytes: 16 * MIB,
            checkpoint_default_versions: 10,
            checkpoint_max_versions: 100,
            handoff_max_claims: 10_000,
            drop_rate_per_ip: 20,
            drop_burst_per_ip: 40,
            drop_rate_per_mailbox: 100,
            drop_burst_per_mailbox: 200,
            long_poll_max_seconds: 30,
            tombstone_retention_seconds: 7 * 86_400,
            mcp_inline_max_bytes: MIB,
        }
    }
}

pub(super) fn limits(src: &Source<'_>) -> Result<Limits, ConfigError> {
    let d = Limits::default();
    Ok(Limits {
        min_duration_seconds: src.number("MIN_DURATION_SECONDS", d.min_duration_seconds)?,
        max_duration_seconds: src.number("MAX_DURATION_SECONDS", d.max_duration_seconds)?,
        max_file_bytes: src.number("MAX_FILE_BYTES", d.max_file_bytes)?,
        max_mailbox_capacity_bytes: src.number("MAX_MAILBOX_CAPACITY_BYTES", d.max_mailbox_capacity_bytes)?,
        default_max_message_bytes: src.number("DEFAULT_MAX_MESSAGE_BYTES", d.default_max_message_bytes)?,
        default_max_messages: src.number("DEFAULT_MAX_MESSAGES", d.default_max_messages)?,
        checkpoint_default_body_bytes: src.number("CHECKPOINT_DEFAULT_BODY_BYTES", d.checkpoint_default_body_bytes)?,
        checkpoint_max_body_bytes: src.number("CHECKPOINT_MAX_BODY_BYTES", d.checkpoint_max_body_bytes)?,
        checkpoint_default_versions: src.number("CHECKPOINT_DEFAULT_VERSIONS", d.checkpoint_default_versions)?,
        checkpoint_max_versions: src.number("CHECKPOINT_MAX_VERSIONS", d.checkpoint_max_versions)?,
        handoff_max_claims: src.number("HANDOFF_MAX_CLAIMS", d.handoff_max_claims)?,
        drop_rate_per_ip: src.number("DROP_RATE_PER_IP", d.drop_rate_per_ip)?,
        drop_burst_per_ip: src.number("DROP_BURST_PER_IP", d.drop_burst_per_ip)?,
        drop_rate_per_mailbox: src.number("DROP_RATE_PER_MAILBOX", d.drop_rate_per_mailbox)?,
        drop_burst_per_mailbox: src.number("DROP_BURST_PER_MAILBOX", d.drop_burst_per_mailbox)?,
        long_poll_max_seconds: src.number("LONG_POLL_MAX_SECONDS", d.long_poll_max_seconds)?,
        tombstone_retention_seconds: src.number("TOMBSTONE_RETENTION_SECONDS", d.tombstone_retention_seconds)?,
        mcp_inline_max_bytes: src.number("MCP_INLINE_MAX_BYTES", d.mcp_inline_max_bytes)?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::config::{Config, env};

    #[test]
    fn inconsistent_limits_are_refused() {
        let err = Config::from_sources(
            &env(&[("LEASEHOLD_MIN_DURATION_SECONDS", "100"), ("LEASEHOLD_MAX_DURATION_SECONDS", "50")]),
            &BTreeMap::new(),
        )
        .expect_err("must fail");
        assert_eq!(err.key, "LEASEHOLD_MAX_DURATION_SECONDS");
    }
}
