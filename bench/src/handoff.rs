//! Handoff benchmarks: claiming a large Storage file through the API next to reading it
//! straight from the same blob store (with the API's RSS), and claims per second of a
//! small file at a concurrency.

use std::time::Instant;

use anyhow::Context;
use futures_util::StreamExt;
use leasehold_core::blob::{BlobStore, ByteStream};

use crate::Target;
use crate::load::{Phase, hammer};
use crate::server::Server;
use crate::storage::{mib_s, payload, upload};

const MIB: u64 = 1024 * 1024;

async fn issue(
    client: &reqwest::Client,
    server: &Server,
    key: &str,
    lease: &str,
    max_claims: u64,
) -> anyhow::Result<String> {
    let res = client
        .post(format!("{}/api/handoff/{lease}", server.base))
        .bearer_auth(key)
        .json(&serde_json::json!({ "max_claims": max_claims }))
        .send()
        .await?;
    let status = res.status();
    let body: serde_json::Value = res.json().await?;
    anyhow::ensure!(status == 201, "handoff failed: {status} {body}");
    Ok(format!("{}/api/claim/{}", server.base, body["handoff_token"].as_str().context("token")?))
}

async fn drain(
    mut stream: impl futures_util::Stream<Item = Result<bytes::Bytes, impl std::error::Error + Send + Sync + 'static>>
    + Unpin,
) -> anyhow::Result<u64> {
    let mut got = 0u64;
    while let Some(chunk) = stream.next().await {
        got += chunk?.len() as u64;
    }
    Ok(got)
}

/// One large claim per round against one direct read per round, alternating; best of each.
pub async fn large(target: &Target, size_mib: u64, rounds: u32) -> anyhow::Result<()> {
    let size = size_mib * MIB;
    let server = Server::start(target).await?;
    let key = server.api_key().await?;
    let client = reqwest::Client::new();
    let store = BlobStore::open(&server.blob).await?;
    let lease = upload(&client, &server, &key, size).await?;
    let url = issue(&client, &server, &key, &lease, u64::from(rounds) + 1).await?;
    store.put_stream("bench/direct", Box::pin(payload(size)) as ByteStream).await?;
    // Warm up: one claim, one direct read.
    anyhow::ensure!(drain(client.get(&url).send().await?.error_for_status()?.bytes_stream()).await? == size);
    anyhow::ensure!(drain(store.get("bench/direct", None).await?).await? == size);
    let (rss_before, _) = server.rss()?;
    let (mut claim_best, mut direct_best, mut peak) = (f64::MAX, f64::MAX, 0u64);
    for _ in 0..rounds {
        server.reset_peak()?;
        let started = Instant::now();
        let got = drain(client.get(&url).send().await?.error_for_status()?.bytes_stream()).await?;
        claim_best = claim_best.min(started.elapsed().as_secs_f64());
        peak = peak.max(server.rss()?.1);
        anyhow::ensure!(got == size, "claimed {got} of {size} bytes");
        let started = Instant::now();
        let got = drain(store.get("bench/direct", None).await?).await?;
        direct_best = direct_best.min(started.elapsed().as_secs_f64());
        anyhow::ensure!(got == size, "read {got} of {size} bytes");
    }
    store.delete_prefix("bench/").await?;
    let shape = if target.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    let (claim, direct) = (mib_s(size, claim_best), mib_s(size, direct_best));
    println!(
        "handoff claim benchmark: {size_mib} MiB Storage file, blob store {:?}, metadata {shape}, best of {rounds}",
        target.backend
    );
    println!(
        "claim through the API: {claim:.1} MiB/s; direct read from the store: {direct:.1} MiB/s; ratio {:.0}% (target >= 80%)",
        100.0 * claim / direct
    );
    println!(
        "API RSS: {:.1} MiB before; peak growth {:.1} MiB during a claim (limit 64 MiB)",
        rss_before as f64 / MIB as f64,
        peak.saturating_sub(rss_before) as f64 / MIB as f64
    );
    Ok(())
}

/// Claims of a small file at a concurrency; handoffs of `max_claims` 10,000 are used in
/// turn, exactly 10,000 calls each, so no call is refused.
pub async fn rate(target: &Target, concurrency: usize, seconds: f64, size: u64) -> anyhow::Result<()> {
    const PER_HANDOFF: u64 = 10_000;
    let server = Server::start(target).await?;
    let key = server.api_key().await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency * 2).build()?;
    let store = BlobStore::open(&server.blob).await?;
    let lease = upload(&client, &server, &key, size).await?;
    let mut urls = Vec::new();
    for _ in 0..40 {
        urls.push(issue(&client, &server, &key, &lease, PER_HANDOFF).await?);
    }
    let urls = std::sync::Arc::new(urls);
    let claims = {
        let (client, urls) = (client.clone(), urls.clone());
        hammer(concurrency, seconds, move |_, n| {
            let url = urls.get(usize::try_from(n / PER_HANDOFF).unwrap_or(usize::MAX)).cloned();
            let client = client.clone();
            async move {
                let url = url.context("ran out of handoffs; lower --seconds")?;
                let res = client.get(&url).send().await?;
                anyhow::ensure!(res.status() == 200, "claim failed: {}", res.status());
                anyhow::ensure!(res.bytes().await?.len() as u64 == size, "short claim");
                Ok(())
            }
        })
        .await?
    };
    store.put_stream("bench/small", Box::pin(payload(size)) as ByteStream).await?;
    let reads: Phase = {
        let store = store.clone();
        hammer(concurrency, seconds, move |_, _| {
            let store = store.clone();
            async move {
                anyhow::ensure!(drain(store.get("bench/small", None).await?).await? == size, "short read");
                Ok(())
            }
        })
        .await?
    };
    store.delete_prefix("bench/").await?;
    let shape = if target.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    println!(
        "handoff claim rate: {size}-byte Storage file, max_claims {PER_HANDOFF}, concurrency {concurrency}, {seconds} s; blob store {:?}, metadata {shape}",
        target.backend
    );
    println!("{:<28} {:>10} {:>10} {:>10}", "", "ops/s", "p50 ms", "p99 ms");
    for (name, p) in [("claims through the API", &claims), ("raw blob-store reads", &reads)] {
        println!("{name:<28} {:>10.0} {:>10.2} {:>10.2}", p.rate(), p.pct(0.5), p.pct(0.99));
    }
    Ok(())
}

/// Peak RSS growth of the API while `claimers` claims of one lease run at once.
async fn concurrent_claims_rss(server: &Server, url: &str, claimers: usize, expect: u64) -> anyhow::Result<f64> {
    let client = reqwest::Client::new();
    let (before, _) = server.rss()?;
    server.reset_peak()?;
    let claims = (0..claimers).map(|_| {
        let (client, url) = (client.clone(), url.to_owned());
        tokio::spawn(async move { drain(client.get(&url).send().await?.error_for_status()?.bytes_stream()).await })
    });
    for got in futures_util::future::join_all(claims).await {
        let got = got??;
        anyhow::ensure!(got >= expect, "claimed {got} bytes, expected at least {expect}");
    }
    let (_, peak) = server.rss()?;
    Ok(peak.saturating_sub(before) as f64 / MIB as f64)
}

/// RSS growth of four concurrent claims of a 256 MiB Mailbox (1 MiB binary messages,
/// each streamed as base64) next to four concurrent claims of a Storage file of the same
/// size, in the same run.
pub async fn mailbox_rss(target: &Target, size_mib: u64, claimers: usize) -> anyhow::Result<()> {
    let server =
        Server::start_with(target, &[("LEASEHOLD_DROP_RATE_PER_IP", "0"), ("LEASEHOLD_DROP_RATE_PER_MAILBOX", "0")])
            .await?;
    let key = server.api_key().await?;
    let client = reqwest::Client::new();
    let capacity = size_mib * MIB + MIB;
    let res = client
        .post(format!("{}/api/mailbox", server.base))
        .bearer_auth(&key)
        .header("X-Capacity-Bytes", capacity)
        .header("X-Duration-Seconds", 3600)
        .send()
        .await?;
    let created: serde_json::Value = res.json().await?;
    let (lease, drop_url) = (
        created["lease_id"].as_str().context("lease_id")?.to_owned(),
        created["drop_url"].as_str().context("drop_url")?.to_owned(),
    );
    let message: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    for _ in 0..size_mib {
        let res = client.post(&drop_url).body(message.clone()).send().await?;
        anyhow::ensure!(res.status() == 201, "drop failed: {}", res.status());
    }
    let claimers_u64 = u64::try_from(claimers)?;
    let mailbox_url = issue(&client, &server, &key, &lease, claimers_u64).await?;
    let base64_size = size_mib * MIB * 4 / 3;
    let mailbox_growth = concurrent_claims_rss(&server, &mailbox_url, claimers, base64_size).await?;
    let file = upload(&client, &server, &key, size_mib * MIB).await?;
    let file_url = issue(&client, &server, &key, &file, claimers_u64).await?;
    let file_growth = concurrent_claims_rss(&server, &file_url, claimers, size_mib * MIB).await?;
    let shape = if target.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    println!(
        "mailbox claim RSS: {claimers} concurrent claims of a {size_mib} MiB Mailbox ({size_mib} x 1 MiB binary messages), blob store {:?}, metadata {shape}",
        target.backend
    );
    println!(
        "API RSS peak growth: mailbox claims {mailbox_growth:.1} MiB; Storage claims of the same size {file_growth:.1} MiB (target < 64 MiB)"
    );
    Ok(())
}
