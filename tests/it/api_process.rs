//! A `leasehold-api` as a real OS process, for tests that read its logs, count its
//! threads or kill it: the test binary runs itself again with only this (ignored) test
//! selected, the server's configuration in `LEASEHOLD_*` variables, and the same runtime
//! the binary builds (`leasehold_core::runtime::build`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Marks the child process.
const CHILD: &str = "LEASEHOLD_TEST_API_PROCESS";
/// Where the child writes the address it listens on.
const ADDRESS_FILE: &str = "LEASEHOLD_TEST_API_ADDRESS_FILE";

/// Entry point of the child process; a no-op anywhere else.
#[test]
#[ignore = "run only as a child process by ApiProcess::spawn"]
fn run_api_process() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    let runtime = leasehold_core::runtime::build().expect("runtime");
    runtime.block_on(async {
        let mut config = leasehold_core::Config::from_env().expect("api config");
        leasehold_core::telemetry::init(&config);
        let listener = tokio::net::TcpListener::bind(config.listen).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        config.listen = addr;
        config.public_url = format!("http://{addr}");
        let state = leasehold_api::AppState::build(config, leasehold_core::Clock::system()).await.expect("state");
        let file = std::env::var(ADDRESS_FILE).expect("address file");
        std::fs::write(&file, addr.to_string()).expect("write address");
        leasehold_server::serve(listener, state, leasehold_core::telemetry::shutdown_signal()).await.expect("serve");
    });
}

/// A running API process.
pub struct ApiProcess {
    /// The process (killed on drop).
    pub child: tokio::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Its stderr (the log).
    pub log: PathBuf,
}

impl ApiProcess {
    /// Starts an API process with this environment (e.g. `TestApp::worker_env` plus
    /// settings) and waits until it listens.
    pub async fn spawn(env: Vec<(String, String)>, dir: &Path, name: &str) -> Self {
        let log = dir.join(format!("{name}.log"));
        let address = dir.join(format!("{name}.address"));
        std::fs::remove_file(&address).ok();
        let exe = std::env::current_exe().expect("test binary");
        let mut cmd = tokio::process::Command::new(exe);
        cmd.args(["--exact", "api_process::run_api_process", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env(ADDRESS_FILE, &address)
            .env("LEASEHOLD_LISTEN", "127.0.0.1:0")
            .env("LEASEHOLD_ADMIN_TOKEN", leasehold_tests::ADMIN_TOKEN)
            .env("LEASEHOLD_WORKER_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).expect("log file")))
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn api process");
        for _ in 0..300 {
            if let Ok(addr) = std::fs::read_to_string(&address)
                && !addr.is_empty()
            {
                return Self { child, base: format!("http://{addr}"), log };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the API process did not start:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    }

    /// Absolute URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Threads of the process now.
    pub fn threads(&self) -> usize {
        let pid = self.child.id().expect("running");
        std::fs::read_dir(format!("/proc/{pid}/task")).map(Iterator::count).unwrap_or(0)
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
