//! An upload body that is counted, checked against its declared size (or bounds), and
//! hashed as it streams into the blob store. Hashing happens on the task that moves the
//! body (SHA-256 runs at well over a GB/s here): a thread per upload would wait on the
//! client, and slow clients would use up the blocking pool (SPEC §10).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use leasehold_core::blob::ByteStream;
use sha2::{Digest, Sha256};

/// How the body compared with its declared size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Bytes seen.
    pub bytes: u64,
    /// More bytes than declared arrived (the stream was failed at that point).
    pub too_long: bool,
    /// The body ended before the declared size (the stream was failed at the end).
    pub too_short: bool,
}

#[derive(Default)]
struct Outcome {
    verdict: Verdict,
    sha256: Option<String>,
}

/// The stream handed to the blob store: it fails when the body is longer or shorter than
/// declared, so the store keeps nothing.
pub struct Metered {
    inner: ByteStream,
    min: u64,
    max: u64,
    seen: u64,
    sha: Option<Sha256>,
    outcome: Arc<Mutex<Outcome>>,
    done: bool,
}

/// The other end: the verdict and the SHA-256 once the stream is finished.
pub struct Meter {
    outcome: Arc<Mutex<Outcome>>,
}

/// Wraps `inner`, expecting between `min` and `max` bytes (both inclusive).
pub fn meter(inner: ByteStream, min: u64, max: u64) -> (Metered, Meter) {
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let metered = Metered { inner, min, max, seen: 0, sha: Some(Sha256::new()), outcome: outcome.clone(), done: false };
    (metered, Meter { outcome })
}

impl Meter {
    /// The verdict and the hex SHA-256 of everything that passed (call after the stream
    /// has been consumed or dropped).
    pub async fn finish(self) -> io::Result<(Verdict, String)> {
        let outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        let sha = outcome.sha256.clone().ok_or_else(|| io::Error::other("upload stream still in use"))?;
        Ok((outcome.verdict, sha))
    }
}

impl Metered {
    /// Records the verdict and the hash of what passed; once.
    fn settle(&mut self, update: impl FnOnce(&mut Verdict)) {
        self.done = true;
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        outcome.verdict.bytes = self.seen;
        update(&mut outcome.verdict);
        if let Some(sha) = self.sha.take() {
            outcome.sha256 = Some(hex::encode(sha.finalize()));
        }
    }

    fn fail(&mut self, update: impl FnOnce(&mut Verdict), message: &'static str) -> Poll<Option<io::Result<Bytes>>> {
        self.settle(update);
        Poll::Ready(Some(Err(io::Error::other(message))))
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        if !self.done {
            self.settle(|_| {});
        }
    }
}

impl Stream for Metered {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match ready!(this.inner.poll_next_unpin(cx)) {
            Some(Ok(chunk)) => {
                this.seen += chunk.len() as u64;
                if this.seen > this.max {
                    return this.fail(|v| v.too_long = true, "body longer than declared");
                }
                if let Some(sha) = this.sha.as_mut() {
                    sha.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Some(Err(e)) => {
                this.settle(|_| {});
                Poll::Ready(Some(Err(e)))
            }
            None if this.seen < this.min => this.fail(|v| v.too_short = true, "body shorter than declared"),
            None => {
                this.settle(|_| {});
                Poll::Ready(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&'static [u8]]) -> ByteStream {
        Box::pin(futures_util::stream::iter(parts.iter().map(|p| Ok(Bytes::from_static(p))).collect::<Vec<_>>()))
    }

    async fn drain(mut s: Metered) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        while let Some(chunk) = s.next().await {
            match chunk {
                Ok(c) => out.extend_from_slice(&c),
                Err(_) => return (out, true),
            }
        }
        (out, false)
    }

    #[tokio::test]
    async fn exact_bodies_pass_and_are_hashed() {
        let (s, m) = meter(body(&[b"ab", b"c"]), 3, 3);
        assert_eq!(drain(s).await, (b"abc".to_vec(), false));
        let (v, sha) = m.finish().await.expect("finish");
        assert_eq!(v, Verdict { bytes: 3, too_long: false, too_short: false });
        assert_eq!(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[tokio::test]
    async fn long_bodies_fail_at_the_first_excess_byte() {
        let (s, m) = meter(body(&[b"ab", b"cd", b"ef"]), 3, 3);
        assert_eq!(drain(s).await, (b"ab".to_vec(), true));
        assert!(m.finish().await.expect("finish").0.too_long);
    }

    #[tokio::test]
    async fn bounded_bodies_pass_anywhere_in_the_range() {
        let (s, m) = meter(body(&[b"ab"]), 1, 3);
        assert_eq!(drain(s).await, (b"ab".to_vec(), false));
        assert_eq!(m.finish().await.expect("finish").0.bytes, 2);
        let (s, m) = meter(body(&[]), 1, 3);
        assert_eq!(drain(s).await, (Vec::new(), true));
        assert!(m.finish().await.expect("finish").0.too_short);
    }

    #[tokio::test]
    async fn short_bodies_fail_at_the_end() {
        let (s, m) = meter(body(&[b"ab"]), 3, 3);
        assert_eq!(drain(s).await, (b"ab".to_vec(), true));
        assert!(m.finish().await.expect("finish").0.too_short);
    }
}
