//! Extractors: authentication and validated input, so a handler's signature says what it
//! needs and bad input is refused with the right code before it runs.

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use leasehold_core::leases::{Owner, OwnerKind};
use leasehold_core::{accounts, ids, tokens, wallets};
use leasehold_entities::{account, wallet_session};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// An authenticated account (`Authorization: Bearer rs_live_…`).
pub struct AccountAuth {
    /// The account, as read during authentication.
    pub account: account::Model,
}

impl AccountAuth {
    /// The account as a lease owner.
    pub fn owner(&self) -> Owner {
        Owner::account(&self.account.id)
    }
}

/// A lease owner: an account (`Authorization: Bearer rs_live_…`) or a wallet session
/// (`Bearer rs_wallet_…`, SPEC §4.3). Owner routes take this; account routes take
/// [`AccountAuth`], which a wallet session does not open (401).
pub enum OwnerAuth {
    /// An account, as read during authentication.
    Account(account::Model),
    /// A live wallet session.
    Wallet(wallet_session::Model),
}

impl OwnerAuth {
    /// The owner of the leases this credential may act on.
    pub fn owner(&self) -> Owner {
        match self {
            Self::Account(a) => Owner::account(&a.id),
            Self::Wallet(s) => Owner { kind: OwnerKind::Wallet, id: s.wallet.clone() },
        }
    }
}

impl FromRequestParts<AppState> for OwnerAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers)?.ok_or_else(ApiError::unauthorized)?;
        if token.starts_with(wallets::SESSION_PREFIX) {
            let session = wallets::authenticate(&state.db, token, state.now()).await?;
            return session.map(Self::Wallet).ok_or_else(ApiError::unauthorized);
        }
        match accounts::authenticate(&state.db, token, state.now()).await? {
            Some(account) => Ok(Self::Account(account)),
            None => Err(ApiError::unauthorized()),
        }
    }
}

/// The bearer token of `Authorization` (`None` without one); sent twice is
/// `400 invalid_header`.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = single_header(headers, "Authorization")?.and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    Ok(value.split_once(' ').and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())))
}

impl FromRequestParts<AppState> for AccountAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = bearer(&parts.headers)?.ok_or_else(ApiError::unauthorized)?;
        match accounts::authenticate(&state.db, key, state.now()).await? {
            Some(account) => Ok(Self { account }),
            None => Err(ApiError::unauthorized()),
        }
    }
}

/// The operator (`Authorization: Bearer <LEASEHOLD_ADMIN_TOKEN>`). Without a configured
/// token every admin route answers 404, as if it did not exist.
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = &state.config.admin_token else {
            return Err(ApiError::not_found());
        };
        match bearer(&parts.headers)? {
            Some(token) if tokens::constant_time_eq(token, expected.expose()) => Ok(Self),
            _ => Err(ApiError::unauthorized()),
        }
    }
}

/// A `:lease_id` path segment; anything that is not a well-formed lease id is 404.
pub struct LeaseIdPath(pub String);

impl FromRequestParts<AppState> for LeaseIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state).await.map_err(|_| ApiError::not_found())?;
        if ids::is_valid("lse", &id) { Ok(Self(id)) } else { Err(ApiError::not_found()) }
    }
}

pub use crate::path::{ApiPath, HandoffPath};
pub use crate::query::{ApiQuery, bad_parameter};

/// A JSON body; unparsable JSON is `400 invalid_json`, a wrong shape `400 bad_request`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes =
            axum::body::Bytes::from_request(req, state).await.map_err(|e| ApiError::bad_request(e.body_text()))?;
        let bytes =
            if bytes.iter().all(u8::is_ascii_whitespace) { axum::body::Bytes::from_static(b"{}") } else { bytes };
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(axum::http::StatusCode::BAD_REQUEST, "invalid_json", format!("body is not valid JSON: {e}"))
        })?;
        serde_json::from_value(value).map(Self).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))
    }
}

/// A validated count or size as the database's `BIGINT` (saturating; limits keep it far
/// below).
pub fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The one value of a header (`None` when absent). A header sent more than once is
/// `400 invalid_header`: which of two values applies would be anyone's guess.
pub fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a HeaderValue>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::invalid_header(name, "must be sent once"));
    }
    Ok(first)
}

/// Reads a header as UTF-8 text (`None` when absent; sent twice is `400 invalid_header`).
pub fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match single_header(headers, name)? {
        None => Ok(None),
        Some(v) => std::str::from_utf8(v.as_bytes())
            .map(|s| Some(s.trim()))
            .map_err(|_| ApiError::invalid_header(name, "must be UTF-8")),
    }
}

/// Reads a required non-negative integer header.
pub fn required_u64(headers: &HeaderMap, name: &str) -> Result<u64, ApiError> {
    let text = header_text(headers, name)?.ok_or_else(|| ApiError::invalid_header(name, "is required"))?;
    parse_u64(name, text)
}

/// Reads an optional non-negative integer header.
pub fn optional_u64(headers: &HeaderMap, name: &str) -> Result<Option<u64>, ApiError> {
    header_text(headers, name)?.map(|text| parse_u64(name, text)).transpose()
}

fn parse_u64(name: &str, text: &str) -> Result<u64, ApiError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid_header(name, "must be a whole number"));
    }
    text.parse().map_err(|_| ApiError::invalid_header(name, "is too large"))
}

/// Reads `Content-Type` (kept as given: printable ASCII, at most 255 bytes), or `default`.
pub fn content_type(headers: &HeaderMap, default: &str) -> Result<String, ApiError> {
    const H: &str = "Content-Type";
    match header_text(headers, H)? {
        None | Some("") => Ok(default.to_owned()),
        Some(ct) if ct.len() <= 255 && ct.bytes().all(|b| (0x20..0x7f).contains(&b)) => Ok(ct.to_owned()),
        Some(_) => Err(ApiError::invalid_header(H, "must be at most 255 printable ASCII characters")),
    }
}

/// Why a body could not be read whole.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// More than the limit arrived (reading stopped there).
    TooLarge,
    /// The client's body broke off.
    Interrupted,
}

/// Reads a body of at most `limit` bytes into memory (for bodies whose limit is small, or
/// that must be parsed whole).
pub async fn read_limited(body: axum::body::Body, limit: u64) -> Result<axum::body::Bytes, BodyError> {
    use futures_util::StreamExt;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyError::Interrupted)?;
        if buf.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Reads `X-Duration-Seconds` and checks it against the configured range.
pub fn duration_seconds(headers: &HeaderMap, state: &AppState) -> Result<u64, ApiError> {
    let duration = required_u64(headers, "X-Duration-Seconds")?;
    check_duration(state, duration, "X-Duration-Seconds")
}

/// `400 duration_out_of_range` unless `duration` lies in the configured range; `name` is
/// how the client sent it (a header or a query parameter).
pub fn check_duration(state: &AppState, duration: u64, name: &str) -> Result<u64, ApiError> {
    let limits = &state.config.limits;
    if duration < limits.min_duration_seconds || duration > limits.max_duration_seconds {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "duration_out_of_range",
            format!("{name} must be between {} and {}", limits.min_duration_seconds, limits.max_duration_seconds),
        )
        .with("min", limits.min_duration_seconds)
        .with("max", limits.max_duration_seconds));
    }
    Ok(duration)
}

/// A page size from `?limit=`: 1..=1000, default 100 (`400 bad_request` otherwise).
pub fn page_limit(limit: Option<u64>) -> Result<u64, ApiError> {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad_parameter("limit", "must be between 1 and 1000"));
    }
    Ok(limit)
}

/// A `?cursor=` that must be an id with `prefix` (`lse`, `evt`), or a bare ULID when
/// `prefix` is empty (ledger entries): the shape `next_cursor` has.
pub fn cursor<'a>(cursor: Option<&'a str>, prefix: &str) -> Result<Option<&'a str>, ApiError> {
    let Some(c) = cursor else { return Ok(None) };
    let valid = if prefix.is_empty() {
        c.len() == 26 && ulid::Ulid::from_string(c).is_ok_and(|u| u.to_string() == c)
    } else {
        ids::is_valid(prefix, c)
    };
    if !valid {
        let shape = if prefix.is_empty() { "an entry id".to_owned() } else { format!("an id like {prefix}_…") };
        return Err(bad_parameter("cursor", format_args!("must be a next_cursor value ({shape})")));
    }
    Ok(Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_must_be_plain_digits() {
        assert_eq!(parse_u64("x", "42").ok(), Some(42));
        for bad in ["", "-1", "+1", "1.5", "1e3", "0x10", " 1", "99999999999999999999999"] {
            assert!(parse_u64("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "bearer abc".parse().expect("header"));
        assert_eq!(bearer(&h).ok(), Some(Some("abc")));
        h.insert("authorization", "Basic abc".parse().expect("header"));
        assert_eq!(bearer(&h).ok(), Some(None));
        h.append("authorization", "Bearer abc".parse().expect("header"));
        assert_eq!(bearer(&h).err().map(|e| e.code()), Some("invalid_header"));
    }

    #[test]
    fn a_header_sent_twice_is_refused_naming_it() {
        let mut h = HeaderMap::new();
        h.insert("x-size-bytes", "5".parse().expect("header"));
        assert_eq!(optional_u64(&h, "X-Size-Bytes").ok(), Some(Some(5)));
        h.append("x-size-bytes", "5".parse().expect("header"));
        let e = optional_u64(&h, "X-Size-Bytes").expect_err("twice");
        assert_eq!((e.code(), e.field("header")), ("invalid_header", Some(&serde_json::json!("X-Size-Bytes"))));
    }

    #[test]
    fn cursors_must_have_the_shape_of_next_cursor() {
        let lease = ids::lease_id();
        assert_eq!(cursor(Some(&lease), "lse").ok(), Some(Some(lease.as_str())));
        let row = ids::row_id();
        assert_eq!(cursor(Some(&row), "").ok(), Some(Some(row.as_str())));
        assert_eq!(cursor(None, "lse").ok(), Some(None));
        for (bad, prefix) in [("\0", "lse"), ("", ""), ("lse_x", "lse"), (row.as_str(), "lse"), (lease.as_str(), "")] {
            let e = cursor(Some(bad), prefix).expect_err(bad);
            assert_eq!(e.field("parameter"), Some(&serde_json::json!("cursor")), "{bad:?}");
        }
        let lower = row.to_ascii_lowercase();
        assert!(cursor(Some(&lower), "").is_err(), "only the canonical spelling");
    }
}
