//! The OpenAPI 3.1 document of this server, collected from the same `routes!` declarations
//! that build the router (`routes::api()`), then completed here in one place: the shared
//! error envelope, the statuses every route can answer (401 on authenticated routes, 500,
//! 503), the security schemes. `GET /api/pricing`'s `endpoints` and `GET /llms.txt` are
//! derived from it.
//!
//! Every operation carries `x-auth` (`none`, `owner`, `wallet`, `admin`, `drop_token`,
//! `handoff_token`) and, when it charges, `x-priced: true`.

use std::fmt::Write as _;
use std::sync::LazyLock;

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Schema};

/// Every error body: `{"status":"error","error":…,"code":…}` plus code-specific fields
/// (for example `header`, `parameter`, `required`, `expires_at`).
#[derive(utoipa::ToSchema)]
#[schema(as = Error)]
#[allow(dead_code, reason = "a schema only: ApiError renders the body")]
pub struct ErrorBody {
    /// Always `error`.
    status: ErrorStatus,
    /// A human sentence.
    error: String,
    /// The stable code; each response lists the codes it can carry.
    code: ErrorCode,
}

/// The `status` of an error body.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "a schema only")]
pub enum ErrorStatus {
    /// An error.
    Error,
}

/// Every stable error `code` (SPEC §2).
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "a schema only")]
pub enum ErrorCode {
    BadRequest,
    InvalidHeader,
    SizeMismatch,
    InvalidJson,
    InvalidWorkflowId,
    DurationOutOfRange,
    WebhookUrlForbidden,
    EmptyMessage,
    Unauthorized,
    InsufficientBalance,
    PaymentRequired,
    PaymentInvalid,
    NotFound,
    HandoffNotFound,
    VersionNotFound,
    MethodNotAllowed,
    WorkflowExists,
    ClaimInProgress,
    IdempotencyInProgress,
    LastApiKey,
    LeaseExpired,
    LeaseDeleted,
    HandoffExpired,
    HandoffRevoked,
    HandoffExhausted,
    VersionPruned,
    VersionConflict,
    PayloadTooLarge,
    RangeNotSatisfiable,
    MessageTooLarge,
    MailboxFull,
    IdempotencyKeyReused,
    RateLimited,
    Internal,
    Unavailable,
}

/// The document, built once.
pub fn document() -> &'static OpenApi {
    static DOC: LazyLock<OpenApi> = LazyLock::new(|| complete(crate::routes::api().into_openapi()));
    &DOC
}

/// An error response whose body is the shared envelope.
fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    let content = Content::new(Some(Ref::from_schema_name("Error")));
    ResponseBuilder::new().description(description).content("application/json", content).build().into()
}

/// The HTTP methods of a path item with their operations.
pub fn operations(item: &mut utoipa::openapi::PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("GET", &mut item.get),
        ("HEAD", &mut item.head),
        ("POST", &mut item.post),
        ("PUT", &mut item.put),
        ("PATCH", &mut item.patch),
        ("DELETE", &mut item.delete),
        ("OPTIONS", &mut item.options),
        ("TRACE", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_mut().map(|op| (method, op)))
    .collect()
}

/// The `x-auth` of an operation (`none` when unset).
pub fn auth_of(op: &Operation) -> &str {
    op.extensions.as_ref().and_then(|e| e.get("x-auth")).and_then(|v| v.as_str()).unwrap_or("none")
}

/// A ULID-keyed id with this prefix.
fn ulid_id(prefix: &str) -> String {
    format!("^{prefix}_[0-9A-HJKMNP-TV-Z]{{26}}$")
}

/// The pattern a path parameter must match (what its extractor checks), by path and name.
fn path_pattern(path: &str, name: &str) -> Option<String> {
    Some(match name {
        "lease_id" => ulid_id("lse"),
        "id" if path.ends_with("/drop") => "^drp_[0-9a-f]{64}$".into(),
        "id" if path.starts_with("/api/handoffs/") => format!("{}|^[0-9a-f]{{64}}$", ulid_id("hnd")),
        "id" => ulid_id("lse"),
        "message_id" => ulid_id("msg"),
        "account_id" => ulid_id("acct"),
        "workflow_id" => "^[A-Za-z0-9._-]{1,128}$".into(),
        "token" => "^[0-9a-f]{64}$".into(),
        "n" => "^[1-9][0-9]{0,17}$".into(),
        "prefix" => "^rs_live_[0-9a-f]{4}$".into(),
        _ => return None,
    })
}

/// Puts each path parameter's pattern in its schema, so generated requests (and
/// clients) know the shape before the server says `400`/`404`.
fn constrain_path_parameters(doc: &mut OpenApi) {
    for (path, item) in &mut doc.paths.paths {
        for (_, op) in operations(item) {
            for param in op.parameters.iter_mut().flatten() {
                let RefOr::T(param) = param else { continue };
                if !matches!(param.parameter_in, ParameterIn::Path) {
                    continue;
                }
                if let (Some(pattern), Some(RefOr::T(Schema::Object(schema)))) =
                    (path_pattern(path, &param.name), param.schema.as_mut())
                {
                    schema.pattern = Some(pattern);
                }
            }
        }
    }
}

/// A string schema.
fn text_schema() -> utoipa::openapi::ObjectBuilder {
    utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::String)
}

/// The x402 side of a priced operation (SPEC §4.2): the payment request headers, the
/// `402` answers with `PAYMENT-REQUIRED`, and the receipt headers of the `201`.
fn document_payments(op: &mut Operation) {
    use utoipa::openapi::Required;
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::path::ParameterBuilder;
    for (name, what) in [
        ("PAYMENT-SIGNATURE", "Optional (x402 v2, without Authorization): base64 of the PaymentPayload"),
        ("X-PAYMENT", "Optional (x402 v1, without Authorization): base64 of the PaymentPayload"),
    ] {
        let param = ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(what))
            .schema(Some(text_schema()))
            .build();
        op.parameters.get_or_insert_with(Vec::new).push(RefOr::T(param));
    }
    let responses = &mut op.responses.responses;
    let required = HeaderBuilder::new()
        .schema(Some(text_schema()))
        .description(Some("x402 v2: base64 of the PaymentRequired message (with payment_required and payment_invalid)"))
        .build();
    let mut payment = ResponseBuilder::new()
        .description(
            "`insufficient_balance` (with `required`); with x402 on: `payment_required` (no credential: the x402 v1 body \
             `x402Version`, `accepts`, `required {amount_usdc, amount_micros, wallet_address, network}`, and the v2 \
             `PAYMENT-REQUIRED` header) or `payment_invalid` (with `reason`, e.g. `nonce_used`)",
        )
        .content("application/json", Content::new(Some(Ref::from_schema_name("Error"))))
        .build();
    payment.headers.insert("PAYMENT-REQUIRED".into(), RefOr::T(required));
    responses.insert("402".into(), payment.into());
    if let Some(RefOr::T(created)) = responses.get_mut("201") {
        for (name, what) in [
            ("PAYMENT-RESPONSE", "x402 v2 payment: base64 of {success, transaction, network, payer}"),
            ("X-PAYMENT-RESPONSE", "x402 v1 payment: base64 of {success, transaction, network, payer}"),
        ] {
            let header = HeaderBuilder::new().schema(Some(text_schema())).description(Some(what)).build();
            created.headers.insert(name.into(), RefOr::T(header));
        }
    }
}

fn complete(mut doc: OpenApi) -> OpenApi {
    constrain_path_parameters(&mut doc);
    for item in doc.paths.paths.values_mut() {
        for (_, op) in operations(item) {
            if op.extensions.as_ref().and_then(|e| e.get("x-priced")).is_some_and(|v| v == true) {
                document_payments(op);
            }
        }
    }
    doc.info.title = "Leasehold".into();
    doc.info.description =
        Some("Time-limited storage, mailboxes, checkpoints and handoffs, paid per byte-second.".into());
    for item in doc.paths.paths.values_mut() {
        for (_, op) in operations(item) {
            let auth = auth_of(op).to_owned();
            let scheme = match auth.as_str() {
                "owner" | "wallet" => Some("api_key"),
                "admin" => Some("admin_token"),
                _ => None,
            };
            let responses = &mut op.responses.responses;
            if let Some(scheme) = scheme {
                op.security = Some(vec![SecurityRequirement::new(scheme, Vec::<String>::new())]);
                responses.entry("401".into()).or_insert_with(|| error_response("`unauthorized`"));
            }
            responses.entry("500".into()).or_insert_with(|| error_response("`internal`"));
            responses.entry("503".into()).or_insert_with(|| error_response("`unavailable` (with `Retry-After`)"));
        }
    }
    let components = doc.components.get_or_insert_with(Default::default);
    let bearer = |what: &str| {
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description = Some(what.into());
        SecurityScheme::Http(http)
    };
    components
        .add_security_scheme("api_key", bearer("An account API key `rs_live_…` or a wallet session `rs_wallet_…`."));
    components.add_security_scheme("admin_token", bearer("The operator's admin token."));
    doc
}

/// One route as listed by `GET /api/pricing` (`endpoints`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Endpoint {
    /// HTTP method.
    pub method: &'static str,
    /// Path template.
    pub path: String,
    /// Whether the route charges.
    pub priced: bool,
    /// `none`, `owner` (API key or wallet session), `wallet` (a wallet session only),
    /// `drop_token` / `handoff_token` (the token in the path) or `admin`.
    pub auth: String,
}

/// Every documented method and path.
pub fn endpoints() -> Vec<Endpoint> {
    let mut doc = document().clone();
    let mut out = Vec::new();
    for (path, item) in &mut doc.paths.paths {
        for (method, op) in operations(item) {
            let priced = op.extensions.as_ref().and_then(|e| e.get("x-priced")).and_then(|v| v.as_bool());
            out.push(Endpoint {
                method,
                path: path.clone(),
                priced: priced.unwrap_or(false),
                auth: auth_of(op).to_owned(),
            });
        }
    }
    out
}

/// The API in plain text for agents: per operation its method, path, summary, auth,
/// headers and parameters, body, and statuses with their codes.
pub fn llms_txt() -> String {
    let mut doc = document().clone();
    let mut out = String::from(
        "# Leasehold API\n\nTime-limited storage, mailboxes, checkpoints and handoffs, paid per byte-second.\n\
         Errors are JSON: {\"status\":\"error\",\"error\":\"<sentence>\",\"code\":\"<code>\"}.\n\
         Owner auth: `Authorization: Bearer rs_live_…` (an account's API key) or `Bearer rs_wallet_…` (a wallet \
         session from GET /v1/auth/challenge + POST /v1/auth/verify). Admin auth: `Authorization: Bearer <admin token>`.\n\
         Without a credential, priced creations may be paid per request with x402 when the server offers it \
         (402 with the v1 body and the v2 PAYMENT-REQUIRED header; see /.well-known/x402.json).\n\
         The full OpenAPI 3.1 document: GET /api/openapi.json\n\
         MCP: POST /mcp (streamable HTTP, stateless) serves these operations as tools (leasehold_quote, \
         leasehold_store, leasehold_claim, leasehold_mailbox_*, leasehold_checkpoint_*, …) with the same auth in the HTTP \
         Authorization header and x402 over MCP for paid tools; the server card is GET /.well-known/mcp/server-card.json.\n\
         CLI: `leasehold` (cargo install --path cli): store FILE --ttl 1h --handoff 1 [--encrypt], claim URL, mailbox …, \
         checkpoint …; LEASEHOLD_URL and LEASEHOLD_API_KEY; --json for scripts.\n",
    );
    for (path, item) in &mut doc.paths.paths {
        for (method, op) in operations(item) {
            let _ = write!(out, "\n## {method} {path}\n");
            if let Some(summary) = &op.summary {
                let _ = writeln!(out, "{summary}");
            }
            let priced = op.extensions.as_ref().and_then(|e| e.get("x-priced")).is_some_and(|v| v == true);
            let _ = writeln!(
                out,
                "auth: {}{}",
                auth_of(op),
                if priced { "; charges the account, or is paid with x402" } else { "" }
            );
            for param in op.parameters.iter().flatten() {
                let RefOr::T(param) = param else { continue };
                let where_ = match param.parameter_in {
                    ParameterIn::Header => "header",
                    ParameterIn::Path => "path",
                    ParameterIn::Query | ParameterIn::QueryString => "query",
                    ParameterIn::Cookie => "cookie",
                };
                let required =
                    if matches!(param.required, utoipa::openapi::Required::True) { "required" } else { "optional" };
                let note = param.description.as_deref().unwrap_or_default();
                let _ = writeln!(out, "{where_} {} ({required}): {note}", param.name);
            }
            if let Some(RefOr::T(body)) = &op.request_body {
                let types: Vec<&str> = body.content.keys().map(String::as_str).collect();
                let note = body.description.as_deref().unwrap_or_default();
                let _ = writeln!(out, "body ({}): {note}", types.join(", "));
            }
            for (status, response) in &op.responses.responses {
                if let RefOr::T(response) = response {
                    let _ = writeln!(out, "{status}: {}", response.description);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_parameter_documents_its_pattern() {
        let mut doc = document().clone();
        let mut seen = 0;
        for (path, item) in &mut doc.paths.paths {
            for (method, op) in operations(item) {
                for param in op.parameters.iter().flatten() {
                    let RefOr::T(param) = param else { continue };
                    if !matches!(param.parameter_in, ParameterIn::Path) {
                        continue;
                    }
                    let Some(RefOr::T(Schema::Object(schema))) = &param.schema else {
                        panic!("{method} {path}: {} has no inline schema", param.name)
                    };
                    assert!(schema.pattern.is_some(), "{method} {path}: {} has no pattern", param.name);
                    seen += 1;
                }
            }
        }
        assert!(seen > 20, "only {seen} path parameters");
    }

    #[test]
    fn path_patterns_accept_what_the_extractors_accept() {
        let ok = |path: &str, name: &str, value: &str| {
            let pattern = path_pattern(path, name).expect("a pattern");
            assert!(regex_lite::Regex::new(&pattern).expect("regex").is_match(value), "{name}={value} vs {pattern}");
        };
        ok("/api/leases/{lease_id}", "lease_id", &leasehold_core::ids::lease_id());
        ok("/api/mailbox/{id}/drop", "id", &leasehold_core::tokens::new_drop_token());
        ok("/api/handoffs/{id}", "id", &leasehold_core::ids::handoff_id());
        ok("/api/handoffs/{id}", "id", &leasehold_core::tokens::random_hex32());
        ok("/api/claim/{token}", "token", &leasehold_core::tokens::random_hex32());
        ok("/api/checkpoint/{workflow_id}", "workflow_id", "wf-1.step_2");
        let key = leasehold_core::tokens::new_api_key();
        ok("/v1/account/api-keys/{prefix}", "prefix", leasehold_core::tokens::display_prefix(&key));
    }
}
