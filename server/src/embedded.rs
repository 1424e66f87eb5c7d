//! The embedded shape: the API and the worker in one process, on one database and blob
//! store. The worker's metrics join the API's `/metrics`, and the API's after-commit hook
//! hands a drop's webhook events to the worker at once (the queued job stays the durable
//! path).

use std::future::Future;
use std::sync::Arc;

use leasehold_api::AppState;
use leasehold_api::after_commit::Committed;
use leasehold_worker::{WorkerContext, WorkerMetrics};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Mailboxes whose events wait for the fast path; when full (a burst), the queue delivers.
const FAST_PATH_QUEUE: usize = 1024;

/// An API instance and, in the embedded shape, its in-process worker.
pub struct Composed {
    /// The API's state.
    pub state: AppState,
    /// The worker's context, when the worker runs in this process.
    pub worker: Option<WorkerContext>,
    kicks: Option<tokio::sync::mpsc::Receiver<String>>,
}

impl Composed {
    /// Composes `state` with a worker when the configuration says so
    /// (`LEASEHOLD_EMBEDDED_WORKER`).
    pub fn new(state: AppState) -> anyhow::Result<Self> {
        if !state.config.worker.embedded {
            return Ok(Self { state, worker: None, kicks: None });
        }
        let metrics = Arc::new(state.metrics.register(WorkerMetrics::register));
        let worker = WorkerContext::new(
            state.db.clone(),
            state.blobs.clone(),
            state.clock.clone(),
            state.config.clone(),
            metrics,
        )?;
        let (kick, kicks) = tokio::sync::mpsc::channel::<String>(FAST_PATH_QUEUE);
        state.after_commit.install(Box::new(move |committed| match committed {
            Committed::WebhookEvents { lease_id } => {
                kick.try_send(lease_id.into()).ok();
            }
        }));
        Ok(Self { state, worker: Some(worker), kicks: Some(kicks) })
    }

    /// Serves until `shutdown` resolves; the worker (if any) stops with the API.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = self.state.shutting_down.clone();
        let worker = self.worker.map(|ctx| {
            if let Some(kicks) = self.kicks {
                tokio::spawn(webhook_fast_path(ctx.clone(), kicks, stop.clone()));
            }
            tokio::spawn(leasehold_worker::run(ctx, stop.clone().cancelled_owned()))
        });
        let result = leasehold_api::serve(listener, self.state, shutdown).await;
        stop.cancel();
        if let Some(worker) = worker {
            match worker.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "embedded worker failed"),
                Err(e) => tracing::error!(error = %e, "embedded worker panicked"),
            }
        }
        Ok(result?)
    }
}

/// The embedded worker's first attempt at the events of mailboxes that just took drops
/// (see `leasehold_worker::jobs::deliver::deliver_due_of`); runs until shutdown.
async fn webhook_fast_path(
    ctx: WorkerContext,
    mut kicks: tokio::sync::mpsc::Receiver<String>,
    stop: CancellationToken,
) {
    let limit = Arc::new(Semaphore::new(ctx.config.worker.concurrency));
    loop {
        let lease_id = tokio::select! {
            () = stop.cancelled() => return,
            next = kicks.recv() => match next { Some(id) => id, None => return },
        };
        let Ok(permit) = limit.clone().acquire_owned().await else { return };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = leasehold_worker::jobs::deliver::deliver_due_of(&ctx, &lease_id).await {
                tracing::debug!(lease.id = %lease_id, error = %e, "fast-path delivery failed; the queue retries");
            }
            drop(permit);
        });
    }
}
