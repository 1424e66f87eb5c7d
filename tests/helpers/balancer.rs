//! A round-robin HTTP balancer on 127.0.0.1 for tests: each request (not each connection)
//! goes to the next backend, so a client that keeps one connection open still reaches
//! every pod. Counts what each backend received.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use tokio::net::TcpListener;

struct Shared {
    backends: Vec<String>,
    next: AtomicUsize,
    served: Vec<AtomicUsize>,
    client: reqwest::Client,
    cut: std::sync::Mutex<tokio_util::sync::CancellationToken>,
}

/// A running balancer.
pub struct Balancer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    /// Starts a balancer in front of `backends` (base URLs).
    pub async fn start(backends: Vec<String>) -> Self {
        let served = backends.iter().map(|_| AtomicUsize::new(0)).collect();
        let client = reqwest::Client::builder().no_proxy().build().expect("client");
        let cut = std::sync::Mutex::new(tokio_util::sync::CancellationToken::new());
        let shared = Arc::new(Shared { backends, next: AtomicUsize::new(0), served, client, cut });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new().fallback(forward).with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self { base, shared, task }
    }

    /// Ends every response body in flight (an SSE stream, a long download) as if the
    /// connection had dropped; later requests are served as usual.
    pub fn cut(&self) {
        let mut token = self.shared.cut.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        token.cancel();
        *token = tokio_util::sync::CancellationToken::new();
    }

    /// Requests each backend received, in the order given to [`Self::start`].
    pub fn served(&self) -> Vec<usize> {
        self.shared.served.iter().map(|n| n.load(Ordering::SeqCst)).collect()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let i = shared.next.fetch_add(1, Ordering::SeqCst) % shared.backends.len();
    shared.served[i].fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let mut outgoing = shared.client.request(parts.method.clone(), format!("{}{path}", shared.backends[i]));
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_LENGTH && name != axum::http::header::TRANSFER_ENCODING {
            outgoing = outgoing.header(name, value);
        }
    }
    match outgoing.body(bytes).send().await {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if name != axum::http::header::CONTENT_LENGTH && name != axum::http::header::TRANSFER_ENCODING {
                    response = response.header(name, value);
                }
            }
            let cut = shared.cut.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            let body = futures_util::StreamExt::take_until(answer.bytes_stream(), cut.cancelled_owned());
            response.body(Body::from_stream(body)).expect("response")
        }
        Err(e) => {
            Response::builder().status(StatusCode::BAD_GATEWAY).body(Body::from(e.to_string())).expect("response")
        }
    }
}
