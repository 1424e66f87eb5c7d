//! A request body that records whether it was read to its end.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};

/// Wraps a body; the flag becomes true once the body has reported its end.
pub struct Tracked {
    inner: Body,
    finished: Arc<AtomicBool>,
}

impl Tracked {
    /// Wraps `inner`; an empty body counts as finished at once.
    pub fn new(inner: Body) -> (Self, Arc<AtomicBool>) {
        let finished = Arc::new(AtomicBool::new(http_body::Body::is_end_stream(&inner)));
        (Self { inner, finished: finished.clone() }, finished)
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if frame.is_none() || self.inner.is_end_stream() {
            self.finished.store(true, Ordering::Release);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
