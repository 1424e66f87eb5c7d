//! Streaming uploads and downloads with a progress bar (rate and ETA) on stderr when it is
//! a terminal, and none otherwise. Memory stays a few buffers whatever the file's size.

use std::io::IsTerminal;
use std::path::Path;

use futures_util::TryStreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Response;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::client::Failure;
use crate::crypt;

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
    let reader = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    let progress = bar.clone();
    let counted_reader = tokio_util::io::StreamReader::new(reader.inspect_ok(move |c| progress.inc(c.len() as u64)));
    match sealing {
        None => {
            let stream = tokio_util::io::ReaderStream::with_capacity(counted_reader, 256 * 1024);
            Ok(Upload { body: reqwest::Body::wrap_stream(stream), length: plain, sealing: None, bar })
        }
        Some(s) => {
            let (length, stream, task) = s.encrypt_stream(counted_reader, plain).await?;
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
    let reader = tokio_util::io::StreamReader::new(stream);
    let written = match sink {
        Sink::Stdout => {
            let mut out = tokio::io::stdout();
            let n = write_all(reader, &mut out, identity).await?;
            out.flush().await?;
            n
        }
        Sink::File(path) => {
            let partial = partial_name(path);
            let mut file = tokio::fs::File::create(&partial).await?;
            let result = write_all(reader, &mut file, identity).await;
            let n = match result {
                Ok(n) => n,
                Err(e) => {
                    drop(file);
                    tokio::fs::remove_file(&partial).await.ok();
                    return Err(e);
                }
            };
            file.sync_all().await?;
            tokio::fs::rename(&partial, path).await?;
            n
        }
    };
    bar.finish_and_clear();
    Ok(written)
}

async fn write_all<R, W>(mut reader: R, out: &mut W, identity: Option<&age::x25519::Identity>) -> Result<u64, Failure>
where
    R: tokio::io::AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin,
{
    match identity {
        None => Ok(tokio::io::copy(&mut reader, out).await.map_err(|e| Failure::local("transfer_failed", e))?),
        Some(id) => crypt::decrypt(id, reader, out).await.map_err(|e| {
            Failure::local(
                "decrypt_failed",
                format!("the download is not an age file for this identity, or it was cut short: {e}"),
            )
        }),
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
