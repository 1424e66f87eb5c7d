//! The blob store: one type, two backends (`fs` under the data dir, `s3` through
//! aws-sdk-s3), and one function that builds every object key, so deleting a lease's prefix
//! deletes all of its bytes.

mod fs;
mod s3;

use std::io;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;

use crate::config::BlobConfig;

/// A stream of body chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;

/// Failures of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No object at that key.
    #[error("blob not found")]
    NotFound,
    /// The stream being stored failed; nothing was kept.
    #[error("source stream failed: {0}")]
    Source(io::Error),
    /// Local file system failure.
    #[error("blob file system error: {0}")]
    Io(#[from] io::Error),
    /// S3 request failure.
    #[error("s3 error: {0}")]
    S3(String),
    /// The store cannot be used at all (missing bucket or directory, refused credentials,
    /// unreachable): one line saying what to do.
    #[error("{0}")]
    Unusable(String),
}

/// An inclusive byte range, already resolved against the object's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte, inclusive.
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Never true: a range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// One stored object, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobEntry {
    /// Key relative to the store (without the S3 prefix).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification (unix ms).
    pub modified_ms: i64,
}

/// Builds the key of an object of a lease: `leases/<lease_id>/<name>`.
pub fn lease_key(lease_id: &str, name: &str) -> String {
    format!("{}{name}", lease_prefix(lease_id))
}

/// The prefix holding every object of a lease: `leases/<lease_id>/`.
pub fn lease_prefix(lease_id: &str) -> String {
    format!("leases/{lease_id}/")
}

/// The blob store.
#[derive(Clone, Debug)]
pub struct BlobStore {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Fs(fs::FsBackend),
    S3(s3::S3Backend),
}

impl BlobStore {
    /// Opens the configured backend.
    pub async fn open(config: &BlobConfig) -> Result<Self, BlobError> {
        let backend = match config {
            BlobConfig::Fs { root } => Backend::Fs(fs::FsBackend::open(root.clone()).await?),
            BlobConfig::S3(s3) => Backend::S3(s3::S3Backend::open(s3).await),
        };
        Ok(Self { backend })
    }

    /// Name of the backend (`fs` or `s3`).
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Fs(_) => "fs",
            Backend::S3(_) => "s3",
        }
    }

    /// Streams `body` into `key` and returns the number of bytes written. The object
    /// appears only once complete; on any failure nothing is left behind (temp file
    /// removed, multipart upload aborted).
    pub async fn put_stream(&self, key: &str, body: ByteStream) -> Result<u64, BlobError> {
        match &self.backend {
            Backend::Fs(b) => b.put_stream(key, body).await,
            Backend::S3(b) => b.put_stream(key, body).await,
        }
    }

    /// Stores a small object in one piece.
    pub async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<u64, BlobError> {
        let body: ByteStream = Box::pin(futures_util::stream::iter([Ok(bytes)]));
        self.put_stream(key, body).await
    }

    /// Streams an object, or the given range of it.
    pub async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream, BlobError> {
        match &self.backend {
            Backend::Fs(b) => b.get(key, range).await,
            Backend::S3(b) => b.get(key, range).await,
        }
    }

    /// Deletes one object; deleting what is already gone is success.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        validate_key(key)?;
        match &self.backend {
            Backend::Fs(b) => b.delete(key).await,
            Backend::S3(b) => b.delete(key).await,
        }
    }

    /// Deletes every object whose key starts with `prefix` (which must end in `/`);
    /// returns how many were deleted. Deleting what is already gone is success.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64, BlobError> {
        if !prefix.ends_with('/') || prefix.len() < 2 {
            return Err(BlobError::Io(io::Error::new(io::ErrorKind::InvalidInput, "prefix must end in '/'")));
        }
        match &self.backend {
            Backend::Fs(b) => b.delete_prefix(prefix).await,
            Backend::S3(b) => b.delete_prefix(prefix).await,
        }
    }

    /// Deletes every byte of these leases, whose object keys are known (from their
    /// rows): the fs backend removes each lease's directory (`concurrency` at a time); S3
    /// deletes the keys in batches of 1000 without listing (listing is the slow part on
    /// many S3-compatible stores). Objects under a prefix that no row knows (a crash
    /// mid-write) are the orphan reaper's job.
    pub async fn delete_leases(
        &self,
        lease_ids: &[&str],
        keys: &[String],
        concurrency: usize,
    ) -> Result<u64, BlobError> {
        match &self.backend {
            Backend::Fs(b) => {
                use futures_util::StreamExt;
                let prefixes: Vec<String> = lease_ids.iter().map(|id| lease_prefix(id)).collect();
                let results: Vec<Result<u64, BlobError>> = futures_util::stream::iter(prefixes)
                    .map(|prefix| {
                        let b = b.clone();
                        async move { b.delete_prefix(&prefix).await }
                    })
                    .buffer_unordered(concurrency.max(1))
                    .collect()
                    .await;
                results.into_iter().sum()
            }
            Backend::S3(b) => {
                for key in keys {
                    validate_key(key)?;
                }
                b.delete_keys(keys).await
            }
        }
    }

    /// Deletes these objects (S3: in batches of 1000); returns how many were asked for.
    /// Deleting what is already gone is success.
    pub async fn delete_keys(&self, keys: &[String]) -> Result<u64, BlobError> {
        for key in keys {
            validate_key(key)?;
        }
        match &self.backend {
            Backend::Fs(b) => {
                for key in keys {
                    b.delete(key).await?;
                }
                Ok(keys.len() as u64)
            }
            Backend::S3(b) => b.delete_keys(keys).await,
        }
    }

    /// Lists every object under `prefix` (empty for all).
    pub async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>, BlobError> {
        match &self.backend {
            Backend::Fs(b) => b.list(prefix).await,
            Backend::S3(b) => b.list(prefix).await,
        }
    }

    /// Removes what crashed uploads left behind before `cutoff_ms` (unix ms): temp files
    /// (fs) or unfinished multipart uploads (S3). Returns how many.
    pub async fn reap_incomplete(&self, cutoff_ms: i64) -> Result<u64, BlobError> {
        match &self.backend {
            Backend::Fs(b) => b.reap_incomplete(cutoff_ms).await,
            Backend::S3(b) => b.reap_incomplete(cutoff_ms).await,
        }
    }

    /// Verifies the store is reachable and writable enough to serve.
    pub async fn check(&self) -> Result<(), BlobError> {
        match &self.backend {
            Backend::Fs(b) => b.check().await,
            Backend::S3(b) => b.check().await,
        }
    }
}

/// Rejects keys that could escape the store's namespace.
fn validate_key(key: &str) -> Result<(), BlobError> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.split('/').any(|part| part.is_empty() || part == "." || part == "..")
        || key.chars().any(char::is_control);
    if bad {
        Err(BlobError::Io(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid blob key {key:?}"))))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_live_under_the_lease_prefix() {
        assert_eq!(lease_key("lse_1", "object"), "leases/lse_1/object");
        assert!(lease_key("lse_1", "object").starts_with(&lease_prefix("lse_1")));
    }

    #[test]
    fn escaping_keys_are_rejected() {
        for bad in ["", "/abs", "a/../b", "a//b", "a/./b", "a\nb", "a/"] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        assert!(validate_key("leases/lse_1/object").is_ok());
    }
}
