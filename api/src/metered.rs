//! An upload body that is counted, checked against its declared size (or bounds), and
//! hashed as it streams into the blob store. Hashing runs on the blocking pool a batch at a
//! time, one batch in flight while the next arrives: no thread waits on the client (a
//! thread per upload would, and slow clients would use up the pool; SPEC §10), yet the
//! hash and the network overlap.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use leasehold_core::blob::ByteStream;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

/// Bytes gathered before a batch is handed to the hasher.
const HASH_BATCH: usize = 256 * 1024;

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
    settled: bool,
    verdict: Verdict,
    /// Hex SHA-256; empty unless the body ended within its bounds.
    sha256: String,
}

/// The stream handed to the blob store: it fails when the body is longer or shorter than
/// declared, so the store keeps nothing.
pub struct Metered {
    inner: ByteStream,
    min: u64,
    max: u64,
    seen: u64,
    /// The hasher when idle; `None` while a batch is being hashed.
    sha: Option<Sha256>,
    hashing: Option<JoinHandle<Sha256>>,
    batch: Vec<Bytes>,
    batched: usize,
    /// The body ended within bounds; the last batches are being hashed.
    ending: bool,
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
    let metered = Metered {
        inner,
        min,
        max,
        seen: 0,
        sha: Some(Sha256::new()),
        hashing: None,
        batch: Vec::new(),
        batched: 0,
        ending: false,
        outcome: outcome.clone(),
        done: false,
    };
    (metered, Meter { outcome })
}

impl Meter {
    /// The verdict and the hex SHA-256 of the body (empty unless it ended within bounds);
    /// call after the stream has been consumed or dropped.
    pub async fn finish(self) -> io::Result<(Verdict, String)> {
        let outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        if !outcome.settled {
            return Err(io::Error::other("upload stream still in use"));
        }
        Ok((outcome.verdict, outcome.sha256.clone()))
    }
}

impl Metered {
    /// Records the verdict (and the hash, when the body ended within bounds); once.
    fn settle(&mut self, update: impl FnOnce(&mut Verdict), sha256: Option<String>) {
        self.done = true;
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        outcome.settled = true;
        outcome.verdict.bytes = self.seen;
        update(&mut outcome.verdict);
        outcome.sha256 = sha256.unwrap_or_default();
    }

    fn fail(&mut self, update: impl FnOnce(&mut Verdict), message: &'static str) -> Poll<Option<io::Result<Bytes>>> {
        self.settle(update, None);
        Poll::Ready(Some(Err(io::Error::other(message))))
    }

    /// Waits for the batch being hashed, if any; then hands over the gathered batch when it
    /// is full (or, at the end, whatever is left).
    fn poll_hasher(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flush = self.batched >= HASH_BATCH || (self.ending && !self.batch.is_empty());
        if let Some(job) = self.hashing.as_mut()
            && (flush || self.ending)
        {
            let sha = ready!(job.poll_unpin(cx)).map_err(io::Error::other)?;
            self.hashing = None;
            self.sha = Some(sha);
        }
        if flush && let Some(mut sha) = self.sha.take() {
            let batch = std::mem::take(&mut self.batch);
            self.batched = 0;
            self.hashing = Some(tokio::task::spawn_blocking(move || {
                for chunk in &batch {
                    sha.update(chunk);
                }
                sha
            }));
            if self.ending {
                return self.poll_hasher(cx);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        if !self.done {
            self.settle(|_| {}, None);
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
        if let Err(e) = ready!(this.poll_hasher(cx)) {
            this.settle(|_| {}, None);
            return Poll::Ready(Some(Err(e)));
        }
        if this.ending {
            let sha = this.sha.take().map(|sha| hex::encode(sha.finalize()));
            this.settle(|_| {}, sha);
            return Poll::Ready(None);
        }
        match ready!(this.inner.poll_next_unpin(cx)) {
            Some(Ok(chunk)) => {
                this.seen += chunk.len() as u64;
                if this.seen > this.max {
                    return this.fail(|v| v.too_long = true, "body longer than declared");
                }
                this.batched += chunk.len();
                this.batch.push(chunk.clone());
                Poll::Ready(Some(Ok(chunk)))
            }
            Some(Err(e)) => {
                this.settle(|_| {}, None);
                Poll::Ready(Some(Err(e)))
            }
            None if this.seen < this.min => this.fail(|v| v.too_short = true, "body shorter than declared"),
            None => {
                this.ending = true;
                self.poll_next(cx)
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
    async fn bodies_of_many_batches_hash_like_one_piece() {
        let chunk: &'static [u8] = Box::leak(vec![7u8; 100_000].into_boxed_slice());
        let parts = vec![chunk; 13];
        let total = (chunk.len() * parts.len()) as u64;
        let (s, m) = meter(body(&parts), total, total);
        assert_eq!(drain(s).await.0.len() as u64, total);
        let (v, sha) = m.finish().await.expect("finish");
        assert_eq!(v.bytes, total);
        assert_eq!(sha, hex::encode(Sha256::digest(chunk.repeat(13))));
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
