//! One tool call: the tool's request goes through the API's router in process with the
//! caller's credential and address, and the HTTP answer becomes the tool result.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::BodyExt;
use rmcp::model::{CallToolResult, ContentBlock, MetaObject, RequestMetaObject};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use super::tools::{Request, Shape, Tool};
use crate::error::ApiError;
use crate::state::AppState;
use crate::x402::offer::PAYMENT_REQUIRED;
use crate::x402::payment::{PAYMENT_RESPONSE, PAYMENT_SIGNATURE};
use crate::x402::wire;

/// Where an x402 payment rides in a tool call's `_meta`, and its receipt in the result's.
pub const PAYMENT_META: &str = "x402/payment";
/// The receipt's key in the result's `_meta`.
pub const PAYMENT_RESPONSE_META: &str = "x402/payment-response";

/// What the MCP request says about its caller: the headers passed on to the API (the
/// credential, the address seen by a trusted proxy, the user agent), the socket peer,
/// and an x402 payment from `_meta`.
#[derive(Debug, Default)]
pub struct Caller {
    headers: Vec<(HeaderName, HeaderValue)>,
    peer: Option<ConnectInfo<SocketAddr>>,
    payment: Option<Value>,
}

impl Caller {
    /// The caller of a tool call made with these HTTP `parts` and request `_meta`.
    pub fn of(parts: Option<&http::request::Parts>, meta: Option<&RequestMetaObject>) -> Self {
        let mut caller = Self::default();
        if let Some(parts) = parts {
            for name in [header::AUTHORIZATION, header::USER_AGENT, HeaderName::from_static("x-forwarded-for")] {
                for value in parts.headers.get_all(&name) {
                    caller.headers.push((name.clone(), value.clone()));
                }
            }
            caller.peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned();
        }
        caller.payment = meta.and_then(|m| m.0.0.get(PAYMENT_META)).filter(|v| !v.is_null()).cloned();
        caller
    }
}

/// Runs `tool` with `arguments` for `caller`.
pub async fn run(
    state: &AppState,
    inner: &Router,
    tool: &Tool,
    arguments: &Map<String, Value>,
    caller: &Caller,
) -> CallToolResult {
    let request = match tool.request(arguments) {
        Ok(r) => r,
        Err(e) => return failure(&e.body()),
    };
    let limit = state.config.limits.mcp_inline_max_bytes;
    match tool.shape {
        Shape::Json => json_result(send(inner, caller, request).await).await,
        Shape::Content => {
            let url = state.url(&request.path);
            content_result(send(inner, caller, request).await, url, limit).await
        }
        Shape::Claim => claim(state, inner, caller, request, limit).await,
    }
}

/// Sends `request` through the router with the caller's headers, address and payment.
async fn send(inner: &Router, caller: &Caller, request: Request) -> Response {
    let mut builder = http::Request::builder().method(request.method).uri(&request.path);
    for (name, value) in caller.headers.iter().chain(&request.headers) {
        builder = builder.header(name, value);
    }
    if let Some(payment) = &caller.payment
        && let Ok(value) = HeaderValue::from_str(&wire::encode(payment))
    {
        builder = builder.header(PAYMENT_SIGNATURE, value);
    }
    let mut http_request = match builder.body(Body::from(request.body)) {
        Ok(r) => r,
        Err(e) => return axum::response::IntoResponse::into_response(ApiError::bad_request(e.to_string())),
    };
    let peer = caller.peer.unwrap_or(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 0))));
    http_request.extensions_mut().insert(peer);
    match inner.clone().oneshot(http_request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// The body, or `None` once it passes `limit` bytes (the rest is never read).
async fn read_limited(body: Body, limit: u64) -> Result<Option<Bytes>, ApiError> {
    let mut body = body;
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::internal(&e))?;
        if let Ok(data) = frame.into_data() {
            if (out.len() + data.len()) as u64 > limit {
                return Ok(None);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Some(Bytes::from(out)))
}

/// An error answer as a tool error; a `402` with the x402 offer as the x402 MCP binding
/// has it: the v2 `PaymentRequired` in `structuredContent` and as `content[0]`'s text,
/// then the API's error.
async fn error_result(response: Response) -> CallToolResult {
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let error: Value = serde_json::from_slice(&bytes).unwrap_or_else(
        |_| json!({ "status": "error", "code": "internal_error", "error": String::from_utf8_lossy(&bytes) }),
    );
    let offer = (parts.status == StatusCode::PAYMENT_REQUIRED)
        .then(|| parts.headers.get(PAYMENT_REQUIRED))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| wire::decode::<Value>(v).ok());
    match offer {
        Some(required) => {
            let mut result = CallToolResult::error(vec![
                ContentBlock::text(required.to_string()),
                ContentBlock::text(error.to_string()),
            ]);
            result.structured_content = Some(required);
            result
        }
        None => failure(&error),
    }
}

/// A tool error carrying the API's error JSON.
fn failure(error: &Value) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(error.to_string())]);
    result.structured_content = Some(error.clone());
    result
}

/// A result carrying `value`, with the x402 receipt of `headers` in `_meta`.
fn success(value: Value, headers: &HeaderMap) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(value.to_string())]);
    result.structured_content = Some(value);
    if let Some(receipt) =
        headers.get(PAYMENT_RESPONSE).and_then(|v| v.to_str().ok()).and_then(|v| wire::decode::<Value>(v).ok())
    {
        let mut meta = Map::new();
        meta.insert(PAYMENT_RESPONSE_META.into(), receipt);
        result.meta = Some(MetaObject(meta));
    }
    result
}

/// The API's JSON answer as the result.
async fn json_result(response: Response) -> CallToolResult {
    if !response.status().is_success() {
        return error_result(response).await;
    }
    let (parts, body) = response.into_parts();
    match body.collect().await.map(|b| b.to_bytes()) {
        Ok(bytes) => {
            let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({ "status": "ok" }));
            success(value, &parts.headers)
        }
        Err(e) => failure(&ApiError::internal(&e).body()),
    }
}

fn header_text(headers: &HeaderMap, name: impl axum::http::header::AsHeaderName) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// What the headers of a content answer say about it.
fn describe(headers: &HeaderMap) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("status".into(), "ok".into());
    let texts = [
        ("lease_id", "x-lease-id"),
        ("content_type", "content-type"),
        ("expires_at", "x-lease-expires-at"),
        ("workflow_id", "x-workflow-id"),
        ("handoff_id", "x-handoff-id"),
    ];
    for (field, name) in texts {
        if let Some(v) = header_text(headers, name) {
            out.insert(field.into(), v.into());
        }
    }
    let numbers =
        [("version", "x-checkpoint-version"), ("seq", "x-message-seq"), ("claims_remaining", "x-claims-remaining")];
    for (field, name) in numbers {
        if let Some(n) = header_text(headers, name).and_then(|v| v.parse::<i64>().ok()) {
            out.insert(field.into(), n.into());
        }
    }
    if let Some(n) = header_text(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok()) {
        out.insert("size_bytes".into(), n.into());
    }
    // A Storage file's and a message's ETag is the quoted SHA-256 of the bytes.
    if let Some(tag) = header_text(headers, header::ETAG).map(|t| t.trim_matches('"').to_owned())
        && tag.len() == 64
    {
        out.insert("sha256".into(), tag.into());
    }
    out
}

/// `content` when the bytes are UTF-8, else `content_base64`.
fn put_content(out: &mut Map<String, Value>, bytes: &[u8]) {
    out.insert("size_bytes".into(), bytes.len().into());
    match std::str::from_utf8(bytes) {
        Ok(text) => out.insert("content".into(), text.into()),
        Err(_) => out.insert("content_base64".into(), base64::engine::general_purpose::STANDARD.encode(bytes).into()),
    };
}

/// Too large to carry inline: where to fetch it instead.
fn by_url(out: &mut Map<String, Value>, url: String, limit: u64, how: &str) {
    out.insert("inline".into(), false.into());
    out.insert("url".into(), url.into());
    out.insert("inline_max_bytes".into(), limit.into());
    out.insert("note".into(), how.into());
}

/// A content answer: the bytes inline up to `limit`, else the URL they come from.
async fn content_result(response: Response, url: String, limit: u64) -> CallToolResult {
    if !response.status().is_success() {
        return error_result(response).await;
    }
    let (parts, body) = response.into_parts();
    let mut out = describe(&parts.headers);
    let declared = out.get("size_bytes").and_then(Value::as_u64);
    let fetch = "larger than the inline limit: GET the url with the same Authorization";
    if declared.is_some_and(|n| n > limit) {
        by_url(&mut out, url, limit, fetch);
        return success(Value::Object(out), &parts.headers);
    }
    match read_limited(body, limit).await {
        Ok(Some(bytes)) => put_content(&mut out, &bytes),
        Ok(None) => by_url(&mut out, url, limit, fetch),
        Err(e) => return failure(&e.body()),
    }
    success(Value::Object(out), &parts.headers)
}

/// A claim: `HEAD` first (it takes no slot); content too large to carry inline is left
/// unclaimed and its claim URL returned; otherwise `GET` claims it.
async fn claim(state: &AppState, inner: &Router, caller: &Caller, request: Request, limit: u64) -> CallToolResult {
    let url = state.url(&request.path);
    let head = Request { method: Method::HEAD, path: request.path.clone(), headers: Vec::new(), body: Bytes::new() };
    let looked = send(inner, caller, head).await;
    if !looked.status().is_success() {
        return head_refusal(inner, caller, request, looked).await;
    }
    let mut out = describe(looked.headers());
    if out.get("size_bytes").and_then(Value::as_u64).is_some_and(|n| n > limit) {
        by_url(&mut out, url, limit, "larger than the inline limit: not claimed; GET the url to claim it");
        return success(Value::Object(out), looked.headers());
    }
    let response = send(inner, caller, request).await;
    if !response.status().is_success() {
        return error_result(response).await;
    }
    let (parts, body) = response.into_parts();
    let variant = if parts.headers.contains_key(header::CONTENT_DISPOSITION) {
        "storage"
    } else if parts.headers.contains_key("x-checkpoint-version") {
        "checkpoint"
    } else {
        "mailbox"
    };
    let bytes = match read_limited(body, limit).await {
        Ok(Some(bytes)) => bytes,
        // Dropping the unfinished transfer gives its slot back (it never completed).
        Ok(None) => {
            let mut out = describe(&parts.headers);
            out.remove("claims_remaining");
            by_url(&mut out, url, limit, "larger than the inline limit: not claimed; GET the url to claim it");
            return success(Value::Object(out), &parts.headers);
        }
        Err(e) => return failure(&e.body()),
    };
    let mut out = describe(&parts.headers);
    out.insert("claim_url".into(), url.into());
    out.insert("variant".into(), variant.into());
    if variant == "mailbox"
        && let Ok(Value::Object(items)) = serde_json::from_slice::<Value>(&bytes)
    {
        out.extend(items);
    } else {
        if let Some(name) = header_text(&parts.headers, header::CONTENT_DISPOSITION).and_then(|d| file_name(&d)) {
            out.insert("file_name".into(), name.into());
        }
        put_content(&mut out, &bytes);
    }
    success(Value::Object(out), &parts.headers)
}

/// A refused `HEAD` (which has no body) as the tool error. A `404` or `410` is final
/// (unknown, revoked, expired, exhausted, lease gone), so the `GET` is refused the same
/// way and gives the API's JSON; anything else (`409 claim_in_progress`, an outage) could
/// let a `GET` through and take a claim, so its error is the API's for that status.
async fn head_refusal(inner: &Router, caller: &Caller, request: Request, looked: Response) -> CallToolResult {
    let status = looked.status();
    if matches!(status, StatusCode::NOT_FOUND | StatusCode::GONE) {
        let response = send(inner, caller, request).await;
        if !response.status().is_success() {
            return error_result(response).await;
        }
        // Cannot happen (a final refusal), but never drop a claimed body silently.
        return failure(
            &json!({ "status": "error", "code": "internal_error", "error": "the claim changed while it was looked at" }),
        );
    }
    let error = match status {
        StatusCode::CONFLICT => crate::routes::claim::refused(leasehold_core::handoff::Refusal::InProgress),
        StatusCode::SERVICE_UNAVAILABLE => ApiError::unavailable("the service is unavailable"),
        other => ApiError::internal(&format_args!("a claim's HEAD answered {other}")),
    };
    failure(&error.body())
}

/// The exact file name of a `Content-Disposition` (`filename*=UTF-8''…`, else `filename`).
fn file_name(disposition: &str) -> Option<String> {
    for part in disposition.split(';').map(str::trim) {
        if let Some(encoded) = part.strip_prefix("filename*=UTF-8''") {
            return percent_encoding::percent_decode_str(encoded).decode_utf8().ok().map(|s| s.into_owned());
        }
    }
    disposition
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("filename="))
        .map(|n| n.trim_matches('"').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exact_file_name_wins_over_the_fallback() {
        assert_eq!(
            file_name("attachment; filename=\"r_sum_.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt").as_deref(),
            Some("résumé.txt")
        );
        assert_eq!(file_name("attachment; filename=\"a.txt\"").as_deref(), Some("a.txt"));
    }
}
