//! CLI benchmark (issue 15): the `leasehold` command's upload and download of one large
//! file next to `curl` doing the same against the same server, in alternating rounds of
//! the same run, plain and with `--encrypt` (age on the client); the CLI's peak RSS
//! (VmHWM, sampled every 20 ms while it runs).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::Target;
use crate::server::Server;

/// One timed child process: seconds, its peak RSS in bytes, and its stdout (or, when
/// `to_null`, its stderr, and stdout goes to /dev/null: downloads are measured without
/// the disk, whose write-back throttling made file downloads vary 2× between runs).
async fn timed(mut command: tokio::process::Command, to_null: bool) -> anyhow::Result<(f64, u64, String)> {
    let started = Instant::now();
    let stdout = if to_null { Stdio::null() } else { Stdio::piped() };
    let mut child = command.stdout(stdout).stderr(Stdio::piped()).spawn().context("spawn")?;
    let pid = child.id().context("pid")?;
    let mut peak = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kb * 1024);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    let output = child.wait_with_output().await?;
    anyhow::ensure!(status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = if to_null { &output.stderr } else { &output.stdout };
    Ok((seconds, peak, String::from_utf8_lossy(text).into_owned()))
}

fn curl_upload(base: &str, key: &str, file: &Path, size: u64) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("curl");
    c.args(["-sS", "--fail", "-o", "/dev/null", "-X", "POST", "-T"])
        .arg(file)
        .args([
            "-H",
            &format!("Authorization: Bearer {key}"),
            "-H",
            "X-File-Name: big.bin",
            "-H",
            "X-Duration-Seconds: 3600",
        ])
        .args(["-H", &format!("X-Size-Bytes: {size}"), "-H", "Expect:"])
        .arg(format!("{base}/api/store"));
    c
}

fn curl_download(base: &str, key: &str, lease: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("curl");
    c.args(["-sS", "--fail", "-o", "/dev/null", "-H", &format!("Authorization: Bearer {key}")])
        .arg(format!("{base}/api/download/{lease}"));
    c
}

fn cli(bin: &str, base: &str, key: &str, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(bin);
    c.env("LEASEHOLD_URL", base).env("LEASEHOLD_API_KEY", key).args(args);
    c
}

#[derive(Default)]
struct Best {
    seconds: Option<f64>,
    rss: u64,
}

impl Best {
    fn add(&mut self, (seconds, rss, _): &(f64, u64, String)) {
        self.seconds = Some(self.seconds.map_or(*seconds, |s| s.min(*seconds)));
        self.rss = self.rss.max(*rss);
    }

    fn mib_s(&self, size: u64) -> f64 {
        size as f64 / 1_048_576.0 / self.seconds.unwrap_or(f64::INFINITY)
    }
}

/// Runs the benchmark and prints its figures.
pub async fn run(target: &Target, cli_bin: &str, size_mib: u64, rounds: u32) -> anyhow::Result<()> {
    let server = Server::start(target).await?;
    let key = server.api_key().await?;
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("big.bin");
    let size = size_mib * 1_048_576;
    {
        use tokio::io::AsyncWriteExt;
        let mut f = tokio::fs::File::create(&file).await?;
        let block: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
        for _ in 0..size_mib {
            f.write_all(&block).await?;
        }
        f.sync_all().await?;
    }
    let path = file.to_str().context("utf-8 path")?;
    let (mut curl_up, mut cli_up, mut enc_up, mut curl_down, mut cli_down, mut enc_down) =
        (Best::default(), Best::default(), Best::default(), Best::default(), Best::default(), Best::default());
    for _ in 0..rounds {
        curl_up.add(&timed(curl_upload(&server.base, &key, &file, size), false).await?);
        let up = timed(cli(cli_bin, &server.base, &key, &["store", path, "--ttl", "1h", "--json"]), false).await?;
        cli_up.add(&up);
        let lease: serde_json::Value = serde_json::from_str(&up.2)?;
        let lease = lease["lease_id"].as_str().context("lease_id")?.to_owned();
        let sealed =
            timed(cli(cli_bin, &server.base, &key, &["store", path, "--ttl", "1h", "--encrypt", "--json"]), false)
                .await?;
        enc_up.add(&sealed);
        let sealed: serde_json::Value = serde_json::from_str(&sealed.2)?;
        let (sealed_lease, identity) = (
            sealed["lease_id"].as_str().context("lease_id")?.to_owned(),
            sealed["age_identity"].as_str().context("identity")?.to_owned(),
        );
        curl_down.add(&timed(curl_download(&server.base, &key, &lease), true).await?);
        cli_down.add(&timed(cli(cli_bin, &server.base, &key, &["get", &lease, "-o", "-"]), true).await?);
        let opened = ["get", &sealed_lease, "-o", "-", "--identity", &identity, "--json"];
        let opened = timed(cli(cli_bin, &server.base, &key, &opened), true).await?;
        enc_down.add(&opened);
        let note: serde_json::Value = serde_json::from_str(opened.2.trim())?;
        anyhow::ensure!(note["bytes"] == size, "the decrypted download has the file's size: {note}");
        for id in [&lease, &sealed_lease] {
            http.delete(format!("{}/api/leases/{id}", server.base)).bearer_auth(&key).send().await?;
        }
    }
    println!(
        "CLI benchmark: one {size_mib} MiB file, best of {rounds} alternating rounds; blob store {:?}, metadata {}; curl -T / curl -o /dev/null as the baseline (downloads go to /dev/null on both sides)",
        target.backend,
        if target.database_url.is_some() { "PostgreSQL" } else { "SQLite" }
    );
    println!("{:<34} {:>10} {:>12} {:>10} {:>14}", "", "MiB/s", "curl MiB/s", "ratio", "CLI peak RSS");
    let rows = [
        ("upload, plain (target ≥ 0.9)", &cli_up, &curl_up),
        ("upload, --encrypt (target ≥ 0.5)", &enc_up, &curl_up),
        ("download, plain (target ≥ 0.9)", &cli_down, &curl_down),
        ("download, decrypt (target ≥ 0.5)", &enc_down, &curl_down),
    ];
    for (name, mine, theirs) in rows {
        println!(
            "{name:<34} {:>10.0} {:>12.0} {:>9.0}% {:>10.1} MiB",
            mine.mib_s(size),
            theirs.mib_s(size),
            100.0 * mine.mib_s(size) / theirs.mib_s(size),
            mine.rss as f64 / 1_048_576.0
        );
    }
    Ok(())
}
