//! Webhooks (SPEC §8): every event type signed and verifiable, retries with one
//! `webhook-id`, `Retry-After`, 410, the SSRF guard at creation and at delivery, secrets at
//! rest, the deliveries listing, and delivery surviving a `kill -9` of the worker.

mod events;
mod guard;
mod retries;

use std::collections::BTreeSet;
use std::time::Duration;

use leasehold_tests::mailbox::Mailbox;
use leasehold_tests::receiver::Receiver;
use leasehold_tests::{Backend, TestApp, backend_tests, eventually, fast_expiry, test_webhooks};
use serde_json::Value;

use crate::worker_process::spawn_worker_process;

backend_tests!(killing_the_worker_loses_no_event);

/// A worker for the distributed shape (the embedded one runs inside the API).
async fn worker_for(app: &TestApp) -> Option<leasehold_tests::WorkerHandle> {
    match app.backend().is_distributed() {
        true => Some(app.start_worker().await),
        false => None,
    }
}

async fn deliveries(app: &TestApp, key: &str, lease_id: &str) -> Vec<Value> {
    let (status, body) = app.get_json(key, &format!("/api/leases/{lease_id}/deliveries")).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().expect("items").clone()
}

/// Waits until every event of the lease is settled (not pending) and returns them.
async fn settled(app: &TestApp, key: &str, lease_id: &str, count: usize) -> Vec<Value> {
    let done = eventually(Duration::from_secs(30), || async {
        let items = deliveries(app, key, lease_id).await;
        (items.len() == count && items.iter().all(|e| e["state"] != "pending")).then_some(items)
    })
    .await;
    match done {
        Some(items) => items,
        None => panic!("events of {lease_id} not settled: {:#?}", deliveries(app, key, lease_id).await),
    }
}

async fn killing_the_worker_loses_no_event(backend: Backend) {
    // Each answer takes 400 ms, so attempts are in flight when the worker dies.
    let receiver = Receiver::start_with(Vec::new(), Duration::from_millis(400)).await;
    let app = TestApp::spawn_with(&backend, |c| {
        fast_expiry(c);
        test_webhooks(c);
        leasehold_tests::no_drop_limits(c);
        c.worker.embedded = false;
        c.webhook.timeout = Duration::from_secs(2);
    })
    .await;
    let (_, key) = app.create_account(1_000_000).await;
    let mailbox = Mailbox::create(&app, &key, 1 << 20, &[("X-Webhook-Url", &receiver.url())]).await;
    let count = 40;
    for i in 0..count {
        let (status, _) = mailbox.drop_into(&app, "text/plain", format!("m{i}")).await;
        assert_eq!(status, 201);
    }
    let logs = app.state.config.data_dir.clone();
    let mut first = spawn_worker_process(app.worker_env(), &logs.join("hooks-worker-1.log"));
    let started = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert!(!started.is_empty(), "the first worker started delivering");
    first.start_kill().expect("SIGKILL");
    first.wait().await.expect("reaped child");
    let at_kill = receiver.received().len();
    let mut second = spawn_worker_process(app.worker_env(), &logs.join("hooks-worker-2.log"));
    let all = eventually(Duration::from_secs(60), || async {
        let seen: BTreeSet<String> = receiver.received().iter().map(|r| r.header("webhook-id").to_owned()).collect();
        (seen.len() == count).then_some(seen)
    })
    .await;
    let log = |n: u32| std::fs::read_to_string(logs.join(format!("hooks-worker-{n}.log"))).unwrap_or_default();
    assert!(
        all.is_some(),
        "after a kill -9 with {at_kill} requests received, every event still arrived ({} distinct)\nfirst:\n{}\nsecond:\n{}",
        receiver.received().iter().map(|r| r.header("webhook-id").to_owned()).collect::<BTreeSet<_>>().len(),
        log(1),
        log(2)
    );
    let events = settled(&app, &key, &mailbox.lease_id, count).await;
    second.start_kill().expect("stop second worker");
    assert!(events.iter().all(|e| e["state"] == "delivered"), "{events:#?}");
    let mut tally = crate::faults::Tally::new("worker killed mid-delivery");
    for event in &events {
        tally.check(event["state"] == "delivered", || format!("{event}"));
    }
    tally.finish();
}
