use std::time::Duration;

use futures_util::StreamExt;
use leasehold_tests::handoff::{claim, claim_path, issue};
use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests, eventually};
use serde_json::{Value, json};

backend_tests!(
    a_one_shot_token_streams_to_exactly_one_of_100_claimers_on_two_instances,
    ten_claims_among_100_claimers_give_exactly_ten_full_bodies,
    a_claimer_that_disconnects_halfway_gives_its_slot_back,
);

fn file(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// 100 claimers at once, alternating between the two instances; the number of full
/// bodies, and every other status.
async fn stampede(a: &TestApp, b: &TestApp, path: &str, expected: &[u8]) -> (usize, Vec<u16>) {
    let mut tasks = Vec::new();
    for i in 0..100 {
        let app = if i % 2 == 0 { a } else { b };
        let req = app.client.get(app.url(path));
        tasks.push(tokio::spawn(async move {
            let res = req.send().await.expect("claim");
            let status = res.status().as_u16();
            (status, res.bytes().await.unwrap_or_default())
        }));
    }
    let (mut full, mut others) = (0, Vec::new());
    for t in tasks {
        match t.await.expect("task") {
            (200, body) => {
                assert_eq!(body.as_ref(), expected, "a 200 always carries the whole file");
                full += 1;
            }
            (status, _) => others.push(status),
        }
    }
    (full, others)
}

async fn a_one_shot_token_streams_to_exactly_one_of_100_claimers_on_two_instances(backend: Backend) {
    let a = TestApp::spawn(&backend).await;
    let b = a.second_instance().await;
    let (_, key) = a.create_account(10_000).await;
    let bytes = file(256 * 1024);
    let (_, created) = Upload::new(&key, "f.bin", bytes.clone()).send(&a).await;
    let (_, issued) = issue(&a, &key, created["lease_id"].as_str().expect("id"), json!({})).await;
    let (full, others) = stampede(&a, &b, &claim_path(&issued), &bytes).await;
    assert_eq!(full, 1, "{others:?}");
    assert!(others.iter().all(|s| *s == 409 || *s == 410), "{others:?}");
    let (status, _, _) = claim(&a, &claim_path(&issued)).await;
    assert_eq!(status, 410, "exhausted afterwards");
}

async fn ten_claims_among_100_claimers_give_exactly_ten_full_bodies(backend: Backend) {
    let a = TestApp::spawn(&backend).await;
    let b = a.second_instance().await;
    let (_, key) = a.create_account(10_000).await;
    let bytes = file(64 * 1024);
    let (_, created) = Upload::new(&key, "f.bin", bytes.clone()).send(&a).await;
    let (_, issued) = issue(&a, &key, created["lease_id"].as_str().expect("id"), json!({ "max_claims": 10 })).await;
    let path = claim_path(&issued);
    // Claimers that were told 409 retry until the handoff is exhausted.
    let mut full = 0;
    for _ in 0..20 {
        let (got, others) = stampede(&a, &b, &path, &bytes).await;
        full += got;
        assert!(others.iter().all(|s| *s == 409 || *s == 410), "{others:?}");
        if !others.contains(&409) {
            break;
        }
    }
    assert_eq!(full, 10);
    let id = issued["handoff_id"].as_str().expect("id");
    let settled = eventually(Duration::from_secs(5), || async {
        let (_, shown) = a.get_json(&key, &format!("/api/handoffs/{id}")).await;
        (shown["claims_in_flight"] == 0).then_some(shown)
    })
    .await
    .expect("settled");
    assert_eq!(settled["claims_completed"], 10);
}

async fn a_claimer_that_disconnects_halfway_gives_its_slot_back(backend: Backend) {
    let a = TestApp::spawn(&backend).await;
    let b = a.second_instance().await;
    let (_, key) = a.create_account(10_000).await;
    let bytes = file(64 * 1024 * 1024);
    let (_, created) = Upload::new(&key, "big.bin", bytes.clone()).send(&a).await;
    let (_, issued) = issue(&a, &key, created["lease_id"].as_str().expect("id"), json!({})).await;
    let path = claim_path(&issued);
    // Read about half, then hang up (the file is larger than loopback socket buffers, so
    // the server cannot have handed all of it over yet).
    let client = reqwest::Client::new();
    let res = client.get(a.url(&path)).send().await.expect("claim");
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    let mut got = 0;
    while got < bytes.len() / 2 {
        got += stream.next().await.expect("chunk").expect("bytes").len();
    }
    let (status, _, body) = claim(&b, &path).await;
    assert_eq!(status, 409, "the slot is held while the first transfer runs");
    assert_eq!(serde_json::from_slice::<Value>(&body).expect("json")["code"], "claim_in_progress");
    drop(stream);
    drop(client);
    let id = issued["handoff_id"].as_str().expect("id");
    let freed = eventually(Duration::from_secs(10), || async {
        let (_, shown) = a.get_json(&key, &format!("/api/handoffs/{id}")).await;
        (shown["claims_in_flight"] == 0).then_some(shown)
    })
    .await
    .expect("slot given back");
    assert_eq!(freed["claims_completed"], 0);
    assert_eq!(freed["claims"][0]["outcome"], "failed");
    let (status, _, body) = claim(&b, &path).await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), bytes.len(), "the next claimer gets the whole file");
    assert!(body.as_ref() == bytes.as_slice());
}
