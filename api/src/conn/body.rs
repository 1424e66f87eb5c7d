//! Body wrappers of a connection: request bodies that must keep moving, and response
//! bodies that mark the connection idle again when they end.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::registry::{Phase, Tracker};

/// The error a stalled request body fails with; handlers treat it like any broken body
/// (nothing is kept).
#[derive(Debug, thiserror::Error)]
#[error("request body made no progress for {0:?}")]
pub struct Stalled(Duration);

/// A request body that fails when no bytes arrive for `timeout`.
pub struct Progress {
    inner: hyper::body::Incoming,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    /// The clock runs only while the handler waits for bytes, not while it works.
    waiting: bool,
}

impl Progress {
    /// Wraps a request body.
    pub fn new(inner: hyper::body::Incoming, timeout: Duration) -> Self {
        Self { inner, timeout, deadline: Box::pin(tokio::time::sleep(timeout)), waiting: false }
    }
}

impl http_body::Body for Progress {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if !this.waiting {
            this.waiting = true;
            let deadline = Instant::now() + this.timeout;
            this.deadline.as_mut().reset(deadline);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame.map(|f| f.map_err(axum::Error::new)))
            }
            Poll::Pending => {
                ready!(this.deadline.as_mut().poll(cx));
                Poll::Ready(Some(Err(axum::Error::new(Stalled(this.timeout)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body whose end (or drop) puts its connection back to idle.
pub struct Finished {
    inner: Body,
    tracker: Arc<Tracker>,
}

impl Finished {
    /// Wraps a response body.
    pub fn new(inner: Body, tracker: Arc<Tracker>) -> Self {
        Self { inner, tracker }
    }
}

impl Drop for Finished {
    fn drop(&mut self) {
        if self.tracker.phase() == Phase::Busy {
            self.tracker.set_phase(Phase::Idle);
        }
    }
}

impl http_body::Body for Finished {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
