//! The `leasehold` binary against a real server (SPEC §12): a 3 MiB store → claim round
//! trip, `--encrypt` (the server holds only age ciphertext, which Debian's `age -d`
//! decrypts with the identity from the claim URL's fragment), exit codes, progress bars
//! under a pseudo-terminal and none in a pipe, and `mailbox poll --follow` resuming with
//! `Last-Event-ID` after its connection drops.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leasehold_tests::balancer::Balancer;
use leasehold_tests::{Backend, TestApp, backend_tests};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

backend_tests!(
    a_3_mib_file_goes_round_trip_and_a_second_claim_fails,
    encrypted_files_are_age_files_only_the_fragment_decrypts,
    exit_codes_say_usage_api_refusal_or_success,
    progress_bars_are_drawn_on_a_terminal_and_not_in_a_pipe,
    poll_follow_resumes_after_a_dropped_connection
);

const BIN: &str = env!("CARGO_BIN_EXE_leasehold");

async fn cli(app: &TestApp, key: Option<&str>, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(BIN);
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("LEASEHOLD_URL", &app.base);
    if let Some(key) = key {
        command.env("LEASEHOLD_API_KEY", key);
    }
    tokio::time::timeout(Duration::from_secs(120), command.args(args).kill_on_drop(true).output())
        .await
        .expect("the CLI finished in time")
        .expect("the CLI started")
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)))
}

fn pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 % 251) as u8).collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

async fn a_3_mib_file_goes_round_trip_and_a_second_claim_fails(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000_000).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = pattern(3 * 1024 * 1024);
    let file = write(dir.path(), "three.bin", &plain);
    let file = file.to_str().expect("utf-8");
    let created =
        stdout_json(&cli(&app, Some(&key), &["store", file, "--ttl", "1h", "--handoff", "1", "--json"]).await);
    assert_eq!(created["size_bytes"], plain.len() as u64, "{created}");
    let claim_url = created["handoff"]["claim_url"].as_str().expect("claim_url").to_owned();
    let out = dir.path().join("claimed.bin");
    let claimed =
        stdout_json(&cli(&app, None, &["claim", &claim_url, "-o", out.to_str().expect("utf-8"), "--json"]).await);
    assert_eq!(claimed["bytes"], plain.len() as u64);
    assert_eq!(claimed["claims_remaining"], 0);
    assert!(std::fs::read(&out).expect("claimed file") == plain, "the claimed bytes are the stored bytes");
    let again = cli(&app, None, &["claim", &claim_url, "-o", out.to_str().expect("utf-8")]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("handoff_exhausted"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // No partial file was left by the refused claim, and the first one is intact.
    assert!(std::fs::read(&out).expect("claimed file") == plain);
    assert!(!dir.path().join("claimed.bin.partial").exists());
}

async fn encrypted_files_are_age_files_only_the_fragment_decrypts(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000_000).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = pattern(200_000);
    let file = write(dir.path(), "secret.bin", &plain);
    let created = stdout_json(
        &cli(
            &app,
            Some(&key),
            &["store", file.to_str().expect("utf-8"), "--ttl", "1h", "--handoff", "1", "--encrypt", "--json"],
        )
        .await,
    );
    let claim_url = created["handoff"]["claim_url"].as_str().expect("claim_url").to_owned();
    let (_, identity) = claim_url.split_once('#').expect("the claim URL carries a fragment");
    assert!(identity.starts_with("AGE-SECRET-KEY-1"), "{claim_url}");
    assert_eq!(created["age_identity"], identity);

    // What the server holds is a standard age file, not the plaintext.
    let lease_id = created["lease_id"].as_str().expect("lease_id");
    let res =
        app.client.get(app.url(&format!("/api/download/{lease_id}"))).bearer_auth(&key).send().await.expect("download");
    assert_eq!(res.status(), 200);
    let sealed = res.bytes().await.expect("body").to_vec();
    assert!(sealed.starts_with(b"age-encryption.org/v1\n"), "an age header");
    assert_eq!(created["size_bytes"], sealed.len() as u64);
    assert!(!sealed.windows(64).any(|w| w == &plain[1000..1064]), "no plaintext on the server");
    match which("age") {
        Some(age) => {
            let sealed_path = write(dir.path(), "sealed.age", &sealed);
            let identity_path = write(dir.path(), "identity.txt", format!("{identity}\n").as_bytes());
            let out = std::process::Command::new(age)
                .arg("-d")
                .arg("-i")
                .arg(&identity_path)
                .arg(&sealed_path)
                .output()
                .expect("age");
            assert!(out.status.success(), "age -d: {}", String::from_utf8_lossy(&out.stderr));
            assert!(out.stdout == plain, "Debian's age recovers the plaintext");
        }
        None => {
            let all = std::env::var("LEASEHOLD_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1" || v == "true");
            assert!(!all, "LEASEHOLD_TEST_REQUIRE_ALL=1 but the `age` tool is not installed (apt-get install age)");
            eprintln!("skipped the `age -d` check: the age tool is not installed");
        }
    }
    // The CLI decrypts while claiming; the default name drops `.age`.
    let claimed =
        cli(&app, None, &["claim", &claim_url, "--json", "-o", dir.path().join("back.bin").to_str().expect("utf-8")])
            .await;
    let claimed = stdout_json(&claimed);
    assert_eq!(claimed["decrypted"], true);
    assert!(std::fs::read(dir.path().join("back.bin")).expect("file") == plain);
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(tool)).find(|p| p.is_file())
}

async fn exit_codes_say_usage_api_refusal_or_success(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000_000).await;
    assert_eq!(cli(&app, Some(&key), &[]).await.status.code(), Some(2), "no command");
    assert_eq!(cli(&app, Some(&key), &["store", "x", "--ttl", "1week"]).await.status.code(), Some(2), "a bad duration");
    assert_eq!(cli(&app, Some(&key), &["quote", "1MiB"]).await.status.code(), Some(2), "a missing argument");
    let missing = cli(&app, Some(&key), &["get", "lse_01J00000000000000000000000"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("not_found"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let anonymous = cli(&app, None, &["leases"]).await;
    assert_eq!(anonymous.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&anonymous.stderr).contains("unauthorized"));
    let json_error = cli(&app, None, &["leases", "--json"]).await;
    let body: Value = serde_json::from_slice(&json_error.stderr).expect("the API's error JSON on stderr");
    assert_eq!(body["code"], "unauthorized");
    let quote = stdout_json(&cli(&app, None, &["quote", "1MiB", "1h", "--json"]).await);
    assert!(quote["cost_micros"].as_str().and_then(|c| c.parse::<i64>().ok()).is_some_and(|c| c > 0), "{quote}");
    let text = cli(&app, None, &["quote", "1MiB", "1h"]).await;
    assert_eq!(
        String::from_utf8_lossy(&text.stdout),
        format!("{} micros\n", quote["cost_micros"].as_str().expect("micros"))
    );
    let leases = cli(&app, Some(&key), &["leases"]).await;
    assert_eq!(leases.status.code(), Some(0));
}

async fn progress_bars_are_drawn_on_a_terminal_and_not_in_a_pipe(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000_000).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "bar.bin", &pattern(2 * 1024 * 1024));
    let file = file.to_str().expect("utf-8");
    // In a pipe: nothing on stderr.
    let piped = cli(&app, Some(&key), &["store", file, "--ttl", "1h"]).await;
    assert!(piped.status.success());
    assert!(piped.stderr.is_empty(), "no bar in a pipe: {}", String::from_utf8_lossy(&piped.stderr));
    // Under a pseudo-terminal (util-linux `script`): the bar with its rate and ETA.
    let command = format!("LEASEHOLD_URL={} LEASEHOLD_API_KEY={key} {BIN} store {file} --ttl 1h", app.base);
    let out = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .await
        .expect("script (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("upload") && text.contains("ETA") && text.contains("/s"), "a progress bar: {text:?}");
}

async fn poll_follow_resumes_after_a_dropped_connection(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000_000).await;
    let balancer = Balancer::start(vec![app.base.clone()]).await;
    let created = stdout_json(
        &cli(&app, Some(&key), &["mailbox", "create", "--capacity", "64KiB", "--ttl", "1h", "--json"]).await,
    );
    let lease = created["lease_id"].as_str().expect("lease_id").to_owned();
    let drop_url = created["drop_url"].as_str().expect("drop_url").to_owned();

    let mut follow = tokio::process::Command::new(BIN)
        .env("LEASEHOLD_URL", &balancer.base)
        .env("LEASEHOLD_API_KEY", &key)
        .args(["mailbox", "poll", &lease, "--follow", "--json"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("follow");
    let lines = Arc::new(Mutex::new(Vec::<Value>::new()));
    let reader = {
        let lines = lines.clone();
        let mut stdout = tokio::io::BufReader::new(follow.stdout.take().expect("stdout")).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                lines.lock().expect("lock").push(serde_json::from_str(&line).expect("a JSON line"));
            }
        })
    };
    let seen = |n: usize| {
        let lines = lines.clone();
        async move {
            for _ in 0..200 {
                if lines.lock().expect("lock").len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("follow printed {:?}, wanted {n} lines", lines.lock().expect("lock"));
        }
    };
    let drop_one = |text: &'static str| {
        let (client, url) = (app.client.clone(), drop_url.clone());
        async move { assert_eq!(client.post(url).body(text).send().await.expect("drop").status(), 201) }
    };
    drop_one("first").await;
    seen(1).await;
    balancer.cut();
    drop_one("second").await;
    seen(2).await;
    let res =
        app.client.delete(app.url(&format!("/api/leases/{lease}"))).bearer_auth(&key).send().await.expect("delete");
    assert_eq!(res.status(), 200);
    let status =
        tokio::time::timeout(Duration::from_secs(30), follow.wait()).await.expect("follow ends").expect("status");
    assert!(status.success());
    reader.await.expect("reader");
    let lines = lines.lock().expect("lock").clone();
    let seqs: Vec<i64> = lines.iter().filter_map(|l| l["seq"].as_i64()).collect();
    assert_eq!(seqs, vec![1, 2], "each message once, across the reconnection: {lines:?}");
    assert_eq!(lines.last().expect("last")["event"], "deleted");
    assert!(balancer.served()[0] >= 2, "the stream was opened again after the cut");
}
