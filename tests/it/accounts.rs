use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests};
use serde_json::Value;

backend_tests!(
    account_shows_balance_and_ledger_records_every_charge,
    ledger_pages_newest_first_with_a_cursor,
    api_keys_are_minted_listed_and_revoked,
    the_last_api_key_cannot_be_revoked,
    missing_or_wrong_keys_are_unauthorized,
    api_keys_are_stored_only_as_hashes,
);

async fn account_shows_balance_and_ledger_records_every_charge(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (account_id, key) = app.create_account(5_000).await;
    let (status, body) = app.get_json(&key, "/v1/account").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["account_id"], account_id.as_str());
    assert_eq!(body["balance_micros"], "5000");
    assert!(body["created_at"].as_str().expect("time").ends_with('Z'));

    let (status, lease) = Upload::new(&key, "a.txt", "hello").send(&app).await;
    assert_eq!(status, 201);
    let (_, ledger) = app.get_json(&key, "/v1/account/ledger").await;
    let items = ledger["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["kind"], "charge");
    assert_eq!(items[0]["amount_micros"], "29");
    assert_eq!(items[0]["balance_after_micros"], "4971");
    assert_eq!(items[0]["lease_id"], lease["lease_id"]);
    assert_eq!(items[1]["kind"], "credit");
    assert_eq!(items[1]["amount_micros"], "5000");
    assert_eq!(app.balance(&key).await, 4971);
}

async fn ledger_pages_newest_first_with_a_cursor(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    for i in 0..5 {
        let name = format!("f{i}.txt");
        assert_eq!(Upload::new(&key, &name, "x").send(&app).await.0, 201);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/account/ledger?limit=2&cursor={c}"),
            None => "/v1/account/ledger?limit=2".to_owned(),
        };
        let (status, page) = app.get_json(&key, &path).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().expect("items") {
            seen.push(item["entry_id"].as_str().expect("id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first, no duplicates");
    let (status, body) = app.get_json(&key, "/v1/account/ledger?limit=0").await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")));
}

async fn api_keys_are_minted_listed_and_revoked(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(0).await;
    let res = app.client.post(app.url("/v1/account/api-keys")).bearer_auth(&key).send().await.expect("mint");
    assert_eq!(res.status(), 201);
    let minted: Value = res.json().await.expect("json");
    let second = minted["key"].as_str().expect("key").to_owned();
    assert!(second.starts_with("rs_live_") && second.len() == 72);
    assert_eq!(minted["prefix"], &second[..12]);

    let (status, list) = app.get_json(&second, "/v1/account/api-keys").await;
    assert_eq!(status, 200);
    let keys = list["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k.get("key").is_none() && k["prefix"].as_str().expect("p").len() == 12));

    let res = app
        .client
        .delete(app.url(&format!("/v1/account/api-keys/{}", &key[..12])))
        .bearer_auth(&second)
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status(), 200);
    let (status, body) = app.get_json(&key, "/v1/account").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    assert_eq!(app.get_json(&second, "/v1/account").await.0, 200);

    let res = app
        .client
        .delete(app.url("/v1/account/api-keys/rs_live_zzzz"))
        .bearer_auth(&second)
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status(), 404);
}

async fn the_last_api_key_cannot_be_revoked(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(0).await;
    let res = app
        .client
        .delete(app.url(&format!("/v1/account/api-keys/{}", &key[..12])))
        .bearer_auth(&key)
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["code"], "last_api_key");
    assert_eq!(app.get_json(&key, "/v1/account").await.0, 200);
}

async fn missing_or_wrong_keys_are_unauthorized(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let fake = format!("rs_live_{}", "0".repeat(64));
    for auth in [None, Some("Bearer nonsense"), Some(&*format!("Bearer {fake}")), Some("Basic abc")] {
        let mut req = app.client.get(app.url("/v1/account"));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let res = req.send().await.expect("req");
        assert_eq!(res.status(), 401, "{auth:?}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["code"], "unauthorized");
        assert_eq!(body["status"], "error");
    }
}

async fn api_keys_are_stored_only_as_hashes(backend: Backend) {
    use sea_orm::EntityTrait;
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(0).await;
    let rows = leasehold_entities::api_key::Entity::find().all(&app.state.db).await.expect("rows");
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0].key_hash, key);
    assert_eq!(rows[0].key_hash, leasehold_core::tokens::sha256_hex(key.as_bytes()));
    assert!(!format!("{rows:?}").contains(&key[12..]));
}
