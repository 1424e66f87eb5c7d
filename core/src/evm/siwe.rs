//! EIP-4361 Sign-In with Ethereum messages: the text a wallet shows and signs with
//! `personal_sign` to prove it controls an address.
//!
//! Only the subset Leasehold issues is accepted, with the exact line layout of the
//! standard's ABNF: header, address, optional statement, `URI`, `Version: 1`,
//! `Chain ID`, `Nonce`, `Issued At` and an optional `Expiration Time`. Anything else
//! (`Not Before`, `Request ID`, `Resources`, trailing lines) is refused: the server
//! only signs in with messages it could have written itself.

use chrono::{DateTime, SecondsFormat, Utc};

use super::{Address, checksum, parse_address};

/// The statement Leasehold writes into every sign-in message.
pub const STATEMENT: &str = "Sign in to Leasehold.";

const HEADER_SUFFIX: &str = " wants you to sign in with your Ethereum account:";
const NONCE_ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// One EIP-4361 message, field for field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiweMessage {
    /// The RFC 3986 authority asking for the sign-in (`host[:port]`).
    pub domain: String,
    /// The account signing in; written in EIP-55 form.
    pub address: Address,
    /// A human-readable line shown by the wallet (Leasehold always writes [`STATEMENT`]).
    pub statement: Option<String>,
    /// The RFC 3986 URI the sign-in is for.
    pub uri: String,
    /// The message version; only `1` exists and only `1` parses.
    pub version: String,
    /// The EIP-155 chain id the session is bound to.
    pub chain_id: u64,
    /// Server-issued random string (at least 8 ASCII alphanumerics) against replays.
    pub nonce: String,
    /// When the message was issued, Unix milliseconds.
    pub issued_at: i64,
    /// When the message stops being valid, Unix milliseconds.
    pub expiration_time: Option<i64>,
}

impl SiweMessage {
    /// The message text exactly as the wallet must sign it (no trailing newline).
    ///
    /// Without a statement, the two blank lines the ABNF prescribes are written.
    /// Timestamps are RFC 3339 in UTC with `Z`, with milliseconds only when non-zero;
    /// a timestamp outside chrono's range is clamped to it.
    pub fn to_text(&self) -> String {
        let mut text = format!("{}{HEADER_SUFFIX}\n{}\n\n", self.domain, checksum(&self.address));
        if let Some(statement) = self.statement.as_deref().filter(|s| !s.is_empty()) {
            text.push_str(statement);
            text.push('\n');
        }
        text.push_str(&format!(
            "\nURI: {}\nVersion: {}\nChain ID: {}\nNonce: {}\nIssued At: {}",
            self.uri,
            self.version,
            self.chain_id,
            self.nonce,
            format_time(self.issued_at)
        ));
        if let Some(expiration) = self.expiration_time {
            text.push_str(&format!("\nExpiration Time: {}", format_time(expiration)));
        }
        text
    }

    /// Parses a message written as [`SiweMessage::to_text`] writes it; without a
    /// statement, both the ABNF's two blank lines and the older single blank line are
    /// accepted. Returns `None` on any deviation.
    pub fn parse(text: &str) -> Option<SiweMessage> {
        let mut lines = text.split('\n');
        let (domain, address, statement, uri) = parse_preamble(&mut lines)?;
        if lines.next()? != "Version: 1" {
            return None;
        }
        let chain_id = parse_decimal(lines.next()?.strip_prefix("Chain ID: ")?)?;
        let nonce = lines.next()?.strip_prefix("Nonce: ")?;
        if nonce.len() < 8 || !nonce.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let issued_at = parse_time(lines.next()?.strip_prefix("Issued At: ")?)?;
        let expiration_time = match lines.next() {
            None => None,
            Some(line) => Some(parse_time(line.strip_prefix("Expiration Time: ")?)?),
        };
        if lines.next().is_some() {
            return None;
        }
        Some(SiweMessage {
            domain: domain.to_string(),
            address,
            statement: statement.map(str::to_string),
            uri: uri.to_string(),
            version: "1".to_string(),
            chain_id,
            nonce: nonce.to_string(),
            issued_at,
            expiration_time,
        })
    }
}

/// The part before `Version`: domain, address, optional statement and URI.
fn parse_preamble<'a>(
    lines: &mut impl Iterator<Item = &'a str>,
) -> Option<(&'a str, Address, Option<&'a str>, &'a str)> {
    let domain = lines.next()?.strip_suffix(HEADER_SUFFIX)?;
    if domain.is_empty() || domain.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let address = parse_address(lines.next()?)?;
    if !lines.next()?.is_empty() {
        return None;
    }
    let (statement, uri_line) = match lines.next()? {
        "" => (None, lines.next()?),
        legacy if legacy.starts_with("URI: ") => (None, legacy),
        statement => {
            if statement.chars().any(char::is_control) || !lines.next()?.is_empty() {
                return None;
            }
            (Some(statement), lines.next()?)
        }
    };
    let uri = uri_line.strip_prefix("URI: ")?;
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) || url::Url::parse(uri).is_err() {
        return None;
    }
    Some((domain, address, statement, uri))
}

fn format_time(unix_ms: i64) -> String {
    let time = DateTime::<Utc>::from_timestamp_millis(unix_ms).unwrap_or(if unix_ms < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    });
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn parse_time(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text).ok().map(|time| time.timestamp_millis())
}

/// A canonical decimal `u64`: digits only, no sign, no leading zero.
fn parse_decimal(text: &str) -> Option<u64> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

/// A fresh sign-in nonce: 24 ASCII alphanumerics drawn uniformly from the operating
/// system's CSPRNG (about 143 bits).
pub fn new_nonce() -> String {
    let mut nonce = String::with_capacity(24);
    let mut buf = [0u8; 32];
    while nonce.len() < 24 {
        // The OS RNG failing is unrecoverable for a service that mints secrets.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut buf).expect("operating system RNG unavailable");
        // 248 = 4 × 62: rejecting larger bytes keeps every character equally likely.
        for b in buf.into_iter().filter(|&b| b < 248) {
            if nonce.len() < 24 {
                nonce.push(char::from(NONCE_ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    nonce
}

/// The EIP-155 chain id of an x402 network name: `base` (or CAIP-2 `eip155:8453`) is
/// 8453 and `base-sepolia` (`eip155:84532`) is 84532; other networks are unsupported.
pub fn chain_id(network: &str) -> Option<u64> {
    match network {
        "base" | "eip155:8453" => Some(8453),
        "base-sepolia" | "eip155:84532" => Some(84532),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
