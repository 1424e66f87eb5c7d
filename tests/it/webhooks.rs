//! Webhooks (SPEC §8): every event type signed and verifiable, retries with one
//! `webhook-id`, `Retry-After`, 410, the SSRF guard at creation and at delivery, secrets at
//! rest, the deliveries listing, and delivery surviving a `kill -9` of the worker.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use leasehold_tests::handoff::{claim, claim_path, issue};
use leasehold_tests::mailbox::{Mailbox, create_raw};
use leasehold_tests::receiver::{Answer, Receiver, verify};
use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests, checkpoint, eventually, fast_expiry, test_webhooks};
use serde_json::{Value, json};

use crate::worker_process::spawn_worker_process;

backend_tests!(
    every_event_type_arrives_signed_and_verifiable,
    failed_attempts_are_retried_with_the_same_webhook_id,
    retry_after_is_honoured,
    a_410_stops_every_delivery_of_the_lease,
    drops_on_two_instances_make_one_event_each,
    killing_the_worker_loses_no_event,
    deliveries_are_paged_and_owner_only,
);

pub(crate) async fn deliveries(app: &TestApp, key: &str, lease_id: &str) -> Vec<Value> {
    let (status, body) = app.get_json(key, &format!("/api/leases/{lease_id}/deliveries")).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().expect("items").clone()
}

/// Starts an instance whose jobs the test runs (`run_jobs`), on a clock the test moves.
async fn harness_app(backend: &Backend, adjust: impl FnOnce(&mut leasehold_core::Config)) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        test_webhooks(c);
        c.worker.embedded = false;
        adjust(c);
    })
    .await
}

/// Every event of the lease, which must all be settled (not pending) by now.
async fn settled_now(app: &TestApp, key: &str, lease_id: &str, count: usize) -> Vec<Value> {
    let items = deliveries(app, key, lease_id).await;
    assert!(items.len() == count && items.iter().all(|e| e["state"] != "pending"), "not settled: {items:#?}");
    items
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

async fn every_event_type_arrives_signed_and_verifiable(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = harness_app(&backend, fast_expiry).await;
    let (_, key) = app.create_account(1_000_000).await;
    let hook = receiver.url();
    let (status, created) =
        create_raw(&app, &key, 4096, 5, &[("X-Webhook-Url", &hook), ("X-Expiry-Warning-Seconds", "3")]).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["webhook_secret"].as_str().expect("minted secret").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let mailbox = Mailbox {
        lease_id: created["lease_id"].as_str().expect("id").to_owned(),
        drop_url: created["drop_url"].as_str().expect("drop_url").to_owned(),
        created: created.clone(),
    };
    let (status, dropped) = mailbox.drop_into(&app, "application/json", r#"{"hello":"world"}"#).await;
    assert_eq!(status, 201, "{dropped}");
    let (status, issued) = issue(&app, &key, &mailbox.lease_id, json!({"max_claims": 1})).await;
    assert_eq!(status, 201, "{issued}");
    let (status, _, _) = claim(&app, &claim_path(&issued)).await;
    assert_eq!(status, 200);

    // A Storage lease with a secret of the caller's own (not whsec_), and a Checkpoint.
    let mut upload = Upload::new(&key, "a.txt", &b"abc"[..]).with("X-Webhook-Url", hook.as_str());
    upload = upload.with("X-Webhook-Secret", "plain-secret-1");
    upload.duration = 1;
    let (status, stored) = upload.send(&app).await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["webhook_secret"], Value::Null, "a given secret is not echoed");
    let (status, cp) = checkpoint::create(
        &app,
        &key,
        "wf-hooks",
        "{}",
        &[("X-Duration-Seconds", "1"), ("X-Webhook-Url", &hook), ("X-Webhook-Secret", "whsec_c2VjcmV0LWJ5dGVz")],
    )
    .await;
    assert_eq!(status, 201, "{cp}");

    app.run_jobs().await;
    assert_eq!(receiver.received().len(), 3, "the drop and the handoff's events at once");
    // The warning 3 s before the mailbox's end, the 1 s leases' expiry, then the mailbox's.
    app.advance_and_run_jobs(Duration::from_secs(3)).await;
    assert_eq!(receiver.received().len(), 6, "lease.expiring and two lease.expired");
    app.advance_and_run_jobs(Duration::from_secs(3)).await;
    let got = receiver.received();
    let by_type: BTreeMap<String, Vec<Value>> = got.iter().fold(BTreeMap::new(), |mut m, r| {
        m.entry(r.json()["type"].as_str().unwrap_or_default().to_owned()).or_default().push(r.json());
        m
    });
    assert_eq!(got.len(), 7, "5 mailbox events + 2 lease.expired: {by_type:#?}");
    for r in &got {
        let body = r.json();
        let secret = match body["lease_id"].as_str() {
            Some(id) if id == mailbox.lease_id => secret.as_str(),
            Some(id) if Some(id) == stored["lease_id"].as_str() => "plain-secret-1",
            _ => "whsec_c2VjcmV0LWJ5dGVz",
        };
        verify(r, secret);
        assert!(body["occurred_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{body}");
    }
    let one = |t: &str| by_type.get(t).and_then(|v| v.iter().find(|e| e["lease_id"] == mailbox.lease_id)).cloned();
    let received = one("mailbox.message.received").expect("mailbox.message.received");
    assert_eq!(received["message_id"], dropped["message_id"]);
    assert_eq!(received["seq"], 1);
    assert_eq!(received["size_bytes"], 17);
    assert_eq!(received["content_type"], "application/json");
    assert_eq!(received["received_at"], dropped["received_at"]);
    let claimed = one("handoff.claimed").expect("handoff.claimed");
    assert_eq!(
        (claimed["handoff_id"].clone(), claimed["claims_used"].clone()),
        (issued["handoff_id"].clone(), json!(1))
    );
    assert_eq!(claimed["claims_remaining"], 0);
    let exhausted = one("handoff.exhausted").expect("handoff.exhausted");
    assert_eq!(exhausted["max_claims"], 1);
    let expiring = one("lease.expiring").expect("lease.expiring");
    assert_eq!(expiring["expires_in_seconds"], 3);
    assert_eq!(expiring["expires_at"], created["expires_at"]);
    let expired = one("lease.expired").expect("lease.expired");
    assert_eq!(expired["variant"], "mailbox");
    assert_eq!(by_type["lease.expired"].len(), 3, "every variant's expiry is an event");

    let events = settled_now(&app, &key, &mailbox.lease_id, 5).await;
    for e in &events {
        assert_eq!((e["state"].as_str(), e["attempts"].as_i64()), (Some("delivered"), Some(1)), "{e}");
        assert_eq!(e["last_status_code"], 200);
        assert_eq!(e["next_attempt_at"], Value::Null);
        assert!(e["event_id"].as_str().is_some_and(|id| id.starts_with("evt_")));
    }
    let ids: BTreeSet<&str> = events.iter().filter_map(|e| e["event_id"].as_str()).collect();
    let sent: BTreeSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(ids.is_subset(&sent), "the listed ids are the webhook-ids sent");
}

async fn failed_attempts_are_retried_with_the_same_webhook_id(backend: Backend) {
    let fail = Answer { status: 500, retry_after: None };
    let receiver = Receiver::start_with(vec![fail.clone(), fail.clone(), fail], Duration::ZERO).await;
    let app = harness_app(&backend, |_| {}).await;
    receiver.follow(&app.state.clock);
    let (_, key) = app.create_account(1_000_000).await;
    let mailbox = Mailbox::create(&app, &key, 4096, &[("X-Webhook-Url", &receiver.url())]).await;
    let secret = mailbox.created["webhook_secret"].as_str().expect("secret").to_owned();
    let (status, _) = mailbox.drop_into(&app, "text/plain", "once").await;
    assert_eq!(status, 201);
    app.run_jobs().await;
    for attempt in 2..=4 {
        assert_eq!(receiver.received().len(), attempt - 1, "the next attempt waits for its instant");
        // One second by the schedule, and the queue's whole seconds.
        app.advance_and_run_jobs(Duration::from_secs(2)).await;
    }
    let got = receiver.received();
    assert_eq!(got.iter().map(|r| r.answered).collect::<Vec<_>>(), vec![500, 500, 500, 200]);
    let ids: BTreeSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 1, "one webhook-id across retries");
    assert!(got.iter().all(|r| r.body == got[0].body), "the same body each time");
    for (a, b) in got.iter().zip(got.iter().skip(1)) {
        let gap = b.at_ms.expect("clock") - a.at_ms.expect("clock");
        assert!(gap >= 900, "retries follow the 1 s schedule (gap {gap} ms)");
    }
    got.iter().for_each(|r| verify(r, &secret));
    let events = settled_now(&app, &key, &mailbox.lease_id, 1).await;
    assert_eq!(events[0]["state"], "delivered");
    assert_eq!(events[0]["attempts"], 4);
    assert_eq!(events[0]["last_status_code"], 200);
    assert_eq!(events[0]["last_error"], Value::Null);
    app.advance_and_run_jobs(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), 4, "exactly one successful delivery, nothing after it");
}

async fn retry_after_is_honoured(backend: Backend) {
    let busy = Answer { status: 503, retry_after: Some("3") };
    let receiver = Receiver::start_with(vec![busy], Duration::ZERO).await;
    let app = harness_app(&backend, |_| {}).await;
    receiver.follow(&app.state.clock);
    let (_, key) = app.create_account(1_000_000).await;
    let mailbox = Mailbox::create(&app, &key, 4096, &[("X-Webhook-Url", &receiver.url())]).await;
    mailbox.drop_into(&app, "text/plain", "x").await;
    app.run_jobs().await;
    let items = deliveries(&app, &key, &mailbox.lease_id).await;
    let pending = items.first().filter(|e| e["attempts"] == 1).cloned().expect("first attempt recorded");
    assert_eq!(pending["state"], "pending");
    assert_eq!(pending["last_status_code"], 503);
    assert_eq!(pending["last_error"], "HTTP 503");
    assert!(pending["next_attempt_at"].is_string(), "{pending}");
    app.advance_and_run_jobs(Duration::from_secs(1)).await;
    assert_eq!(receiver.received().len(), 1, "not retried after the schedule's 1 s");
    app.advance_and_run_jobs(Duration::from_secs(3)).await;
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    let gap = got[1].at_ms.expect("clock") - got[0].at_ms.expect("clock");
    assert!(gap >= 2900, "Retry-After: 3 was honoured (gap {gap} ms, schedule says 1 s)");
}

async fn a_410_stops_every_delivery_of_the_lease(backend: Backend) {
    let gone = Answer { status: 410, retry_after: None };
    let receiver = Receiver::start_with(vec![gone], Duration::ZERO).await;
    let app = harness_app(&backend, |_| {}).await;
    let (_, key) = app.create_account(1_000_000).await;
    let mailbox = Mailbox::create(&app, &key, 4096, &[("X-Webhook-Url", &receiver.url())]).await;
    mailbox.drop_into(&app, "text/plain", "first").await;
    app.run_jobs().await;
    let events = settled_now(&app, &key, &mailbox.lease_id, 1).await;
    assert_eq!(events[0]["state"], "failed");
    assert_eq!(events[0]["last_status_code"], 410);
    assert!(events[0]["last_error"].as_str().is_some_and(|e| e.contains("410")), "{}", events[0]);
    for i in 0..3 {
        let (status, _) = mailbox.drop_into(&app, "text/plain", format!("after {i}")).await;
        assert_eq!(status, 201, "drops still work");
    }
    app.advance_and_run_jobs(Duration::from_secs(3)).await;
    assert_eq!(receiver.received().len(), 1, "no attempt after the 410");
    let (_, lease) = app.get_json(&key, &format!("/api/leases/{}", mailbox.lease_id)).await;
    assert_eq!(lease["lease"]["webhook_url"], Value::Null, "the lease no longer has a receiver: {lease}");
}

async fn drops_on_two_instances_make_one_event_each(backend: Backend) {
    let receiver = Receiver::start().await;
    let a = harness_app(&backend, leasehold_tests::no_drop_limits).await;
    let b = a.second_instance().await;
    let (_, key) = a.create_account(1_000_000).await;
    let mailbox = Mailbox::create(&a, &key, 1 << 20, &[("X-Webhook-Url", &receiver.url())]).await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (m, app) = (mailbox.clone(), if i % 2 == 0 { a.client.clone() } else { b.client.clone() });
        let url = if i % 2 == 0 { a.url(m.drop_path()) } else { b.url(m.drop_path()) };
        tasks.push(tokio::spawn(async move {
            let res = app.post(url).body(format!("m{i}")).send().await.expect("drop");
            assert_eq!(res.status(), 201);
            res.json::<Value>().await.expect("json")["message_id"].as_str().expect("id").to_owned()
        }));
    }
    let mut ids = BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.expect("task"));
    }
    a.run_jobs().await;
    let got = receiver.received();
    let delivered: BTreeSet<String> =
        got.iter().map(|r| r.json()["message_id"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(delivered, ids, "one event per drop");
    let seqs: BTreeSet<i64> = got.iter().filter_map(|r| r.json()["seq"].as_i64()).collect();
    assert_eq!(seqs, (1..=100).collect(), "every seq once");
    let events = settled_now(&a, &key, &mailbox.lease_id, 100).await;
    assert!(events.iter().all(|e| e["state"] == "delivered"));
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

async fn deliveries_are_paged_and_owner_only(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = harness_app(&backend, leasehold_tests::no_drop_limits).await;
    let (_, key) = app.create_account(1_000_000).await;
    let (_, stranger) = app.create_account(1_000_000).await;
    let mailbox = Mailbox::create(&app, &key, 4096, &[("X-Webhook-Url", &receiver.url())]).await;
    for i in 0..5 {
        mailbox.drop_into(&app, "text/plain", format!("m{i}")).await;
    }
    app.run_jobs().await;
    let all = settled_now(&app, &key, &mailbox.lease_id, 5).await;
    let path = format!("/api/leases/{}/deliveries", mailbox.lease_id);
    let (status, first) = app.get_json(&key, &format!("{path}?limit=2")).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["items"].as_array().map(Vec::len), Some(2));
    let cursor = first["next_cursor"].as_str().expect("a full page has a cursor").to_owned();
    let (_, rest) = app.get_json(&key, &format!("{path}?limit=10&cursor={cursor}")).await;
    let mut ids: Vec<Value> = first["items"].as_array().expect("items").iter().map(|e| e["event_id"].clone()).collect();
    ids.extend(rest["items"].as_array().expect("items").iter().map(|e| e["event_id"].clone()));
    assert_eq!(ids, all.iter().map(|e| e["event_id"].clone()).collect::<Vec<_>>(), "pages in order, nothing twice");
    assert_eq!(rest["next_cursor"], Value::Null);
    for (query, code) in [("?limit=0", 400), ("?limit=1001", 400), ("?cursor=nope", 400), ("?limit=x", 400)] {
        let (status, body) = app.get_json(&key, &format!("{path}{query}")).await;
        assert_eq!((status, body["code"].as_str()), (code, Some("bad_request")), "{query}: {body}");
    }
    let (status, body) = app.get_json(&stranger, &path).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "another account's lease: {body}");
    let (status, _) = app.get_json(&key, "/api/leases/lse_nope/deliveries").await;
    assert_eq!(status, 404);
    let res = app.client.get(app.url(&path)).send().await.expect("no auth");
    assert_eq!(res.status(), 401);
    // A deleted lease's deliveries stay readable until its tombstone is reaped.
    let res = app.client.delete(app.url(&format!("/api/leases/{}", mailbox.lease_id))).bearer_auth(&key).send().await;
    assert_eq!(res.expect("delete").status(), 200);
    assert_eq!(deliveries(&app, &key, &mailbox.lease_id).await.len(), 5);
    app.run_jobs().await;
    assert_eq!(deliveries(&app, &key, &mailbox.lease_id).await.len(), 5, "also once its bytes are purged");
}
