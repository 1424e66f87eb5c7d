//! The fault suite (issue 12): each scenario is tried several times and prints
//! `fault <name>: tried N, held H, violated V`; any violation fails the test. Other
//! scenarios of the suite live with their subjects: stalled clients (`stalled`), idle
//! and half-sent sockets (`connections`), the worker killed mid-delivery (`webhooks`) and
//! mid-expiry (`expiry`), the database stopped mid-claim (`claim_outage`).

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use leasehold_tests::mailbox::Mailbox;
use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests, handoff};
use serde_json::{Value, json};

use crate::api_process::ApiProcess;

backend_tests!(killing_a_pod_mid_upload_claim_and_drop_breaks_no_invariant);

/// Counts of one fault scenario.
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
        println!("fault {}: tried {}, held {}, violated {violated}", self.name, self.tried, self.tried - violated);
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

/// Reads a claim slowly; whether the whole body arrived.
async fn slow_claim(client: reqwest::Client, url: String, size: usize) -> bool {
    let Ok(res) = client.get(&url).send().await else { return false };
    if res.status() != 200 {
        return false;
    }
    let mut stream = res.bytes_stream();
    let mut got = 0;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => got += c.len(),
            Err(_) => return false,
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    got == size
}

async fn killing_a_pod_mid_upload_claim_and_drop_breaks_no_invariant(backend: Backend) {
    let app = TestApp::spawn_with(&backend, leasehold_tests::no_drop_limits).await;
    let (_, key) = app.create_account(100_000_000).await;
    let mut uploads = Tally::new("pod killed mid-upload");
    let mut claims = Tally::new("pod killed mid-claim");
    let mut drop_tally = Tally::new("pod killed mid-drop");
    const FILE: usize = 4 << 20;
    for round in 0..3 {
        let (_, stored) = Upload::new(&key, "claimed.bin", vec![5u8; FILE]).send(&app).await;
        let lease = stored["lease_id"].as_str().expect("lease").to_owned();
        let (_, issued) = handoff::issue(&app, &key, &lease, json!({"max_claims": 2})).await;
        let mailbox = Mailbox::create(&app, &key, 16 << 20, &[]).await;
        let mut env = app.worker_env();
        env.push(("LEASEHOLD_DROP_RATE_PER_IP".into(), "0".into()));
        env.push(("LEASEHOLD_DROP_RATE_PER_MAILBOX".into(), "0".into()));
        let pod = ApiProcess::spawn(env, &app.state.config.data_dir, &format!("fault-pod-{round}")).await;
        let client = reqwest::Client::new();
        let mut tasks = Vec::new();
        for i in 0..4 {
            let (client, url, key) = (client.clone(), pod.url("/api/store"), key.clone());
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
            let (client, url) = (client.clone(), pod.url(&handoff::claim_path(&issued)));
            tasks.push(tokio::spawn(async move { ("claim".to_owned(), 0, slow_claim(client, url, FILE).await) }));
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
        // Uploads: a 201 has its lease and bytes; anything else left no lease.
        let (_, listed) = app.get_json(&key, "/api/leases?variant=storage&limit=100").await;
        let leases = listed["items"].as_array().cloned().unwrap_or_default();
        for (name, status) in answered {
            let lease = leases.iter().find(|l| l["file_name"] == name.as_str());
            let held = match (status, lease) {
                (201, Some(l)) => {
                    let id = l["lease_id"].as_str().unwrap_or_default();
                    let got = app.client.get(app.url(&format!("/api/download/{id}"))).bearer_auth(&key).send().await;
                    got.expect("download").bytes().await.map(|b| b.len() == 1 << 20).unwrap_or(false)
                }
                (201, None) => false,
                (_, found) => found.is_none(),
            };
            uploads.check(held, || format!("upload {name}: status {status}, lease {lease:?}"));
        }
        // Claims: every complete body is counted, never more than max_claims.
        let handoff_id = issued["handoff_id"].as_str().expect("id");
        let (_, h) = app.get_json(&key, &format!("/api/handoffs/{handoff_id}")).await;
        let counted =
            h["handoff"]["claims_completed"].as_i64().or_else(|| h["claims_completed"].as_i64()).unwrap_or(-1);
        let counted = usize::try_from(counted).unwrap_or(0);
        claims.check(complete_bodies <= counted && counted <= 2, || {
            format!("{complete_bodies} complete bodies, {counted} counted: {h}")
        });
        // Drops: every 201 is readable by the owner; counts match the rows.
        let mut accepted = Vec::new();
        for d in drops {
            if let Some(body) = d.await.expect("join") {
                accepted.push(body["message_id"].as_str().unwrap_or_default().to_owned());
            }
        }
        let (_, page) = mailbox.messages(&app, &key, "after=0&limit=1000").await;
        let listed: Vec<String> = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect();
        for id in &accepted {
            drop_tally.check(listed.contains(id), || format!("accepted drop {id} is missing"));
        }
        let count = page["message_count"].as_u64().unwrap_or(u64::MAX) as usize;
        drop_tally.check(count == listed.len(), || format!("message_count {count} but {} rows", listed.len()));
    }
    uploads.finish();
    claims.finish();
    drop_tally.finish();
}
