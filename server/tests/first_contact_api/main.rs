//! First contact: the real `leasehold-api` binary, run in an empty directory as a new user
//! would, with nothing but the variables each test sets.

use std::path::Path;

#[path = "../common/mod.rs"]
mod common;

use common::{Run, assert_untouched};

const BIN: &str = env!("CARGO_BIN_EXE_leasehold-api");

/// Runs the binary in `dir` with only `env` among the `LEASEHOLD_*` and `AWS_*` variables.
fn run(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Run {
    common::run(BIN, dir, args, env)
}

#[test]
fn every_command_answers_help_and_version_without_side_effects() {
    let commands: &[&[&str]] = &[
        &["--help"],
        &["-h"],
        &["help"],
        &["--version"],
        &["-V"],
        &["serve", "--help"],
        &["serve", "--version"],
        &["migrate", "--help"],
        &["migrate", "--version"],
        &["accounts", "--help"],
        &["accounts", "create", "--help"],
        &["accounts", "create", "--version"],
        &["accounts", "credit", "--help"],
        &["accounts", "credit", "--version"],
        &["accounts", "show", "--help"],
        &["accounts", "show", "--version"],
    ];
    for args in commands {
        let dir = tempfile::tempdir().expect("dir");
        let run = run(dir.path(), args, &[]);
        assert_eq!(run.code(), Some(0), "{args:?}: {}", run.stderr);
        if args.iter().any(|a| *a == "--version" || *a == "-V") {
            let version = format!(" {}\n", env!("CARGO_PKG_VERSION"));
            assert!(
                run.stdout.starts_with("leasehold-api") && run.stdout.ends_with(&version),
                "{args:?}: {}",
                run.stdout
            );
        } else {
            assert!(run.stdout.contains("Usage:"), "{args:?}: {}", run.stdout);
        }
        assert_untouched(dir.path());
    }
}

#[test]
fn a_misspelled_variable_stops_the_start_naming_the_nearest_key() {
    let dir = tempfile::tempdir().expect("dir");
    let run = run(dir.path(), &[], &[("LEASEHOLD_LISTN", "127.0.0.1:0".into())]);
    assert_eq!(run.code(), Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("LEASEHOLD_LISTN"), "{}", run.stderr);
    assert!(run.stderr.contains("did you mean LEASEHOLD_LISTEN?"), "{}", run.stderr);
    assert_untouched(dir.path());
}

#[test]
fn a_log_level_that_is_no_filter_stops_the_start() {
    let dir = tempfile::tempdir().expect("dir");
    let run = run(dir.path(), &[], &[("LEASEHOLD_LOG_LEVEL", "nonsense[[[".into())]);
    assert_eq!(run.code(), Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("LEASEHOLD_LOG_LEVEL"), "{}", run.stderr);
    assert_untouched(dir.path());
}

#[test]
fn an_address_in_use_is_named_with_its_setting_before_anything_is_created() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("dir");
    let run = run(dir.path(), &[], &[("LEASEHOLD_LISTEN", addr.to_string())]);
    assert_eq!(run.code(), Some(1), "{}", run.stderr);
    let line = format!("cannot listen on {addr} (LEASEHOLD_LISTEN): address already in use");
    assert!(run.stderr.contains(&line), "{}", run.stderr);
    assert_untouched(dir.path());
}

mod postgres;
mod s3;
