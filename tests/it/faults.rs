//! The fault suite (issue 12): each scenario is tried several times and prints
//! `fault <name>: tried N, held H, violated V`; any violation fails the test. Other
//! scenarios of the suite live with their subjects: stalled clients (`stalled`), idle
//! and half-sent sockets (`connections`), the worker killed mid-delivery (`webhooks`) and
//! mid-expiry (`expiry`), the database stopped mid-claim (`claim_outage`). The blob store
//! stopped mid-upload and mid-claim is here.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use leasehold_tests::mailbox::Mailbox;
use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests, eventually, handoff};
use serde_json::{Value, json};

use crate::api_process::ApiProcess;

backend_tests!(killing_a_pod_mid_upload_claim_and_drop_breaks_no_invariant);

/// Counts of one fault scenario, printed to the terminal even when the test passes.
#[derive(Default)]
pub struct Tally {
    name: &'static str,
    tried: u32,
    violations: Vec<String>,
}

impl Tally {
    /// A scenario's tally.
    pub fn new(name: &'static str) -> Self {
        Self { name, ..Self::default() }
    }

    /// Records one trial: held, or violated with why.
    pub fn check(&mut self, held: bool, why: impl FnOnce() -> String) {
        self.tried += 1;
        if !held {
            self.violations.push(why());
        }
    }

    /// Prints the counts and fails on any violation.
    pub fn finish(self) {
        let violated = self.violations.len() as u32;
        // Straight to stderr, past the test harness's capture: CI shows every fault's counts.
        let line =
            format!("fault {}: tried {}, held {}, violated {violated}\n", self.name, self.tried, self.tried - violated);
        std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes()).ok();
        assert!(self.violations.is_empty(), "fault {}: {:#?}", self.name, self.violations);
    }
}

/// A body that sends `size` bytes in 64 KiB pieces, pausing between them.
fn slow_body(size: usize) -> reqwest::Body {
    let pieces = size.div_ceil(65_536);
    let stream = futures_util::stream::iter(0..pieces).then(move |i| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let len = (size - i * 65_536).min(65_536);
        Ok::<_, std::io::Error>(Bytes::from(vec![5u8; len]))
    });
    reqwest::Body::wrap_stream(stream)
}

/// Reads a response body to its end or its first error, pausing `pause` after each piece:
/// the bytes that arrived, and whether the body ended without an error.
pub async fn read_body(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<Bytes>> + Unpin),
    pause: Duration,
) -> (usize, bool) {
    let mut got = 0;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => got += c.len(),
            Err(_) => return (got, false),
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    (got, true)
}

/// Reads a claim slowly; whether the whole body arrived.
async fn slow_claim(client: reqwest::Client, url: String, size: usize) -> bool {
    let Ok(res) = client.get(&url).send().await else { return false };
    if res.status() != 200 {
        return false;
    }
    let (got, clean) = read_body(&mut res.bytes_stream(), Duration::from_millis(5)).await;
    clean && got == size
}

async fn killing_a_pod_mid_upload_claim_and_drop_breaks_no_invariant(backend: Backend) {
    let app = TestApp::spawn_with(&backend, leasehold_tests::no_drop_limits).await;
    let (_, key) = app.create_account(100_000_000).await;
    let mut uploads = Tally::new("pod killed mid-upload");
    let mut claims = Tally::new("pod killed mid-claim");
    let mut drop_tally = Tally::new("pod killed mid-drop");
    for round in 0..3 {
        let (_, stored) = Upload::new(&key, "claimed.bin", vec![5u8; CLAIMED_FILE]).send(&app).await;
        let lease = stored["lease_id"].as_str().expect("lease").to_owned();
        let (_, issued) = handoff::issue(&app, &key, &lease, json!({"max_claims": 2})).await;
        let mailbox = Mailbox::create(&app, &key, 16 << 20, &[]).await;
        let mut env = app.worker_env();
        env.push(("LEASEHOLD_DROP_RATE_PER_IP".into(), "0".into()));
        env.push(("LEASEHOLD_DROP_RATE_PER_MAILBOX".into(), "0".into()));
        let pod = ApiProcess::spawn(env, &app.state.config.data_dir, &format!("fault-pod-{round}")).await;
        let (tasks, drops) = start_transfers(&pod, &key, &issued, &mailbox, round);
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mut pod = pod;
        pod.child.start_kill().expect("SIGKILL");
        pod.child.wait().await.expect("reaped");
        let mut complete_bodies = 0;
        let mut answered = Vec::new();
        for task in tasks {
            let (name, status, complete) = task.await.expect("join");
            if name == "claim" {
                complete_bodies += usize::from(complete);
            } else {
                answered.push((name, status));
            }
        }
        check_uploads(&app, &key, answered, &mut uploads).await;
        // Claims: every complete body is counted, never more than max_claims.
        let handoff_id = issued["handoff_id"].as_str().expect("id");
        let (_, h) = app.get_json(&key, &format!("/api/handoffs/{handoff_id}")).await;
        let counted =
            h["handoff"]["claims_completed"].as_i64().or_else(|| h["claims_completed"].as_i64()).unwrap_or(-1);
        let counted = usize::try_from(counted).unwrap_or(0);
        claims.check(complete_bodies <= counted && counted <= 2, || {
            format!("{complete_bodies} complete bodies, {counted} counted: {h}")
        });
        check_drops(&app, &key, &mailbox, drops, &mut drop_tally).await;
    }
    uploads.finish();
    claims.finish();
    drop_tally.finish();
}

/// Size of the file the pod-kill rounds claim.
const CLAIMED_FILE: usize = 4 << 20;

/// A transfer to the pod: (file name or `claim`, status, whether a claim body arrived whole).
type Transfer = tokio::task::JoinHandle<(String, u16, bool)>;

/// Starts, against the pod, 4 slow uploads, 3 slow claims and 40 drops 10 ms apart.
fn start_transfers(
    pod: &ApiProcess,
    key: &str,
    issued: &Value,
    mailbox: &Mailbox,
    round: u32,
) -> (Vec<Transfer>, Vec<tokio::task::JoinHandle<Option<Value>>>) {
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (client, url, key) = (client.clone(), pod.url("/api/store"), key.to_owned());
        let name = format!("up-{round}-{i}.bin");
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(&key)
                .header("X-File-Name", &name)
                .header("X-Size-Bytes", 1 << 20)
                .header("X-Duration-Seconds", 3600)
                .body(slow_body(1 << 20))
                .send()
                .await;
            (name, res.map(|r| r.status().as_u16()).unwrap_or(0), false)
        }));
    }
    for _ in 0..3 {
        let (client, url) = (client.clone(), pod.url(&handoff::claim_path(issued)));
        tasks.push(tokio::spawn(async move { ("claim".to_owned(), 0, slow_claim(client, url, CLAIMED_FILE).await) }));
    }
    let mut drops = Vec::new();
    for i in 0..40 {
        let (client, url) = (client.clone(), pod.url(mailbox.drop_path()));
        drops.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 10)).await;
            let res = client.post(url).body(format!("drop {i}")).send().await;
            match res {
                Ok(r) if r.status() == 201 => r.json::<Value>().await.ok(),
                _ => None,
            }
        }));
    }
    (tasks, drops)
}

/// Uploads: a 201 has its lease and bytes; anything else left no lease.
async fn check_uploads(app: &TestApp, key: &str, answered: Vec<(String, u16)>, uploads: &mut Tally) {
    let (_, listed) = app.get_json(key, "/api/leases?variant=storage&limit=100").await;
    let leases = listed["items"].as_array().cloned().unwrap_or_default();
    for (name, status) in answered {
        let lease = leases.iter().find(|l| l["file_name"] == name.as_str());
        let held = match (status, lease) {
            (201, Some(l)) => {
                let id = l["lease_id"].as_str().unwrap_or_default();
                let got = app.client.get(app.url(&format!("/api/download/{id}"))).bearer_auth(key).send().await;
                got.expect("download").bytes().await.map(|b| b.len() == 1 << 20).unwrap_or(false)
            }
            (201, None) => false,
            (_, found) => found.is_none(),
        };
        uploads.check(held, || format!("upload {name}: status {status}, lease {lease:?}"));
    }
}

/// Drops: every 201 is readable by the owner; counts match the rows.
async fn check_drops(
    app: &TestApp,
    key: &str,
    mailbox: &Mailbox,
    drops: Vec<tokio::task::JoinHandle<Option<Value>>>,
    drop_tally: &mut Tally,
) {
    let mut accepted = Vec::new();
    for d in drops {
        if let Some(body) = d.await.expect("join") {
            accepted.push(body["message_id"].as_str().unwrap_or_default().to_owned());
        }
    }
    let (_, page) = mailbox.messages(app, key, "after=0&limit=1000").await;
    let listed: Vec<String> =
        page["items"].as_array().into_iter().flatten().filter_map(|m| m["id"].as_str().map(str::to_owned)).collect();
    for id in &accepted {
        drop_tally.check(listed.contains(id), || format!("accepted drop {id} is missing"));
    }
    let count = page["message_count"].as_u64().unwrap_or(u64::MAX) as usize;
    drop_tally.check(count == listed.len(), || format!("message_count {count} but {} rows", listed.len()));
}

/// The blob store stops while uploads and a claim stream, then comes back: nothing is
/// charged or kept for a broken upload, a broken claim is not counted, and everything
/// works again once the store is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_blob_store_stopping_mid_upload_and_mid_claim_breaks_no_invariant() {
    use leasehold_core::config::BlobConfig;
    let Some(mut s3) = leasehold_tests::s3_server::S3Server::start().await else { return };
    let blob = BlobConfig::S3(s3.config("outage/"));
    let app = TestApp::spawn_with(&Backend::Embedded, move |c| c.blob = blob).await;
    let (_, key) = app.create_account(100_000_000).await;
    let mut uploads = Tally::new("blob store stopped mid-upload");
    let mut claims = Tally::new("blob store stopped mid-claim");
    const FILE: usize = OUTAGE_FILE;
    let (mut broken_uploads, mut broken_claims) = (0, 0);
    for round in 0..2 {
        let (status, stored) = Upload::new(&key, "big.bin", vec![9u8; FILE]).send(&app).await;
        assert_eq!(status, 201, "{stored}");
        let lease = stored["lease_id"].as_str().expect("lease").to_owned();
        let (_, issued) = handoff::issue(&app, &key, &lease, json!({"max_claims": 1})).await;
        let claim_url = app.url(&handoff::claim_path(&issued));
        let balance = app.balance(&key).await;
        let pending = slow_uploads(&app, &key, round);
        let res = app.client.get(&claim_url).send().await.expect("claim");
        assert_eq!(res.status(), 200);
        let mut stream = res.bytes_stream();
        let mut got = stream.next().await.expect("a chunk").expect("bytes").len();
        tokio::time::sleep(Duration::from_millis(300)).await;
        s3.stop().await;
        got += read_body(&mut stream, Duration::from_millis(2)).await.0;
        let mut failed_names = Vec::new();
        for p in pending {
            let (name, status) = p.await.expect("join");
            if status != 201 {
                failed_names.push(name.clone());
            }
            uploads.check(status == 201 || status == 503 || status == 0, || format!("{name}: status {status}"));
        }
        broken_uploads += failed_names.len();
        broken_claims += usize::from(got < FILE);
        s3.start_again().await;
        // Broken uploads left no lease and no charge; a complete claim body is counted.
        check_no_lease_no_charge(&app, &key, &failed_names, balance, &mut uploads).await;
        let handoff_id = issued["handoff_id"].as_str().expect("id");
        let (_, h) = app.get_json(&key, &format!("/api/handoffs/{handoff_id}")).await;
        let counted = h["claims_completed"].as_u64().unwrap_or(u64::MAX);
        claims.check(got < FILE || counted == 1, || format!("a complete body with {counted} counted"));
        // The store is back: the slot (if the claim broke) is free again and serves in full.
        let again = claim_again(&app, &claim_url, got == FILE).await;
        claims.check(again == Some(FILE), || format!("after the outage the claim answered {again:?}"));
        let (status, _) = Upload::new(&key, "after.bin", vec![1u8; 1024]).send(&app).await;
        uploads.check(status == 201, || format!("upload after the outage: {status}"));
    }
    println!("blob store outages broke {broken_uploads} uploads and {broken_claims} claims");
    assert!(broken_uploads > 0 && broken_claims > 0, "the outage must hit transfers in flight");
    uploads.finish();
    claims.finish();
}

/// Size of the file the blob-store outage rounds claim.
const OUTAGE_FILE: usize = 32 << 20;

/// Starts 3 slow 12 MiB uploads to the app: (file name, status).
fn slow_uploads(app: &TestApp, key: &str, round: u32) -> Vec<tokio::task::JoinHandle<(String, u16)>> {
    let mut pending = Vec::new();
    for i in 0..3 {
        let (client, url, key) = (app.client.clone(), app.url("/api/store"), key.to_owned());
        pending.push(tokio::spawn(async move {
            let name = format!("outage-{round}-{i}.bin");
            let res = client
                .post(url)
                .bearer_auth(&key)
                .header("X-File-Name", &name)
                .header("X-Size-Bytes", 12 << 20)
                .header("X-Duration-Seconds", 3600)
                .body(slow_body(12 << 20))
                .send()
                .await;
            (name, res.map(|r| r.status().as_u16()).unwrap_or(0))
        }));
    }
    pending
}

/// Broken uploads left no lease, and the account was charged only if some were stored.
async fn check_no_lease_no_charge(
    app: &TestApp,
    key: &str,
    failed_names: &[String],
    balance: i64,
    uploads: &mut Tally,
) {
    let (_, listed) = app.get_json(key, "/api/leases?variant=storage&limit=100").await;
    let names: Vec<String> = listed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["file_name"].as_str().map(str::to_owned))
        .collect();
    for name in failed_names {
        uploads.check(!names.contains(name), || format!("{name} failed but has a lease"));
    }
    let charged = i64::try_from(3 - failed_names.len()).expect("count");
    let spent = balance - app.balance(key).await;
    uploads.check((spent == 0) == (charged == 0), || format!("{spent} micros spent for {charged} stored uploads"));
}

/// Claims again once the store is back: the body's length, or the whole file when the
/// earlier claim was complete and the handoff answers 410; `None` if it never serves.
async fn claim_again(app: &TestApp, claim_url: &str, claimed_whole: bool) -> Option<usize> {
    eventually(Duration::from_secs(20), || async {
        let res = app.client.get(claim_url).send().await.ok()?;
        match res.status().as_u16() {
            200 => Some(res.bytes().await.map(|b| b.len()).unwrap_or(0)),
            410 if claimed_whole => Some(OUTAGE_FILE),
            _ => None,
        }
    })
    .await
}
