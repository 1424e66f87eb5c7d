//! Every event type signed and verifiable, one event per drop across instances, and the
//! deliveries listing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use leasehold_tests::handoff::{claim, claim_path, issue};
use leasehold_tests::mailbox::{Mailbox, create_raw};
use leasehold_tests::receiver::{Receiver, verify};
use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests, checkpoint, fast_expiry, test_webhooks};
use serde_json::{Value, json};

use super::{deliveries, settled, worker_for};

backend_tests!(
    every_event_type_arrives_signed_and_verifiable,
    drops_on_two_instances_make_one_event_each,
    deliveries_are_paged_and_owner_only,
);

async fn every_event_type_arrives_signed_and_verifiable(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(&backend, |c| {
        fast_expiry(c);
        test_webhooks(c);
    })
    .await;
    let _worker = worker_for(&app).await;
    let (_, key) = app.create_account(1_000_000).await;
    let caused = cause_every_event(&app, &key, &receiver.url()).await;

    let got = receiver.wait_for(7, Duration::from_secs(30)).await;
    let by_type: BTreeMap<String, Vec<Value>> = got.iter().fold(BTreeMap::new(), |mut m, r| {
        m.entry(r.json()["type"].as_str().unwrap_or_default().to_owned()).or_default().push(r.json());
        m
    });
    assert_eq!(got.len(), 7, "5 mailbox events + 2 lease.expired: {by_type:#?}");
    for r in &got {
        let body = r.json();
        let secret = match body["lease_id"].as_str() {
            Some(id) if id == caused.mailbox.lease_id => caused.secret.as_str(),
            Some(id) if Some(id) == caused.stored["lease_id"].as_str() => "plain-secret-1",
            _ => "whsec_c2VjcmV0LWJ5dGVz",
        };
        verify(r, secret);
        assert!(body["occurred_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{body}");
    }
    check_event_fields(&by_type, &caused);

    let events = settled(&app, &key, &caused.mailbox.lease_id, 5).await;
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

/// What [`cause_every_event`] created, as the API answered it.
struct Caused {
    /// The Mailbox's creation answer.
    created: Value,
    /// The Mailbox's minted secret.
    secret: String,
    mailbox: Mailbox,
    /// The drop's answer.
    dropped: Value,
    /// The Handoff's answer.
    issued: Value,
    /// The Storage lease's answer.
    stored: Value,
}

/// Causes every event type: a Mailbox (with an expiry warning) gets a drop and a Handoff
/// claimed to exhaustion; a Storage lease with a secret of the caller's own (not
/// `whsec_`) and a Checkpoint expire after a second.
async fn cause_every_event(app: &TestApp, key: &str, hook: &str) -> Caused {
    let (status, created) =
        create_raw(app, key, 4096, 5, &[("X-Webhook-Url", hook), ("X-Expiry-Warning-Seconds", "3")]).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["webhook_secret"].as_str().expect("minted secret").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let mailbox = Mailbox {
        lease_id: created["lease_id"].as_str().expect("id").to_owned(),
        drop_url: created["drop_url"].as_str().expect("drop_url").to_owned(),
        created: created.clone(),
    };
    let (status, dropped) = mailbox.drop_into(app, "application/json", r#"{"hello":"world"}"#).await;
    assert_eq!(status, 201, "{dropped}");
    let (status, issued) = issue(app, key, &mailbox.lease_id, json!({"max_claims": 1})).await;
    assert_eq!(status, 201, "{issued}");
    let (status, _, _) = claim(app, &claim_path(&issued)).await;
    assert_eq!(status, 200);

    // A Storage lease with a secret of the caller's own (not whsec_), and a Checkpoint.
    let mut upload = Upload::new(key, "a.txt", &b"abc"[..]).with("X-Webhook-Url", hook);
    upload = upload.with("X-Webhook-Secret", "plain-secret-1");
    upload.duration = 1;
    let (status, stored) = upload.send(app).await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["webhook_secret"], Value::Null, "a given secret is not echoed");
    let (status, cp) = checkpoint::create(
        app,
        key,
        "wf-hooks",
        "{}",
        &[("X-Duration-Seconds", "1"), ("X-Webhook-Url", hook), ("X-Webhook-Secret", "whsec_c2VjcmV0LWJ5dGVz")],
    )
    .await;
    assert_eq!(status, 201, "{cp}");
    Caused { created, secret, mailbox, dropped, issued, stored }
}

/// The fields of each of the Mailbox's events, and one `lease.expired` per variant.
fn check_event_fields(by_type: &BTreeMap<String, Vec<Value>>, caused: &Caused) {
    let Caused { created, mailbox, dropped, issued, .. } = caused;
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
}

async fn drops_on_two_instances_make_one_event_each(backend: Backend) {
    let receiver = Receiver::start().await;
    let a = TestApp::spawn_with(&backend, |c| {
        test_webhooks(c);
        leasehold_tests::no_drop_limits(c);
    })
    .await;
    let b = a.second_instance().await;
    let _worker = worker_for(&a).await;
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
    let got = receiver.wait_for(100, Duration::from_secs(30)).await;
    let delivered: BTreeSet<String> =
        got.iter().map(|r| r.json()["message_id"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(delivered, ids, "one event per drop");
    let seqs: BTreeSet<i64> = got.iter().filter_map(|r| r.json()["seq"].as_i64()).collect();
    assert_eq!(seqs, (1..=100).collect(), "every seq once");
    let events = settled(&a, &key, &mailbox.lease_id, 100).await;
    assert!(events.iter().all(|e| e["state"] == "delivered"));
}

async fn deliveries_are_paged_and_owner_only(backend: Backend) {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(&backend, |c| {
        test_webhooks(c);
        leasehold_tests::no_drop_limits(c);
    })
    .await;
    let _worker = worker_for(&app).await;
    let (_, key) = app.create_account(1_000_000).await;
    let (_, stranger) = app.create_account(1_000_000).await;
    let mailbox = Mailbox::create(&app, &key, 4096, &[("X-Webhook-Url", &receiver.url())]).await;
    for i in 0..5 {
        mailbox.drop_into(&app, "text/plain", format!("m{i}")).await;
    }
    let all = settled(&app, &key, &mailbox.lease_id, 5).await;
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
}
