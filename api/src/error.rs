//! The one API error type: maps to the status and stable `code` of SPEC §2, logs 5xx
//! causes once, and never puts internals in a body.

use axum::Json;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use leasehold_core::accounts::AccountError;
use leasehold_core::blob::BlobError;
use leasehold_core::leases::Gone;
use serde_json::{Map, Value, json};

/// An error answer: `{"status":"error","error":…,"code":…}` plus code-specific fields.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    fields: Map<String, Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with a status, code and human sentence.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), fields: Map::new(), headers: Vec::new() }
    }

    /// Adds a code-specific field to the body.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_owned(), value.into());
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// A code-specific field of the body.
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// `400 bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// `400 invalid_header`, naming the header.
    pub fn invalid_header(name: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_header", format!("{name}: {}", message.into())).with("header", name)
    }

    /// `401 unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or invalid credentials")
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    /// `404 not_found`: also what another owner's resource answers.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "not found")
    }

    /// `404 handoff_not_found`: an unknown token or id, or another owner's handoff.
    pub fn handoff_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "handoff_not_found", "no such handoff")
    }

    /// `410 lease_expired` or `410 lease_deleted`.
    pub fn gone(gone: Gone) -> Self {
        match gone {
            Gone::Expired { expires_at } => Self::new(StatusCode::GONE, "lease_expired", "the lease has expired")
                .with("expires_at", leasehold_core::time::rfc3339(expires_at)),
            Gone::Deleted => Self::new(StatusCode::GONE, "lease_deleted", "the lease has been deleted"),
        }
    }

    /// `402 insufficient_balance` with `required`.
    pub fn insufficient_balance(required: i64, balance: i64) -> Self {
        Self::new(StatusCode::PAYMENT_REQUIRED, "insufficient_balance", "the account balance does not cover this lease")
            .with("required", json!({ "amount_micros": required.to_string(), "balance_micros": balance.to_string() }))
    }

    /// `413 payload_too_large`.
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// `503 unavailable` with `Retry-After`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("5"))
    }

    /// `409 idempotency_in_progress` with `Retry-After`: another request with this
    /// `Idempotency-Key` holds it and is alive.
    pub fn idempotency_in_progress() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "idempotency_in_progress",
            "a request with this Idempotency-Key is still being processed",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
    }

    /// `500 internal`; the cause is logged here, once, and never sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
}

/// Sets a response header from text that must be a valid header value (a value that is
/// not is an internal error: it came from our own data).
pub fn put_header(headers: &mut HeaderMap, name: HeaderName, value: String) -> Result<(), ApiError> {
    headers.insert(name, HeaderValue::from_str(&value).map_err(|e| ApiError::internal(&e))?);
    Ok(())
}

impl ApiError {
    /// The JSON body: `{"status":"error","error":…,"code":…}` plus the code's fields.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("status".into(), "error".into());
        body.insert("error".into(), self.message.clone().into());
        body.insert("code".into(), self.code.into());
        body.extend(self.fields.clone());
        Value::Object(body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        if leasehold_core::idempotency::is_claim_lost(&e) {
            return Self::idempotency_in_progress();
        }
        if leasehold_core::db::is_unavailable(&e) {
            tracing::error!(error = %e, "database unavailable");
            return Self::unavailable("the database is unavailable");
        }
        Self::internal(&e)
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::NotFound => Self::internal(&"blob missing for a live lease"),
            other => {
                tracing::error!(error = %other, "blob store failure");
                Self::unavailable("the blob store is unavailable")
            }
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::NotFound | AccountError::KeyNotFound => Self::not_found(),
            AccountError::LastKey => Self::new(StatusCode::CONFLICT, "last_api_key", e.to_string()),
            AccountError::Invalid(message) => Self::bad_request(message),
            AccountError::InsufficientBalance { required, balance } => Self::insufficient_balance(required, balance),
            AccountError::Db(db) => db.into(),
        }
    }
}
