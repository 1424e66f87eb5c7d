//! Secrets the server must read back (webhook secrets, replayable responses that carry a
//! drop token) are stored sealed with ChaCha20-Poly1305 under `LEASEHOLD_SECRET_KEY`, so a
//! dump of the database reveals none of them. Embedded mode generates the key once into
//! `<data_dir>/secret-key` (mode 0600).

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::config::Config;

/// Prefix of every sealed value (format version).
const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

/// Why a key could not be loaded or a value not opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretBoxError {
    /// The key file could not be read or written.
    #[error("secret key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// No key configured where one is required.
    #[error("LEASEHOLD_SECRET_KEY is not set")]
    NoKey,
    /// The key is not 64 hex characters.
    #[error("the secret key must be 64 hex characters")]
    BadKey,
    /// A sealed value did not open (wrong key, or tampered with).
    #[error("a sealed value could not be opened")]
    Open,
}

/// Seals and opens values under one key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

impl SecretBox {
    /// A box from a 64-hex-character key.
    pub fn from_hex(key: &str) -> Result<Self, SecretBoxError> {
        let bytes = hex::decode(key.trim()).map_err(|_| SecretBoxError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretBoxError::BadKey);
        }
        Ok(Self { cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)) })
    }

    /// The configured key; on SQLite without one, the key file in the data dir (created
    /// with a fresh random key, mode 0600, on first use).
    pub fn from_config(config: &Config) -> Result<Self, SecretBoxError> {
        match &config.secret_key {
            Some(key) => Self::from_hex(key.expose()),
            None if config.is_sqlite() => Self::from_hex(&key_file(&config.data_dir.join("secret-key"))?),
            None => Err(SecretBoxError::NoKey),
        }
    }

    /// Seals `plain`, bound to `context` (a value sealed for one purpose does not open
    /// for another).
    pub fn seal(&self, context: &str, plain: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        // The OS RNG failing is unrecoverable for a service that mints secrets.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut nonce).expect("operating system RNG unavailable");
        let payload = Payload { msg: plain.as_bytes(), aad: context.as_bytes() };
        // Encryption with a valid key and nonce cannot fail.
        #[allow(clippy::expect_used)]
        let sealed = self.cipher.encrypt(Nonce::from_slice(&nonce), payload).expect("encrypt");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", hex::encode(out))
    }

    /// Opens a value sealed by [`SecretBox::seal`] with the same context.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String, SecretBoxError> {
        let raw = sealed.strip_prefix(PREFIX).and_then(|h| hex::decode(h).ok()).ok_or(SecretBoxError::Open)?;
        if raw.len() < NONCE_LEN {
            return Err(SecretBoxError::Open);
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad: context.as_bytes() })
            .map_err(|_| SecretBoxError::Open)?;
        String::from_utf8(plain).map_err(|_| SecretBoxError::Open)
    }

    /// True when `value` looks sealed.
    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(PREFIX)
    }
}

/// Reads the key file, creating it (0600) with a random key if it does not exist.
fn key_file(path: &Path) -> Result<String, SecretBoxError> {
    let err = |source| SecretBoxError::KeyFile { path: path.display().to_string(), source };
    match std::fs::read_to_string(path) {
        Ok(key) => return Ok(key.trim().to_owned()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
        Err(_) => {}
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let key = crate::tokens::random_hex32();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            std::io::Write::write_all(&mut file, key.as_bytes()).map_err(err)?;
            file.sync_all().map_err(err)?;
            Ok(key)
        }
        // Another starter created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read_to_string(path).map(|k| k.trim().to_owned()).map_err(err)
        }
        Err(e) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let a = SecretBox::from_hex(&"11".repeat(32)).expect("key");
        let b = SecretBox::from_hex(&"22".repeat(32)).expect("key");
        let sealed = a.seal("webhook", "whsec_abc");
        assert!(SecretBox::is_sealed(&sealed));
        assert!(!sealed.contains("whsec_abc"));
        assert_ne!(sealed, a.seal("webhook", "whsec_abc"), "fresh nonce each time");
        assert_eq!(a.open("webhook", &sealed).expect("open"), "whsec_abc");
        assert!(b.open("webhook", &sealed).is_err());
        assert!(a.open("other", &sealed).is_err());
        assert!(a.open("webhook", "v1:00").is_err());
    }

    #[test]
    fn the_key_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret-key");
        let first = key_file(&path).expect("create");
        assert_eq!(key_file(&path).expect("read"), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(SecretBox::from_hex(&first).is_ok());
    }
}
