//! Deterministic jobs: the harness runs due jobs itself ([`TestApp::run_jobs`]) and time
//! moves when the test says ([`TestApp::advance`]), instead of a worker polling on the wall
//! clock. A test that drove jobs this way fails if it leaves jobs due, claimed or failed
//! (checked when the [`TestApp`] is dropped, or explicitly with
//! [`TestApp::assert_no_jobs_left`]), like crates.io's test app.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use leasehold_api::AppState;
use leasehold_worker::{WorkerContext, WorkerMetrics};
use sea_orm::{DbBackend, FromQueryResult, Statement};

use crate::TestApp;

/// Passes of [`TestApp::run_jobs`] before it gives up (a job that re-enqueues itself as due
/// for ever).
const MAX_PASSES: usize = 100;

/// The context the harness runs jobs with. When the harness stands in for the embedded
/// worker (embedded backend, worker turned off), its metrics join the API's `/metrics`
/// as that worker's would.
pub(crate) fn harness_context(state: &AppState, stand_in_for_embedded: bool) -> WorkerContext {
    let metrics = if stand_in_for_embedded {
        state.metrics.register(WorkerMetrics::register)
    } else {
        WorkerMetrics::register(&mut prometheus_client::registry::Registry::default())
    };
    WorkerContext::new(
        state.db.clone(),
        state.blobs.clone(),
        state.clock.clone(),
        state.config.clone(),
        Arc::new(metrics),
    )
    .expect("harness worker context")
}

#[derive(FromQueryResult)]
struct LeftJob {
    job_type: String,
    id: String,
    status: String,
    attempts: i32,
    last_result: Option<String>,
}

impl TestApp {
    /// Runs every due job of every queue, then the jobs those runs made due, until none is
    /// due at the clock's current time. Panics if a job failed, or if a worker of the
    /// instance's own (embedded) could race the harness for them.
    pub async fn run_jobs(&self) {
        assert!(
            self.embedded_worker.is_none(),
            "run_jobs needs `c.worker.embedded = false`: the embedded worker would race the harness"
        );
        self.jobs_driven.store(true, Ordering::Relaxed);
        for _ in 0..MAX_PASSES {
            let drained = leasehold_worker::drain(&self.jobs, self.state.clock.now_ms()).await.expect("drain jobs");
            assert!(drained.failed.is_empty(), "jobs failed: {:#?}", drained.failed);
            if drained.ran == 0 {
                return;
            }
        }
        panic!("jobs still due after {MAX_PASSES} passes");
    }

    /// One tick of the worker's sweep timer (the safety net, and the queue depth metrics),
    /// run by the harness.
    pub async fn run_sweep(&self) {
        leasehold_worker::jobs::sweep::tick(&self.jobs).await;
    }

    /// Moves the instance's clock (shared by its second instances) forward.
    pub fn advance(&self, by: Duration) {
        self.state.clock.advance(by);
    }

    /// Advances the clock, then runs what became due.
    pub async fn advance_and_run_jobs(&self, by: Duration) {
        self.advance(by);
        self.run_jobs().await;
    }

    /// The metrics of the jobs the harness ran.
    pub fn job_metrics(&self) -> Arc<WorkerMetrics> {
        self.jobs.metrics.clone()
    }

    /// Panics if this test's database holds a job that is due, claimed, or failed.
    /// Scheduled jobs (due after the clock's current time) are fine.
    pub async fn assert_no_jobs_left(&self) {
        let left = self.jobs_left().await;
        assert!(left.is_empty(), "the test left jobs behind (run them with app.run_jobs()): {left:#?}");
    }

    async fn jobs_left(&self) -> Vec<String> {
        let db = &self.state.db;
        let backend = db.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "SELECT job_type, id, status, attempts, last_result::text AS last_result FROM apalis.jobs \
                 WHERE (status = 'Pending' AND run_at <= to_timestamp($1::bigint)) \
                 OR status IN ('Queued', 'Running', 'Failed', 'Killed') ORDER BY run_at, id"
            }
            _ => {
                "SELECT job_type, id, status, attempts, last_result FROM Jobs \
                 WHERE (status = 'Pending' AND run_at <= ?) \
                 OR status IN ('Queued', 'Running', 'Failed', 'Killed') ORDER BY run_at, id"
            }
        };
        let now = self.state.clock.now_ms().div_euclid(1000);
        LeftJob::find_by_statement(Statement::from_sql_and_values(backend, sql, [now.into()]))
            .all(db)
            .await
            .expect("jobs left")
            .into_iter()
            .map(|j| format!("{} {} {} after {} attempts: {:?}", j.job_type, j.id, j.status, j.attempts, j.last_result))
            .collect()
    }

    /// The drop-time check: only for tests that drove jobs with the harness, and not while
    /// the test is already failing.
    pub(crate) fn check_jobs_on_drop(&self) {
        if !self.jobs_driven.load(Ordering::Relaxed) || std::thread::panicking() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return;
        }
        tokio::task::block_in_place(|| handle.block_on(self.assert_no_jobs_left()));
    }
}
