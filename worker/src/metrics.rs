//! Worker metrics: deletion lag, job outcomes, queue depth, webhook attempts.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
    status: String,
}

/// Every metric the worker exports.
pub struct WorkerMetrics {
    deletion_lag: Histogram,
    jobs: Family<JobLabels, Counter>,
    queue_depth: Family<QueueLabels, Gauge>,
    purged: Counter,
    webhooks: Family<OutcomeLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// Buckets of `leasehold_deletion_lag_seconds`, dense around the 5 s target.
const LAG_BUCKETS: [f64; 14] = [0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 30.0, 60.0, 300.0, 3600.0];

impl WorkerMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            deletion_lag: Histogram::new(LAG_BUCKETS),
            jobs: Family::default(),
            queue_depth: Family::default(),
            purged: Counter::default(),
            webhooks: Family::default(),
        };
        registry.register(
            "leasehold_webhook_attempts",
            "Webhook delivery attempts, by outcome (delivered, retrying, exhausted, stopped)",
            metrics.webhooks.clone(),
        );
        registry.register(
            "leasehold_deletion_lag_seconds",
            "Seconds from a lease's end (expiry or deletion) until its bytes were gone",
            metrics.deletion_lag.clone(),
        );
        registry.register("leasehold_jobs", "Jobs run, by job and outcome", metrics.jobs.clone());
        registry.register(
            "leasehold_queue_depth",
            "Jobs in the queue, by queue and status",
            metrics.queue_depth.clone(),
        );
        registry.register("leasehold_leases_purged", "Dead leases whose bytes were removed", metrics.purged.clone());
        metrics
    }

    /// Records one purge and its lag.
    pub fn purged(&self, lag_seconds: f64) {
        self.deletion_lag.observe(lag_seconds.max(0.0));
        self.purged.inc();
    }

    /// Leases this worker purged so far.
    pub fn purged_count(&self) -> u64 {
        self.purged.get()
    }

    /// Observations of the deletion-lag histogram so far: (count, sum of seconds).
    pub fn lag_observations(&self) -> (u64, f64) {
        let mut text = String::new();
        let mut registry = Registry::default();
        registry.register("lag", "", self.deletion_lag.clone());
        if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
            return (0, 0.0);
        }
        let value = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (value("lag_count") as u64, value("lag_sum"))
    }

    /// Counts a job run.
    pub fn job(&self, job: &str, outcome: &str) {
        self.jobs.get_or_create(&JobLabels { job: job.into(), outcome: outcome.into() }).inc();
    }

    /// Counts a webhook delivery attempt.
    pub fn webhook(&self, outcome: &str) {
        self.webhooks.get_or_create(&OutcomeLabels { outcome: outcome.into() }).inc();
    }

    /// Webhook attempts with this outcome so far.
    pub fn webhook_count(&self, outcome: &str) -> u64 {
        self.webhooks.get_or_create(&OutcomeLabels { outcome: outcome.into() }).get()
    }

    /// Sets the depth of a queue in one status.
    pub fn queue_depth(&self, queue: &str, status: &str, count: i64) {
        self.queue_depth.get_or_create(&QueueLabels { queue: queue.into(), status: status.into() }).set(count);
    }
}
