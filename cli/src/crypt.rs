//! Client-side encryption in the age format (age-encryption.org/v1, one X25519
//! recipient), while streaming: the server only ever sees a standard age file, and the
//! identity travels in the claim URL's `#fragment`, which HTTP clients never send.

use std::io;
use std::iter;

use age::secrecy::ExposeSecret;
use age::x25519;
use age_core::format::Stanza;
use bytes::Bytes;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Tag};
use futures_util::{Stream, StreamExt};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
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
/// 1 MiB pieces.
///
/// The payload's chunks are independent (each is sealed under its own counter nonce), so
/// they are opened [`ROUND`] at a time, shared out among the machine's cores: the age
/// crate's reader opens one chunk after another on one core (≈ 730 MiB/s here). The header
/// is checked by the age crate itself (grammar, the identity's stanza, the MAC), and again
/// here against the file key read out of it, so the payload key is the one the MAC binds.
pub fn decrypt(identity: &x25519::Identity, input: impl io::Read, output: &mut impl io::Write) -> io::Result<u64> {
    let mut input = io::BufReader::with_capacity(256 * 1024, input);
    let head = read_header_blocking(&mut input)?;
    let cipher = payload_cipher(identity, &head)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let mut buffer = Vec::with_capacity(ROUND * SEALED + 1);
    let (mut counter, mut plain) = (0u64, 0u64);
    loop {
        // One byte past a full round tells whether the round holds the last chunk.
        let end = fill(&mut input, &mut buffer, ROUND * SEALED + 1)?;
        let take = if end { buffer.len() } else { ROUND * SEALED };
        if take == 0 {
            return Err(invalid("the age file is truncated: its last chunk is missing"));
        }
        open_round(&cipher, &mut buffer[..take], counter, end, threads)?;
        for chunk in buffer[..take].chunks(SEALED) {
            let opened = &chunk[..chunk.len() - TAG as usize];
            output.write_all(opened)?;
            plain += opened.len() as u64;
            counter += 1;
        }
        if end {
            return Ok(plain);
        }
        buffer.drain(..take);
    }
}

/// A payload chunk as stored: 64 KiB of plaintext and its tag.
const SEALED: usize = (CHUNK + TAG) as usize;
/// Chunks opened per round (4 MiB), split among the threads.
const ROUND: usize = 64;

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

/// Reads until `buffer` holds `want` bytes or the input ends; true at the end.
fn fill(input: &mut impl io::Read, buffer: &mut Vec<u8>, want: usize) -> io::Result<bool> {
    let missing = want.saturating_sub(buffer.len());
    let got = io::Read::read_to_end(&mut io::Read::take(input, missing as u64), buffer)?;
    Ok(got < missing)
}

/// Opens the chunks of `round` in place (the first one's counter is `first`; the last
/// one of the file is in it when `end`), one share per thread.
fn open_round(cipher: &ChaCha20Poly1305, round: &mut [u8], first: u64, end: bool, threads: usize) -> io::Result<()> {
    let chunks = round.len().div_ceil(SEALED);
    let last = end.then_some(first + chunks as u64 - 1);
    let share = chunks.div_ceil(threads);
    std::thread::scope(|scope| {
        let mut parts = round.chunks_mut(share * SEALED).enumerate();
        let (_, own) = parts.next().expect("a round holds at least one chunk");
        let others: Vec<_> = parts
            .map(|(i, part)| scope.spawn(move || open_chunks(cipher, part, first + (i * share) as u64, last)))
            .collect();
        let mut outcome = open_chunks(cipher, own, first, last);
        for other in others {
            let theirs = other.join().unwrap_or_else(|_| Err(invalid("a decrypting thread panicked")));
            outcome = outcome.and(theirs);
        }
        outcome
    })
}

/// Opens consecutive chunks in place, the first one under counter `first`.
fn open_chunks(cipher: &ChaCha20Poly1305, part: &mut [u8], first: u64, last: Option<u64>) -> io::Result<()> {
    for (counter, chunk) in (first..).zip(part.chunks_mut(SEALED)) {
        let is_last = last == Some(counter);
        if chunk.len() < TAG as usize || (!is_last && chunk.len() != SEALED) {
            return Err(invalid("the age file is truncated"));
        }
        if is_last && chunk.len() == TAG as usize && counter > 0 {
            return Err(invalid("the age file's last chunk is empty"));
        }
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&counter.to_be_bytes());
        nonce[11] = u8::from(is_last);
        let (body, tag) = chunk.split_at_mut(chunk.len() - TAG as usize);
        cipher.decrypt_in_place_detached(&nonce.into(), b"", body, Tag::from_slice(tag)).map_err(|_| {
            invalid("an age chunk does not open: the file was altered, cut short or is for another identity")
        })?;
    }
    Ok(())
}

/// The payload cipher of the age file whose header (and nonce) is `head`.
fn payload_cipher(identity: &x25519::Identity, head: &[u8]) -> io::Result<ChaCha20Poly1305> {
    // The reference reader first: it rejects a malformed header, a foreign identity and a
    // wrong MAC with its own messages.
    age::Decryptor::new(head)
        .and_then(|d| d.decrypt(iter::once(identity as &dyn age::Identity)).map(drop))
        .map_err(io::Error::other)?;
    let (header, nonce) = head.split_at(head.len() - 16);
    let (stanzas, signed, mac) = parse_header(header)?;
    let file_key = match age::Identity::unwrap_stanzas(identity, &stanzas) {
        Some(Ok(key)) => key,
        _ => return Err(invalid("no stanza of the age header is for this identity")),
    };
    let file_key: &[u8] = file_key.expose_secret();
    let mut header_key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&[]), file_key).expand(b"header", &mut header_key).map_err(|_| invalid("HKDF"))?;
    let mut check = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&header_key).map_err(|_| invalid("HMAC"))?;
    check.update(signed);
    check.verify_slice(&mac).map_err(|_| invalid("the age header's MAC does not match"))?;
    let mut payload_key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(nonce), file_key).expand(b"payload", &mut payload_key).map_err(|_| invalid("HKDF"))?;
    Ok(ChaCha20Poly1305::new(&payload_key.into()))
}

/// An age v1 header's stanzas, the bytes its MAC covers (through `---`) and the MAC.
fn parse_header(header: &[u8]) -> io::Result<(Vec<Stanza>, &[u8], Vec<u8>)> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let text = std::str::from_utf8(header).map_err(|_| invalid("the age header is not text"))?;
    let mut lines = text.split_inclusive('\n');
    if lines.next() != Some("age-encryption.org/v1\n") {
        return Err(invalid("not an age v1 file"));
    }
    let mut stanzas = Vec::new();
    let mut offset = "age-encryption.org/v1\n".len();
    while let Some(line) = lines.next() {
        if let Some(mac) = line.strip_prefix("--- ") {
            let mac = b64.decode(mac.trim_end_matches('\n')).map_err(|_| invalid("the age header's MAC"))?;
            return Ok((stanzas, &header[..offset + 3], mac));
        }
        offset += line.len();
        let opening = line.strip_prefix("-> ").ok_or_else(|| invalid("an age stanza"))?;
        let mut words = opening.trim_end_matches('\n').split(' ').map(str::to_owned);
        let tag = words.next().ok_or_else(|| invalid("an age stanza without a tag"))?;
        let mut encoded = String::new();
        loop {
            let body = lines.next().ok_or_else(|| invalid("an age stanza without a body"))?;
            offset += body.len();
            let body = body.trim_end_matches('\n');
            encoded.push_str(body);
            if body.len() < 64 {
                break;
            }
        }
        let body = b64.decode(&encoded).map_err(|_| invalid("an age stanza's body"))?;
        stanzas.push(Stanza { tag, args: words.collect(), body });
    }
    Err(invalid("the age header did not end"))
}

/// [`read_header`] for a blocking reader.
fn read_header_blocking(reader: &mut impl io::BufRead) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    loop {
        let start = head.len();
        if reader.read_until(b'\n', &mut head)? == 0 || head.len() > 64 * 1024 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the age header did not end"));
        }
        if head[start..].starts_with(b"--- ") {
            break;
        }
    }
    let mut nonce = [0u8; 16];
    reader.read_exact(&mut nonce)?;
    head.extend_from_slice(&nonce);
    Ok(head)
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

    async fn seal(sealing: &Sealing, plain: &[u8]) -> Vec<u8> {
        let (_, stream, task) =
            sealing.encrypt_stream(std::io::Cursor::new(plain.to_vec()), plain.len() as u64).await.expect("encrypt");
        let sealed = stream.map(|b| b.expect("chunk")).collect::<Vec<_>>().await.concat();
        task.await.expect("task").expect("encrypted");
        sealed
    }

    /// The age crate's own reader, one chunk after another.
    fn reference(identity: &x25519::Identity, sealed: &[u8]) -> io::Result<Vec<u8>> {
        let decryptor = age::Decryptor::new(sealed).map_err(io::Error::other)?;
        let mut reader = decryptor.decrypt(iter::once(identity as &dyn age::Identity)).map_err(io::Error::other)?;
        let mut out = Vec::new();
        io::Read::read_to_end(&mut reader, &mut out)?;
        Ok(out)
    }

    /// Hands out at most 1000 bytes per read, as a network might.
    struct Trickle<'a>(&'a [u8]);

    impl io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(1000);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn round_bytes() -> usize {
        ROUND * CHUNK as usize
    }

    #[tokio::test]
    async fn parallel_opening_gives_what_the_age_reader_gives_across_rounds() {
        let sealing = Sealing::new();
        let identity = parse_identity(&sealing.identity()).expect("identity");
        let r = round_bytes();
        for size in [0, 1, 65_536, r - 1, r, r + 1, 2 * r + 65_536, 2 * r + 7] {
            let plain = pattern(size);
            let sealed = seal(&sealing, &plain).await;
            let mut out = Vec::new();
            let n = decrypt(&identity, Trickle(&sealed), &mut out).expect("decrypt");
            assert_eq!(n, size as u64, "size {size}");
            assert!(out == plain, "size {size}");
            assert!(reference(&identity, &sealed).expect("reference") == plain, "size {size}");
        }
    }

    fn pattern(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i * 7 % 253) as u8).collect()
    }

    /// Every alteration the age crate's reader refuses is refused here too: the parallel
    /// path must not accept a reordered, cut, extended or altered payload.
    #[tokio::test]
    async fn altered_files_are_refused_as_the_age_reader_refuses_them() {
        let sealing = Sealing::new();
        let identity = parse_identity(&sealing.identity()).expect("identity");
        let r = round_bytes();
        // A payload of exactly two rounds (its last chunk is full) and one with a short tail.
        for size in [2 * r, 2 * r + 1000] {
            let sealed = seal(&sealing, &pattern(size)).await;
            let chunks = size.div_ceil(CHUNK as usize);
            // Where the payload starts: the header's length varies.
            let body = sealed.len() - size - chunks * TAG as usize;
            let chunk = |i: usize| body + i * SEALED;
            let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
            for (name, at) in [
                ("first chunk", chunk(0) + 5),
                ("second round", chunk(ROUND + 3) + 9),
                ("last tag", sealed.len() - 1),
                ("header MAC", body - 20),
                ("nonce", body - 3),
            ] {
                let mut altered = sealed.clone();
                altered[at] ^= 0x40;
                cases.push((name, altered));
            }
            cases.push(("last chunk dropped", sealed[..chunk(chunks - 1)].to_vec()));
            cases.push(("a round dropped", sealed[..chunk(ROUND)].to_vec()));
            cases.push(("one byte short", sealed[..sealed.len() - 1].to_vec()));
            cases.push(("payload missing", sealed[..body].to_vec()));
            let mut longer = sealed.clone();
            longer.push(0);
            cases.push(("one byte more", longer));
            let mut twice = sealed.clone();
            twice.extend_from_slice(&sealed[chunk(chunks - 1)..]);
            cases.push(("last chunk twice", twice));
            let mut swapped = sealed.clone();
            swapped[chunk(0)..chunk(2)]
                .copy_from_slice(&[&sealed[chunk(1)..chunk(2)], &sealed[chunk(0)..chunk(1)]].concat());
            cases.push(("chunks swapped", swapped));
            for (name, altered) in cases {
                assert!(reference(&identity, &altered).is_err(), "{name} ({size}): the age reader accepts it");
                let mut out = Vec::new();
                assert!(decrypt(&identity, Trickle(&altered), &mut out).is_err(), "{name} ({size}): accepted");
            }
        }
    }

    /// Files made by the age tool (Go), not by this crate: full and short last chunks.
    #[test]
    fn files_made_by_the_age_tool_decrypt() {
        let Some(tool) = std::env::var_os("PATH")
            .and_then(|p| std::env::split_paths(&p).map(|d| d.join("age")).find(|p| p.is_file()))
        else {
            let all = std::env::var("LEASEHOLD_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1" || v == "true");
            assert!(!all, "LEASEHOLD_TEST_REQUIRE_ALL=1 but the `age` tool is not installed (apt-get install age)");
            eprintln!("skipped: the age tool is not installed");
            return;
        };
        let identity = x25519::Identity::generate();
        let recipient = identity.to_public().to_string();
        for size in [0, 100, 2 * round_bytes(), 2 * round_bytes() + 4321] {
            let plain = pattern(size);
            let mut child = std::process::Command::new(&tool)
                .args(["-r", &recipient])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("age");
            let mut stdin = child.stdin.take().expect("stdin");
            let writer = std::thread::spawn(move || io::Write::write_all(&mut stdin, &plain).map(|()| plain));
            let sealed = child.wait_with_output().expect("age").stdout;
            let plain = writer.join().expect("writer").expect("write");
            let mut out = Vec::new();
            decrypt(&identity, Trickle(&sealed), &mut out).expect("decrypt");
            assert!(out == plain, "size {size}");
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
