//! File-system backend: objects are files under a root directory; writes go to a temp file
//! that is synced and renamed into place, so a reader never sees half an object.

use std::io;
use std::path::{Path, PathBuf};

use std::io::{Read, Seek, Write};

use bytes::Bytes;
use futures_util::StreamExt;

use super::{BlobEntry, BlobError, ByteRange, ByteStream, validate_key};

const TMP_DIR: &str = ".tmp";
/// Bytes gathered before a write; also what a stalled upload holds in memory at most.
const WRITE_BUFFER: usize = 256 * 1024;
const READ_CHUNK: usize = 1024 * 1024;

#[derive(Clone, Debug)]
pub(super) struct FsBackend {
    root: PathBuf,
}

impl FsBackend {
    pub(super) async fn open(root: PathBuf) -> Result<Self, BlobError> {
        tokio::fs::create_dir_all(root.join(TMP_DIR)).await.map_err(|e| {
            BlobError::Unusable(format!(
                "cannot create the blob directory {} (LEASEHOLD_DATA_DIR): {e}",
                root.display()
            ))
        })?;
        Ok(Self { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    pub(super) async fn put_stream(&self, key: &str, body: ByteStream) -> Result<u64, BlobError> {
        let target = self.path(key)?;
        let tmp = self.root.join(TMP_DIR).join(ulid::Ulid::generate().to_string());
        let result = match write_tmp(&tmp, body).await {
            Ok(written) => async {
                if let Some(parent) = target.parent() {
                    tokio::fs::create_dir_all(parent).await?;
                }
                tokio::fs::rename(&tmp, &target).await?;
                Ok(written)
            }
            .await
            .map_err(BlobError::Io),
            Err(e) => Err(e),
        };
        if result.is_err() {
            remove_quietly(&tmp).await;
        }
        result
    }

    pub(super) async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream, BlobError> {
        let path = self.path(key)?;
        let (file, left) = blocking(move || {
            let mut file = std::fs::File::open(&path).map_err(not_found)?;
            let (start, left) = match range {
                Some(r) => (r.start, r.len()),
                None => (0, file.metadata()?.len()),
            };
            file.seek(io::SeekFrom::Start(start))?;
            Ok::<_, BlobError>((file, left))
        })
        .await??;
        // Each chunk is read by a blocking-pool thread that returns at once: no thread
        // waits for a slow client between chunks (SPEC §10).
        let chunks = futures_util::stream::try_unfold((Some(file), left), |(file, left)| async move {
            let Some(mut file) = file.filter(|_| left > 0) else { return Ok(None) };
            let want = left.min(READ_CHUNK as u64);
            let (file, chunk) = tokio::task::spawn_blocking(move || {
                let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(READ_CHUNK));
                let read = (&mut file).take(want).read_to_end(&mut buf);
                (file, read.map(|_| buf))
            })
            .await
            .map_err(io::Error::other)?;
            let chunk = chunk?;
            if chunk.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "blob shorter than expected"));
            }
            let left = left - chunk.len() as u64;
            Ok(Some((Bytes::from(chunk), (Some(file), left))))
        });
        Ok(Box::pin(chunks))
    }

    pub(super) async fn delete_prefix(&self, prefix: &str) -> Result<u64, BlobError> {
        let dir = self.path(prefix.trim_end_matches('/'))?;
        let count = count_files(dir.clone()).await?;
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(count),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>, BlobError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&root, &root, &mut out)?;
            out.retain(|e| e.key.starts_with(&prefix));
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
        .map_err(|e| BlobError::Io(io::Error::other(e)))?
    }

    pub(super) async fn reap_incomplete(&self, cutoff_ms: i64) -> Result<u64, BlobError> {
        let dir = self.root.join(TMP_DIR);
        tokio::task::spawn_blocking(move || {
            let mut removed = 0;
            let mut stale = Vec::new();
            walk(&dir, &dir, &mut stale)?;
            for entry in stale.into_iter().filter(|e| e.modified_ms < cutoff_ms) {
                match std::fs::remove_file(dir.join(&entry.key)) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(BlobError::Io(e)),
                }
            }
            Ok(removed)
        })
        .await
        .map_err(|e| BlobError::Io(io::Error::other(e)))?
    }

    pub(super) async fn check(&self) -> Result<(), BlobError> {
        match tokio::fs::metadata(self.root.join(TMP_DIR)).await {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(BlobError::Unusable("the blob directory under LEASEHOLD_DATA_DIR is damaged".into())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(BlobError::Unusable(
                "the blob directory under LEASEHOLD_DATA_DIR is missing — restore it, or restart to create an empty one"
                    .into(),
            )),
            Err(e) => Err(BlobError::Unusable(format!("the blob directory under LEASEHOLD_DATA_DIR is unusable: {e}"))),
        }
    }
}

/// Writes `body` to a new file at `tmp` and syncs it. Chunks gather in memory up to
/// `WRITE_BUFFER`; each batch is written by a blocking-pool call that returns at once, one
/// batch in flight while the next gathers, so no thread ever waits for the client between
/// batches (SPEC §10) and the disk and the network still overlap.
async fn write_tmp(tmp: &Path, mut body: ByteStream) -> Result<u64, BlobError> {
    let path = tmp.to_path_buf();
    let file = blocking(move || std::fs::File::create(&path)).await??;
    let mut writing: tokio::task::JoinHandle<io::Result<std::fs::File>> = tokio::task::spawn_blocking(move || Ok(file));
    let mut batch: Vec<Bytes> = Vec::new();
    let (mut batched, mut written) = (0usize, 0u64);
    loop {
        let end = match body.next().await {
            Some(Ok(chunk)) => {
                batched += chunk.len();
                written += chunk.len() as u64;
                batch.push(chunk);
                false
            }
            Some(Err(e)) => return Err(BlobError::Source(e)),
            None => true,
        };
        if batched >= WRITE_BUFFER || (end && !batch.is_empty()) {
            let mut f = writing.await.map_err(|e| BlobError::Io(io::Error::other(e)))??;
            let chunks = std::mem::take(&mut batch);
            writing = tokio::task::spawn_blocking(move || {
                for chunk in &chunks {
                    f.write_all(chunk)?;
                }
                Ok(f)
            });
            batched = 0;
        }
        if end {
            break;
        }
    }
    let f = writing.await.map_err(|e| BlobError::Io(io::Error::other(e)))??;
    blocking(move || f.sync_all()).await??;
    Ok(written)
}

/// Runs a short file operation on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| BlobError::Io(io::Error::other(e)))
}

fn not_found(e: io::Error) -> BlobError {
    if e.kind() == io::ErrorKind::NotFound { BlobError::NotFound } else { BlobError::Io(e) }
}

async fn remove_quietly(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove temp blob");
    }
}

async fn count_files(dir: PathBuf) -> Result<u64, BlobError> {
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        match walk(&dir, &dir, &mut out) {
            Ok(()) => Ok(out.len() as u64),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(BlobError::Io(e)),
        }
    })
    .await
    .map_err(|e| BlobError::Io(io::Error::other(e)))?
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<BlobEntry>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let meta = entry.metadata()?;
        let Ok(rel) = path.strip_prefix(root) else { continue };
        let key = rel.to_string_lossy().replace('\\', "/");
        if key == TMP_DIR {
            continue;
        }
        if meta.is_dir() {
            walk(root, &path, out)?;
        } else {
            let modified_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            out.push(BlobEntry { key, size: meta.len(), modified_ms });
        }
    }
    Ok(())
}
