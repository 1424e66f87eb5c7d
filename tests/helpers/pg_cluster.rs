//! A throwaway PostgreSQL cluster that a test starts, stops and restarts itself, for
//! outage tests (the machine's shared server is never touched).
//!
//! ```ignore
//! let Some(pg) = PgCluster::start().await else { return }; // skipped: no pg binaries
//! let app = TestApp::spawn_on_database(pg.create_database("lh").await, |_| {}).await;
//! pg.stop().await;    // the database is down: requests answer 503
//! pg.start_again().await; // the same data is back
//! ```
//!
//! The cluster lives in a temp dir (data, socket and log) on a free loopback port, with
//! trust authentication for the `postgres` role; it is stopped (`immediate`) and deleted
//! when the value is dropped. The binaries are those of the newest
//! `/usr/lib/postgresql/<version>/bin`, or of `LEASEHOLD_TEST_PG_BIN`. Without them
//! `start()` returns `None` and the test is skipped, except under
//! `LEASEHOLD_TEST_REQUIRE_ALL=1`, where it panics. Run as root, the commands run as the
//! `postgres` user (`runuser -u postgres --`), since PostgreSQL refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One running (or stopped) throwaway cluster.
pub struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

impl PgCluster {
    /// Creates and starts a fresh cluster; `None` (skipped) when the binaries are missing.
    pub async fn start() -> Option<Self> {
        let Some(bin) = find_bin() else {
            if std::env::var("LEASEHOLD_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1" || v == "true") {
                panic!("LEASEHOLD_TEST_REQUIRE_ALL=1 but no PostgreSQL binaries (pg_ctl, initdb) were found");
            }
            eprintln!("skipped: no PostgreSQL binaries for a throwaway cluster (set LEASEHOLD_TEST_PG_BIN)");
            return None;
        };
        let dir = tempfile::Builder::new().prefix("lhpg").tempdir().expect("cluster dir");
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown").arg("-R").arg("postgres:").arg(dir.path()));
        }
        let port = free_port();
        let cluster = Self { bin, dir, port, as_postgres };
        let data = cluster.data_dir();
        cluster.pg("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]).await;
        cluster.start_again().await;
        Some(cluster)
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The URL of another database on this cluster.
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates a database (on a running cluster) and returns its URL.
    pub async fn create_database(&self, name: &str) -> String {
        use sea_orm::ConnectionTrait;
        let admin = sea_orm::Database::connect(self.url()).await.expect("connect to the throwaway cluster");
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create database");
        admin.close().await.ok();
        self.database_url(name)
    }

    /// Stops the server (`fast`: sessions are ended, as an outage would); waits until down.
    pub async fn stop(&self) {
        let data = self.data_dir();
        self.pg("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]).await;
    }

    /// Starts the (stopped) server again on the same port and data; waits until it accepts.
    pub async fn start_again(&self) {
        let data = self.data_dir();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.pg("pg_ctl", &["-D", &data, "-l", &log, "-o", &options, "-w", "-t", "30", "start"]).await;
    }

    /// Stops and starts the server.
    pub async fn restart(&self) {
        self.stop().await;
        self.start_again().await;
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    async fn pg(&self, tool: &str, args: &[&str]) {
        let mut command = self.command(tool, args);
        tokio::task::spawn_blocking(move || run(&mut command)).await.expect("pg command task");
    }

    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let program = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command.args(args).current_dir(self.dir.path());
        command
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let mut stop = self.command("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        // Already stopped is fine; the temp dir goes either way.
        if let Err(e) = stop.output() {
            eprintln!("could not stop the throwaway cluster: {e}");
        }
    }
}

/// Runs a command to completion, panicking with its output if it fails.
fn run(command: &mut Command) {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn find_bin() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("pg_ctl").is_file() && dir.join("initdb").is_file();
    if let Some(dir) = std::env::var_os("LEASEHOLD_TEST_PG_BIN").map(PathBuf::from) {
        return has_tools(&dir).then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| has_tools(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("addr").port()
}
