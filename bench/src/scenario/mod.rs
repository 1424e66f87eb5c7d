//! The production-shape scenario (issue 16): nginx in front of N `leasehold-api` pods and
//! M `leasehold-worker`s on PostgreSQL + S3; a mixed workload for a bounded time while
//! pods and workers are SIGKILLed and restarted at random; then the invariants, printed as
//! tried / held / violated, and p50/p99 per operation. `--compare-pods 1,3` instead runs
//! the same workload without faults once per pod count and prints the throughputs.

mod checks;
mod cluster;
mod hooks;
mod report;
mod workload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use cluster::Cluster;
use report::Record;
use workload::Load;

/// Options of the scenario.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// The `leasehold-api` binary.
    #[arg(long, default_value = "target/release/leasehold-api")]
    pub api_bin: String,
    /// The `leasehold-worker` binary.
    #[arg(long, default_value = "target/release/leasehold-worker")]
    pub worker_bin: String,
    /// The nginx binary.
    #[arg(long, default_value = "nginx")]
    pub nginx_bin: String,
    /// The script that renders nginx's config from the compose file's template.
    #[arg(long, default_value = "docker/render-nginx.sh")]
    pub nginx_render: String,
    /// PostgreSQL server URL; the run creates (and drops) its own database on it.
    #[arg(long)]
    pub database_url: String,
    /// S3 endpoint (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
    #[arg(long)]
    pub s3_endpoint: String,
    /// S3 bucket (must exist); the run writes under its own prefix.
    #[arg(long)]
    pub s3_bucket: String,
    /// API pods behind nginx.
    #[arg(long, default_value_t = 3)]
    pub pods: usize,
    /// Worker processes.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Seconds of workload.
    #[arg(long, default_value_t = 300.0)]
    pub seconds: f64,
    /// Largest upload, in MiB (one upload in eight is 1 byte .. this).
    #[arg(long, default_value_t = 64)]
    pub max_upload_mib: u64,
    /// Seconds between faults (each pause is 0.5–1.5× this).
    #[arg(long, default_value_t = 8.0)]
    pub fault_every: f64,
    /// Run without faults.
    #[arg(long)]
    pub no_faults: bool,
    /// Multiplies the workload's tasks (2 storage, 1 claim, 2 mailbox, 1 checkpoint).
    #[arg(long, default_value_t = 1)]
    pub load: usize,
    /// Instead of the checked run: the workload, without faults, once per pod count
    /// (e.g. `1,3`), each on a fresh database; prints the throughputs side by side.
    #[arg(long, value_delimiter = ',')]
    pub compare_pods: Vec<usize>,
}

/// Workload tasks per kind: storage, claims, mailboxes, checkpoints.
const TASKS: [(&str, usize); 4] = [("storage", 2), ("claims", 1), ("mailbox", 2), ("checkpoint", 1)];

pub async fn run(opts: &Options) -> anyhow::Result<()> {
    println!(
        "machine: {} cores; nginx {}; {} pods, {} workers; {} s of workload; faults {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        nginx_version(opts).await,
        opts.pods,
        opts.workers,
        opts.seconds,
        if opts.no_faults || !opts.compare_pods.is_empty() {
            "off".to_owned()
        } else {
            format!("every ~{} s", opts.fault_every)
        }
    );
    if !opts.compare_pods.is_empty() {
        return compare(opts).await;
    }
    let mut cluster = Cluster::start(opts, opts.pods, opts.workers, "run").await?;
    let outcome = checked_run(opts, &mut cluster).await;
    let violations = match outcome {
        Ok(v) => v,
        Err(e) => {
            let dir = cluster.dir.keep();
            println!("kept the logs in {}", dir.display());
            return Err(e);
        }
    };
    if violations > 0 {
        let dir = cluster.dir.keep();
        println!("kept the logs in {}", dir.display());
        anyhow::bail!("{violations} violations");
    }
    cluster.stop().await?;
    println!("no violations");
    Ok(())
}

async fn nginx_version(opts: &Options) -> String {
    let out = tokio::process::Command::new(&opts.nginx_bin).arg("-v").output().await;
    out.map(|o| String::from_utf8_lossy(&o.stderr).trim().trim_start_matches("nginx version: ").to_owned())
        .unwrap_or_else(|e| format!("? ({e})"))
}

/// Accounts through the balancer, each with a large opening credit.
async fn accounts(client: &reqwest::Client, base: &str, n: usize) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for i in 0..n {
        let res = client
            .post(format!("{base}/admin/accounts"))
            .bearer_auth(cluster::ADMIN)
            .json(&serde_json::json!({ "name": format!("scenario-{i}"), "credit_micros": 1_000_000_000_000i64 }))
            .send()
            .await?;
        let body: serde_json::Value = res.error_for_status()?.json().await?;
        let id = body["account_id"].as_str().context("account_id")?.to_owned();
        out.push((id, body["api_key"].as_str().context("api_key")?.to_owned()));
    }
    Ok(out)
}

/// Starts the workload tasks; they stop at the load's deadline.
fn spawn_load(load: &Arc<Load>, factor: usize) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let mut n = 0;
    for (kind, count) in TASKS {
        for _ in 0..count * factor.max(1) {
            n += 1;
            let load = load.clone();
            tasks.push(match kind {
                "storage" => tokio::spawn(load.storage_task(n)),
                "claims" => tokio::spawn(load.claim_task(n)),
                "mailbox" => tokio::spawn(load.mailbox_task(n)),
                _ => tokio::spawn(load.checkpoint_task(n)),
            });
        }
    }
    tasks
}

/// Credits accounts now and then while the workload runs (the ledger check covers both).
async fn credits(client: reqwest::Client, base: String, accounts: Vec<(String, String)>, until: Instant) {
    let mut i = 0;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (id, _) = &accounts[i % accounts.len()];
        i += 1;
        let _ = client
            .post(format!("{base}/admin/accounts/{id}/credits"))
            .bearer_auth(cluster::ADMIN)
            .json(&serde_json::json!({ "amount_micros": 1000 + i, "memo": "scenario" }))
            .send()
            .await;
    }
}

/// SIGKILLs a random pod or worker every ~`fault_every` seconds and starts it again
/// 0.5–3 s later; never more than one down at a time.
async fn faults(cluster: &mut Cluster, every: f64, until: Instant) -> anyhow::Result<Vec<String>> {
    let mut seed = std::process::id() as u64 | 1;
    let mut roll = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n.max(1)
    };
    let mut crashes = Vec::new();
    loop {
        let pause = Duration::from_secs_f64(every * (0.5 + roll(1000) as f64 / 1000.0));
        if Instant::now() + pause >= until {
            break;
        }
        tokio::time::sleep(pause).await;
        crashes.extend(cluster.crashes());
        let total = (cluster.pods.len() + cluster.workers.len()) as u64;
        let pick = roll(total) as usize;
        let victim = if pick < cluster.pods.len() {
            &mut cluster.pods[pick]
        } else {
            &mut cluster.workers[pick - cluster.pods.len()]
        };
        victim.kill().await?;
        tokio::time::sleep(Duration::from_millis(500 + roll(2500))).await;
        victim.start().await?;
    }
    crashes.extend(cluster.crashes());
    Ok(crashes)
}

/// The accounts, the record and the workload of a run on `cluster` (with its webhook
/// receiver started).
async fn prepare(
    opts: &Options,
    client: &reqwest::Client,
    cluster: &Cluster,
) -> anyhow::Result<(Vec<(String, String)>, Arc<Record>, Arc<Load>)> {
    let accounts = accounts(client, &cluster.base, 4).await?;
    let record = Arc::new(Record::default());
    let hooks = hooks::Receiver::start().await?;
    let keys = accounts.iter().map(|(_, k)| k.clone()).collect();
    let load =
        Arc::new(Load::new(cluster.base.clone(), keys, record.clone(), hooks, opts.seconds, opts.max_upload_mib << 20));
    Ok((accounts, record, load))
}

/// The checked run; returns the number of violations.
async fn checked_run(opts: &Options, cluster: &mut Cluster) -> anyhow::Result<u64> {
    let client = reqwest::Client::new();
    let (accounts, record, load) = prepare(opts, &client, cluster).await?;
    let started = Instant::now();
    let tasks = spawn_load(&load, opts.load);
    let crediting = tokio::spawn(credits(client.clone(), cluster.base.clone(), accounts.clone(), load.deadline));
    let crashes = if opts.no_faults {
        tokio::time::sleep_until(load.deadline.into()).await;
        cluster.crashes()
    } else {
        faults(cluster, opts.fault_every, load.deadline).await?
    };
    // Tasks finish the step they are in (a mailbox's reader catch-up takes up to ~15 s).
    for task in tasks {
        task.await?;
    }
    crediting.await?;
    let seconds = started.elapsed().as_secs_f64();
    let kills: Vec<String> =
        cluster.pods.iter().chain(cluster.workers.iter()).map(|p| format!("{} ×{}", p.name, p.kills)).collect();
    println!("workload: {seconds:.0} s; SIGKILLs: {}", kills.join(", "));
    cluster.heal().await?;
    let db = leasehold_core::db::connect_url(&cluster.database_url, 2).await?;
    let store = checks::store(opts, cluster).await?;
    checks::blobs_live(&db, &store, &record).await?;
    checks::claims(&db, &load, &record).await?;
    // Every lease lives at most 60 s; the workers purge them, the reaper takes orphans.
    println!("waiting for every lease to end and be purged, and for the webhooks…");
    checks::blobs_gone(&db, &store, &record, Duration::from_secs(150)).await?;
    checks::webhooks(&db, &load, &record, Duration::from_secs(60)).await?;
    checks::balances(&db, &record).await?;
    for crash in &crashes {
        println!("✘ {crash}");
    }
    println!();
    let violations = record.print(seconds);
    Ok(violations + crashes.len() as u64)
}

/// The same workload through each pod count, without faults; throughputs side by side.
async fn compare(opts: &Options) -> anyhow::Result<()> {
    let mut results = Vec::new();
    for &pods in &opts.compare_pods {
        let cluster = Cluster::start(opts, pods, opts.workers, &format!("p{pods}")).await?;
        let (_, record, load) = prepare(opts, &reqwest::Client::new(), &cluster).await?;
        let db = leasehold_core::db::connect_url(&cluster.database_url, 1).await?;
        let commits_before = commits(&db).await?;
        let started = Instant::now();
        let tasks = spawn_load(&load, opts.load);
        let waits = sample_waits(&db, load.deadline).await?;
        for task in tasks {
            task.await?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let commits = (commits(&db).await? - commits_before) as f64 / seconds;
        println!("== {pods} pod(s): {commits:.0} PostgreSQL commits/s");
        record.print_ops(seconds);
        println!("PostgreSQL sessions of this database seen waiting, sampled every 250 ms (what they waited on):");
        let mut waits: Vec<_> = waits.into_iter().collect();
        waits.sort_by_key(|w| std::cmp::Reverse(w.1));
        for (what, n) in waits.iter().take(8) {
            println!("  {n:>6}  {what}");
        }
        results.push((pods, seconds, record.completed()));
        cluster.stop().await?;
    }
    println!();
    let ops: std::collections::BTreeSet<&str> = results.iter().flat_map(|(_, _, c)| c.keys().copied()).collect();
    print!("{:<14}", "ok/s");
    for (pods, ..) in &results {
        print!(" {:>10}", format!("{pods} pod(s)"));
    }
    println!(" {:>8}", "ratio");
    for op in ops.iter().copied().chain(std::iter::once("all")) {
        print!("{op:<14}");
        let rates: Vec<f64> = results
            .iter()
            .map(|(_, s, c)| {
                if op == "all" {
                    c.values().sum::<u64>() as f64 / s
                } else {
                    c.get(op).copied().unwrap_or(0) as f64 / s
                }
            })
            .collect();
        for r in &rates {
            print!(" {r:>10.1}");
        }
        let ratio = match (rates.first(), rates.last()) {
            (Some(a), Some(b)) if *a > 0.0 => b / a,
            _ => 0.0,
        };
        println!(" {ratio:>8.2}");
    }
    Ok(())
}

/// Transactions committed in the database so far.
async fn commits(db: &sea_orm::DatabaseConnection) -> anyhow::Result<i64> {
    let sql = "SELECT xact_commit::BIGINT AS n FROM pg_stat_database WHERE datname = current_database()";
    let row = sea_orm::ConnectionTrait::query_one_raw(
        db,
        sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, sql.to_owned()),
    )
    .await?
    .context("pg_stat_database")?;
    Ok(row.try_get::<i64>("", "n")?)
}

/// Until `until`, every 250 ms: the wait events of this database's active sessions
/// (query text elided), counted: which lock or I/O the load queues on.
async fn sample_waits(
    db: &sea_orm::DatabaseConnection,
    until: Instant,
) -> anyhow::Result<std::collections::HashMap<String, u64>> {
    let sql = "SELECT COALESCE(wait_event_type, 'CPU') || ':' || COALESCE(wait_event, 'running') || ' ' || \
        COALESCE(substring(regexp_replace(query, '\\s+', ' ', 'g') from 1 for 60), '') AS what \
        FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()";
    let mut seen = std::collections::HashMap::new();
    while Instant::now() < until {
        let rows = sea_orm::ConnectionTrait::query_all_raw(
            db,
            sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, sql.to_owned()),
        )
        .await?;
        for row in rows {
            *seen.entry(row.try_get::<String>("", "what").unwrap_or_default()).or_insert(0) += 1;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(seen)
}
