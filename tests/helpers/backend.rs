//! Which backends a test runs on. SQLite + files always; PostgreSQL + S3 when
//! `LEASEHOLD_TEST_DATABASE_URL` and `LEASEHOLD_TEST_S3_*` are set. With
//! `LEASEHOLD_TEST_REQUIRE_ALL=1` a missing backend fails the test instead of skipping it.

use std::path::Path;

use leasehold_core::config::{BlobConfig, S3Config, StaticCredentials};
use leasehold_core::secret::Secret;
use sea_orm::ConnectionTrait;

/// One backend combination.
#[derive(Clone, Debug)]
pub enum Backend {
    /// SQLite + files: the embedded shape.
    Embedded,
    /// PostgreSQL + S3: the distributed shape.
    Distributed {
        /// Server URL whose database is used to create per-test databases.
        database_url: String,
        /// S3 settings (each test gets its own key prefix).
        s3: S3Config,
    },
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn require_all() -> bool {
    var("LEASEHOLD_TEST_REQUIRE_ALL").is_some_and(|v| v == "1" || v == "true")
}

impl Backend {
    /// The embedded combination; always available.
    pub fn embedded() -> Option<Self> {
        Some(Self::Embedded)
    }

    /// The distributed combination, if configured. Panics when it is missing and
    /// `LEASEHOLD_TEST_REQUIRE_ALL=1`.
    pub fn distributed() -> Option<Self> {
        let database_url = var("LEASEHOLD_TEST_DATABASE_URL");
        let endpoint = var("LEASEHOLD_TEST_S3_ENDPOINT");
        let bucket = var("LEASEHOLD_TEST_S3_BUCKET");
        match (database_url, endpoint, bucket) {
            (Some(database_url), Some(endpoint), Some(bucket)) => {
                let credentials =
                    match (var("LEASEHOLD_TEST_S3_ACCESS_KEY_ID"), var("LEASEHOLD_TEST_S3_SECRET_ACCESS_KEY")) {
                        (Some(id), Some(secret)) => {
                            Some(StaticCredentials { access_key_id: id, secret_access_key: Secret::new(secret) })
                        }
                        _ => None,
                    };
                Some(Self::Distributed {
                    database_url,
                    s3: S3Config {
                        bucket,
                        endpoint: Some(endpoint),
                        region: var("LEASEHOLD_TEST_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
                        force_path_style: true,
                        prefix: String::new(),
                        part_size: 8 * 1024 * 1024,
                        credentials,
                    },
                })
            }
            _ if require_all() => panic!(
                "LEASEHOLD_TEST_REQUIRE_ALL=1 but LEASEHOLD_TEST_DATABASE_URL, LEASEHOLD_TEST_S3_ENDPOINT and LEASEHOLD_TEST_S3_BUCKET are not all set"
            ),
            _ => {
                eprintln!(
                    "skipped: PostgreSQL + S3 not configured (set LEASEHOLD_TEST_DATABASE_URL and LEASEHOLD_TEST_S3_*)"
                );
                None
            }
        }
    }

    /// True for PostgreSQL + S3.
    pub fn is_distributed(&self) -> bool {
        matches!(self, Self::Distributed { .. })
    }

    /// A database nobody else uses: a new SQLite file, or a new PostgreSQL database.
    pub async fn fresh_database(&self, dir: &Path) -> String {
        match self {
            Self::Embedded => format!("sqlite://{}?mode=rwc", dir.join("leasehold.db").display()),
            Self::Distributed { database_url, .. } => {
                let name = format!("lh_test_{}", ulid::Ulid::generate().to_string().to_lowercase());
                let admin = sea_orm::Database::connect(database_url.as_str()).await.expect("connect to test postgres");
                admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
                admin.close().await.ok();
                with_database(database_url, &name)
            }
        }
    }

    /// A blob namespace nobody else uses: a new directory, or a new key prefix.
    pub fn fresh_blob(&self, dir: &Path) -> BlobConfig {
        match self {
            Self::Embedded => BlobConfig::Fs { root: dir.join("blobs") },
            Self::Distributed { s3, .. } => {
                let mut s3 = s3.clone();
                s3.prefix = format!("test-{}/", ulid::Ulid::generate().to_string().to_lowercase());
                BlobConfig::S3(s3)
            }
        }
    }
}

/// Replaces the database name of a PostgreSQL URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

/// Runs an async test body once for each available backend combination, as separate
/// `#[tokio::test]`s in modules `embedded` and `distributed`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(b) = $crate::Backend::embedded() {
                        super::$name(b).await;
                    }
                }
            )*
        }
        mod distributed {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(b) = $crate::Backend::distributed() {
                        super::$name(b).await;
                    }
                }
            )*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(with_database("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
        assert_eq!(with_database("postgres://h/test?sslmode=disable", "x"), "postgres://h/x?sslmode=disable");
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
