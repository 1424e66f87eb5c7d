//! File-system backend: objects are files under a root directory; writes go to a temp file
//! that is synced and renamed into place, so a reader never sees half an object.

use std::io;
use std::path::{Path, PathBuf};

use std::io::{Read, Seek, Write};

use bytes::Bytes;
use futures_util::StreamExt;

use super::{BlobEntry, BlobError, ByteRange, ByteStream, validate_key};

const TMP_DIR: &str = ".tmp";
const WRITE_BUFFER: usize = 1024 * 1024;
const READ_CHUNK: usize = 1024 * 1024;
const CHANNEL_CHUNKS: usize = 8;

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

    pub(super) async fn put_stream(&self, key: &str, mut body: ByteStream) -> Result<u64, BlobError> {
        let target = self.path(key)?;
        let tmp = self.root.join(TMP_DIR).join(ulid::Ulid::generate().to_string());
        // A dedicated blocking thread writes with std I/O, so chunks cross to it without a
        // copy and the async side only moves `Bytes` through a bounded channel.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
        let writer_tmp = tmp.clone();
        let writer = tokio::task::spawn_blocking(move || -> io::Result<()> {
            let file = std::fs::File::create(&writer_tmp)?;
            let mut out = std::io::BufWriter::with_capacity(WRITE_BUFFER, file);
            while let Some(chunk) = rx.blocking_recv() {
                out.write_all(&chunk)?;
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        });
        let mut written = 0u64;
        let mut source_error = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    written += chunk.len() as u64;
                    if tx.send(chunk).await.is_err() {
                        break; // the writer failed; its error is reported below
                    }
                }
                Err(e) => {
                    source_error = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let wrote = writer.await.map_err(|e| BlobError::Io(io::Error::other(e)))?;
        let result = match (source_error, wrote) {
            (Some(e), _) => Err(BlobError::Source(e)),
            (None, Err(e)) => Err(BlobError::Io(e)),
            (None, Ok(())) => {
                async {
                    if let Some(parent) = target.parent() {
                        tokio::fs::create_dir_all(parent).await?;
                    }
                    tokio::fs::rename(&tmp, &target).await?;
                    Ok(written)
                }
                .await
            }
        };
        if result.is_err() {
            remove_quietly(&tmp).await;
        }
        result
    }

    pub(super) async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream, BlobError> {
        let path = self.path(key)?;
        let mut file = std::fs::File::open(&path).map_err(not_found)?;
        let (start, mut left) = match range {
            Some(r) => (r.start, r.len()),
            None => (0, file.metadata()?.len()),
        };
        file.seek(io::SeekFrom::Start(start))?;
        // A blocking reader thread fills fresh buffers and hands them over as `Bytes`; the
        // bounded channel stops it when the client reads slowly.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
        tokio::task::spawn_blocking(move || {
            while left > 0 {
                let want = left.min(READ_CHUNK as u64);
                let mut buf = Vec::with_capacity(READ_CHUNK);
                let chunk = match (&mut file).take(want).read_to_end(&mut buf) {
                    Ok(0) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "blob shorter than expected")),
                    Ok(n) => {
                        left -= n as u64;
                        Ok(Bytes::from(buf))
                    }
                    Err(e) => Err(e),
                };
                let failed = chunk.is_err();
                if tx.blocking_send(chunk).is_err() || failed {
                    return; // the reader went away, or the error has been handed over
                }
            }
        });
        Ok(Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))))
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
