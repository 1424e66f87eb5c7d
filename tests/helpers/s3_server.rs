//! A throwaway `s3s-fs` S3 server of a test's own, which the test can stop and start again
//! (blob store outages). `None` (skipped) when `s3s-fs` is not installed, unless
//! `LEASEHOLD_TEST_REQUIRE_ALL=1`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use leasehold_core::config::{S3Config, StaticCredentials};
use leasehold_core::secret::Secret;
use tokio::process::{Child, Command};

const ACCESS_KEY: &str = "outage-key";
const SECRET: &str = "outage-secret-key";
/// The bucket every server of this kind has.
pub const BUCKET: &str = "outage";

/// One s3s-fs process on a fixed port and data dir.
pub struct S3Server {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn binary() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("s3s-fs"));
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/s3s-fs"));
    from_path.chain(home).find(|p| p.is_file())
}

impl S3Server {
    /// Starts a server with an empty bucket on a free port.
    pub async fn start() -> Option<Self> {
        if binary().is_none() {
            let required = std::env::var("LEASEHOLD_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1" || v == "true");
            assert!(!required, "LEASEHOLD_TEST_REQUIRE_ALL=1 but s3s-fs is not installed");
            eprintln!("skipped: s3s-fs is not installed");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(BUCKET)).expect("bucket dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let mut server = Self { port, dir, child: None };
        server.start_again().await;
        Some(server)
    }

    /// Settings of a blob store on this server under `prefix`.
    pub fn config(&self, prefix: &str) -> S3Config {
        S3Config {
            bucket: BUCKET.into(),
            endpoint: Some(format!("http://127.0.0.1:{}", self.port)),
            region: "us-east-1".into(),
            force_path_style: true,
            prefix: prefix.into(),
            part_size: 5 * 1024 * 1024,
            credentials: Some(StaticCredentials {
                access_key_id: ACCESS_KEY.into(),
                secret_access_key: Secret::new(SECRET),
            }),
        }
    }

    /// Kills the server (as an outage would); waits until it is gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().ok();
            child.wait().await.ok();
        }
    }

    /// Starts the server again on the same port and data.
    pub async fn start_again(&mut self) {
        let binary = binary().expect("s3s-fs");
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string(), "--access-key", ACCESS_KEY])
            .args(["--secret-key", SECRET])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn s3s-fs");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("s3s-fs did not start on port {}", self.port);
    }
}
