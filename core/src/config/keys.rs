//! The settings this service knows, and the refusal of a variable or file key that is
//! none of them, naming the nearest known key.

use std::collections::BTreeMap;

use super::ConfigError;

/// Every key this service understands, as its environment variable suffix. The
/// `leasehold.toml` key is the same in lower case (`max_file_bytes`).
pub const KEYS: &[&str] = &[
    "LISTEN",
    "PUBLIC_URL",
    "DATA_DIR",
    "DATABASE_URL",
    "DATABASE_MAX_CONNECTIONS",
    "DATABASE_ACQUIRE_TIMEOUT_SECONDS",
    "HEADER_READ_TIMEOUT_SECONDS",
    "IDLE_TIMEOUT_SECONDS",
    "BODY_TIMEOUT_SECONDS",
    "MAX_CONNECTIONS",
    "BLOB_STORE",
    "S3_BUCKET",
    "S3_ENDPOINT",
    "S3_REGION",
    "S3_FORCE_PATH_STYLE",
    "S3_PREFIX",
    "S3_PART_SIZE_BYTES",
    "ADMIN_TOKEN",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "SHUTDOWN_TIMEOUT_SECONDS",
    "MICROS_PER_GB_DAY",
    "MINIMUM_CHARGE_MICROS",
    "MIN_DURATION_SECONDS",
    "MAX_DURATION_SECONDS",
    "MAX_FILE_BYTES",
    "MAX_MAILBOX_CAPACITY_BYTES",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_MAX_MESSAGES",
    "CHECKPOINT_DEFAULT_BODY_BYTES",
    "CHECKPOINT_MAX_BODY_BYTES",
    "CHECKPOINT_DEFAULT_VERSIONS",
    "CHECKPOINT_MAX_VERSIONS",
    "HANDOFF_MAX_CLAIMS",
    "DROP_RATE_PER_IP",
    "DROP_BURST_PER_IP",
    "DROP_RATE_PER_MAILBOX",
    "DROP_BURST_PER_MAILBOX",
    "LONG_POLL_MAX_SECONDS",
    "TOMBSTONE_RETENTION_SECONDS",
    "MCP_INLINE_MAX_BYTES",
    "EMBEDDED_WORKER",
    "WORKER_LISTEN",
    "WORKER_CONCURRENCY",
    "SWEEP_INTERVAL_SECONDS",
    "SWEEP_GRACE_SECONDS",
    "REAP_INTERVAL_SECONDS",
    "ORPHAN_AGE_SECONDS",
    "TRUSTED_PROXIES",
    "SECRET_KEY",
    "LINK_PREVIEW_BOTS",
    "WEBHOOK_ALLOW_PRIVATE",
    "WEBHOOK_ALLOW_CIDRS",
    "WEBHOOK_RETRY_SCHEDULE_SECONDS",
    "WEBHOOK_RETRY_JITTER_PERCENT",
    "WEBHOOK_RETRY_AFTER_MAX_SECONDS",
    "WEBHOOK_TIMEOUT_SECONDS",
    "X402_PAY_TO",
    "X402_FACILITATOR_URL",
    "X402_NETWORK",
    "X402_ASSET",
    "X402_ASSET_NAME",
    "X402_ASSET_VERSION",
    "X402_MAX_TIMEOUT_SECONDS",
    "X402_FACILITATOR_TIMEOUT_SECONDS",
];

/// `LEASEHOLD_*` variables that are not settings of the server but are accepted beside
/// them: `CONFIG` (the path of `leasehold.toml`), and `URL` and `API_KEY` of the
/// `leasehold` client, often exported in the same shell.
pub const OTHER_VARIABLES: &[&str] = &["CONFIG", "URL", "API_KEY"];

/// Prefixes of variables the test and benchmark harnesses read (`LEASEHOLD_TEST_*`,
/// `LEASEHOLD_BENCH_*`): never settings, so a developer with them exported can still
/// run the server.
pub const HARNESS_PREFIXES: &[&str] = &["TEST_", "BENCH_"];

/// Refuses a `LEASEHOLD_*` variable or a `leasehold.toml` key that is no setting (a typo
/// would otherwise be ignored silently), naming the nearest known key.
pub(super) fn check_known_keys(
    env: &BTreeMap<String, String>,
    file: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    for name in env.keys() {
        let Some(suffix) = name.strip_prefix("LEASEHOLD_") else { continue };
        if KEYS.contains(&suffix)
            || OTHER_VARIABLES.contains(&suffix)
            || HARNESS_PREFIXES.iter().any(|p| suffix.starts_with(p))
        {
            continue;
        }
        let hint = format!("unknown setting; did you mean LEASEHOLD_{}?", nearest_key(suffix));
        return Err(ConfigError::new(name, hint));
    }
    for key in file.keys() {
        let upper = key.to_ascii_uppercase();
        if !KEYS.contains(&upper.as_str()) {
            let hint =
                format!("unknown key in leasehold.toml; did you mean {}?", nearest_key(&upper).to_ascii_lowercase());
            return Err(ConfigError::new(&upper, hint));
        }
    }
    Ok(())
}

/// The known key with the smallest edit distance to `name` (upper case, no prefix).
fn nearest_key(name: &str) -> &'static str {
    KEYS.iter().copied().min_by_key(|k| edit_distance(name, k)).unwrap_or("LISTEN")
}

/// Levenshtein distance over bytes (keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb)).min(above + 1).min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::{Config, env};

    #[test]
    fn env_overrides_the_file_and_unknown_file_keys_fail() {
        let file = env(&[("max_file_bytes", "10"), ("listen", "127.0.0.1:9000")]);
        let c = Config::from_sources(&env(&[("LEASEHOLD_MAX_FILE_BYTES", "20")]), &file).expect("valid");
        assert_eq!(c.limits.max_file_bytes, 20);
        assert_eq!(c.listen.port(), 9000);
        let err = Config::from_sources(&BTreeMap::new(), &env(&[("max_fiel_bytes", "1")])).expect_err("typo");
        assert_eq!(err.key, "LEASEHOLD_MAX_FIEL_BYTES");
        assert!(err.to_string().contains("did you mean max_file_bytes?"), "{err}");
    }

    #[test]
    fn an_unknown_environment_variable_is_refused_naming_the_nearest_key() {
        let err =
            Config::from_sources(&env(&[("LEASEHOLD_LISTN", "127.0.0.1:9000")]), &BTreeMap::new()).expect_err("typo");
        assert_eq!(err.key, "LEASEHOLD_LISTN");
        assert!(err.to_string().contains("did you mean LEASEHOLD_LISTEN?"), "{err}");
        let err = Config::from_sources(&env(&[("LEASEHOLD_S3_BUKET", "b")]), &BTreeMap::new()).expect_err("typo");
        assert!(err.to_string().contains("LEASEHOLD_S3_BUCKET"), "{err}");
    }

    #[test]
    fn harness_client_and_config_path_variables_are_not_settings_but_are_accepted() {
        let vars = env(&[
            ("LEASEHOLD_CONFIG", "leasehold.toml"),
            ("LEASEHOLD_URL", "http://127.0.0.1:8080"),
            ("LEASEHOLD_API_KEY", "rs_live_x"),
            ("LEASEHOLD_TEST_DATABASE_URL", "postgres://h/db"),
            ("LEASEHOLD_TEST_S3_BUCKET", "b"),
            ("LEASEHOLD_BENCH_DATABASE_URL", "postgres://h/db"),
        ]);
        let c = Config::from_sources(&vars, &BTreeMap::new()).expect("accepted");
        assert!(c.is_sqlite(), "harness variables configure nothing");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
    }

    #[test]
    fn every_known_key_is_its_own_nearest_key() {
        for key in KEYS {
            assert_eq!(nearest_key(key), *key);
        }
        assert_eq!(edit_distance("LISTN", "LISTEN"), 1);
        assert_eq!(edit_distance("", "ABC"), 3);
        assert_eq!(edit_distance("KITTEN", "SITTING"), 3);
    }
}
