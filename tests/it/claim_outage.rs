//! Claims fail closed (SPEC §7): when the database goes away while a one-shot claim
//! streams, the count cannot commit, so the body ends broken; once the database is back
//! the slot is given back, and across every claimer at most `max_claims` complete bodies
//! exist, each of them counted. Runs on a throwaway PostgreSQL cluster.

use std::time::Duration;

use futures_util::StreamExt;
use leasehold_tests::pg_cluster::PgCluster;
use leasehold_tests::upload::Upload;
use leasehold_tests::{TestApp, handoff};
use serde_json::json;

use crate::faults::{Tally, read_body};

const SIZE: usize = 50 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_whose_count_cannot_commit_ends_broken_and_never_yields_an_extra_body() {
    let Some(pg) = PgCluster::start().await else { return };
    let url = pg.create_database("leasehold").await;
    let app = TestApp::spawn_on_database(url, |c| c.database_acquire_timeout = Duration::from_secs(2)).await;
    let (_, key) = app.create_account(100_000_000).await;
    let mut tally = Tally::new("database stopped mid-claim");
    for round in 0..2 {
        let (status, stored) = Upload::new(&key, "big.bin", vec![3u8; SIZE]).send(&app).await;
        assert_eq!(status, 201, "{stored}");
        let lease = stored["lease_id"].as_str().expect("lease");
        let (_, issued) = handoff::issue(&app, &key, lease, json!({"max_claims": 1})).await;
        let claim_url = app.url(&handoff::claim_path(&issued));
        let res = app.client.get(&claim_url).send().await.expect("claim");
        assert_eq!(res.status(), 200);
        let mut stream = res.bytes_stream();
        let mut first = 0;
        while first < (1 << 20) {
            first += stream.next().await.expect("a chunk").expect("bytes").len();
        }
        pg.stop().await;
        first += read_body(&mut stream, Duration::ZERO).await.0;
        tally.check(first < SIZE, || format!("round {round}: the first claimer got all {first} bytes uncounted"));
        pg.start_again().await;
        // Once the slot is given back, another claimer may take it; try for a while.
        let mut complete = usize::from(first == SIZE);
        for _ in 0..30 {
            let res = app.client.get(&claim_url).send().await.expect("claim");
            match res.status().as_u16() {
                200 => {
                    complete += usize::from(read_body(&mut res.bytes_stream(), Duration::ZERO).await.0 == SIZE);
                    break;
                }
                409 | 503 => tokio::time::sleep(Duration::from_millis(500)).await,
                other => panic!("unexpected {other}"),
            }
        }
        let handoff_id = issued["handoff_id"].as_str().expect("id");
        let (_, h) = app.get_json(&key, &format!("/api/handoffs/{handoff_id}")).await;
        let counted = h["claims_completed"].as_u64().unwrap_or(u64::MAX) as usize;
        tally.check(complete <= 1 && complete <= counted, || {
            format!("round {round}: {complete} complete bodies, {counted} counted: {h}")
        });
        tally.check(complete == 1, || format!("round {round}: the slot never came back ({complete} complete bodies)"));
    }
    tally.finish();
}
