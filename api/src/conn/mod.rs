//! Client connections, bounded (SPEC §10). Every accepted socket is served by hyper on a
//! task of its own and watched once a second:
//!
//! - a connection that has not sent a whole request head within the header-read timeout
//!   (counted from its opening, or from the first byte of a later request) is closed;
//! - a kept-alive connection idle between requests for the idle timeout is closed;
//! - a request body that makes no progress for the body timeout fails (the handler sees
//!   the error and keeps nothing), and so does a response the client stops reading;
//! - at most `max_connections` sockets are open (also bounded by the process's file
//!   limit): when full, the connection that has waited longest without a request in
//!   progress is closed to make room, so `/healthz` answers while idle sockets pile up.

mod body;
mod io;
mod registry;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use leasehold_core::config::HttpConfig;
pub use registry::effective_max_connections;
use registry::{Phase, Registry, Tracker};

/// File descriptors kept free for the database pool, blob files and the listener.
const FD_RESERVE: usize = 256;

/// Accepts and serves connections until `stop` is cancelled, then lets open requests
/// finish; returns once every connection is closed or `grace` has passed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    http: &HttpConfig,
    stop: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let max = effective_max_connections(http.max_connections, FD_RESERVE);
    let registry = Arc::new(Registry::new(max));
    tracing::info!(max_connections = max, "accepting connections");
    loop {
        // Every socket busy with a request: leave new ones in the kernel's backlog.
        tokio::select! {
            () = stop.cancelled() => break,
            () = registry.wait_for_room() => {}
        }
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors or a connection reset before accept: wait a moment
                // rather than spin, as axum's own loop does.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let tracker = registry.register();
        tokio::spawn(serve_one(tcp, peer, router.clone(), http.clone(), tracker, registry.clone(), stop.clone()));
    }
    drop(listener);
    tracing::info!(
        open = registry.len(),
        grace_seconds = grace.as_secs(),
        "shutting down: finishing in-flight requests"
    );
    let drained = registry.drained();
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!(open = registry.len(), "in-flight requests did not finish within the shutdown timeout");
    }
    Ok(())
}

async fn serve_one(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    http: HttpConfig,
    tracker: Arc<Tracker>,
    registry: Arc<Registry>,
    stop: CancellationToken,
) {
    // Without TCP_NODELAY a streamed response (headers, then body) waits for the client's
    // delayed ACK: 40 ms on every small streamed download.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    let io = TokioIo::new(io::Watched::new(tcp, tracker.clone()));
    let body_timeout = http.body_timeout;
    let service_tracker = tracker.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let mut router = router.clone();
        let tracker = service_tracker.clone();
        async move {
            tracker.set_phase(Phase::Busy);
            let mut request = request.map(|b| axum::body::Body::new(body::Progress::new(b, body_timeout)));
            request.extensions_mut().insert(ConnectInfo(peer));
            let response = match tower::Service::call(&mut router, request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|b| axum::body::Body::new(body::Finished::new(b, tracker))))
        }
    });
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(connection);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut draining = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            () = tracker.evicted() => {
                tracing::debug!("idle connection closed to make room");
                break;
            }
            () = stop.cancelled(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
            _ = tick.tick() => {
                if let Some(reason) = tracker.overdue(&http) {
                    tracing::debug!(reason, "connection closed");
                    break;
                }
            }
        }
    }
    registry.remove(&tracker);
}
