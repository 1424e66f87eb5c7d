//! Expiry benchmark: N leases whose expiry instants fall in one window, purged by a worker;
//! deletion lag (purge time − expiry instant) p50/p99/max and deletions per second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures_util::StreamExt;
use leasehold_core::blob::{BlobStore, lease_key};
use leasehold_core::leases::{Owner, Variant, base_lease};
use leasehold_core::queue::{self, EndLease, RunAt};
use leasehold_core::{Clock, Config, accounts};
use leasehold_entities::{lease, storage_object};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Set,
};

use crate::{BlobBackend, Target};

/// Runs the benchmark: `leases` leases expiring evenly over `window` seconds, starting
/// `lead` seconds after they are all created.
pub async fn run(target: &Target, leases: usize, window: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = Arc::new(config(target, dir.path()).await?);
    let db = leasehold_core::db::connect(&config).await?;
    leasehold_core::db::migrate(&db).await?;
    leasehold_core::queue::setup(&db, &config.database_url).await?;
    let blobs = BlobStore::open(&config.blob).await?;
    let account = accounts::create(&db, "bench", i64::MAX / 4, Clock::system().now_ms()).await?.account;

    // Create everything first; the window opens 5 s after creation ends.
    let created = Instant::now();
    let ids: Vec<String> = (0..leases).map(|_| leasehold_core::ids::lease_id()).collect();
    put_objects(&blobs, &ids).await?;
    let owner = Owner::account(&account.id);
    // With a window, it opens after setup (rows go in at well over 2 per ms); without one,
    // every lease is already expired when the worker starts: a backlog.
    let lead_ms = if window == 0 { 0 } else { 5_000 + (leases as i64) / 2 };
    let start = Clock::system().now_ms() + lead_ms;
    write_leases(&db, &ids, &owner, start, window).await?;
    let setup = created.elapsed().as_secs_f64();
    anyhow::ensure!(window == 0 || Clock::system().now_ms() < start, "setup took longer than the lead time");
    let worker_started = Clock::system().now_ms();
    purge_with_worker(&db, &blobs, &config, window).await?;
    report(&db, &blobs, target, &config, Outcome { leases, window, setup, worker_started }).await
}

/// Stores every lease's object.
async fn put_objects(blobs: &BlobStore, ids: &[String]) -> anyhow::Result<()> {
    let body = Bytes::from_static(b"expiring bytes");
    let puts: Vec<anyhow::Result<u64>> = futures_util::stream::iter(ids.to_vec())
        .map(|id| {
            let (blobs, body) = (blobs.clone(), body.clone());
            async move { Ok(blobs.put_bytes(&lease_key(&id, "object"), body).await?) }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    puts.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    Ok(())
}

/// Writes the leases, their objects' rows and their `EndLease` jobs, 1000 to a
/// transaction; expiry instants spread evenly over `window` seconds from `start`.
async fn write_leases(
    db: &DatabaseConnection,
    ids: &[String],
    owner: &Owner,
    start: i64,
    window: u64,
) -> anyhow::Result<()> {
    let window_ms = i64::try_from(window * 1000)?;
    for (chunk_no, chunk) in ids.chunks(1000).enumerate() {
        let txn = leasehold_core::db::begin_write(db).await?;
        let now = Clock::system().now_ms();
        for (i, id) in chunk.iter().enumerate() {
            let n = i64::try_from(chunk_no * 1000 + i)?;
            let expires_at = start + n * window_ms / i64::try_from(ids.len())?;
            let mut row = base_lease(id, Variant::Storage, owner, 14, 29, 60, now);
            row.expires_at = Set(expires_at);
            row.insert(&txn).await?;
            storage_object::ActiveModel {
                lease_id: Set(id.clone()),
                blob_key: Set(lease_key(id, "object")),
                file_name: Set("bench.txt".into()),
                content_type: Set("text/plain".into()),
                size_bytes: Set(14),
                sha256: Set(String::new()),
                created_at: Set(now),
            }
            .insert(&txn)
            .await?;
            queue::enqueue(
                &txn,
                &EndLease { lease_id: id.as_str().into() },
                RunAt::NotBefore(expires_at),
                Some(format!("expire:{id}")),
                now,
            )
            .await?;
        }
        txn.commit().await?;
    }
    Ok(())
}

/// Runs a worker until every lease is purged (or the window plus 10 minutes passes).
async fn purge_with_worker(
    db: &DatabaseConnection,
    blobs: &BlobStore,
    config: &Arc<Config>,
    window: u64,
) -> anyhow::Result<()> {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(leasehold_worker::WorkerMetrics::register(&mut registry));
    let ctx =
        leasehold_worker::WorkerContext::new(db.clone(), blobs.clone(), Clock::system(), config.clone(), metrics)?;
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(leasehold_worker::run(ctx, stop.clone().cancelled_owned()));
    let deadline = Instant::now() + Duration::from_secs(window + 600);
    loop {
        let left = lease::Entity::find().filter(lease::Column::PurgedAt.is_null()).count(db).await?;
        if left == 0 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "{left} leases still unpurged");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    worker.await??;
    Ok(())
}

/// What a run did, for its report.
struct Outcome {
    leases: usize,
    window: u64,
    /// Seconds spent creating everything.
    setup: f64,
    /// When the worker started (unix ms).
    worker_started: i64,
}

/// Prints deletion lag percentiles and deletions per second.
async fn report(
    db: &DatabaseConnection,
    blobs: &BlobStore,
    target: &Target,
    config: &Config,
    outcome: Outcome,
) -> anyhow::Result<()> {
    let Outcome { leases, window, setup, worker_started } = outcome;
    let rows: Vec<(i64, Option<i64>)> = lease::Entity::find()
        .select_only()
        .column(lease::Column::ExpiresAt)
        .column(lease::Column::PurgedAt)
        .into_tuple()
        .all(db)
        .await?;
    // Lag counts from the expiry instant, or from the worker's start for a backlog.
    let base = |e: i64| e.max(worker_started);
    let mut lags: Vec<i64> = rows.iter().map(|(e, p)| p.unwrap_or(*e) - base(*e)).collect();
    lags.sort_unstable();
    let pct = |p: f64| lags[((lags.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0;
    let first_expiry = rows.iter().map(|r| base(r.0)).min().context("no rows")?;
    let last_purge = rows.iter().filter_map(|r| r.1).max().context("no purge")?;
    let span = (last_purge - first_expiry) as f64 / 1000.0;
    let left = blobs.list("leases/").await?.len();
    let shape = if target.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    let what = if window == 0 { "a backlog of".to_owned() } else { format!("over {window} s:") };
    println!(
        "expiry benchmark: {what} {leases} leases, blob store {:?}, metadata {shape}, worker concurrency {}",
        target.backend, config.worker.concurrency
    );
    println!("  setup {setup:.1} s; objects left after purge: {left}");
    println!(
        "  deletion lag: p50 {:.2} s, p99 {:.2} s, max {:.2} s (target p99 <= 5 s)",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!("  deletions per second: {:.0} (from first expiry to last purge, {span:.1} s)", leases as f64 / span);
    Ok(())
}

async fn config(target: &Target, dir: &std::path::Path) -> anyhow::Result<Config> {
    let mut env = std::collections::BTreeMap::new();
    env.insert("LEASEHOLD_DATA_DIR".to_owned(), dir.display().to_string());
    env.insert("LEASEHOLD_SECRET_KEY".to_owned(), crate::server::SECRET_KEY.to_owned());
    if let Some(url) = &target.database_url {
        let name = format!("lh_bench_expiry_{}", std::process::id());
        let admin = leasehold_core::db::connect_url(url, 1).await?;
        sea_orm::ConnectionTrait::execute_unprepared(&admin, &format!("DROP DATABASE IF EXISTS {name}")).await?;
        sea_orm::ConnectionTrait::execute_unprepared(&admin, &format!("CREATE DATABASE {name}")).await?;
        env.insert("LEASEHOLD_DATABASE_URL".to_owned(), crate::server::replace_db(url, &name));
        env.insert("LEASEHOLD_DATABASE_MAX_CONNECTIONS".to_owned(), "40".to_owned());
    }
    if target.backend == BlobBackend::S3 {
        env.insert("LEASEHOLD_BLOB_STORE".to_owned(), "s3".to_owned());
        env.insert("LEASEHOLD_S3_BUCKET".to_owned(), target.s3_bucket.clone().context("--s3-bucket")?);
        env.insert("LEASEHOLD_S3_ENDPOINT".to_owned(), target.s3_endpoint.clone().context("--s3-endpoint")?);
        env.insert("LEASEHOLD_S3_FORCE_PATH_STYLE".to_owned(), "true".to_owned());
        env.insert("LEASEHOLD_S3_PREFIX".to_owned(), format!("bench-expiry-{}", std::process::id()));
    }
    Ok(Config::from_sources(&env, &Default::default())?)
}
