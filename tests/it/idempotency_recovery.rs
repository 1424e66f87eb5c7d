//! `Idempotency-Key` claims of crashed processes: a `pending` claim whose heartbeat went
//! quiet is taken over by a retry within a minute, exactly once across pods; a live
//! holder, whose heartbeat keeps running, still gets `409 idempotency_in_progress`.

use std::time::Duration;

use leasehold_core::idempotency::{HEARTBEAT_MS, STALE_PENDING_MS};
use leasehold_entities::idempotency_key;
use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests, eventually};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::Value;

backend_tests!(
    a_claim_left_by_a_dead_holder_is_taken_over_by_the_retry,
    two_pods_racing_on_a_stale_claim_create_once,
    a_live_holder_keeps_its_claim_past_the_stale_age,
    a_holder_whose_claim_was_taken_over_commits_nothing,
);

const NAME: &str = "retry.txt";
const BODY: &str = "retry me";

fn stale_age() -> Duration {
    Duration::from_millis(STALE_PENDING_MS.unsigned_abs())
}

async fn claim_row(app: &TestApp, key: &str) -> Option<idempotency_key::Model> {
    idempotency_key::Entity::find().filter(idempotency_key::Column::Key.eq(key)).one(&app.state.db).await.expect("row")
}

/// Leaves a `pending` claim on `key` for the test upload, as a process that crashed mid
/// request would, with its last heartbeat at `heartbeat_at`. Scope and fingerprint are
/// those of a real request, sent first with another key.
async fn crashed_claim(app: &TestApp, api_key: &str, key: &str, heartbeat_at: i64) {
    let probe = format!("probe-{key}");
    assert_eq!(Upload::new(api_key, NAME, BODY).with("Idempotency-Key", probe.as_str()).send(app).await.0, 201);
    let real = claim_row(app, &probe).await.expect("probe claim");
    idempotency_key::ActiveModel {
        id: Set(leasehold_core::ids::row_id()),
        scope: Set(real.scope),
        key: Set(key.to_owned()),
        fingerprint: Set(real.fingerprint),
        state: Set(leasehold_entities::idempotency_key::KeyState::Pending),
        status_code: Set(None),
        response_body: Set(None),
        created_at: Set(heartbeat_at),
        heartbeat_at: Set(Some(heartbeat_at)),
    }
    .insert(&app.state.db)
    .await
    .expect("crashed claim");
}

async fn lease_count(app: &TestApp, api_key: &str) -> usize {
    let (_, leases) = app.get_json(api_key, "/api/leases").await;
    leases["items"].as_array().expect("items").len()
}

async fn a_claim_left_by_a_dead_holder_is_taken_over_by_the_retry(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    crashed_claim(&app, &key, "crashed", app.state.now()).await;
    let retry = Upload::new(&key, NAME, BODY).with("Idempotency-Key", "crashed");
    // While its heartbeat is fresh the holder counts as alive.
    let res = retry.request(&app).send().await.expect("retry");
    assert_eq!(res.status(), 409);
    assert_eq!(res.headers()["retry-after"], "1");
    assert_eq!(res.json::<Value>().await.expect("json")["code"], "idempotency_in_progress");
    // Once it has been quiet for the stale age (well under a minute), the retry proceeds.
    app.state.clock.advance(stale_age() + Duration::from_secs(1));
    assert!(stale_age() <= Duration::from_secs(60));
    let res = retry.request(&app).send().await.expect("retry");
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("idempotent-replayed").is_none());
    let replay = retry.request(&app).send().await.expect("replay");
    assert_eq!((replay.status().as_u16(), replay.headers()["idempotent-replayed"].to_str().ok()), (201, Some("true")));
    assert_eq!(lease_count(&app, &key).await, 2, "the probe and the retry");
}

async fn two_pods_racing_on_a_stale_claim_create_once(backend: Backend) {
    let a = TestApp::spawn(&backend).await;
    let b = a.second_instance().await;
    let (_, key) = a.create_account(10_000).await;
    // Quiet for a minute: dead, by the rule that a holder is detected within about one.
    let quiet_since = a.state.now() - 60_000;
    crashed_claim(&a, &key, "race", quiet_since).await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let app = if i % 2 == 0 { &a } else { &b };
        let req = Upload::new(&key, NAME, BODY).with("Idempotency-Key", "race").request(app);
        tasks.push(tokio::spawn(async move {
            let res = req.send().await.expect("upload");
            (res.status().as_u16(), res.headers().get("idempotent-replayed").is_some())
        }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.expect("task") {
            (201, false) => created += 1,
            (201, true) | (409, _) => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(created, 1, "exactly one request took the stale claim over");
    assert_eq!(lease_count(&a, &key).await, 2, "the probe and one creation");
}

async fn a_live_holder_keeps_its_claim_past_the_stale_age(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    // A holder whose body is still arriving: it claimed the key and is alive.
    let (tx, holder) = slow_holder(&app, &key, "slow").await;
    let claimed_at = claim_row(&app, "slow").await.expect("claimed").created_at;
    // Time passes for the holder; its heartbeat (every HEARTBEAT_MS) records it.
    app.state.clock.advance(stale_age() - Duration::from_secs(5));
    let beat_wait = Duration::from_millis(HEARTBEAT_MS.unsigned_abs()) + Duration::from_secs(5);
    let beat = eventually(beat_wait, || async {
        claim_row(&app, "slow").await.filter(|r| r.heartbeat_at.is_some_and(|h| h > claimed_at))
    })
    .await;
    assert!(beat.is_some(), "the holder's heartbeat refreshed its claim");
    // Past the stale age since the claim, but not since the heartbeat: still in progress.
    app.state.clock.advance(stale_age() - Duration::from_secs(5));
    let retry = Upload::new(&key, NAME, BODY).with("Idempotency-Key", "slow");
    let (status, body) = retry.send(&app).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("idempotency_in_progress")));
    // The holder finishes; the retry replays its answer.
    tx.send(Ok(bytes::Bytes::from_static(b" me"))).await.expect("last part");
    drop(tx);
    assert_eq!(holder.await.expect("holder"), 201);
    let res = retry.request(&app).send().await.expect("replay");
    assert_eq!((res.status().as_u16(), res.headers()["idempotent-replayed"].to_str().ok()), (201, Some("true")));
}

type Sender = tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>;

/// Starts the test upload with `key` whose body stalls after its first part, and waits
/// until it holds its claim; finish it by sending `" me"` and dropping the sender.
async fn slow_holder(app: &TestApp, api_key: &str, key: &str) -> (Sender, tokio::task::JoinHandle<u16>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    let slow = Upload::new(api_key, NAME, BODY)
        .with("Idempotency-Key", key)
        .request(app)
        .body(reqwest::Body::wrap_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))));
    let holder = tokio::spawn(async move { slow.send().await.expect("slow upload").status().as_u16() });
    tx.send(Ok(bytes::Bytes::from_static(b"retry"))).await.expect("first part");
    let claimed = eventually(Duration::from_secs(5), || async { claim_row(app, key).await }).await;
    assert!(claimed.is_some(), "the holder claimed the key");
    (tx, holder)
}

async fn a_holder_whose_claim_was_taken_over_commits_nothing(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000).await;
    let (tx, holder) = slow_holder(&app, &key, "lost").await;
    // Presumed dead (say its database link was cut for a minute), its claim is taken over.
    let old = claim_row(&app, "lost").await.expect("claim");
    idempotency_key::Entity::delete_by_id(old.id.clone()).exec(&app.state.db).await.expect("take over");
    idempotency_key::ActiveModel { id: Set(leasehold_core::ids::row_id()), ..old.clone().into() }
        .insert(&app.state.db)
        .await
        .expect("the taker's claim");
    // It comes back and finishes: it must not create a second lease.
    tx.send(Ok(bytes::Bytes::from_static(b" me"))).await.expect("last part");
    drop(tx);
    assert_eq!(holder.await.expect("holder"), 409);
    assert_eq!(lease_count(&app, &key).await, 0);
    assert_eq!(app.balance(&key).await, 1_000, "nothing charged");
    assert!(app.blob_keys().await.is_empty(), "its bytes were discarded");
}
