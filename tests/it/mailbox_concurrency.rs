use std::time::Duration;

use leasehold_tests::mailbox::{Mailbox, SseReader};
use leasehold_tests::{Backend, TestApp, backend_tests, no_drop_limits};
use serde_json::Value;

backend_tests!(
    concurrent_drops_on_two_instances_never_exceed_the_capacity,
    concurrent_drops_on_two_instances_never_exceed_the_message_count,
    concurrent_drops_into_several_mailboxes_keep_each_ones_caps,
    a_long_poll_on_one_instance_wakes_within_a_second_of_a_drop_on_the_other,
    events_on_one_instance_carry_drops_from_the_other_in_order_and_resume_without_gaps,
);

/// 200 concurrent 1 KiB drops over two instances; returns (created, full) and the seqs.
async fn race(a: &TestApp, b: &TestApp, mb: &Mailbox) -> (usize, usize, Vec<i64>) {
    let mut tasks = Vec::new();
    for i in 0..200 {
        let app = if i % 2 == 0 { a } else { b };
        let req =
            app.client.post(app.url(mb.drop_path())).header("Content-Type", "application/json").body(vec![b'7'; 1024]);
        tasks.push(tokio::spawn(async move {
            let res = req.send().await.expect("drop");
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.expect("json"))
        }));
    }
    let (mut created, mut full, mut seqs) = (0, 0, Vec::new());
    for t in tasks {
        match t.await.expect("task") {
            (201, body) => {
                created += 1;
                seqs.push(body["seq"].as_i64().expect("seq"));
            }
            (413, body) if body["code"] == "mailbox_full" => full += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    seqs.sort_unstable();
    (created, full, seqs)
}

async fn concurrent_drops_on_two_instances_never_exceed_the_capacity(backend: Backend) {
    let a = TestApp::spawn_with(&backend, no_drop_limits).await;
    let b = a.second_instance().await;
    let (_, key) = a.create_account(10_000).await;
    let mb = Mailbox::create(&a, &key, 50 * 1024, &[]).await;
    let (created, full, seqs) = race(&a, &b, &mb).await;
    assert_eq!((created, full), (50, 150));
    assert_eq!(seqs, (1..=50).collect::<Vec<i64>>(), "seqs are 1..=50 without gaps or duplicates");
    let (_, page) = mb.messages(&b, &key, "limit=1000").await;
    assert_eq!(page["used_bytes"], 50 * 1024, "used_bytes is exact");
    assert_eq!(page["message_count"], 50);
    assert_eq!(page["items"].as_array().expect("items").len(), 50);
    assert_eq!(a.blob_keys().await.len(), 50, "refused drops left no bytes");
}

async fn concurrent_drops_on_two_instances_never_exceed_the_message_count(backend: Backend) {
    let a = TestApp::spawn_with(&backend, no_drop_limits).await;
    let b = a.second_instance().await;
    let (_, key) = a.create_account(10_000).await;
    let mb = Mailbox::create(&a, &key, 1024 * 1024, &[("X-Max-Messages", "50")]).await;
    let (created, full, seqs) = race(&a, &b, &mb).await;
    assert_eq!((created, full), (50, 150));
    assert_eq!(seqs, (1..=50).collect::<Vec<i64>>());
    let (_, page) = mb.messages(&a, &key, "").await;
    assert_eq!((page["message_count"].as_i64(), page["used_bytes"].as_i64()), (Some(50), Some(50 * 1024)));
    assert_eq!(a.blob_keys().await.len(), 50);
}

async fn concurrent_drops_into_several_mailboxes_keep_each_ones_caps(backend: Backend) {
    let a = TestApp::spawn_with(&backend, no_drop_limits).await;
    let b = a.second_instance().await;
    let (_, key) = a.create_account(10_000).await;
    // Room for 10, 25 and 40 messages of 100 bytes; 60 drops aimed at each, all at once.
    let boxes = [
        Mailbox::create(&a, &key, 1000, &[]).await,
        Mailbox::create(&a, &key, 100_000, &[("X-Max-Messages", "25")]).await,
        Mailbox::create(&a, &key, 4000, &[]).await,
    ];
    let mut tasks = Vec::new();
    for i in 0..180 {
        let app = if i % 2 == 0 { &a } else { &b };
        let mb = &boxes[i % 3];
        let req = app.client.post(app.url(mb.drop_path())).body(vec![b'x'; 100]);
        tasks.push((i % 3, tokio::spawn(async move { req.send().await.expect("drop").status().as_u16() })));
    }
    let mut created = [0; 3];
    for (which, t) in tasks {
        match t.await.expect("task") {
            201 => created[which] += 1,
            413 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created, [10, 25, 40]);
    for (mb, n) in boxes.iter().zip([10i64, 25, 40]) {
        let (_, page) = mb.messages(&a, &key, "limit=1000").await;
        let seqs: Vec<i64> =
            page["items"].as_array().expect("items").iter().filter_map(|m| m["seq"].as_i64()).collect();
        assert_eq!(seqs, (1..=n).collect::<Vec<i64>>(), "each mailbox has its own gap-free seqs");
        assert_eq!(page["used_bytes"].as_i64(), Some(100 * n));
    }
}

async fn a_long_poll_on_one_instance_wakes_within_a_second_of_a_drop_on_the_other(backend: Backend) {
    let a = TestApp::spawn(&backend).await;
    let b = a.second_instance().await;
    let (_, key) = a.create_account(10_000).await;
    let mb = Mailbox::create(&a, &key, 10_000, &[]).await;
    for round in 1..=3 {
        let poll = {
            let url = b.url(&format!("/api/mailbox/{}/messages?after={}&wait=20", mb.lease_id, round - 1));
            let req = b.client.get(url).bearer_auth(&key);
            tokio::spawn(async move {
                let res = req.send().await.expect("poll");
                (tokio::time::Instant::now(), res.json::<Value>().await.expect("json"))
            })
        };
        // Let the poll reach its wait before dropping.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!poll.is_finished(), "the poll waits while there is nothing");
        let dropped_at = tokio::time::Instant::now();
        assert_eq!(mb.drop_into(&a, "text/plain", format!("round {round}")).await.0, 201);
        let (answered_at, body) =
            tokio::time::timeout(Duration::from_secs(5), poll).await.expect("woke").expect("task");
        let lag = answered_at.saturating_duration_since(dropped_at);
        assert!(lag < Duration::from_secs(1), "woke {lag:?} after the drop");
        let items = body["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{body}");
        assert_eq!(items[0]["seq"], round);
    }
}

async fn events_on_one_instance_carry_drops_from_the_other_in_order_and_resume_without_gaps(backend: Backend) {
    let a = TestApp::spawn_with(&backend, no_drop_limits).await;
    let b = a.second_instance().await;
    let (_, key) = a.create_account(10_000).await;
    let mb = Mailbox::create(&a, &key, 100_000, &[]).await;
    let url = b.url(&format!("/api/mailbox/{}/events", mb.lease_id));
    let res = b.client.get(&url).bearer_auth(&key).send().await.expect("events");
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().expect("ct").starts_with("text/event-stream"));
    let mut reader = SseReader::new(res);
    let droppers: Vec<_> = (0..4)
        .map(|w| {
            let (client, drop_url) = (a.client.clone(), a.url(mb.drop_path()));
            tokio::spawn(async move {
                for i in 0..5 {
                    let res = client.post(&drop_url).body(format!("{w}-{i}")).send().await.expect("drop");
                    assert_eq!(res.status(), 201);
                }
            })
        })
        .collect();
    for d in droppers {
        d.await.expect("dropper");
    }
    let mut last = 0;
    for seq in 1..=20 {
        let e = reader.next(Duration::from_secs(5)).await.unwrap_or_else(|| panic!("event {seq}"));
        assert_eq!(e.event, "message");
        assert_eq!(e.id.as_deref(), Some(seq.to_string().as_str()), "in seq order");
        let item: Value = serde_json::from_str(&e.data).expect("item json");
        assert_eq!(item["seq"], seq);
        last = seq;
    }
    drop(reader);
    for i in 0..5 {
        assert_eq!(mb.drop_into(&a, "text/plain", format!("while away {i}")).await.0, 201);
    }
    let res =
        b.client.get(&url).bearer_auth(&key).header("Last-Event-ID", last.to_string()).send().await.expect("resume");
    let mut reader = SseReader::new(res);
    for seq in 21..=25 {
        let e = reader.next(Duration::from_secs(5)).await.unwrap_or_else(|| panic!("event {seq}"));
        assert_eq!(e.id.as_deref(), Some(seq.to_string().as_str()), "resumed without gaps or duplicates");
    }
    assert_eq!(mb.drop_into(&a, "text/plain", "live again").await.0, 201);
    let e = reader.next(Duration::from_secs(5)).await.expect("live event after resume");
    assert_eq!(e.id.as_deref(), Some("26"));
}
