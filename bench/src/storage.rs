//! Storage benchmark: one large file up and down through the API, next to the same bytes
//! put and got straight from the same blob store in the same run.

use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use futures_util::StreamExt;
use leasehold_core::blob::{BlobStore, ByteStream};

use crate::Target;
use crate::server::Server;

const MIB: u64 = 1024 * 1024;

/// A stream of `size` bytes made of one repeated pseudo-random 1 MiB chunk (cheap to
/// produce, so the client is not the bottleneck).
pub fn payload(size: u64) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let chunk: Bytes = (0..MIB)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x & 0xff) as u8
        })
        .collect::<Vec<u8>>()
        .into();
    let full = size / MIB;
    let rest = size % MIB;
    let tail = chunk.slice(..usize::try_from(rest).unwrap_or(0));
    futures_util::stream::iter((0..full).map(move |_| Ok(chunk.clone())).chain((rest > 0).then_some(Ok(tail))))
}

pub fn mib_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / MIB as f64 / secs
}

/// Best (shortest) of several timings, in seconds.
#[derive(Default)]
struct Best(Option<f64>);

impl Best {
    fn add(&mut self, secs: f64) {
        self.0 = Some(self.0.map_or(secs, |b| b.min(secs)));
    }

    fn mib_s(&self, bytes: u64) -> f64 {
        self.0.map_or(0.0, |s| mib_s(bytes, s))
    }
}

/// Runs the benchmark and prints its figures: API and direct runs alternate, `rounds`
/// times each, and the best of each is reported, so neither side profits from going
/// second (warm caches) or suffers from a noisy moment.
pub async fn run(target: &Target, size_mib: u64, rounds: u32) -> anyhow::Result<()> {
    let size = size_mib * MIB;
    let server = Server::start(target).await?;
    let key = server.api_key().await?;
    let client = reqwest::Client::new();
    let store = BlobStore::open(&server.blob).await?;

    // Warm up (allocator, pools, first S3 connection) with a small file, then measure.
    let warm = upload(&client, &server, &key, 8 * MIB).await?;
    download(&client, &server, &key, &warm).await?;
    let (rss_before, _) = server.rss()?;
    let (mut peak_up, mut peak_down) = (0u64, 0u64);
    let (mut api_up, mut api_down, mut direct_up, mut direct_down) =
        (Best::default(), Best::default(), Best::default(), Best::default());
    for _ in 0..rounds {
        server.reset_peak()?;
        let started = Instant::now();
        let lease = upload(&client, &server, &key, size).await?;
        api_up.add(started.elapsed().as_secs_f64());
        peak_up = peak_up.max(server.rss()?.1);
        server.reset_peak()?;
        let started = Instant::now();
        let got = download(&client, &server, &key, &lease).await?;
        api_down.add(started.elapsed().as_secs_f64());
        peak_down = peak_down.max(server.rss()?.1);
        anyhow::ensure!(got == size, "downloaded {got} of {size} bytes");
        delete(&client, &server, &key, &lease).await?;

        // Baseline: the same bytes straight into and out of the same store.
        let started = Instant::now();
        store.put_stream("bench/direct", Box::pin(payload(size)) as ByteStream).await?;
        direct_up.add(started.elapsed().as_secs_f64());
        let started = Instant::now();
        let mut stream = store.get("bench/direct", None).await?;
        let mut direct_got = 0u64;
        while let Some(chunk) = stream.next().await {
            direct_got += chunk?.len() as u64;
        }
        direct_down.add(started.elapsed().as_secs_f64());
        anyhow::ensure!(direct_got == size, "direct get returned {direct_got} bytes");
        store.delete_prefix("bench/").await?;
    }

    let (ceiling_up, ceiling_down) = http_ceiling(&client, size).await?;
    let shape = if target.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    println!("storage benchmark: {size_mib} MiB, blob store {:?}, metadata {shape}, best of {rounds}", target.backend);
    println!("{:<10} {:>14} {:>14} {:>8}", "", "API MiB/s", "direct MiB/s", "ratio");
    for (name, api, direct) in [("upload", &api_up, &direct_up), ("download", &api_down, &direct_down)] {
        let (a, d) = (api.mib_s(size), direct.mib_s(size));
        println!("{name:<10} {a:>14.1} {d:>14.1} {:>7.0}%", 100.0 * a / d);
    }
    println!(
        "context: bare HTTP over loopback on this machine (no storage at all): upload {:.1} MiB/s, download {:.1} MiB/s",
        mib_s(size, ceiling_up),
        mib_s(size, ceiling_down)
    );
    let growth = |peak: u64| peak.saturating_sub(rss_before) as f64 / MIB as f64;
    println!(
        "API RSS: {:.1} MiB before; peak growth {:.1} MiB during upload, {:.1} MiB during download (limit 64 MiB)",
        rss_before as f64 / MIB as f64,
        growth(peak_up),
        growth(peak_down)
    );
    Ok(())
}

async fn delete(client: &reqwest::Client, server: &Server, key: &str, lease: &str) -> anyhow::Result<()> {
    client.delete(format!("{}/api/store/{lease}", server.base)).bearer_auth(key).send().await?.error_for_status()?;
    Ok(())
}

pub async fn upload(client: &reqwest::Client, server: &Server, key: &str, size: u64) -> anyhow::Result<String> {
    let res = client
        .post(format!("{}/api/store", server.base))
        .bearer_auth(key)
        .header("X-File-Name", "bench.bin")
        .header("X-Size-Bytes", size.to_string())
        .header("X-Duration-Seconds", "3600")
        .header("Content-Length", size.to_string())
        .body(reqwest::Body::wrap_stream(payload(size)))
        .send()
        .await?;
    let status = res.status();
    let body: serde_json::Value = res.json().await?;
    anyhow::ensure!(status == 201, "upload failed: {status} {body}");
    Ok(body["lease_id"].as_str().context("lease_id")?.to_owned())
}

async fn download(client: &reqwest::Client, server: &Server, key: &str, lease: &str) -> anyhow::Result<u64> {
    let res = client
        .get(format!("{}/api/download/{lease}", server.base))
        .bearer_auth(key)
        .send()
        .await?
        .error_for_status()?;
    let mut stream = res.bytes_stream();
    let mut got = 0u64;
    while let Some(chunk) = stream.next().await {
        got += chunk?.len() as u64;
    }
    Ok(got)
}

/// The most any HTTP service could do here: the same client against a bare axum server in
/// this process that discards uploads and serves downloads from memory.
async fn http_ceiling(client: &reqwest::Client, size: u64) -> anyhow::Result<(f64, f64)> {
    use axum::routing::{get, post};
    let app = axum::Router::new()
        .route(
            "/up",
            post(|body: axum::body::Body| async move {
                let mut stream = body.into_data_stream();
                let mut n = 0u64;
                while let Some(chunk) = stream.next().await {
                    n += chunk.map(|c| c.len() as u64).unwrap_or(0);
                }
                n.to_string()
            }),
        )
        .route("/down", get(move || async move { axum::body::Body::from_stream(payload(size)) }))
        .layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let started = Instant::now();
    client
        .post(format!("{base}/up"))
        .header("Content-Length", size.to_string())
        .body(reqwest::Body::wrap_stream(payload(size)))
        .send()
        .await?
        .error_for_status()?;
    let up = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut stream = client.get(format!("{base}/down")).send().await?.error_for_status()?.bytes_stream();
    let mut got = 0u64;
    while let Some(chunk) = stream.next().await {
        got += chunk?.len() as u64;
    }
    let down = started.elapsed().as_secs_f64();
    server.abort();
    anyhow::ensure!(got == size, "ceiling download returned {got} bytes");
    Ok((up, down))
}
