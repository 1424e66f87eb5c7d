//! The job harness itself: `run_jobs` runs what is due by the injected clock and nothing
//! else, and a test that leaves a due or failed job behind fails.

use std::time::Duration;

use futures_util::FutureExt;
use leasehold_entities::lease;
use leasehold_tests::upload::Upload;
use leasehold_tests::{Backend, TestApp, backend_tests, fast_expiry};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement};

backend_tests!(run_jobs_runs_what_the_clock_made_due_and_nothing_else, a_failed_or_forgotten_job_fails_the_test);

async fn app(backend: &Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        fast_expiry(c);
        c.worker.embedded = false;
    })
    .await
}

async fn purged_at(app: &TestApp, id: &str) -> Option<i64> {
    lease::Entity::find_by_id(id).one(&app.state.db).await.expect("row").expect("lease").purged_at
}

async fn run_jobs_runs_what_the_clock_made_due_and_nothing_else(backend: Backend) {
    let app = app(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let mut upload = Upload::new(&key, "h.txt", &b"harness"[..]);
    upload.duration = 5;
    let (status, body) = upload.send(&app).await;
    assert_eq!(status, 201, "{body}");
    let id = body["lease_id"].as_str().expect("id").to_owned();
    app.run_jobs().await;
    assert_eq!(purged_at(&app, &id).await, None, "the lease's job is not due yet");
    app.assert_no_jobs_left().await;
    app.advance_and_run_jobs(Duration::from_secs(6)).await;
    assert!(purged_at(&app, &id).await.is_some(), "the job ran once the clock passed the expiry");
    assert!(app.blob_keys().await.is_empty());
    assert_eq!(app.job_metrics().purged_count(), 1);
}

async fn a_failed_or_forgotten_job_fails_the_test(backend: Backend) {
    let app = app(&backend).await;
    let (_, key) = app.create_account(10_000).await;
    let mut upload = Upload::new(&key, "f.txt", &b"forgotten"[..]);
    upload.duration = 1;
    assert_eq!(upload.send(&app).await.0, 201);
    app.advance(Duration::from_secs(2));
    let forgotten = std::panic::AssertUnwindSafe(app.assert_no_jobs_left()).catch_unwind().await;
    assert!(forgotten.is_err(), "a due job left behind fails the check");
    app.run_jobs().await;
    app.assert_no_jobs_left().await;

    // A job whose handler fails: run_jobs fails, and the failed row fails the check.
    let db = &app.state.db;
    let bad = leasehold_core::queue::EndLease { lease_id: "lse_x".into() };
    leasehold_core::queue::enqueue(db, &bad, leasehold_core::queue::RunAt::Now, None, app.state.now())
        .await
        .expect("job");
    let table = if db.get_database_backend() == DbBackend::Postgres { "apalis.jobs" } else { "Jobs" };
    let garble = format!(
        "UPDATE {table} SET job = {} WHERE status = 'Pending'",
        match db.get_database_backend() {
            DbBackend::Postgres => "convert_to('not json', 'UTF8')",
            _ => "CAST('not json' AS BLOB)",
        }
    );
    db.execute_raw(Statement::from_string(db.get_database_backend(), garble)).await.expect("garble");
    let failed = std::panic::AssertUnwindSafe(app.run_jobs()).catch_unwind().await;
    assert!(failed.is_err(), "a failed job fails run_jobs");
    let left = std::panic::AssertUnwindSafe(app.assert_no_jobs_left()).catch_unwind().await;
    assert!(left.is_err(), "a failed job fails the check");
    // Clear it so the drop-time check passes.
    let clear = format!("DELETE FROM {table} WHERE status = 'Failed'");
    db.execute_raw(Statement::from_string(db.get_database_backend(), clear)).await.expect("clear");
}
