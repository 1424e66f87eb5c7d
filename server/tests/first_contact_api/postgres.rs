//! PostgreSQL at first contact: a missing database is one line saying how to create it, and
//! a start on an existing schema logs none of the server's notices.

use sea_orm::ConnectionTrait;

use super::run;

const SECRET_KEY: &str = "abababababababababababababababababababababababababababababababab";

fn server() -> Option<String> {
    let url = std::env::var("LEASEHOLD_TEST_DATABASE_URL").ok().filter(|v| !v.is_empty());
    if url.is_none() {
        eprintln!("skipped: PostgreSQL not configured (set LEASEHOLD_TEST_DATABASE_URL)");
    }
    url
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = base[scheme_end..].find('/').map_or(base, |i| &base[..scheme_end + i]);
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").subsec_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

#[test]
fn a_missing_database_is_one_line_saying_how_to_create_it() {
    let Some(url) = server() else { return };
    let name = unique("lh_missing");
    let dir = tempfile::tempdir().expect("dir");
    let run = run(
        dir.path(),
        &[],
        &[
            ("LEASEHOLD_DATABASE_URL", with_database(&url, &name)),
            ("LEASEHOLD_SECRET_KEY", SECRET_KEY.into()),
            ("LEASEHOLD_LISTEN", "127.0.0.1:0".into()),
        ],
    );
    assert_eq!(run.code(), Some(1), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("database \"{name}\" does not exist on ")), "{}", run.stderr);
    assert!(run.stderr.contains("create it with `createdb -h "), "{}", run.stderr);
    assert!(!run.stderr.contains("at line"), "no driver internals: {}", run.stderr);
}

#[tokio::test]
async fn starting_on_an_existing_schema_logs_no_server_notices() {
    let Some(url) = server() else { return };
    let name = unique("lh_notices");
    let admin = sea_orm::Database::connect(url.as_str()).await.expect("connect");
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create database");
    let env = [("LEASEHOLD_DATABASE_URL", with_database(&url, &name)), ("LEASEHOLD_SECRET_KEY", SECRET_KEY.into())];
    let dir = tempfile::tempdir().expect("dir");
    for attempt in ["fresh", "migrated"] {
        let run = run(dir.path(), &["migrate"], &env);
        assert_eq!(run.code(), Some(0), "{attempt}: {}", run.stderr);
        assert!(!run.stderr.contains("already exists"), "{attempt}: {}", run.stderr);
        assert!(!run.stderr.contains("sqlx::postgres::notice"), "{attempt}: {}", run.stderr);
    }
    admin.execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)")).await.expect("drop database");
}
