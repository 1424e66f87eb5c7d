//! Running a real binary of this package as a new user would: in an empty directory, with
//! no `LEASEHOLD_*` or `AWS_*` variable but those a test sets (and no AWS profile files or
//! instance metadata), stopped after 30 s.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a run printed, and how it ended (`None`: still running after 30 s, killed).
pub struct Run {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
}

/// Runs `bin` in `dir` with only `env` among the `LEASEHOLD_*` and `AWS_*` variables.
pub fn run(bin: &str, dir: &Path, args: &[&str], env: &[(&str, String)]) -> Run {
    let logs = tempfile::tempdir().expect("logs dir");
    let (out, err) = (logs.path().join("stdout"), logs.path().join("stderr"));
    let mut cmd = Command::new(bin);
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
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            if let Err(e) = child.kill() {
                eprintln!("could not kill {bin}: {e}");
            }
            child.wait().expect("reap");
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| std::fs::read_to_string(p).expect("output");
    Run { status, stdout: read(&out), stderr: read(&err) }
}

/// Fails if the run left anything in `dir`.
pub fn assert_untouched(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir).expect("read dir").map(|e| e.expect("entry").file_name()).collect();
    assert!(left.is_empty(), "the run created {left:?}");
}
