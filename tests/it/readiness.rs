//! `/readyz` says in one line what is wrong and what to do, like the start-up does.

use std::time::Duration;

use leasehold_core::blob::{BlobError, BlobStore};
use leasehold_core::config::BlobConfig;
use leasehold_tests::fake_s3::FakeS3;
use leasehold_tests::{Backend, TestApp, backend_tests, eventually};
use sea_orm::ConnectionTrait;
use serde_json::Value;

backend_tests!(readiness_names_the_unusable_blob_store_and_what_to_do);

async fn readyz_error(app: &TestApp) -> (u16, String) {
    let res = app.client.get(app.url("/readyz")).send().await.expect("readyz");
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("json");
    (status, body["error"].as_str().unwrap_or_default().to_owned())
}

async fn readiness_names_the_unusable_blob_store_and_what_to_do(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| {
        if let BlobConfig::S3(s3) = &mut c.blob {
            s3.bucket = "leasehold-no-such-bucket".into();
        }
    })
    .await;
    let expected = match &app.state.config.blob {
        BlobConfig::Fs { root } => {
            std::fs::remove_dir_all(root).expect("remove blob root");
            "the blob directory under LEASEHOLD_DATA_DIR is missing — restore it, or restart to create an empty one"
                .to_owned()
        }
        BlobConfig::S3(s3) => {
            let endpoint = s3.endpoint.as_deref().expect("test endpoint");
            let place = endpoint.split_once("://").map_or(endpoint, |(_, rest)| rest);
            format!(
                "S3 bucket \"leasehold-no-such-bucket\" not found at {place} (LEASEHOLD_S3_BUCKET) — create it, or fix the name"
            )
        }
    };
    assert_eq!(readyz_error(&app).await, (503, expected));
}

/// PostgreSQL only: an SQLite file cannot go away under an open pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_a_database_that_was_dropped() {
    let Some(backend) = Backend::distributed() else { return };
    let Backend::Distributed { database_url: server, .. } = &backend else { return };
    let app = TestApp::spawn(&backend).await;
    assert_eq!(readyz_error(&app).await.0, 200);
    let name = app.state.config.database_url.rsplit('/').next().expect("name").split('?').next().expect("name");
    let admin = sea_orm::Database::connect(server.as_str()).await.expect("connect");
    admin.execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)")).await.expect("drop");
    let line = format!("database \"{name}\" does not exist on ");
    let seen = eventually(Duration::from_secs(10), || async {
        let (status, error) = readyz_error(&app).await;
        (status == 503 && error.starts_with(&line)).then_some(error)
    })
    .await;
    let Some(error) = seen else { panic!("readyz never said {line:?}; last: {:?}", readyz_error(&app).await) };
    assert!(error.contains("createdb"), "{error}");
}

/// A 400 to the bucket check (a HEAD: no body to say why) is what AWS and Garage answer to a
/// request signed for another region; the line says which setting to look at.
#[tokio::test]
async fn a_bucket_check_answered_400_points_at_the_region() {
    let fake = FakeS3::start(Vec::new(), false).await;
    let store = BlobStore::open(&fake.store_config()).await.expect("store");
    let place = fake.endpoint.trim_start_matches("http://");
    match store.check().await {
        Err(BlobError::Unusable(line)) => assert_eq!(
            line,
            format!(
                "S3 at {place} answered 400 Bad Request for bucket \"fake\" — the usual cause is LEASEHOLD_S3_REGION (\"us-east-1\") not being the server's region (Garage's default is \"garage\")"
            )
        ),
        other => panic!("expected an unusable store, got {other:?}"),
    }
}
