//! Prometheus metrics of one API instance (SPEC §10).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseLabels {
    variant: String,
    state: String,
}

/// Every metric this instance exports.
pub struct Metrics {
    registry: std::sync::Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    /// Request body bytes received for stored content.
    pub bytes_in: Counter,
    /// Response body bytes sent of stored content.
    pub bytes_out: Counter,
    leases: Family<LeaseLabels, Gauge>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric of the API registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("leasehold_http_requests", "HTTP requests by method, route and status", requests.clone());
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "leasehold_http_request_duration_seconds",
            "Time to response headers, by method and route",
            latency.clone(),
        );
        let bytes_in = Counter::default();
        registry.register("leasehold_bytes_in", "Stored content bytes received", bytes_in.clone());
        let bytes_out = Counter::default();
        registry.register("leasehold_bytes_out", "Stored content bytes sent", bytes_out.clone());
        let leases = Family::<LeaseLabels, Gauge>::default();
        registry.register("leasehold_leases", "Leases by variant and stored state", leases.clone());
        Self { registry: std::sync::Mutex::new(registry), requests, latency, bytes_in, bytes_out, leases }
    }

    /// Registers more metrics in this registry, served on the same `/metrics` (the embedded
    /// worker's, in the embedded shape).
    pub fn register<T>(&self, register: impl FnOnce(&mut Registry) -> T) -> T {
        register(&mut self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Sets the lease gauge for one variant and state.
    pub fn set_leases(&self, variant: &str, state: &str, count: i64) {
        self.leases.get_or_create(&LeaseLabels { variant: variant.into(), state: state.into() }).set(count);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }
}

/// Middleware recording request counts and latency by matched route.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    state.metrics.requests.get_or_create(&RequestLabels { method: method.clone(), route: route.clone(), status }).inc();
    state.metrics.latency.get_or_create(&RouteLabels { method, route }).observe(started.elapsed().as_secs_f64());
    response
}
