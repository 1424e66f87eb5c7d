//! The reaper without waiting for expiry: bytes that a crash left without their row are
//! removed after the orphan age under live leases too, never bytes a committed row
//! references; unfinished multipart uploads are aborted where the store can list them.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use leasehold_core::blob::{BlobStore, lease_key};
use leasehold_core::{checkpoint, ids, mailbox};
use leasehold_entities::{checkpoint_version, mailbox_message, storage_object};
use leasehold_tests::fake_s3::{FakeS3, FakeUpload};
use leasehold_tests::mailbox::Mailbox;
use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests};
use sea_orm::EntityTrait;

use leasehold_worker::jobs::reap::reap;

backend_tests!(
    bytes_without_a_row_under_live_leases_are_reaped_after_the_orphan_age,
    an_upload_killed_mid_multipart_does_not_stop_the_reaper,
);

const DAY: u64 = 86_400;

/// Every blob key a committed row references.
async fn referenced(app: &TestApp) -> BTreeSet<String> {
    let db = &app.state.db;
    let mut keys: BTreeSet<String> =
        storage_object::Entity::find().all(db).await.expect("objects").into_iter().map(|o| o.blob_key).collect();
    keys.extend(mailbox_message::Entity::find().all(db).await.expect("messages").into_iter().map(|m| m.blob_key));
    keys.extend(checkpoint_version::Entity::find().all(db).await.expect("versions").into_iter().map(|v| v.blob_key));
    keys
}

async fn bytes_without_a_row_under_live_leases_are_reaped_after_the_orphan_age(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| c.worker.embedded = false).await;
    let (_, key) = app.create_account(1_000_000).await;
    let mut upload = Upload::new(&key, "kept.txt", "kept bytes");
    upload.duration = DAY;
    let (status, stored) = upload.send(&app).await;
    assert_eq!(status, 201, "{stored}");
    let storage_id = stored["lease_id"].as_str().expect("id").to_owned();
    let (status, body) = leasehold_tests::mailbox::create_raw(&app, &key, 1 << 20, DAY, &[]).await;
    assert_eq!(status, 201, "{body}");
    let mb = Mailbox {
        lease_id: body["lease_id"].as_str().expect("id").into(),
        drop_url: body["drop_url"].as_str().expect("url").into(),
        created: body,
    };
    assert_eq!(mb.drop_into(&app, "text/plain", "a committed message").await.0, 201);
    let day = DAY.to_string();
    let (status, cp) = leasehold_tests::checkpoint::create(
        &app,
        &key,
        "wf-reap",
        "{\"v\":1}",
        &[("Content-Type", "application/json"), ("X-Duration-Seconds", &day)],
    )
    .await;
    assert_eq!(status, 201, "{cp}");
    let cp_id = cp["lease_id"].as_str().expect("id").to_owned();
    assert_eq!(leasehold_tests::checkpoint::put(&app, &key, "wf-reap", "{\"v\":2}", None).await.0, 200);
    let kept = referenced(&app).await;
    assert_eq!(kept.len(), 4, "{kept:?}");

    // What kill -9 between the bytes and the row leaves behind, under live leases and one
    // whose row never committed.
    let orphans = [
        mailbox::message_key(&mb.lease_id, &ids::message_id()),
        checkpoint::version_key(&cp_id),
        lease_key(&ids::lease_id(), "object"),
    ];
    for orphan in &orphans {
        app.state.blobs.put_bytes(orphan, Bytes::from_static(b"no row")).await.expect("orphan");
    }
    let ctx = app.worker_context();
    let reaped = reap(&ctx).await.expect("reap");
    assert_eq!(reaped.orphans, 0, "young bytes may belong to a write about to commit");
    assert_eq!(app.blob_keys().await.len(), kept.len() + orphans.len());

    app.state.clock.advance(Duration::from_secs(2 * 3600));
    let reaped = reap(&ctx).await.expect("reap");
    assert_eq!(reaped.orphans, 3);
    assert_eq!(app.blob_keys().await.into_iter().collect::<BTreeSet<_>>(), kept, "exactly the referenced bytes remain");
    // The live leases still serve their bytes.
    let res =
        app.client.get(app.url(&format!("/api/download/{storage_id}"))).bearer_auth(&key).send().await.expect("get");
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.expect("body"), "kept bytes");
    let (status, _, body) = leasehold_tests::checkpoint::get(&app, &key, "wf-reap").await;
    assert_eq!((status, body.as_str()), (200, "{\"v\":2}"));
    let (status, page) = mb.messages(&app, &key, "").await;
    assert_eq!(status, 200, "{page}");
    // A second reap finds nothing more.
    assert_eq!(reap(&ctx).await.expect("reap").orphans, 0);
}

/// A pod killed in the middle of a multipart upload: the upload stays open on the store.
/// Where the store cannot list uploads (s3s-fs) the reaper carries on with its other work.
async fn an_upload_killed_mid_multipart_does_not_stop_the_reaper(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| c.worker.embedded = false).await;
    let orphan = lease_key(&ids::lease_id(), "object");
    app.state.blobs.put_bytes(&orphan, Bytes::from_static(b"no row")).await.expect("orphan");
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let blobs = app.state.blobs.clone();
    let key = lease_key(&ids::lease_id(), "object");
    let killed = tokio::spawn(async move {
        let body = Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        blobs.put_stream(&key, body).await
    });
    // More than one part (8 MiB): the multipart upload has begun; then the pod dies.
    for _ in 0..9 {
        tx.send(Ok(Bytes::from(vec![7u8; 1 << 20]))).await.expect("chunk");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    killed.abort();
    app.state.clock.advance(Duration::from_secs(2 * 3600));
    let reaped = reap(&app.worker_context()).await.expect("the reaper tolerates a store that cannot list uploads");
    assert_eq!(reaped.orphans, 1, "the rest of the reap ran");
    assert!(app.blob_keys().await.is_empty(), "no half object is visible");
    if app.fs_root().is_some() {
        assert_eq!(reaped.incomplete, 1, "the fs temp file is removed");
        assert!(app.fs_files().is_empty(), "{:?}", app.fs_files());
    }
}

fn fake_upload(id: &str, initiated: &str) -> FakeUpload {
    FakeUpload { key: format!("p/leases/{id}/object"), upload_id: id.into(), initiated: initiated.into() }
}

#[tokio::test]
async fn stale_multipart_uploads_are_aborted_across_pages_and_young_ones_kept() {
    let young = leasehold_core::time::rfc3339(chrono::Utc::now().timestamp_millis());
    let fake = FakeS3::start(
        vec![
            vec![fake_upload("old-1", "2020-01-01T00:00:00.000Z"), fake_upload("young", &young)],
            vec![fake_upload("old-2", "2020-01-02T00:00:00.000Z")],
        ],
        true,
    )
    .await;
    let store = BlobStore::open(&fake.store_config()).await.expect("store");
    let hour_ago = chrono::Utc::now().timestamp_millis() - 3_600_000;
    assert_eq!(store.reap_incomplete(hour_ago).await.expect("reap"), 2);
    assert_eq!(fake.aborted(), vec!["old-1".to_owned(), "old-2".to_owned()]);
}

#[tokio::test]
async fn a_store_that_cannot_list_uploads_is_skipped() {
    let fake = FakeS3::start(vec![vec![fake_upload("old", "2020-01-01T00:00:00.000Z")]], false).await;
    let store = BlobStore::open(&fake.store_config()).await.expect("store");
    assert_eq!(store.reap_incomplete(i64::MAX).await.expect("skipped, not failed"), 0);
    assert!(fake.aborted().is_empty());
}
