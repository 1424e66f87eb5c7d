//! First contact: the real `leasehold-worker` binary, run in an empty directory as a new
//! user would, with nothing but the variables each test sets.

use std::path::Path;

mod common;

use common::{Run, assert_untouched};

const BIN: &str = env!("CARGO_BIN_EXE_leasehold-worker");

/// A PostgreSQL URL nothing listens on: these tests must stop before connecting.
const UNUSED_POSTGRES: &str = "postgres://leasehold@127.0.0.1:1/leasehold";

const SECRET_KEY: &str = "abababababababababababababababababababababababababababababababab";

/// Runs the binary in `dir` with only `env` among the `LEASEHOLD_*` and `AWS_*` variables.
fn run(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Run {
    common::run(BIN, dir, args, env)
}

#[test]
fn help_and_version_answer_without_side_effects() {
    for args in [["--help"], ["-h"], ["--version"], ["-V"]] {
        let dir = tempfile::tempdir().expect("dir");
        let run = run(dir.path(), &args, &[]);
        assert_eq!(run.code(), Some(0), "{args:?}: {}", run.stderr);
        if args[0] == "--version" || args[0] == "-V" {
            assert_eq!(run.stdout, format!("leasehold-worker {}\n", env!("CARGO_PKG_VERSION")));
        } else {
            assert!(run.stdout.contains("Usage:"), "{args:?}: {}", run.stdout);
        }
        assert_untouched(dir.path());
    }
}

#[test]
fn an_unknown_argument_is_a_usage_error_without_side_effects() {
    let dir = tempfile::tempdir().expect("dir");
    let run = run(dir.path(), &["--frobnicate"], &[]);
    assert_eq!(run.code(), Some(2), "{}", run.stderr);
    assert_untouched(dir.path());
}

#[test]
fn sqlite_is_refused_because_the_api_runs_its_own_worker_there() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("leasehold.db").display());
    for env in [vec![], vec![("LEASEHOLD_DATABASE_URL", url)]] {
        let run = run(dir.path(), &[], &env);
        assert_eq!(run.code(), Some(2), "{}", run.stderr);
        assert!(run.stderr.contains("LEASEHOLD_DATABASE_URL is SQLite"), "{}", run.stderr);
        assert!(run.stderr.contains("inside leasehold-api"), "{}", run.stderr);
        assert_untouched(dir.path());
    }
}

#[test]
fn a_metrics_address_in_use_is_named_with_its_setting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("dir");
    let env = [
        ("LEASEHOLD_DATABASE_URL", UNUSED_POSTGRES.to_owned()),
        ("LEASEHOLD_SECRET_KEY", SECRET_KEY.to_owned()),
        ("LEASEHOLD_WORKER_LISTEN", addr.to_string()),
    ];
    let run = run(dir.path(), &[], &env);
    assert_eq!(run.code(), Some(1), "{}", run.stderr);
    let line = format!("cannot listen on {addr} (LEASEHOLD_WORKER_LISTEN): address already in use");
    assert!(run.stderr.contains(&line), "{}", run.stderr);
    assert_untouched(dir.path());
}

#[test]
fn a_misspelled_variable_stops_the_start_naming_the_nearest_key() {
    let dir = tempfile::tempdir().expect("dir");
    let env = [
        ("LEASEHOLD_DATABASE_URL", UNUSED_POSTGRES.to_owned()),
        ("LEASEHOLD_SECRET_KEY", SECRET_KEY.to_owned()),
        ("LEASEHOLD_WORKER_LISTN", "127.0.0.1:0".to_owned()),
    ];
    let run = run(dir.path(), &[], &env);
    assert_eq!(run.code(), Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("did you mean LEASEHOLD_WORKER_LISTEN?"), "{}", run.stderr);
    assert_untouched(dir.path());
}
