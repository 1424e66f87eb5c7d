//! File-system backend: objects are files under a root directory; writes go to a temp file
//! that is synced and renamed into place, so a reader never sees half an object.

use std::io;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};
use tokio_util::io::ReaderStream;

use super::{BlobEntry, BlobError, ByteRange, ByteStream, validate_key};

const TMP_DIR: &str = ".tmp";
const WRITE_BUFFER: usize = 1024 * 1024;
const READ_CHUNK: usize = 256 * 1024;

#[derive(Clone, Debug)]
pub(super) struct FsBackend {
    root: PathBuf,
}

impl FsBackend {
    pub(super) async fn open(root: PathBuf) -> Result<Self, BlobError> {
        tokio::fs::create_dir_all(root.join(TMP_DIR)).await?;
        Ok(Self { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    pub(super) async fn put_stream(&self, key: &str, mut body: ByteStream) -> Result<u64, BlobError> {
        let target = self.path(key)?;
        let tmp = self.root.join(TMP_DIR).join(ulid::Ulid::generate().to_string());
        let result = async {
            let file = tokio::fs::File::create(&tmp).await?;
            let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
            let mut written = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(BlobError::Source)?;
                written += chunk.len() as u64;
                out.write_all(&chunk).await?;
            }
            out.flush().await?;
            out.into_inner().sync_all().await?;
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            tokio::fs::rename(&tmp, &target).await?;
            Ok::<_, BlobError>(written)
        }
        .await;
        if result.is_err() {
            remove_quietly(&tmp).await;
        }
        result
    }

    pub(super) async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream, BlobError> {
        let path = self.path(key)?;
        let mut file = tokio::fs::File::open(&path).await.map_err(not_found)?;
        let stream: ByteStream = match range {
            Some(r) => {
                file.seek(io::SeekFrom::Start(r.start)).await?;
                Box::pin(ReaderStream::with_capacity(tokio::io::AsyncReadExt::take(file, r.len()), READ_CHUNK))
            }
            None => Box::pin(ReaderStream::with_capacity(file, READ_CHUNK)),
        };
        Ok(stream)
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

    pub(super) async fn check(&self) -> Result<(), BlobError> {
        let meta = tokio::fs::metadata(self.root.join(TMP_DIR)).await?;
        if meta.is_dir() { Ok(()) } else { Err(BlobError::Io(io::Error::other("blob temp dir is not a directory"))) }
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
