//! The checks that read the database and the bucket: claims against the handoff rows,
//! balances against the ledger, webhook events against what the receiver got, blobs
//! against rows — while leases live, and once every lease has expired and been purged.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use leasehold_core::blob::BlobStore;
use leasehold_core::config::{BlobConfig, S3Config};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Statement};

use super::Options;
use super::cluster::{Cluster, ORPHAN_AGE_SECONDS, REAP_INTERVAL_SECONDS};
use super::report::{Check, Record};
use super::workload::Load;

async fn rows(db: &DatabaseConnection, sql: &str) -> anyhow::Result<Vec<QueryResult>> {
    Ok(db.query_all_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned())).await?)
}

fn text(row: &QueryResult, col: &str) -> String {
    row.try_get::<String>("", col).unwrap_or_default()
}

fn int(row: &QueryResult, col: &str) -> i64 {
    row.try_get::<i64>("", col).unwrap_or(i64::MIN)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The store the pods write to, for listing.
pub async fn store(opts: &Options, cluster: &Cluster) -> anyhow::Result<BlobStore> {
    Ok(BlobStore::open(&BlobConfig::S3(S3Config {
        bucket: opts.s3_bucket.clone(),
        endpoint: Some(opts.s3_endpoint.clone()),
        region: "us-east-1".into(),
        force_path_style: true,
        prefix: cluster.s3_prefix.clone(),
        part_size: 8 * 1024 * 1024,
        credentials: None,
    }))
    .await?)
}

/// The lease id of a blob key `leases/<id>/…`.
fn lease_of(key: &str) -> Option<&str> {
    key.strip_prefix("leases/")?.split('/').next()
}

/// Claims: the bodies received whole ≤ the count the handoff row committed ≤ max_claims,
/// and the count plus the slots still in flight never passes max_claims.
pub async fn claims(db: &DatabaseConnection, load: &Load, record: &Record) -> anyhow::Result<()> {
    let tokens = load.tokens.lock().map(|t| t.clone()).unwrap_or_default();
    let counted: HashMap<String, (i64, i64, i64)> =
        rows(db, "SELECT id, max_claims, claims_completed, claims_in_flight FROM handoff")
            .await?
            .iter()
            .map(|r| (text(r, "id"), (int(r, "max_claims"), int(r, "claims_completed"), int(r, "claims_in_flight"))))
            .collect();
    for (id, max, whole) in tokens {
        let Some(&(row_max, completed, in_flight)) = counted.get(&id) else {
            record.check(Check::Claims, false, || format!("{id}: no handoff row"));
            continue;
        };
        let held = row_max == max && whole <= completed && completed + in_flight <= max;
        record.check(Check::Claims, held, || {
            format!("{id}: max {max}, {whole} whole bodies, {completed} counted, {in_flight} in flight")
        });
    }
    Ok(())
}

/// Balances against the ledger, and one charge per lease equal to its cost.
pub async fn balances(db: &DatabaseConnection, record: &Record) -> anyhow::Result<()> {
    let sql = "SELECT a.id, a.balance_micros, \
        (COALESCE(SUM(CASE WHEN e.kind = 'credit' THEN e.amount_micros END), 0) \
         - COALESCE(SUM(CASE WHEN e.kind = 'charge' THEN e.amount_micros END), 0))::BIGINT AS ledger \
        FROM account a LEFT JOIN ledger_entry e ON e.account_id = a.id GROUP BY a.id, a.balance_micros";
    for r in rows(db, sql).await? {
        let (balance, ledger) = (int(&r, "balance_micros"), int(&r, "ledger"));
        record.check(Check::Balances, balance == ledger, || {
            format!("account {}: balance {balance}, ledger {ledger}", text(&r, "id"))
        });
    }
    let sql = "SELECT l.id, l.cost_micros, COUNT(e.id)::BIGINT AS charges, COALESCE(SUM(e.amount_micros), 0)::BIGINT AS charged \
        FROM lease l LEFT JOIN ledger_entry e ON e.lease_id = l.id AND e.kind = 'charge' \
        WHERE l.owner_kind = 'account' GROUP BY l.id, l.cost_micros";
    for r in rows(db, sql).await? {
        let (cost, charges, charged) = (int(&r, "cost_micros"), int(&r, "charges"), int(&r, "charged"));
        record.check(Check::Balances, charges == 1 && charged == cost, || {
            format!("lease {}: cost {cost}, {charges} charges totalling {charged}", text(&r, "id"))
        });
    }
    Ok(())
}

/// Waits (up to `patience`) for no event to be pending, then: every event was received
/// with valid signatures, and no delivery failed verification.
pub async fn webhooks(db: &DatabaseConnection, load: &Load, record: &Record, patience: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + patience;
    loop {
        let pending = rows(db, "SELECT COUNT(*)::BIGINT AS n FROM webhook_event WHERE state = 'pending'").await?;
        if pending.first().map(|r| int(r, "n")) == Some(0) || Instant::now() > until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for r in rows(db, "SELECT id, event_type, state, attempts FROM webhook_event").await? {
        let id = text(&r, "id");
        let (valid, _) = load.hooks.deliveries(&id);
        record.check(Check::Webhooks, valid > 0, || {
            format!(
                "{id} ({}): state {}, {} attempts, never received valid",
                text(&r, "event_type"),
                text(&r, "state"),
                int(&r, "attempts")
            )
        });
    }
    for id in load.hooks.invalid() {
        record.check(Check::Webhooks, false, || format!("{id}: a delivery failed signature verification"));
    }
    Ok(())
}

/// Blob keys committed rows reference, by lease, with the lease's state and expiry.
async fn referenced(db: &DatabaseConnection) -> anyhow::Result<Vec<(String, String, String, i64)>> {
    let sql = "SELECT o.blob_key, l.id, l.state, l.expires_at FROM storage_object o JOIN lease l ON l.id = o.lease_id \
        UNION ALL SELECT m.blob_key, l.id, l.state, l.expires_at FROM mailbox_message m JOIN lease l ON l.id = m.lease_id \
        UNION ALL SELECT v.blob_key, l.id, l.state, l.expires_at FROM checkpoint_version v JOIN lease l ON l.id = v.lease_id";
    Ok(rows(db, sql)
        .await?
        .iter()
        .map(|r| (text(r, "blob_key"), text(r, "id"), text(r, "state"), int(r, "expires_at")))
        .collect())
}

/// While leases live (the workload just stopped): every live lease's referenced blob
/// exists, and every blob older than the orphan age (plus a reap) is referenced.
pub async fn blobs_live(db: &DatabaseConnection, store: &BlobStore, record: &Record) -> anyhow::Result<()> {
    let refs = referenced(db).await?;
    let listed = store.list("leases/").await?;
    let now = now_ms();
    let keys: HashSet<&str> = listed.iter().map(|e| e.key.as_str()).collect();
    for (key, lease, state, expires_at) in &refs {
        // A lease within seconds of its end may be purged under our feet.
        if state != "active" || *expires_at < now + 5_000 {
            continue;
        }
        record.check(Check::LeaseHasBlob, keys.contains(key.as_str()), || {
            format!("{lease}: {key} is referenced but not stored")
        });
    }
    let referenced: HashSet<&str> = refs.iter().map(|(k, ..)| k.as_str()).collect();
    let grace = ((ORPHAN_AGE_SECONDS + 3 * REAP_INTERVAL_SECONDS) * 1000) as i64;
    for entry in &listed {
        if entry.modified_ms > now - grace {
            continue;
        }
        record.check(Check::BlobHasLease, referenced.contains(entry.key.as_str()), || {
            format!(
                "{} ({} bytes, {} s old) is referenced by no row",
                entry.key,
                entry.size,
                (now - entry.modified_ms) / 1000
            )
        });
    }
    Ok(())
}

/// Once every lease has ended: waits for each to be purged, then no lease has a row
/// referencing bytes, and the bucket prefix is empty (orphans reaped too).
pub async fn blobs_gone(
    db: &DatabaseConnection,
    store: &BlobStore,
    record: &Record,
    patience: Duration,
) -> anyhow::Result<()> {
    let until = Instant::now() + patience;
    loop {
        let waiting = rows(db, "SELECT COUNT(*)::BIGINT AS n FROM lease WHERE purged_at IS NULL").await?;
        let listed = store.list("leases/").await?;
        let left = waiting.first().map(|r| int(r, "n")).unwrap_or(i64::MAX);
        if (left == 0 && listed.is_empty()) || Instant::now() > until {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let listed = store.list("leases/").await?;
    let leases = rows(db, "SELECT id, state, expires_at, purged_at FROM lease").await?;
    let by_lease: HashMap<&str, usize> =
        listed.iter().filter_map(|e| lease_of(&e.key)).fold(HashMap::new(), |mut m, l| {
            *m.entry(l).or_default() += 1;
            m
        });
    for r in &leases {
        let id = text(r, "id");
        let purged = r.try_get::<Option<i64>>("", "purged_at").ok().flatten().is_some();
        let objects = by_lease.get(id.as_str()).copied().unwrap_or(0);
        record.check(Check::ExpiredGone, purged && objects == 0, || {
            format!("{id} ({}): purged {purged}, {objects} objects left", text(r, "state"))
        });
    }
    let known: HashSet<String> = leases.iter().map(|r| text(r, "id")).collect();
    // Once every lease has ended and the orphan age has passed, the prefix must be empty.
    record.check(Check::BlobHasLease, listed.is_empty(), || format!("{} objects left in the bucket", listed.len()));
    for entry in &listed {
        let owned = lease_of(&entry.key).is_some_and(|l| known.contains(l));
        record.check(Check::BlobHasLease, false, || format!("{} left in the bucket (lease row: {owned})", entry.key));
    }
    let refs = referenced(db).await?;
    record.check(Check::ExpiredGone, refs.is_empty(), || format!("{} blob rows left after every purge", refs.len()));
    Ok(())
}
