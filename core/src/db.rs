//! Database connection and migrations, identical for SQLite and PostgreSQL.

use std::time::Duration;

use leasehold_migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

use crate::config::Config;

/// Key of the PostgreSQL advisory lock that serializes migrations across processes.
const MIGRATION_LOCK_KEY: i64 = 0x4c65_6173_6568_6f6c; // "Leasehol"

/// How long a pooled connection is waited for when no setting says otherwise (the default
/// of `LEASEHOLD_DATABASE_ACQUIRE_TIMEOUT_SECONDS`).
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A database that cannot be used at start, said in one line with what to do about it
/// (`database "x" does not exist on 127.0.0.1:5432 — create it with …`).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Unusable {
    /// The line to show.
    pub message: String,
    /// The driver's error.
    pub cause: DbErr,
}

/// Opens the connection pool. SQLite runs in WAL mode with a busy timeout, so readers never
/// block the writer and concurrent writers wait instead of failing.
pub async fn connect(config: &Config) -> Result<DatabaseConnection, Unusable> {
    connect_with(&config.database_url, config.database_max_connections, config.database_acquire_timeout)
        .await
        .map_err(|cause| Unusable { message: describe(&config.database_url, &cause), cause })
}

/// Opens a pool on `url` with at most `max_connections` and the default acquire timeout.
pub async fn connect_url(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, max_connections, DEFAULT_ACQUIRE_TIMEOUT).await
}

/// Opens a pool on `url` with at most `max_connections`, where waiting for a connection
/// (including opening a new one while the server refuses or is unreachable) gives up after
/// `acquire_timeout`: during an outage a request fails within that bound and answers
/// `503 unavailable` instead of queueing for half a minute.
pub async fn connect_with(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<DatabaseConnection, DbErr> {
    if let Some(path) = sqlite_path(url)
        && let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", parent.display())))?;
    }
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(max_connections)
        // sqlx bounds every connection attempt by the acquire deadline (sea-orm's
        // connect timeout is the same pool setting), so one bound covers both.
        .connect_timeout(acquire_timeout)
        .acquire_timeout(acquire_timeout)
        .sqlx_logging(false)
        // The server's NOTICEs ("relation \"seaql_migrations\" already exists, skipping" on
        // every start) are not ours to show; warnings and errors still arrive.
        .map_sqlx_postgres_opts(|o| o.options([("client_min_messages", "warning")]))
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
                .create_if_missing(true)
        });
    // Switching a fresh SQLite file to WAL needs a moment of exclusive access; a pool opened
    // at that instant is told "database is locked" without the busy handler. Retry briefly.
    let mut attempt = 0;
    loop {
        match Database::connect(options.clone()).await {
            Err(e) if attempt < 10 && is_locked(&e) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            other => return other,
        }
    }
}

fn is_locked(e: &DbErr) -> bool {
    let text = e.to_string();
    text.contains("database is locked") || text.contains("database table is locked")
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Serializes migrations within this process (SQLite is single-process: the embedded shape).
static MIGRATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Applies pending migrations. On PostgreSQL an advisory lock, held by an open transaction
/// for the duration, makes concurrent starters (any number of pods) wait for each other
/// instead of racing; within one process a mutex does the same for SQLite.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    let _guard = MIGRATING.lock().await;
    if db.get_database_backend() == DbBackend::Postgres {
        let lock = begin_write(db).await?;
        lock.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")).await?;
        let result = Migrator::up(db, None).await;
        lock.commit().await?;
        result
    } else {
        Migrator::up(db, None).await
    }
}

/// Opens a transaction that may write; every transaction in Leasehold opens this way.
///
/// On SQLite it is `BEGIN IMMEDIATE`, which takes the write lock up front and waits for it
/// under the busy timeout. A plain (deferred) `BEGIN` takes the lock only at the first
/// write, and a transaction that has already read cannot wait for it: SQLite answers
/// "database is locked" at once (`SQLITE_BUSY`, or `SQLITE_BUSY_SNAPSHOT` when another
/// writer committed since the read) rather than risk a deadlock. Any read-then-write
/// transaction (minting a key: check the prefix, then insert) would then fail with a 500
/// whenever another connection — a second process, the embedded worker — was writing.
/// PostgreSQL ignores the mode.
pub async fn begin_write<C: TransactionTrait>(db: &C) -> Result<C::Transaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Serializes this process's hot write transactions on SQLite (one writer at a time
/// anyway): waiting here is a fair async queue, where contending for SQLite's lock means
/// its busy handler's sleeps of up to 100 ms.
static SQLITE_WRITER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Holds the SQLite writer gate for a write transaction (`None` on PostgreSQL, whose row
/// locks need no help).
pub async fn write_gate(db: &impl ConnectionTrait) -> Option<tokio::sync::MutexGuard<'static, ()>> {
    if db.get_database_backend() == DbBackend::Sqlite { Some(SQLITE_WRITER.lock().await) } else { None }
}

/// True for failures that mean the database cannot be reached right now (no pooled
/// connection within the acquire timeout, connection refused, reset or closed, the server
/// shutting down or not yet accepting): the request may succeed when retried, so the API
/// answers `503 unavailable` with `Retry-After`, never a 500.
pub fn is_unavailable(e: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    let sqlx = match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(s)) | DbErr::Query(RuntimeErr::SqlxError(s)) => s,
        _ => return false,
    };
    match sqlx.as_ref() {
        Sqlx::Io(_) | Sqlx::Tls(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
        // SQLSTATE class 08 (connection exception); 57P01–57P03: admin or crash shutdown,
        // cannot connect now (starting up or in recovery).
        Sqlx::Database(d) => {
            d.code().is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03"))
        }
        _ => false,
    }
}

/// Cheap round trip for readiness checks.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// One line saying why the database at `url` cannot be used and what to do about it;
/// names the server and database, never the password.
pub fn describe(url: &str, e: &DbErr) -> String {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as SqlxError;
    let sqlx = match e {
        DbErr::Conn(RuntimeErr::SqlxError(s)) | DbErr::Exec(RuntimeErr::SqlxError(s)) => Some(&**s),
        DbErr::Query(RuntimeErr::SqlxError(s)) => Some(&**s),
        _ => None,
    };
    if let Some(path) = sqlite_path(url) {
        let reason = match sqlx {
            Some(SqlxError::Database(d)) => d.message().to_owned(),
            _ => e.to_string(),
        };
        return format!("cannot open the SQLite database {path} (LEASEHOLD_DATABASE_URL): {reason}");
    }
    let Ok(options) = url.parse::<sea_orm::sqlx::postgres::PgConnectOptions>() else {
        return format!("cannot use the database (LEASEHOLD_DATABASE_URL): {e}");
    };
    let (host, port, user) = (options.get_host(), options.get_port(), options.get_username());
    let database = options.get_database().unwrap_or(user);
    let server = format!("{host}:{port}");
    match sqlx {
        Some(SqlxError::Database(d)) => match d.code().as_deref() {
            Some("3D000") => format!(
                "database \"{database}\" does not exist on {server} — create it with `createdb -h {host} -p {port} -U {user} {database}` (LEASEHOLD_DATABASE_URL)"
            ),
            Some("28P01" | "28000") => format!(
                "PostgreSQL on {server} refused user \"{user}\" ({}) — check the user and password in LEASEHOLD_DATABASE_URL",
                d.message()
            ),
            _ => format!("PostgreSQL on {server}, database \"{database}\": {} (LEASEHOLD_DATABASE_URL)", d.message()),
        },
        Some(SqlxError::Io(io)) => {
            format!("cannot reach PostgreSQL on {server}: {io} — is it running there? (LEASEHOLD_DATABASE_URL)")
        }
        _ if matches!(sqlx, Some(SqlxError::PoolTimedOut)) || matches!(e, DbErr::ConnectionAcquire(_)) => format!(
            "no connection to PostgreSQL on {server} within the acquire timeout — is it running and reachable? (LEASEHOLD_DATABASE_URL)"
        ),
        _ => format!("cannot use database \"{database}\" on {server} (LEASEHOLD_DATABASE_URL): {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_extracted() {
        assert_eq!(sqlite_path("sqlite://./data/x.db?mode=rwc"), Some("./data/x.db"));
        assert_eq!(sqlite_path("sqlite:x.db"), Some("x.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }

    #[test]
    fn lost_connections_count_as_unavailable_and_bad_queries_do_not() {
        use sea_orm::RuntimeErr;
        use sea_orm::sqlx::Error as Sqlx;
        let wrap = |e: Sqlx| DbErr::Query(RuntimeErr::SqlxError(std::sync::Arc::new(e)));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(is_unavailable(&wrap(Sqlx::Io(refused))));
        assert!(is_unavailable(&wrap(Sqlx::PoolTimedOut)));
        assert!(is_unavailable(&DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout)));
        assert!(!is_unavailable(&wrap(Sqlx::RowNotFound)));
        assert!(!is_unavailable(&DbErr::Custom("bad".into())));
    }

    #[test]
    fn an_unreachable_server_is_named_without_its_password() {
        use sea_orm::{ConnAcquireErr, RuntimeErr};
        let url = "postgres://lh:hunter2@db.internal:6543/leasehold";
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = DbErr::Conn(RuntimeErr::SqlxError(std::sync::Arc::new(sea_orm::sqlx::Error::Io(refused))));
        let line = describe(url, &e);
        assert!(line.starts_with("cannot reach PostgreSQL on db.internal:6543: "), "{line}");
        assert!(line.ends_with("— is it running there? (LEASEHOLD_DATABASE_URL)"), "{line}");
        let line = describe(url, &DbErr::ConnectionAcquire(ConnAcquireErr::Timeout));
        assert!(
            line.starts_with("no connection to PostgreSQL on db.internal:6543 within the acquire timeout"),
            "{line}"
        );
        for line in [describe(url, &e), describe(url, &DbErr::Custom("x".into()))] {
            assert!(!line.contains("hunter2"), "{line}");
        }
    }

    #[tokio::test]
    async fn migrations_apply_twice_without_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
        let db = connect_url(&url, 2).await.expect("connect");
        migrate(&db).await.expect("first");
        migrate(&db).await.expect("second");
        Migrator::down(&db, None).await.expect("down");
        migrate(&db).await.expect("up again");
    }
}
