use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use std::time::Duration;

backend_tests!(concurrent_uploads_on_two_instances_never_overdraw_the_balance, concurrent_key_revocations_keep_one_key);

async fn concurrent_uploads_on_two_instances_never_overdraw_the_balance(backend: Backend) {
    let a = TestApp::spawn(&backend).await;
    let b = a.second_instance().await;
    // Exactly ten minimum-price leases fit in the balance; thirty clients try at once.
    let (account_id, key) = a.create_account(290).await;
    let mut tasks = Vec::new();
    for i in 0..30 {
        let app = if i % 2 == 0 { &a } else { &b };
        let req = Upload::new(&key, "c.bin", vec![i as u8; 2048]).request(app);
        tasks.push(tokio::spawn(async move { req.send().await.expect("upload").status().as_u16() }));
    }
    let mut created = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.expect("task") {
            201 => created += 1,
            402 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((created, refused), (10, 20));
    assert_eq!(a.balance(&key).await, 0);
    assert_eq!(b.balance(&key).await, 0);
    let charges = leasehold_entities::ledger_entry::Entity::find()
        .filter(leasehold_entities::ledger_entry::Column::AccountId.eq(&account_id))
        .filter(leasehold_entities::ledger_entry::Column::Kind.eq("charge"))
        .count(&a.state.db)
        .await
        .expect("count");
    assert_eq!(charges, 10);
    assert_eq!(a.blob_keys().await.len(), 10, "refused uploads left no bytes");
    let (_, leases) = b.get_json(&key, "/api/leases").await;
    assert_eq!(leases["items"].as_array().expect("items").len(), 10);
}

async fn concurrent_key_revocations_keep_one_key(backend: Backend) {
    let a = TestApp::spawn(&backend).await;
    let b = a.second_instance().await;
    let (account_id, first) = a.create_account(0).await;
    let mut keys = vec![first];
    for _ in 0..5 {
        let (key, _) = leasehold_core::accounts::mint_key(&a.state.db, &account_id, a.state.now()).await.expect("mint");
        keys.push(key);
    }
    // Every key revokes a different one, all at once, over both instances.
    let mut tasks = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let target = keys[(i + 1) % keys.len()][..12].to_owned();
        let app = if i % 2 == 0 { &a } else { &b };
        let req = app.client.delete(app.url(&format!("/v1/account/api-keys/{target}"))).bearer_auth(key);
        tasks.push(tokio::spawn(async move { req.send().await.expect("revoke").status().as_u16() }));
    }
    for t in tasks {
        let status = t.await.expect("task");
        assert!([200, 401, 404, 409].contains(&status), "{status}");
    }
    let left = leasehold_core::accounts::list_keys(&a.state.db, &account_id).await.expect("keys");
    assert!(!left.is_empty(), "an account must keep at least one key");
}

/// SQLite: another connection (a second process, the embedded worker) holds the write lock
/// while a key is minted. Minting reads (is the display prefix taken?) before it inserts; in
/// a deferred transaction SQLite refuses that upgrade at once with "database is locked" and
/// the request failed with a 500. Every transaction now takes the lock up front and waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_then_write_request_waits_for_another_sqlite_writer() {
    let Some(backend) = Backend::embedded() else { return };
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(0).await;
    // A first use records the key's last use (a write of its own); later requests within a
    // minute do not, so the minting below is the only writer waiting.
    assert_eq!(app.get_json(&key, "/v1/account/api-keys").await.0, 200);
    let other = leasehold_core::db::connect_url(&app.state.config.database_url, 1).await.expect("second connection");
    for _ in 0..3 {
        let holder = leasehold_core::db::begin_write(&other).await.expect("begin");
        holder.execute_unprepared("UPDATE account SET name = name").await.expect("take the write lock");
        let req = app.client.post(app.url("/v1/account/api-keys")).bearer_auth(&key);
        let mint = tokio::spawn(async move { req.send().await.expect("mint").status().as_u16() });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!mint.is_finished(), "the mint waited for the lock");
        holder.commit().await.expect("commit");
        assert_eq!(mint.await.expect("task"), 201);
    }
    let (status, keys) = app.get_json(&key, "/v1/account/api-keys").await;
    assert_eq!(status, 200);
    assert_eq!(keys["keys"].as_array().expect("keys").len(), 4);
}
