//! Storage leases (SPEC §6.1): streamed upload, ranged download, delete.

use std::io;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use futures_util::StreamExt;
use leasehold_core::blob::{self, BlobError, ByteStream};
use leasehold_core::leases::{self, NewStorage, Owner};
use leasehold_core::time::http_date;
use leasehold_core::webhook::Hook;
use leasehold_entities::{lease, storage_object};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use prometheus_client::metrics::counter::Counter;
use sea_orm::{DatabaseTransaction, EntityTrait};

use super::leases::{delete_variant, serving_lease};
use crate::error::ApiError;
use crate::extract::{
    LeaseIdPath, OwnerAuth, content_type, duration_seconds, header_text, optional_u64, required_u64, single_header,
    to_i64,
};
use crate::metered;
use crate::openapi::ErrorBody;
use crate::range::{RangeRequest, parse_range};
use crate::state::AppState;
use crate::views::{self, lease_headers};
use crate::webhook_headers::{self, Webhook};
use crate::write::{self, Creation, Idempotent, Price, Reply, Scope, Unread};
use crate::x402::Buyer;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// `/api/store`, `/api/download/{id}`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create).layer(axum::extract::DefaultBodyLimit::disable()))
        .routes(routes!(remove))
        .routes(routes!(download))
}

/// Validates `X-File-Name`: ≤ 255 bytes of UTF-8 without control characters; any path
/// components are stripped, and what remains must name a file.
pub fn file_name(headers: &HeaderMap) -> Result<String, ApiError> {
    const H: &str = "X-File-Name";
    let raw = header_text(headers, H)?.ok_or_else(|| ApiError::invalid_header(H, "is required"))?;
    if raw.len() > 255 {
        return Err(ApiError::invalid_header(H, "must be at most 255 bytes"));
    }
    if raw.chars().any(char::is_control) {
        return Err(ApiError::invalid_header(H, "must not contain control characters"));
    }
    let name = raw.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if name.is_empty() || name == "." || name == ".." {
        return Err(ApiError::invalid_header(H, "must name a file"));
    }
    Ok(name.to_owned())
}

struct Upload {
    file_name: String,
    content_type: String,
    size: u64,
    duration: u64,
    cost: i64,
    webhook: Webhook,
}

fn validate_upload(state: &AppState, headers: &HeaderMap) -> Result<Upload, ApiError> {
    let file_name = file_name(headers)?;
    let size = required_u64(headers, "X-Size-Bytes")?;
    if size == 0 {
        return Err(ApiError::invalid_header("X-Size-Bytes", "must be at least 1 (empty files are not stored)"));
    }
    let duration = duration_seconds(headers, state)?;
    let content_type = content_type(headers, "application/octet-stream")?;
    let max = state.config.limits.max_file_bytes;
    if size > max {
        return Err(ApiError::payload_too_large(format!("files may be at most {max} bytes")).with("max_bytes", max));
    }
    match optional_u64(headers, "Content-Length")? {
        Some(len) if len > size => return Err(ApiError::payload_too_large("the body is longer than X-Size-Bytes")),
        Some(len) if len < size => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "size_mismatch",
                "the body is shorter than X-Size-Bytes",
            ));
        }
        _ => {}
    }
    let cost = i64::try_from(state.config.tariff.cost_micros(size, duration)).unwrap_or(i64::MAX);
    Ok(Upload { file_name, content_type, size, duration, cost, webhook: Webhook::default() })
}

#[utoipa::path(post,
    path = "/api/store",
    tag = "store",
    summary = "Stores a file for a duration",
    extensions(("x-auth" = json!("owner")), ("x-priced" = json!(true))),
    params(("X-Duration-Seconds" = u64, Header, description = "Required; whole seconds within the bounds of `/api/pricing` `duration_seconds`"), ("X-Size-Bytes" = u64, Header, description = "Required; the body length in bytes, 1..=`max_file_bytes`; a body of another length → 400 `size_mismatch`"), ("X-File-Name" = String, Header, description = "Required; the name downloads carry (≤ 255 bytes of UTF-8; path components are stripped)"), ("Content-Type" = Option<String>, Header, description = "Optional; what downloads carry"), ("Idempotency-Key" = Option<String>, Header, description = "Optional; 1..=255 printable ASCII. The same key from the same owner within 24 h replays the first response (`Idempotent-Replayed: true`); with a different request → 422 `idempotency_key_reused`"), ("X-Webhook-Url" = Option<String>, Header, description = "Optional; an https URL (not private/loopback) that receives lease events"),("X-Webhook-Secret" = Option<String>, Header, description = "Optional; the HMAC key the webhook is signed with"),("X-Expiry-Warning-Seconds" = Option<u64>, Header, description = "Optional; seconds before expiry of the `lease.expiring` event")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file, exactly X-Size-Bytes long"),
    responses((status = 201, description = "The lease", body = Value), (status = 400, description = "`bad_request`, `invalid_header` (names the `header`), `size_mismatch`, `duration_out_of_range`, `webhook_url_forbidden`", body = ErrorBody), (status = 402, description = "`insufficient_balance` (with `required`)", body = ErrorBody), (status = 409, description = "`idempotency_in_progress` (with `Retry-After`)", body = ErrorBody), (status = 422, description = "`idempotency_key_reused`", body = ErrorBody), (status = 413, description = "`payload_too_large`", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    buyer: Buyer,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut upload = validate_upload(&state, &headers)?;
    upload.webhook = webhook_headers::read(&headers, &state.webhook_policy(), upload.duration).await?;
    let balance = buyer.balance();
    let (owner, payer) = buyer.terms(&state, "/api/store", "a Storage lease", upload.cost)?;
    let (size, duration) = (upload.size.to_string(), upload.duration.to_string());
    let hook = upload.webhook.fingerprint();
    let (name, content_type) = (upload.file_name.clone(), upload.content_type.clone());
    let parts = [name.as_str(), &size, &duration, &content_type, &hook];
    let idempotent = Idempotent { headers: &headers, scope: Scope::Store(&owner), parts: &parts };
    let body: ByteStream = Box::pin(body.into_data_stream().map(|r| r.map_err(io::Error::other)));
    let lease_id = leasehold_core::ids::lease_id();
    let key = blob::lease_key(&lease_id, "object");
    let upload_hook = upload.webhook.hook(&state.secrets);
    let creation = NewFile {
        balance,
        owner: owner.clone(),
        upload,
        lease_id,
        key,
        hook: upload_hook,
        body: Unread::new(body),
        sha256: String::new(),
    };
    write::create(&state, Some(idempotent), payer, creation).await
}

/// A Storage lease on its way through the write pipeline.
struct NewFile {
    /// The paying account's balance (`None`: paid with x402).
    balance: Option<i64>,
    owner: Owner,
    upload: Upload,
    lease_id: String,
    key: String,
    hook: Hook,
    body: Unread<ByteStream>,
    sha256: String,
}

impl Creation for NewFile {
    type Created = (lease::Model, storage_object::Model);

    /// Streams the body into the blob store, hashing it, exactly `X-Size-Bytes` long. A
    /// client that goes away mid-upload leaves nothing behind and is charged nothing.
    async fn stage(&mut self, state: &AppState) -> Result<(), ApiError> {
        if let Some(balance) = self.balance
            && balance < self.upload.cost
        {
            return Err(ApiError::insufficient_balance(self.upload.cost, balance));
        }
        let body = self.body.take()?;
        let (metered, meter) = metered::meter(body, self.upload.size, self.upload.size);
        let stored = state.blobs.put_stream(&self.key, Box::pin(metered)).await;
        let (verdict, sha256) = meter.finish().await.map_err(|e| ApiError::internal(&e))?;
        match stored {
            Ok(_) => {}
            Err(BlobError::Source(_)) if verdict.too_long => {
                return Err(ApiError::payload_too_large("the body is longer than X-Size-Bytes"));
            }
            Err(BlobError::Source(_)) if verdict.too_short => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "size_mismatch",
                    "the body is shorter than X-Size-Bytes",
                ));
            }
            Err(BlobError::Source(e)) => {
                tracing::info!(error = %e, "upload aborted by the client");
                return Err(ApiError::bad_request("the upload was interrupted"));
            }
            Err(e) => return Err(e.into()),
        }
        state.metrics.bytes_in.inc_by(self.upload.size);
        self.sha256 = sha256;
        Ok(())
    }

    fn price(&self) -> Option<Price> {
        Some(Price { cost_micros: self.upload.cost, lease_id: self.lease_id.clone() })
    }

    async fn write(&self, txn: &DatabaseTransaction, now: i64) -> Result<Self::Created, ApiError> {
        let u = &self.upload;
        let new = NewStorage {
            lease_id: self.lease_id.clone(),
            blob_key: self.key.clone(),
            file_name: u.file_name.clone(),
            content_type: u.content_type.clone(),
            size_bytes: to_i64(u.size),
            sha256: self.sha256.clone(),
            duration_seconds: to_i64(u.duration),
            cost_micros: u.cost,
            hook: self.hook.clone(),
        };
        Ok(leases::create_storage(txn, &self.owner, new, now).await?)
    }

    fn respond(&self, state: &AppState, (lease, object): &Self::Created) -> Reply {
        let shown_secret = self.upload.webhook.shown_secret();
        Reply {
            status: StatusCode::CREATED,
            headers: views::lease_headers(lease),
            body: views::storage_created(state, lease, object, shown_secret),
            secret: shown_secret.is_some(),
        }
    }

    async fn discard(&self, state: &AppState) {
        if let Err(e) = state.blobs.delete_prefix(&blob::lease_prefix(&self.lease_id)).await {
            tracing::error!(lease.id = %self.lease_id, error = %e, "could not remove the bytes of an uncommitted lease");
        }
    }

    async fn committed(&self, _state: &AppState, (lease, object): &Self::Created) {
        tracing::info!(lease.id = %lease.id, size_bytes = object.size_bytes, cost_micros = lease.cost_micros, "storage lease created");
    }
}

const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>`.
pub fn content_disposition(name: &str) -> String {
    let fallback: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{}", utf8_percent_encode(name, ATTR_CHAR))
}

/// Counts bytes sent into a metric as the body streams.
fn counted(stream: ByteStream, counter: Counter) -> ByteStream {
    Box::pin(stream.inspect(move |chunk| {
        if let Ok(c) = chunk {
            counter.inc_by(c.len() as u64);
        }
    }))
}

#[utoipa::path(method(get, head),
    path = "/api/download/{lease_id}",
    tag = "store",
    summary = "Downloads a stored file (Range supported)",
    extensions(("x-auth" = json!("owner"))),
    params(("lease_id" = String, Path, description = "`lse_<ULID>`"), ("Range" = Option<String>, Header, description = "Optional; one `bytes=` range")),
    responses((status = 200, description = "The file"), (status = 206, description = "A range of the file"), (status = 404, description = "`not_found`", body = ErrorBody), (status = 410, description = "`lease_expired` (with `expires_at`), `lease_deleted`", body = ErrorBody), (status = 416, description = "`range_not_satisfiable`", body = ErrorBody)))]
async fn download(
    State(state): State<AppState>,
    auth: OwnerAuth,
    LeaseIdPath(id): LeaseIdPath,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lease = serving_lease(&state, &auth.owner(), &id).await?;
    if lease.variant != leases::Variant::Storage {
        return Err(ApiError::not_found());
    }
    let object = storage_object::Entity::find_by_id(&lease.id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::internal(&"storage lease without object"))?;
    let size = u64::try_from(object.size_bytes).unwrap_or(0);
    let mut response = Response::builder();
    let resp_headers = response.headers_mut().ok_or_else(|| ApiError::internal(&"response builder"))?;
    resp_headers.extend(lease_headers(&lease));
    // A repeated `Range` is a multi-range request in disguise: ignored, like one.
    let range = match parse_range(single_header(&headers, "Range").ok().flatten(), size) {
        RangeRequest::Full => None,
        RangeRequest::Partial(r) => Some(r),
        RangeRequest::Unsatisfiable => {
            let content_range =
                HeaderValue::from_str(&format!("bytes */{size}")).map_err(|e| ApiError::internal(&e))?;
            return Err(ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                "the requested range is outside the file",
            )
            .with_header(header::CONTENT_RANGE, content_range));
        }
    };
    let insert = |h: &mut HeaderMap, name: header::HeaderName, value: String| -> Result<(), ApiError> {
        h.insert(name, HeaderValue::from_str(&value).map_err(|e| ApiError::internal(&e))?);
        Ok(())
    };
    insert(resp_headers, header::CONTENT_TYPE, object.content_type.clone())?;
    insert(resp_headers, header::CONTENT_DISPOSITION, content_disposition(&object.file_name))?;
    insert(resp_headers, header::ETAG, format!("\"{}\"", object.sha256))?;
    insert(resp_headers, header::LAST_MODIFIED, http_date(object.created_at))?;
    insert(resp_headers, header::ACCEPT_RANGES, "bytes".into())?;
    let (status, length) = match range {
        Some(r) => {
            insert(resp_headers, header::CONTENT_RANGE, format!("bytes {}-{}/{size}", r.start, r.end))?;
            (StatusCode::PARTIAL_CONTENT, r.len())
        }
        None => (StatusCode::OK, size),
    };
    insert(resp_headers, header::CONTENT_LENGTH, length.to_string())?;
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        let stream = state.blobs.get(&object.blob_key, range).await?;
        Body::from_stream(counted(stream, state.metrics.bytes_out.clone()))
    };
    response.status(status).body(body).map_err(|e| ApiError::internal(&e))
}

#[utoipa::path(delete,
    path = "/api/store/{lease_id}",
    tag = "store",
    summary = "Deletes a stored file (no refund)",
    extensions(("x-auth" = json!("owner"))),
    params(("lease_id" = String, Path, description = "`lse_<ULID>`")),
    responses((status = 200, description = "Deleted", body = Value), (status = 404, description = "`not_found`", body = ErrorBody), (status = 410, description = "`lease_expired` (with `expires_at`), `lease_deleted`", body = ErrorBody)))]
async fn remove(
    State(state): State<AppState>,
    auth: OwnerAuth,
    LeaseIdPath(id): LeaseIdPath,
) -> Result<Response, ApiError> {
    Ok(delete_variant(&state, &auth.owner(), &id, leases::Variant::Storage).await?.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-file-name", HeaderValue::from_bytes(name).expect("header"));
        h
    }

    #[test]
    fn path_components_are_stripped() {
        assert_eq!(file_name(&headers(b"a/b/report.pdf")).ok().as_deref(), Some("report.pdf"));
        assert_eq!(file_name(&headers(b"..\\..\\x.txt")).ok().as_deref(), Some("x.txt"));
        assert_eq!(file_name(&headers("résumé €.txt".as_bytes())).ok().as_deref(), Some("résumé €.txt"));
    }

    #[test]
    fn names_that_are_not_files_are_refused() {
        for bad in [&b"../"[..], b"..", b"a/", b"", b"tab\there"] {
            let err = file_name(&headers(bad)).expect_err("must fail");
            assert_eq!(err.code(), "invalid_header", "{bad:?}");
        }
        assert!(file_name(&headers(&[b'a'; 256])).is_err());
        assert!(file_name(&headers(&[b'a'; 255])).is_ok());
    }

    #[test]
    fn content_disposition_has_both_forms() {
        assert_eq!(
            content_disposition("résumé \"1\".txt"),
            "attachment; filename=\"r_sum_ _1_.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%221%22.txt"
        );
    }
}
