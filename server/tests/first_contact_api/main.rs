//! First contact: the real `leasehold-api` binary, run in an empty directory as a new user
//! would, with nothing but the variables each test sets.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_leasehold-api");

/// What a run printed, and how it ended (`None`: still running after 30 s, killed).
struct Run {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
}

/// Runs the binary in `dir` with only `env` among the `LEASEHOLD_*` and `AWS_*` variables.
fn run(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Run {
    let logs = tempfile::tempdir().expect("logs dir");
    let (out, err) = (logs.path().join("stdout"), logs.path().join("stderr"));
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"));
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("LEASEHOLD_") || text.starts_with("AWS_") {
            cmd.env_remove(&name);
        }
    }
    // No credentials but those a test sets: no profile files, no instance metadata.
    cmd.env("AWS_EC2_METADATA_DISABLED", "true").env("AWS_CONFIG_FILE", "/dev/null");
    cmd.env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn leasehold-api");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            if let Err(e) = child.kill() {
                eprintln!("could not kill leasehold-api: {e}");
            }
            child.wait().expect("reap");
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| std::fs::read_to_string(p).expect("output");
    Run { status, stdout: read(&out), stderr: read(&err) }
}

fn assert_untouched(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir).expect("read dir").map(|e| e.expect("entry").file_name()).collect();
    assert!(left.is_empty(), "the run created {left:?}");
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
