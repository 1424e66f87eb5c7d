use std::time::Duration;

use leasehold_entities::{lease, mailbox_message};
use leasehold_tests::mailbox::{Mailbox, SseReader, create_raw};
use leasehold_tests::{Backend, TestApp, backend_tests, eventually, fast_expiry, no_drop_limits};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

backend_tests!(
    a_mailbox_is_priced_on_its_capacity_and_shows_its_urls,
    drops_are_listed_fetched_and_deleted,
    cursor_paging_over_1000_messages_returns_each_exactly_once_in_order,
    an_idempotent_drop_is_stored_once,
    a_full_mailbox_takes_drops_again_as_soon_as_a_message_is_deleted,
    a_replayed_creation_returns_the_same_drop_url_without_storing_it_in_clear,
    a_minted_webhook_secret_is_shown_once_and_sealed_at_rest,
    expiry_removes_every_message_and_ends_the_event_stream,
    a_deleted_mailbox_refuses_drops_and_reads_with_410,
);

async fn a_mailbox_is_priced_on_its_capacity_and_shows_its_urls(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let mb = Mailbox::create(&app, &key, 1024 * 1024, &[]).await;
    let c = &mb.created;
    assert_eq!(c["status"], "ok");
    assert_eq!(c["cost_micros"], "29", "1 MiB for an hour is the minimum charge");
    assert_eq!(c["capacity_bytes"], 1024 * 1024);
    assert_eq!(c["max_message_bytes"], 1024 * 1024, "default: min(capacity, 1 MiB)");
    assert_eq!(c["max_messages"], 10_000);
    assert_eq!(c["webhook_secret"], Value::Null);
    assert!(mb.drop_url.starts_with(&app.url("/api/mailbox/drp_")), "{}", mb.drop_url);
    assert!(mb.drop_url.ends_with("/drop"));
    assert_eq!(c["poll_url"], app.url(&format!("/api/mailbox/{}/messages", mb.lease_id)));
    assert_eq!(app.balance(&key).await, 10_000 - 29);
    let small = Mailbox::create(&app, &key, 1000, &[("X-Max-Messages", "5")]).await;
    assert_eq!(small.created["max_message_bytes"], 1000);
    assert_eq!(small.created["max_messages"], 5);
    let (status, body) = app.get_json(&key, &format!("/api/leases/{}", mb.lease_id)).await;
    assert_eq!(status, 200);
    assert_eq!(body["lease"]["variant"], "mailbox");
    assert_eq!(body["lease"]["capacity_bytes"], 1024 * 1024);
    assert_eq!(body["lease"]["used_bytes"], 0);
    let (_, quote) = app.get_json(&key, "/api/quote?size_bytes=1048576&duration_seconds=3600").await;
    assert_eq!(quote["cost_micros"], c["cost_micros"], "the quote equals the charge");
}

async fn drops_are_listed_fetched_and_deleted(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let mb = Mailbox::create(&app, &key, 10_000, &[]).await;
    let (status, first) = mb.drop_into(&app, "application/json", r#"{"hello":"agent"}"#).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["seq"], 1);
    assert_eq!(first["size_bytes"], 17);
    assert!(first["message_id"].as_str().expect("id").starts_with("msg_"));
    let (status, second) = mb.drop_into(&app, "image/png", vec![0u8, 159, 146, 150]).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["seq"], 2);

    let (status, page) = mb.messages(&app, &key, "").await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], first["message_id"]);
    assert_eq!(items[0]["content_type"], "application/json");
    assert_eq!(items[1]["seq"], 2);
    assert_eq!(page["next_cursor"], 2);
    assert_eq!(page["message_count"], 2);
    assert_eq!(page["used_bytes"], 21);
    assert_eq!(page["capacity_bytes"], 10_000);

    let id = second["message_id"].as_str().expect("id");
    let res = app
        .client
        .get(app.url(&format!("/api/mailbox/{}/messages/{id}", mb.lease_id)))
        .bearer_auth(&key)
        .send()
        .await
        .expect("fetch");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.headers()["x-message-id"], id);
    assert!(res.headers().contains_key("x-received-at"));
    assert_eq!(res.headers()["x-lease-id"], mb.lease_id.as_str());
    assert_eq!(res.bytes().await.expect("body").as_ref(), &[0u8, 159, 146, 150]);

    let res = mb.delete_message(&app, &key, id).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.expect("json"), json!({"status": "ok", "message_id": id, "freed_bytes": 4}));
    let (_, page) = mb.messages(&app, &key, "").await;
    assert_eq!(page["items"].as_array().expect("items").len(), 1);
    assert_eq!((page["used_bytes"].clone(), page["message_count"].clone()), (json!(17), json!(1)));
    let keys = app.blob_keys().await;
    assert_eq!(keys.len(), 1, "the deleted message's bytes are gone: {keys:?}");
    let again = mb.delete_message(&app, &key, id).await;
    assert_eq!(again.status(), 404);
    let (status, third) = mb.drop_into(&app, "text/plain", "after a delete").await;
    assert_eq!((status, third["seq"].clone()), (201, json!(3)), "seq never goes back");
    let (_, page) = mb.messages(&app, &key, "after=1").await;
    assert_eq!(page["items"].as_array().expect("items").len(), 1);
    assert_eq!(page["items"][0]["seq"], 3);
}

async fn cursor_paging_over_1000_messages_returns_each_exactly_once_in_order(backend: Backend) {
    let app = TestApp::spawn_with(&backend, no_drop_limits).await;
    let (_, key) = app.create_account(10_000).await;
    let mb = Mailbox::create(&app, &key, 1024 * 1024, &[]).await;
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let (client, url) = (app.client.clone(), app.url(mb.drop_path()));
        tasks.push(tokio::spawn(async move {
            for i in 0..1000 / 16 + 1 {
                let n = worker + 16 * i;
                if n >= 1000 {
                    break;
                }
                let res = client.post(&url).body(format!("message {n}")).send().await.expect("drop");
                assert_eq!(res.status(), 201);
            }
        }));
    }
    for t in tasks {
        t.await.expect("dropper");
    }
    let mut seen = Vec::new();
    let mut bodies = std::collections::HashSet::new();
    let mut after = 0;
    loop {
        let (status, page) = mb.messages(&app, &key, &format!("after={after}&limit=97")).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().expect("items");
        if items.is_empty() {
            assert_eq!(page["next_cursor"], after, "an empty page keeps the cursor");
            break;
        }
        for item in items {
            seen.push(item["seq"].as_i64().expect("seq"));
            bodies.insert(item["id"].as_str().expect("id").to_owned());
        }
        after = page["next_cursor"].as_i64().expect("cursor");
    }
    assert_eq!(seen, (1..=1000).collect::<Vec<i64>>(), "every seq once, in order, no gaps");
    assert_eq!(bodies.len(), 1000);
    let (_, all) = mb.messages(&app, &key, "limit=1000").await;
    assert_eq!(all["items"].as_array().expect("items").len(), 1000);
    assert_eq!(all["message_count"], 1000);
}

async fn an_idempotent_drop_is_stored_once(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let mb = Mailbox::create(&app, &key, 10_000, &[]).await;
    let send = |body: &'static str| {
        app.client
            .post(app.url(mb.drop_path()))
            .header("Idempotency-Key", "drop-1")
            .header("Content-Type", "text/plain")
            .body(body)
            .send()
    };
    let first = send("hello").await.expect("first");
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("json");
    let second = send("hello").await.expect("second");
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.json::<Value>().await.expect("json"), first);
    let other = send("a longer body").await.expect("third");
    assert_eq!(other.status(), 422, "same key, different request");
    let (_, page) = mb.messages(&app, &key, "").await;
    assert_eq!(page["message_count"], 1);
    assert_eq!(app.blob_keys().await.len(), 1);
}

async fn a_replayed_creation_returns_the_same_drop_url_without_storing_it_in_clear(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let idem = [("Idempotency-Key", "create-1")];
    let first = Mailbox::create(&app, &key, 4096, &idem).await;
    let (status, replay) = create_raw(&app, &key, 4096, 3600, &idem).await;
    assert_eq!(status, 201);
    assert_eq!(replay["drop_url"], first.created["drop_url"]);
    assert_eq!(app.balance(&key).await, 10_000 - 29, "charged once");
    let token = first.drop_url.split('/').rev().nth(1).expect("token");
    let stored: Vec<String> = leasehold_entities::idempotency_key::Entity::find()
        .all(&app.state.db)
        .await
        .expect("rows")
        .into_iter()
        .filter_map(|r| r.response_body)
        .collect();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(token), "the stored replay is sealed");
    let (status, _) = first.drop_into(&app, "text/plain", "works").await;
    assert_eq!(status, 201);
}

async fn a_minted_webhook_secret_is_shown_once_and_sealed_at_rest(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let mb = Mailbox::create(&app, &key, 4096, &[("X-Webhook-Url", "https://93.184.216.34/hook")]).await;
    let secret = mb.created["webhook_secret"].as_str().expect("minted secret").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let given = Mailbox::create(
        &app,
        &key,
        4096,
        &[("X-Webhook-Url", "https://93.184.216.34/hook"), ("X-Webhook-Secret", "my-own-secret")],
    )
    .await;
    assert_eq!(given.created["webhook_secret"], Value::Null, "a given secret is not echoed");
    let rows = lease::Entity::find().all(&app.state.db).await.expect("rows");
    for row in &rows {
        let sealed = row.webhook_secret_enc.as_deref().expect("sealed secret");
        assert!(!sealed.contains(&secret) && !sealed.contains("my-own-secret"), "{sealed}");
    }
    let opened = app
        .state
        .secrets
        .open(
            "webhook-secret",
            rows.iter().find(|r| r.id == mb.lease_id).and_then(|r| r.webhook_secret_enc.as_deref()).expect("row"),
        )
        .expect("opens with the server key");
    assert_eq!(opened, secret);
    let (_, shown) = app.get_json(&key, &format!("/api/leases/{}", mb.lease_id)).await;
    assert!(!shown.to_string().contains(&secret), "never shown again");
}

async fn expiry_removes_every_message_and_ends_the_event_stream(backend: Backend) {
    let app = TestApp::spawn_with(&backend, fast_expiry).await;
    let _worker = if backend.is_distributed() { Some(app.start_worker().await) } else { None };
    let (_, key) = app.create_account(10_000).await;
    let (status, created) = create_raw(&app, &key, 4096, 3, &[]).await;
    assert_eq!(status, 201, "{created}");
    let mb = Mailbox {
        lease_id: created["lease_id"].as_str().expect("id").to_owned(),
        drop_url: created["drop_url"].as_str().expect("url").to_owned(),
        created,
    };
    for i in 0..5 {
        assert_eq!(mb.drop_into(&app, "text/plain", format!("m{i}")).await.0, 201);
    }
    let events = app
        .client
        .get(app.url(&format!("/api/mailbox/{}/events", mb.lease_id)))
        .bearer_auth(&key)
        .send()
        .await
        .expect("events");
    assert_eq!(events.status(), 200);
    let mut reader = SseReader::new(events);
    for seq in 1..=5 {
        let e = reader.next(Duration::from_secs(5)).await.expect("message event");
        assert_eq!((e.event.as_str(), e.id.as_deref()), ("message", Some(seq.to_string().as_str())));
    }
    let expired = reader.next(Duration::from_secs(10)).await.expect("expired event");
    assert_eq!(expired.event, "expired");
    assert!(reader.next(Duration::from_secs(5)).await.is_none(), "the stream ends after `expired`");
    let (status, body) = mb.drop_into(&app, "text/plain", "late").await;
    assert_eq!((status, body["code"].clone()), (410, json!("lease_expired")));
    let (status, body) = mb.messages(&app, &key, "").await;
    assert_eq!((status, body["code"].clone()), (410, json!("lease_expired")));
    let purged = eventually(Duration::from_secs(15), || async {
        let row = lease::Entity::find_by_id(&mb.lease_id).one(&app.state.db).await.expect("row")?;
        row.purged_at.map(|_| ())
    })
    .await;
    assert!(purged.is_some(), "purged by the worker");
    assert!(app.blob_keys().await.is_empty(), "every message's bytes are gone");
    let rows = mailbox_message::Entity::find()
        .filter(mailbox_message::Column::LeaseId.eq(&mb.lease_id))
        .count(&app.state.db)
        .await
        .expect("count");
    assert_eq!(rows, 0);
}

async fn a_deleted_mailbox_refuses_drops_and_reads_with_410(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let mb = Mailbox::create(&app, &key, 4096, &[]).await;
    assert_eq!(mb.drop_into(&app, "text/plain", "x").await.0, 201);
    let res = app
        .client
        .delete(app.url(&format!("/api/mailbox/{}", mb.lease_id)))
        .bearer_auth(&key)
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.expect("json")["state"], "deleted");
    let (status, body) = mb.drop_into(&app, "text/plain", "x").await;
    assert_eq!((status, body["code"].clone()), (410, json!("lease_deleted")));
    let (status, body) = mb.messages(&app, &key, "").await;
    assert_eq!((status, body["code"].clone()), (410, json!("lease_deleted")));
}

async fn a_full_mailbox_takes_drops_again_as_soon_as_a_message_is_deleted(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let mb = Mailbox::create(&app, &key, 100, &[]).await;
    let (_, first) = mb.drop_into(&app, "text/plain", "a".repeat(60)).await;
    assert_eq!(mb.drop_into(&app, "text/plain", "b".repeat(40)).await.0, 201);
    let (status, body) = mb.drop_into(&app, "text/plain", "c".repeat(30)).await;
    assert_eq!((status, body["code"].clone()), (413, json!("mailbox_full")));
    let id = first["message_id"].as_str().expect("id");
    let res = mb.delete_message(&app, &key, id).await;
    assert_eq!(res.status(), 200);
    // No waiting: the drop path must not trust a cached view of the mailbox to refuse.
    let (status, body) = mb.drop_into(&app, "text/plain", "c".repeat(30)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["seq"], 3);
}
