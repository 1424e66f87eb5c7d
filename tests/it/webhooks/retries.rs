//! Retries: failed attempts again with one `webhook-id`, `Retry-After` honoured, and a
//! `410` that stops every delivery of the lease.

use std::collections::BTreeSet;
use std::time::Duration;

use leasehold_tests::mailbox::Mailbox;
use leasehold_tests::receiver::{Answer, Receiver, verify};
use leasehold_tests::{Backend, TestApp, backend_tests, eventually, test_webhooks};
use serde_json::Value;

use super::{deliveries, settled, worker_for};

backend_tests!(
    failed_attempts_are_retried_with_the_same_webhook_id,
    retry_after_is_honoured,
    a_410_stops_every_delivery_of_the_lease,
);

async fn failed_attempts_are_retried_with_the_same_webhook_id(backend: Backend) {
    let fail = Answer { status: 500, retry_after: None };
    let receiver = Receiver::start_with(vec![fail.clone(), fail.clone(), fail], Duration::ZERO).await;
    let app = TestApp::spawn_with(&backend, test_webhooks).await;
    let _worker = worker_for(&app).await;
    let (_, key) = app.create_account(1_000_000).await;
    let mailbox = Mailbox::create(&app, &key, 4096, &[("X-Webhook-Url", &receiver.url())]).await;
    let secret = mailbox.created["webhook_secret"].as_str().expect("secret").to_owned();
    let (status, _) = mailbox.drop_into(&app, "text/plain", "once").await;
    assert_eq!(status, 201);
    let got = receiver.wait_for(4, Duration::from_secs(20)).await;
    assert_eq!(got.iter().map(|r| r.answered).collect::<Vec<_>>(), vec![500, 500, 500, 200]);
    let ids: BTreeSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 1, "one webhook-id across retries");
    assert!(got.iter().all(|r| r.body == got[0].body), "the same body each time");
    for (a, b) in got.iter().zip(got.iter().skip(1)) {
        assert!(b.at.duration_since(a.at) >= Duration::from_millis(900), "retries follow the 1 s schedule");
    }
    got.iter().for_each(|r| verify(r, &secret));
    let events = settled(&app, &key, &mailbox.lease_id, 1).await;
    assert_eq!(events[0]["state"], "delivered");
    assert_eq!(events[0]["attempts"], 4);
    assert_eq!(events[0]["last_status_code"], 200);
    assert_eq!(events[0]["last_error"], Value::Null);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), 4, "exactly one successful delivery, nothing after it");
}

async fn retry_after_is_honoured(backend: Backend) {
    let busy = Answer { status: 503, retry_after: Some("3") };
    let receiver = Receiver::start_with(vec![busy], Duration::ZERO).await;
    let app = TestApp::spawn_with(&backend, test_webhooks).await;
    let _worker = worker_for(&app).await;
    let (_, key) = app.create_account(1_000_000).await;
    let mailbox = Mailbox::create(&app, &key, 4096, &[("X-Webhook-Url", &receiver.url())]).await;
    mailbox.drop_into(&app, "text/plain", "x").await;
    let pending = eventually(Duration::from_secs(10), || async {
        let items = deliveries(&app, &key, &mailbox.lease_id).await;
        items.first().filter(|e| e["attempts"] == 1).cloned()
    })
    .await
    .expect("first attempt recorded");
    assert_eq!(pending["state"], "pending");
    assert_eq!(pending["last_status_code"], 503);
    assert_eq!(pending["last_error"], "HTTP 503");
    assert!(pending["next_attempt_at"].is_string(), "{pending}");
    let got = receiver.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 2);
    let gap = got[1].at.duration_since(got[0].at);
    assert!(gap >= Duration::from_millis(2900), "Retry-After: 3 was honoured (gap {gap:?}, schedule says 1 s)");
}

async fn a_410_stops_every_delivery_of_the_lease(backend: Backend) {
    let gone = Answer { status: 410, retry_after: None };
    let receiver = Receiver::start_with(vec![gone], Duration::ZERO).await;
    let app = TestApp::spawn_with(&backend, test_webhooks).await;
    let _worker = worker_for(&app).await;
    let (_, key) = app.create_account(1_000_000).await;
    let mailbox = Mailbox::create(&app, &key, 4096, &[("X-Webhook-Url", &receiver.url())]).await;
    mailbox.drop_into(&app, "text/plain", "first").await;
    let events = settled(&app, &key, &mailbox.lease_id, 1).await;
    assert_eq!(events[0]["state"], "failed");
    assert_eq!(events[0]["last_status_code"], 410);
    assert!(events[0]["last_error"].as_str().is_some_and(|e| e.contains("410")), "{}", events[0]);
    for i in 0..3 {
        let (status, _) = mailbox.drop_into(&app, "text/plain", format!("after {i}")).await;
        assert_eq!(status, 201, "drops still work");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received().len(), 1, "no attempt after the 410");
    let (_, lease) = app.get_json(&key, &format!("/api/leases/{}", mailbox.lease_id)).await;
    assert_eq!(lease["lease"]["webhook_url"], Value::Null, "the lease no longer has a receiver: {lease}");
}
