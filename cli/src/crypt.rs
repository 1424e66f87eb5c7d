//! Client-side encryption in the age format (age-encryption.org/v1, one X25519
//! recipient), while streaming: the server only ever sees a standard age file, and the
//! identity travels in the claim URL's `#fragment`, which HTTP clients never send.

use std::io;
use std::iter;

use age::secrecy::ExposeSecret;
use age::x25519;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncRead;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// age's payload chunk and tag sizes (STREAM, ChaCha20-Poly1305).
const CHUNK: u64 = 64 * 1024;
const TAG: u64 = 16;

/// What a fragment holding an identity starts with.
pub const IDENTITY_PREFIX: &str = "AGE-SECRET-KEY-1";

/// A fresh identity and its recipient.
pub struct Sealing {
    identity: x25519::Identity,
}

impl Sealing {
    /// A new X25519 identity.
    pub fn new() -> Self {
        Self { identity: x25519::Identity::generate() }
    }

    /// The identity as `AGE-SECRET-KEY-1…`.
    pub fn identity(&self) -> String {
        self.identity.to_string().expose_secret().to_owned()
    }

    /// The age file of `input` (`plain` bytes), produced while it is read: its exact
    /// length, the byte stream, and the task that encrypts (which reports its outcome).
    /// The length is the header (its length varies: age may add a random stanza, so it is
    /// read off the stream before anything is sent), the 16-byte nonce, and each 64 KiB
    /// chunk with its tag (at least one chunk, the last one possibly empty).
    pub async fn encrypt_stream<R: AsyncRead + Unpin + Send + 'static>(
        &self,
        input: R,
        plain: u64,
    ) -> io::Result<(
        u64,
        impl Stream<Item = io::Result<Bytes>> + Send + 'static,
        tokio::task::JoinHandle<io::Result<()>>,
    )> {
        let recipient = self.identity.to_public();
        let (writer, reader) = tokio::io::duplex(256 * 1024);
        let task = tokio::spawn(async move {
            let encryptor = age::Encryptor::with_recipients(iter::once(&recipient as &dyn age::Recipient))
                .map_err(io::Error::other)?;
            let mut sealed = encryptor.wrap_async_output(writer.compat_write()).await?;
            futures_util::io::copy(&mut input.compat(), &mut sealed).await?;
            futures_util::io::AsyncWriteExt::close(&mut sealed).await
        });
        let mut reader = tokio::io::BufReader::with_capacity(256 * 1024, reader);
        let head = read_header(&mut reader).await?;
        let length = head.len() as u64 + plain + plain.div_ceil(CHUNK).max(1) * TAG;
        let rest = tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024);
        let stream = futures_util::stream::once(async move { Ok(Bytes::from(head)) }).chain(rest);
        Ok((length, stream, task))
    }
}

/// The age header (up to and including its `--- <mac>` line) and the 16-byte nonce.
async fn read_header<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Vec<u8>> {
    use tokio::io::AsyncBufReadExt;
    let mut head = Vec::new();
    loop {
        let start = head.len();
        if reader.read_until(b'\n', &mut head).await? == 0 || head.len() > 64 * 1024 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the age header did not end"));
        }
        if head[start..].starts_with(b"--- ") {
            break;
        }
    }
    let mut nonce = [0u8; 16];
    tokio::io::AsyncReadExt::read_exact(reader, &mut nonce).await?;
    head.extend_from_slice(&nonce);
    Ok(head)
}

/// Reads an identity `AGE-SECRET-KEY-1…`.
pub fn parse_identity(text: &str) -> Result<x25519::Identity, String> {
    text.trim().parse::<x25519::Identity>().map_err(|e| format!("not an age X25519 identity: {e}"))
}

/// Decrypts the age file read from `input` into `output` while it streams; returns the
/// plaintext length. Blocking: the download runs it on a thread of its own and feeds it
/// 1 MiB pieces, so decryption and the network read use both cores.
pub fn decrypt(identity: &x25519::Identity, input: impl io::Read, output: &mut impl io::Write) -> io::Result<u64> {
    let decryptor =
        age::Decryptor::new_buffered(io::BufReader::with_capacity(256 * 1024, input)).map_err(io::Error::other)?;
    let mut plain = decryptor.decrypt(iter::once(identity as &dyn age::Identity)).map_err(io::Error::other)?;
    io::copy(&mut plain, output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_predicted_length_is_the_age_file_length_and_it_decrypts() {
        let sealing = Sealing::new();
        for size in [0usize, 1, 65_535, 65_536, 65_537, 3 * 65_536, 200_000] {
            let plain: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let (length, stream, task) =
                sealing.encrypt_stream(std::io::Cursor::new(plain.clone()), size as u64).await.expect("encrypt");
            let parts: Vec<Bytes> = stream.map(|b| b.expect("chunk")).collect().await;
            task.await.expect("task").expect("encrypted");
            let sealed: Vec<u8> = parts.concat();
            assert_eq!(sealed.len() as u64, length, "size {size}");
            assert!(sealed.starts_with(b"age-encryption.org/v1\n"));
            let identity = parse_identity(&sealing.identity()).expect("identity");
            let mut out = Vec::new();
            let n = decrypt(&identity, std::io::Cursor::new(sealed), &mut out).expect("decrypt");
            assert_eq!(n, size as u64);
            assert_eq!(out, plain);
        }
    }

    #[tokio::test]
    async fn another_identity_cannot_decrypt() {
        let (a, b) = (Sealing::new(), Sealing::new());
        let (_, stream, task) = a.encrypt_stream(std::io::Cursor::new(b"secret".to_vec()), 6).await.expect("encrypt");
        let sealed: Vec<u8> = stream.map(|b| b.expect("chunk")).collect::<Vec<_>>().await.concat();
        task.await.expect("task").expect("encrypted");
        let wrong = parse_identity(&b.identity()).expect("identity");
        assert!(decrypt(&wrong, std::io::Cursor::new(sealed), &mut Vec::new()).is_err());
    }
}
