//! Mailbox benchmark: 1 KiB JSON drops through the API at a given concurrency, next to raw
//! 1 KiB PUTs straight into the same blob store at the same concurrency, in the same run;
//! then drop → long-poll wake-up latency.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use leasehold_core::blob::BlobStore;

use crate::Target;
use crate::load::{Phase, hammer, percentile};
use crate::server::Server;

/// A JSON document of exactly `size` bytes.
fn json_body(size: usize) -> Bytes {
    let overhead = r#"{"data":""}"#.len();
    format!(r#"{{"data":"{}"}}"#, "x".repeat(size.saturating_sub(overhead))).into()
}

/// Runs the benchmark and prints its figures.
pub async fn run(target: &Target, concurrency: usize, seconds: f64, size: usize, rounds: u32) -> anyhow::Result<()> {
    let server =
        Server::start_with(target, &[("LEASEHOLD_DROP_RATE_PER_IP", "0"), ("LEASEHOLD_DROP_RATE_PER_MAILBOX", "0")])
            .await?;
    let key = server.api_key().await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency * 2).build()?;
    let store = BlobStore::open(&server.blob).await?;
    let (lease_id, drop_url) = create_mailbox(&client, &server, &key).await?;
    let body = json_body(size);

    // Warm up both paths (connections, allocator, first S3 requests).
    drops(&client, &drop_url, &body, concurrency, 1.0).await?;
    raw_puts(&store, &body, concurrency, 1.0, "warm").await?;
    // Short phases, alternating: both sides see the same disk and page-cache weather (on
    // a virtual disk it drifts over minutes), and the totals are compared.
    let (mut api, mut raw) = (Phase::default(), Phase::default());
    for round in 0..rounds {
        api.absorb(drops(&client, &drop_url, &body, concurrency, seconds).await?);
        raw.absorb(raw_puts(&store, &body, concurrency, seconds, &format!("r{round}")).await?);
    }
    store.delete_prefix("bench/").await?;
    let ceiling = http_ceiling(&client, &body, concurrency, seconds).await?;
    let wake = wakeups(&client, &server, &key, &lease_id, &drop_url, &body, 200).await?;

    let shape = if target.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    println!(
        "mailbox benchmark: {size}-byte JSON, concurrency {concurrency}, {rounds} alternating rounds of {seconds} s per side (totals); blob store {:?}, metadata {shape}",
        target.backend
    );
    println!("{:<28} {:>10} {:>10} {:>10}", "", "ops/s", "p50 ms", "p99 ms");
    for (name, p) in [("drops through the API", &api), ("raw blob-store PUTs", &raw)] {
        println!("{name:<28} {:>10.0} {:>10.2} {:>10.2}", p.rate(), p.pct(0.5), p.pct(0.99));
    }
    println!("ratio drops / raw PUTs: {:.0}% (target >= 50%)", 100.0 * api.rate() / raw.rate());
    println!(
        "context: bare HTTP POSTs of the same body over loopback on this machine (no storage at all): {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
        ceiling.rate(),
        ceiling.pct(0.5),
        ceiling.pct(0.99)
    );
    println!(
        "drop -> long-poll wake-up ({} samples, from sending the drop to the poll's answer): p50 {:.2} ms, p99 {:.2} ms",
        wake.len(),
        percentile(&wake, 0.5),
        percentile(&wake, 0.99)
    );
    Ok(())
}

async fn create_mailbox(client: &reqwest::Client, server: &Server, key: &str) -> anyhow::Result<(String, String)> {
    let res = client
        .post(format!("{}/api/mailbox", server.base))
        .bearer_auth(key)
        .header("X-Capacity-Bytes", (1u64 << 30).to_string())
        .header("X-Duration-Seconds", "3600")
        .header("X-Max-Messages", "1000000")
        .send()
        .await?;
    let status = res.status();
    let body: serde_json::Value = res.json().await?;
    anyhow::ensure!(status == 201, "mailbox creation failed: {status} {body}");
    Ok((
        body["lease_id"].as_str().context("lease_id")?.to_owned(),
        body["drop_url"].as_str().context("url")?.to_owned(),
    ))
}

async fn drops(
    client: &reqwest::Client,
    url: &str,
    body: &Bytes,
    concurrency: usize,
    seconds: f64,
) -> anyhow::Result<Phase> {
    let (client, url, body) = (client.clone(), url.to_owned(), body.clone());
    hammer(concurrency, seconds, move |_, _| {
        let req = client.post(&url).header("Content-Type", "application/json").body(body.clone());
        async move {
            let res = req.send().await?;
            anyhow::ensure!(res.status() == 201, "drop failed: {}", res.status());
            Ok(())
        }
    })
    .await
}

async fn raw_puts(
    store: &BlobStore,
    body: &Bytes,
    concurrency: usize,
    seconds: f64,
    tag: &str,
) -> anyhow::Result<Phase> {
    let (store, body, tag) = (store.clone(), body.clone(), tag.to_owned());
    hammer(concurrency, seconds, move |_, n| {
        let (store, body, key) = (store.clone(), body.clone(), format!("bench/{tag}/{n}"));
        async move {
            store.put_bytes(&key, body).await?;
            Ok(())
        }
    })
    .await
}

/// The most any HTTP service could do here: the same client and concurrency against a
/// bare axum server in this process that reads the body and answers 201.
async fn http_ceiling(
    client: &reqwest::Client,
    body: &Bytes,
    concurrency: usize,
    seconds: f64,
) -> anyhow::Result<Phase> {
    let app = axum::Router::new().route(
        "/drop",
        axum::routing::post(|body: Bytes| async move {
            (axum::http::StatusCode::CREATED, format!(r#"{{"status":"ok","size_bytes":{}}}"#, body.len()))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/drop", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let phase = drops(client, &url, body, concurrency, seconds).await;
    server.abort();
    phase
}

/// Sequential rounds: a long poll waits after the current cursor, a drop is sent, and the
/// time from sending the drop to the poll's answer is recorded.
async fn wakeups(
    client: &reqwest::Client,
    server: &Server,
    key: &str,
    lease_id: &str,
    drop_url: &str,
    body: &Bytes,
    samples: usize,
) -> anyhow::Result<Vec<Duration>> {
    let page: serde_json::Value = client
        .get(format!("{}/api/mailbox/{lease_id}/messages?limit=1&after=999999999", server.base))
        .bearer_auth(key)
        .send()
        .await?
        .json()
        .await?;
    let mut cursor = page["message_count"].as_i64().context("message_count")?;
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        // The mailbox holds only drops, none deleted, so the last seq is the count.
        let poll = client
            .get(format!("{}/api/mailbox/{lease_id}/messages?after={cursor}&wait=10", server.base))
            .bearer_auth(key)
            .send();
        let poll = tokio::spawn(async move {
            let res = poll.await;
            (Instant::now(), res)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let sent = Instant::now();
        let dropped = client.post(drop_url).header("Content-Type", "application/json").body(body.clone()).send();
        let (dropped, polled) = tokio::join!(dropped, poll);
        anyhow::ensure!(dropped?.status() == 201, "drop failed");
        let (answered, res) = polled?;
        let res = res?;
        let got = answered.saturating_duration_since(sent);
        let page: serde_json::Value = res.json().await?;
        let items = page["items"].as_array().context("items")?;
        anyhow::ensure!(items.len() == 1, "the poll returned {} items", items.len());
        cursor = items[0]["seq"].as_i64().context("seq")?;
        out.push(got);
    }
    Ok(out)
}
