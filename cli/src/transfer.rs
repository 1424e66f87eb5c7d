//! Streaming uploads and downloads with a progress bar (rate and ETA) on stderr when it is
//! a terminal, and none otherwise. Memory stays a few buffers whatever the file's size.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::TryStreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Response;
use tokio::io::AsyncWrite;

use crate::client::Failure;
use crate::crypt;

/// Read and write size of file transfers.
const BUFFER: usize = 1 << 20;

/// A progress bar for `total` bytes (unknown: a spinner), drawn only on a terminal.
pub fn bar(total: Option<u64>, what: &str) -> ProgressBar {
    let bar = match total {
        Some(n) => ProgressBar::with_draw_target(Some(n), target()),
        None => ProgressBar::with_draw_target(None, target()),
    };
    let template = if total.is_some() {
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
    } else {
        "{msg} {spinner} {bytes} {bytes_per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    // The first frame at once (on a terminal): a short transfer still shows its bar.
    bar.tick();
    bar
}

fn target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr_with_hz(10) } else { ProgressDrawTarget::hidden() }
}

/// The body of a file upload: its bytes (or their age encryption), its length on the
/// wire, and the encryption task to check once the upload is answered.
pub struct Upload {
    /// The request body.
    pub body: reqwest::Body,
    /// Bytes on the wire (`X-Size-Bytes`).
    pub length: u64,
    /// The encrypting task, when encrypting.
    pub sealing: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The bar, finished by the caller.
    pub bar: ProgressBar,
}

/// Opens `path` for upload, encrypting it with `sealing` when given.
pub async fn upload(path: &Path, sealing: Option<&crypt::Sealing>) -> Result<Upload, Failure> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Failure::local("io_error", format!("{}: {e}", path.display())))?;
    let plain = file.metadata().await?.len();
    let bar = bar(Some(plain), "upload");
    let progress = bar.clone();
    let chunks =
        tokio_util::io::ReaderStream::with_capacity(file, BUFFER).inspect_ok(move |c| progress.inc(c.len() as u64));
    match sealing {
        None => Ok(Upload { body: reqwest::Body::wrap_stream(chunks), length: plain, sealing: None, bar }),
        Some(s) => {
            let (length, stream, task) = s.encrypt_stream(tokio_util::io::StreamReader::new(chunks), plain).await?;
            Ok(Upload { body: reqwest::Body::wrap_stream(stream), length, sealing: Some(task), bar })
        }
    }
}

/// Where a download goes.
pub enum Sink {
    /// Standard output.
    Stdout,
    /// A file, written beside its final name and renamed when complete.
    File(std::path::PathBuf),
}

impl Sink {
    /// `-` is stdout; anything else a file.
    pub fn of(path: &Path) -> Self {
        if path.as_os_str() == "-" { Self::Stdout } else { Self::File(path.to_owned()) }
    }
}

/// Streams `response` into `sink` (decrypting with `identity` when given); returns the
/// bytes written. A file appears under its name only once complete.
pub async fn download(
    response: Response,
    sink: &Sink,
    identity: Option<&age::x25519::Identity>,
) -> Result<u64, Failure> {
    let total = response.content_length();
    let bar = bar(total, "download");
    let progress = bar.clone();
    let stream =
        response.bytes_stream().map_err(std::io::Error::other).inspect_ok(move |c| progress.inc(c.len() as u64));
    let (out, partial): (Box<dyn Write + Send>, _) = match sink {
        // A duplicate of fd 1 as a plain file: `std::io::stdout()` is line-buffered and
        // scans every write for newlines.
        Sink::Stdout => {
            use std::os::fd::AsFd;
            let fd = std::io::stdout().as_fd().try_clone_to_owned()?;
            (Box::new(std::io::BufWriter::with_capacity(BUFFER, std::fs::File::from(fd))), None)
        }
        Sink::File(path) => {
            let partial = partial_name(path);
            let file = std::fs::File::create(&partial)?;
            (Box::new(std::io::BufWriter::with_capacity(BUFFER, file)), Some((partial, path)))
        }
    };
    let result = write_all(stream, out, identity).await;
    // Like curl and cp, no fsync: the file is complete, not necessarily on disk.
    match (result, partial) {
        (Ok(n), Some((partial, path))) => tokio::fs::rename(&partial, path).await.map(|()| n).map_err(Failure::from),
        (Ok(n), None) => Ok(n),
        (Err(e), Some((partial, _))) => {
            tokio::fs::remove_file(&partial).await.ok();
            Err(e)
        }
        (Err(e), None) => Err(e),
    }
    .inspect(|_| bar.finish_and_clear())
}

/// Copies (or decrypts) `stream` into `out` and flushes it. Decryption runs on a blocking
/// thread of its own, handed the bytes in 1 MiB pieces, so it overlaps the network read
/// and wakes once per MiB rather than once per network chunk.
async fn write_all<S>(
    stream: S,
    mut out: Box<dyn Write + Send>,
    identity: Option<&age::x25519::Identity>,
) -> Result<u64, Failure>
where
    S: futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + Unpin + 'static,
{
    let Some(id) = identity else {
        let mut reader = tokio_util::io::StreamReader::new(stream);
        let mut place = InPlace(&mut out);
        let n = tokio::io::copy_buf(&mut reader, &mut place).await.map_err(|e| Failure::local("transfer_failed", e))?;
        out.flush()?;
        return Ok(n);
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    let id = id.clone();
    let worker = tokio::task::spawn_blocking(move || {
        let n = crypt::decrypt(&id, Pieces { rx, current: bytes::Bytes::new() }, &mut out)?;
        out.flush().map(|()| n)
    });
    let mut stream = stream;
    let mut pending = bytes::BytesMut::with_capacity(BUFFER);
    let mut broken = None;
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        match chunk {
            Ok(chunk) => pending.extend_from_slice(&chunk),
            Err(e) => {
                broken = Some(e);
                break;
            }
        }
        if pending.len() >= BUFFER && tx.send(Ok(pending.split().freeze())).await.is_err() {
            break; // the decryption stopped: its error says why
        }
    }
    let last = match broken {
        Some(e) => Err(e),
        None => Ok(pending.freeze()),
    };
    tx.send(last).await.ok();
    drop(tx);
    let decrypted = worker.await.map_err(|e| Failure::local("decrypt_failed", e))?;
    decrypted.map_err(|e| {
        Failure::local(
            "decrypt_failed",
            format!("the download is not an age file for this identity, or it was cut short: {e}"),
        )
    })
}

/// The decrypting thread's input: the pieces the download hands over, read in order.
struct Pieces {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl std::io::Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(piece)) if piece.is_empty() => continue,
                Some(Ok(piece)) => self.current = piece,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}

/// A std writer driven from async code: each write happens in place, in 1 MiB pieces
/// (a `BufWriter` under it). The CLI has nothing else to run meanwhile, and this saves
/// the blocking pool's hand-offs that `tokio::fs::File` makes per write (the download
/// benchmark went from 52 % to curl's speed with it; `docs/BENCHMARKS.md`).
struct InPlace<W>(W);

impl<W: std::io::Write + Unpin> AsyncWrite for InPlace<W> {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.get_mut().0.write(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.get_mut().0.flush())
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.get_mut().0.flush())
    }
}

/// `name.partial` beside `path`.
fn partial_name(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

/// The file name a `Content-Disposition` names (`filename*=UTF-8''…` first), reduced to
/// its last path component so a server cannot write outside the working directory.
pub fn disposition_name(response: &Response) -> Option<String> {
    let value = response.headers().get(reqwest::header::CONTENT_DISPOSITION)?.to_str().ok()?;
    let parts: Vec<&str> = value.split(';').map(str::trim).collect();
    let name = parts
        .iter()
        .find_map(|p| p.strip_prefix("filename*=UTF-8''"))
        .and_then(|n| percent_encoding::percent_decode_str(n).decode_utf8().ok().map(|s| s.into_owned()))
        .or_else(|| parts.iter().find_map(|p| p.strip_prefix("filename=")).map(|n| n.trim_matches('"').to_owned()))?;
    let last = name.rsplit(['/', '\\']).next()?.to_owned();
    (!last.is_empty() && last != "." && last != "..").then_some(last)
}
