//! A database outage: requests answer `503 unavailable` with `Retry-After` within the
//! acquire timeout (not after half a minute in the pool's queue), and the service recovers
//! by itself when the database is back. Runs on a throwaway PostgreSQL cluster.

use std::time::{Duration, Instant};

use leasehold_tests::pg_cluster::PgCluster;
use leasehold_tests::upload::Upload;
use leasehold_tests::{TestApp, eventually};
use serde_json::Value;

const ACQUIRE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_database_answers_503_within_the_acquire_timeout_and_recovery_needs_no_restart() {
    let Some(pg) = PgCluster::start().await else { return };
    let url = pg.create_database("leasehold").await;
    let app = TestApp::spawn_on_database(url, |c| c.database_acquire_timeout = ACQUIRE).await;
    let (_, key) = app.create_account(1_000_000).await;
    assert_eq!(Upload::new(&key, "before.txt", "before").send(&app).await.0, 201);

    pg.stop().await;
    let reads = ["/v1/account", "/api/leases", "/v1/account/ledger"];
    for path in reads {
        let started = Instant::now();
        let res = app.client.get(app.url(path)).bearer_auth(&key).send().await.expect("request");
        assert_unavailable(res, started, path).await;
    }
    let started = Instant::now();
    let res = Upload::new(&key, "during.txt", "during").request(&app).send().await.expect("upload");
    assert_unavailable(res, started, "POST /api/store").await;

    pg.start_again().await;
    let back = eventually(Duration::from_secs(15), || async {
        (app.get_json(&key, "/v1/account").await.0 == 200).then_some(())
    })
    .await;
    assert!(back.is_some(), "requests succeed again once the database is back");
    assert_eq!(Upload::new(&key, "after.txt", "after").send(&app).await.0, 201);
    let (status, body) = app.get_json(&key, "/api/leases").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(2), "{body}");
}

async fn assert_unavailable(res: reqwest::Response, started: Instant, what: &str) {
    let elapsed = started.elapsed();
    assert_eq!(res.status(), 503, "{what}");
    let retry_after = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert!(retry_after.is_some_and(|v| v.parse::<u64>().is_ok()), "{what}: Retry-After in seconds");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["code"], "unavailable", "{what}: {body}");
    assert!(elapsed < ACQUIRE + Duration::from_secs(1), "{what} took {elapsed:?}");
}
