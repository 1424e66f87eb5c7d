use leasehold_tests::checkpoint::{create, get};
use leasehold_tests::{Backend, TestApp, backend_tests};
use serde_json::Value;

backend_tests!(
    concurrent_puts_with_the_same_if_match_have_exactly_one_winner,
    puts_from_20_clients_get_versions_2_to_201_without_gaps_or_duplicates,
    concurrent_creations_of_one_workflow_have_one_winner,
);

async fn concurrent_puts_with_the_same_if_match_have_exactly_one_winner(backend: Backend) {
    let a = TestApp::spawn(&backend).await;
    let b = a.second_instance().await;
    let (_, key) = a.create_account(10_000).await;
    assert_eq!(create(&a, &key, "race", "{\"v\":1}", &[]).await.0, 201);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let app = if i % 2 == 0 { &a } else { &b };
        let body = format!("{{\"writer\":{i}}}");
        let req = app
            .client
            .put(app.url("/api/checkpoint/race"))
            .bearer_auth(&key)
            .header("If-Match", "\"1\"")
            .body(body.clone());
        tasks.push(tokio::spawn(async move {
            let res = req.send().await.expect("put");
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.expect("json"), body)
        }));
    }
    let (mut winners, mut conflicts) = (Vec::new(), 0);
    for t in tasks {
        match t.await.expect("task") {
            (200, answer, body) => winners.push((answer, body)),
            (412, answer, _) => {
                assert_eq!(answer["code"], "version_conflict");
                conflicts += 1;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((winners.len(), conflicts), (1, 49));
    let (answer, body) = &winners[0];
    assert_eq!(answer["version"], 2);
    let (_, headers, stored) = get(&b, &key, "race").await;
    assert_eq!(&stored, body, "the stored body is the winner's");
    assert_eq!(headers["x-checkpoint-version"], "2");
    assert_eq!(a.blob_keys().await.len(), 2, "the losers' bodies are gone");
}

async fn puts_from_20_clients_get_versions_2_to_201_without_gaps_or_duplicates(backend: Backend) {
    let a = TestApp::spawn(&backend).await;
    let b = a.second_instance().await;
    let (_, key) = a.create_account(10_000).await;
    assert_eq!(create(&a, &key, "busy", "{}", &[("X-Max-Versions", "100")]).await.0, 201);
    let mut clients = Vec::new();
    for c in 0..20 {
        let app = if c % 2 == 0 { &a } else { &b };
        let (client, url, key) = (app.client.clone(), app.url("/api/checkpoint/busy"), key.clone());
        clients.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            for i in 0..10 {
                let res = client
                    .put(&url)
                    .bearer_auth(&key)
                    .body(format!("{{\"c\":{c},\"i\":{i}}}"))
                    .send()
                    .await
                    .expect("put");
                assert_eq!(res.status(), 200);
                versions.push(res.json::<Value>().await.expect("json")["version"].as_i64().expect("version"));
            }
            versions
        }));
    }
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await.expect("client"));
    }
    all.sort_unstable();
    assert_eq!(all, (2..=201).collect::<Vec<i64>>());
    let (_, list) = a.get_json(&key, "/api/checkpoint/busy/versions").await;
    assert_eq!(list["current_version"], 201);
    assert_eq!(list["items"].as_array().expect("items").len(), 100, "exactly max_versions kept");
    assert_eq!(a.blob_keys().await.len(), 100, "pruned bytes are gone");
}

async fn concurrent_creations_of_one_workflow_have_one_winner(backend: Backend) {
    let a = TestApp::spawn(&backend).await;
    let b = a.second_instance().await;
    let (_, key) = a.create_account(10_000).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let app = if i % 2 == 0 { &a } else { &b };
        let req = app
            .client
            .post(app.url("/api/checkpoint"))
            .bearer_auth(&key)
            .header("X-Workflow-Id", "once")
            .header("X-Duration-Seconds", "3600")
            .body(format!("{{\"n\":{i}}}"));
        tasks.push(tokio::spawn(async move { req.send().await.expect("create").status().as_u16() }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 19, "{statuses:?}");
    assert_eq!(a.balance(&key).await, 10_000 - 29, "charged once");
    assert_eq!(a.blob_keys().await.len(), 1);
}
