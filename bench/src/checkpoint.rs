//! Checkpoint benchmark: a PUT of a new version then a GET of the current one, 16 KiB
//! each, at a given concurrency (one workflow per client), next to a raw blob-store put
//! then get of the same size at the same concurrency, in alternating short phases.

use anyhow::Context;
use bytes::Bytes;
use futures_util::StreamExt;
use leasehold_core::blob::BlobStore;

use crate::Target;
use crate::load::{Phase, hammer};
use crate::server::Server;

/// Runs the benchmark and prints its figures.
pub async fn run(target: &Target, concurrency: usize, seconds: f64, size: usize, rounds: u32) -> anyhow::Result<()> {
    let server = Server::start(target).await?;
    let key = server.api_key().await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency * 2).build()?;
    let store = BlobStore::open(&server.blob).await?;
    let body: Bytes = format!(r#"{{"state":"{}"}}"#, "s".repeat(size.saturating_sub(12))).into();
    for task in 0..concurrency {
        create(&client, &server, &key, task, &body).await?;
    }
    put_get(&client, &server, &key, &body, concurrency, 1.0).await?;
    raw_put_get(&store, &body, concurrency, 1.0).await?;
    let (mut api, mut raw) = (Phase::default(), Phase::default());
    for _ in 0..rounds {
        api.absorb(put_get(&client, &server, &key, &body, concurrency, seconds).await?);
        raw.absorb(raw_put_get(&store, &body, concurrency, seconds).await?);
    }
    store.delete_prefix("bench/").await?;
    let shape = if target.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    println!(
        "checkpoint benchmark: {}-byte JSON state, concurrency {concurrency}, {rounds} alternating rounds of {seconds} s per side (totals); blob store {:?}, metadata {shape}",
        body.len(),
        target.backend
    );
    println!("{:<32} {:>10} {:>10} {:>10}", "", "ops/s", "p50 ms", "p99 ms");
    for (name, p) in [("PUT then GET through the API", &api), ("raw blob-store put then get", &raw)] {
        println!("{name:<32} {:>10.0} {:>10.2} {:>10.2}", p.rate(), p.pct(0.5), p.pct(0.99));
    }
    println!("ratio API / raw: {:.0}%", 100.0 * api.rate() / raw.rate());
    Ok(())
}

fn workflow(task: usize) -> String {
    format!("bench-{task}")
}

async fn create(client: &reqwest::Client, server: &Server, key: &str, task: usize, body: &Bytes) -> anyhow::Result<()> {
    let res = client
        .post(format!("{}/api/checkpoint", server.base))
        .bearer_auth(key)
        .header("X-Workflow-Id", workflow(task))
        .header("X-Duration-Seconds", "3600")
        .header("X-Max-Body-Bytes", "65536")
        .header("Content-Type", "application/json")
        .body(body.clone())
        .send()
        .await?;
    let status = res.status();
    anyhow::ensure!(status == 201, "checkpoint creation failed: {status} {}", res.text().await.unwrap_or_default());
    Ok(())
}

async fn put_get(
    client: &reqwest::Client,
    server: &Server,
    key: &str,
    body: &Bytes,
    concurrency: usize,
    seconds: f64,
) -> anyhow::Result<Phase> {
    let (client, base, key, body) = (client.clone(), server.base.clone(), key.to_owned(), body.clone());
    hammer(concurrency, seconds, move |task, _| {
        let url = format!("{base}/api/checkpoint/{}", workflow(task));
        let put = client.put(&url).bearer_auth(&key).header("Content-Type", "application/json").body(body.clone());
        let get = client.get(&url).bearer_auth(&key);
        let expected = body.len();
        async move {
            let res = put.send().await?;
            anyhow::ensure!(res.status() == 200, "put failed: {}", res.status());
            let got = get.send().await?.error_for_status()?.bytes().await?;
            anyhow::ensure!(got.len() == expected, "got {} bytes", got.len());
            Ok(())
        }
    })
    .await
}

async fn raw_put_get(store: &BlobStore, body: &Bytes, concurrency: usize, seconds: f64) -> anyhow::Result<Phase> {
    let (store, body) = (store.clone(), body.clone());
    hammer(concurrency, seconds, move |_, n| {
        let (store, body, key) = (store.clone(), body.clone(), format!("bench/cp/{n}"));
        async move {
            store.put_bytes(&key, body.clone()).await?;
            let mut stream = store.get(&key, None).await?;
            let mut got = 0;
            while let Some(chunk) = stream.next().await {
                got += chunk?.len();
            }
            anyhow::ensure!(got == body.len(), "got {got} bytes");
            Ok(())
        }
    })
    .await
    .context("raw put/get")
}
