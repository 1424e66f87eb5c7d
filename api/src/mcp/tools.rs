//! The MCP tools of SPEC §11, each a translation of its arguments onto one HTTP operation
//! of this API. Argument names are the HTTP API's field names; unknown or mistyped
//! arguments are refused as `bad_request` naming the argument.

use axum::http::{HeaderName, HeaderValue, Method};
use bytes::Bytes;
use percent_encoding::utf8_percent_encode;
use rmcp::model::ListToolsResult;
use serde_json::{Map, Value, json};

use super::args::{Args, SEGMENT, boolean, int, invalid, json_content, object, text};
use crate::error::ApiError;
use crate::state::AppState;

/// What an agent reads first (the `initialize` answer's `instructions`).
pub const INSTRUCTIONS: &str = "Leasehold: pay once for a resource that lives for a fixed time and is then deleted. \
Storage files (leasehold_store, leasehold_download), mailboxes that anyone with the drop URL can write into \
(leasehold_mailbox_*), versioned checkpoints (leasehold_checkpoint_*), and handoffs: claim URLs another agent redeems \
without an account (leasehold_handoff, leasehold_claim). Quote first with leasehold_quote. Owner tools need the \
HTTP Authorization header (API key or wallet session); paid tools without one pay with x402 when the server offers it. \
Errors carry the HTTP API's `code`.";

/// Who may call a tool (the server card's `auth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Anyone: the arguments carry the capability (a token) or nothing is owned.
    None,
    /// An owner credential, or an x402 payment when x402 is on.
    X402,
    /// An owner credential (API key or wallet session).
    Owner,
}

impl Auth {
    /// The card's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::X402 => "x402",
            Self::Owner => "owner",
        }
    }
}

/// How the HTTP answer becomes the tool's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// The API's JSON as it is.
    Json,
    /// Bytes with their metadata in headers, inline up to the limit, else their URL.
    Content,
    /// A claim: looked at with `HEAD` first (which takes no slot), claimed with `GET`
    /// only when its content can be carried inline.
    Claim,
}

/// One HTTP request made on the caller's behalf.
#[derive(Debug)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// Headers beyond the caller's credential.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Body.
    pub body: Bytes,
}

impl Request {
    fn new(method: Method, path: String) -> Self {
        Self { method, path, headers: Vec::new(), body: Bytes::new() }
    }

    fn header(mut self, name: &'static str, value: &str, argument: &str) -> Result<Self, ApiError> {
        let value = HeaderValue::from_bytes(value.as_bytes())
            .map_err(|_| invalid(argument, "contains characters a header cannot carry"))?;
        self.headers.push((HeaderName::from_static(name), value));
        Ok(self)
    }

    fn header_opt(self, name: &'static str, value: Option<String>, argument: &str) -> Result<Self, ApiError> {
        match value {
            Some(v) => self.header(name, &v, argument),
            None => Ok(self),
        }
    }

    fn body(mut self, body: Bytes) -> Self {
        self.body = body;
        self
    }
}

/// One tool.
pub struct Tool {
    /// Its name.
    pub name: &'static str,
    /// A short title.
    pub title: &'static str,
    /// What it does, for the model.
    pub description: &'static str,
    /// Who may call it.
    pub auth: Auth,
    /// How its answer is shaped.
    pub shape: Shape,
    schema: fn() -> Value,
    build: fn(&Args<'_>) -> Result<Request, ApiError>,
}

impl Tool {
    /// Its JSON Schema `inputSchema`.
    pub fn input_schema(&self) -> Value {
        (self.schema)()
    }

    /// Who may call it on this server: without x402, a paid tool needs an owner.
    pub fn auth_on(&self, x402: bool) -> Auth {
        if self.auth == Auth::X402 && !x402 { Auth::Owner } else { self.auth }
    }

    /// The request for `arguments`, or the error naming the argument at fault.
    pub fn request(&self, arguments: &Map<String, Value>) -> Result<Request, ApiError> {
        let schema = self.input_schema();
        if let Some(unknown) = arguments.keys().find(|k| schema["properties"].get(k.as_str()).is_none()) {
            return Err(invalid(unknown, "is not an argument of this tool"));
        }
        for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !arguments.contains_key(required) {
                return Err(invalid(required, "is required"));
            }
        }
        (self.build)(&Args(arguments))
    }
}

/// Every tool, in the order they are listed.
pub static TOOLS: &[Tool] = &[
    Tool {
        name: "leasehold_quote",
        title: "Quote a lease",
        description: "The price of a lease of `size_bytes` for `duration_seconds` (GET /api/quote). Free.",
        auth: Auth::None,
        shape: Shape::Json,
        schema: || {
            object(
                &[
                    ("size_bytes", int("Bytes to store (a Mailbox's capacity, a Checkpoint's max_body_bytes)")),
                    ("duration_seconds", int("Lease duration in seconds")),
                ],
                &["size_bytes", "duration_seconds"],
            )
        },
        build: |a| {
            Ok(Request::new(
                Method::GET,
                format!(
                    "/api/quote?size_bytes={}&duration_seconds={}",
                    a.u64("size_bytes")?.unwrap_or(0),
                    a.u64("duration_seconds")?.unwrap_or(0)
                ),
            ))
        },
    },
    Tool {
        name: "leasehold_pricing",
        title: "Prices and limits",
        description: "Rates, formulas, limits and payment options (GET /api/pricing). Free.",
        auth: Auth::None,
        shape: Shape::Json,
        schema: || object(&[], &[]),
        build: |_| Ok(Request::new(Method::GET, "/api/pricing".into())),
    },
    Tool {
        name: "leasehold_store",
        title: "Store a file",
        description: "Stores a file for `duration_seconds` and returns its lease (POST /api/store). Give `content` (UTF-8 text) or `content_base64`. Paid: charged to the caller's account, or paid with x402.",
        auth: Auth::X402,
        shape: Shape::Json,
        schema: || {
            object(
                &[
                    ("content", text("The file as UTF-8 text")),
                    ("content_base64", text("The file as base64")),
                    ("file_name", text("File name (path components are stripped)")),
                    ("duration_seconds", int("Lease duration in seconds")),
                    ("content_type", text("MIME type (default application/octet-stream)")),
                ],
                &["file_name", "duration_seconds"],
            )
        },
        build: |a| {
            let body = a.content(false)?;
            Request::new(Method::POST, "/api/store".into())
                .header("x-file-name", &a.string("file_name")?.unwrap_or_default(), "file_name")?
                .header("x-duration-seconds", &a.u64("duration_seconds")?.unwrap_or(0).to_string(), "duration_seconds")?
                .header("x-size-bytes", &body.len().to_string(), "content")?
                .header_opt("content-type", a.string("content_type")?, "content_type")
                .map(|r| r.body(body))
        },
    },
    Tool {
        name: "leasehold_download",
        title: "Download a file",
        description: "A Storage lease's file (GET /api/download/{lease_id}): inline as `content` (UTF-8) or `content_base64` up to the server's inline limit, else its `url`.",
        auth: Auth::Owner,
        shape: Shape::Content,
        schema: || object(&[("lease_id", text("The lease id `lse_…`"))], &["lease_id"]),
        build: |a| Ok(Request::new(Method::GET, format!("/api/download/{}", a.segment("lease_id")?))),
    },
    Tool {
        name: "leasehold_handoff",
        title: "Hand a lease off",
        description: "Issues a claim URL for a lease that another agent redeems without an account (POST /api/handoff/{lease_id}).",
        auth: Auth::Owner,
        shape: Shape::Json,
        schema: || {
            object(
                &[
                    ("lease_id", text("The lease id `lse_…`")),
                    ("max_claims", int("How many claims (default 1)")),
                    ("delete_on_claim", boolean("Delete the lease after the last claim")),
                    ("ttl_seconds", int("How long the claim URL lives (default: the lease's remaining life)")),
                ],
                &["lease_id"],
            )
        },
        build: |a| {
            let mut body = Map::new();
            for name in ["max_claims", "ttl_seconds"] {
                if let Some(n) = a.u64(name)? {
                    body.insert(name.into(), n.into());
                }
            }
            if let Some(b) = a.bool("delete_on_claim")? {
                body.insert("delete_on_claim".into(), b.into());
            }
            Request::new(Method::POST, format!("/api/handoff/{}", a.segment("lease_id")?))
                .header("content-type", "application/json", "lease_id")
                .map(|r| r.body(Value::Object(body).to_string().into()))
        },
    },
    Tool {
        name: "leasehold_handoff_revoke",
        title: "Revoke a handoff",
        description: "Revokes a handoff by its `hnd_` id or its token (DELETE /api/handoffs/{id}); idempotent.",
        auth: Auth::Owner,
        shape: Shape::Json,
        schema: || object(&[("handoff_id", text("The handoff id `hnd_…` or its token"))], &["handoff_id"]),
        build: |a| Ok(Request::new(Method::DELETE, format!("/api/handoffs/{}", a.segment("handoff_id")?))),
    },
    Tool {
        name: "leasehold_claim",
        title: "Claim a handoff",
        description: "Redeems a claim URL (GET /api/claim/{token}); no account needed. Content up to the server's inline limit comes back inline; larger content is not claimed and its `claim_url` is returned for a direct download.",
        auth: Auth::None,
        shape: Shape::Claim,
        schema: || {
            object(&[("claim_url", text("The claim URL (or give `token`)")), ("token", text("The claim token"))], &[])
        },
        build: |a| Ok(Request::new(Method::GET, format!("/api/claim/{}", a.token("claim_url", "token", "/claim/")?))),
    },
    Tool {
        name: "leasehold_mailbox_create",
        title: "Create a mailbox",
        description: "Creates a Mailbox that anyone holding its `drop_url` can write into (POST /api/mailbox). Paid: charged to the caller's account, or paid with x402.",
        auth: Auth::X402,
        shape: Shape::Json,
        schema: || {
            object(
                &[
                    ("capacity_bytes", int("Total bytes the mailbox holds")),
                    ("duration_seconds", int("Lease duration in seconds")),
                    ("max_message_bytes", int("Largest message")),
                    ("max_messages", int("Most messages")),
                    ("webhook_url", text("Receiver of signed webhooks on each drop")),
                    ("webhook_secret", text("Signing secret (minted when absent)")),
                ],
                &["capacity_bytes", "duration_seconds"],
            )
        },
        build: |a| {
            Request::new(Method::POST, "/api/mailbox".into())
                .header("x-capacity-bytes", &a.u64("capacity_bytes")?.unwrap_or(0).to_string(), "capacity_bytes")?
                .header("x-duration-seconds", &a.u64("duration_seconds")?.unwrap_or(0).to_string(), "duration_seconds")?
                .header_opt(
                    "x-max-message-bytes",
                    a.u64("max_message_bytes")?.map(|n| n.to_string()),
                    "max_message_bytes",
                )?
                .header_opt("x-max-messages", a.u64("max_messages")?.map(|n| n.to_string()), "max_messages")?
                .header_opt("x-webhook-url", a.string("webhook_url")?, "webhook_url")?
                .header_opt("x-webhook-secret", a.string("webhook_secret")?, "webhook_secret")
        },
    },
    Tool {
        name: "leasehold_mailbox_drop",
        title: "Drop a message",
        description: "Writes a message into a mailbox by its drop URL or token (POST /api/mailbox/{drop_token}/drop); no account needed. Give `content` (UTF-8 text) or `content_base64`.",
        auth: Auth::None,
        shape: Shape::Json,
        schema: || {
            object(
                &[
                    ("drop_url", text("The mailbox's drop URL (or give `drop_token`)")),
                    ("drop_token", text("The drop token `drp_…`")),
                    ("content", text("The message as UTF-8 text")),
                    ("content_base64", text("The message as base64")),
                    ("content_type", text("MIME type (default application/octet-stream)")),
                ],
                &[],
            )
        },
        build: |a| {
            let token = a.token("drop_url", "drop_token", "/mailbox/")?;
            let body = a.content(false)?;
            Request::new(Method::POST, format!("/api/mailbox/{token}/drop"))
                .header_opt("content-type", a.string("content_type")?, "content_type")
                .map(|r| r.body(body))
        },
    },
    Tool {
        name: "leasehold_mailbox_poll",
        title: "Poll a mailbox",
        description: "Lists a mailbox's messages after the cursor `after` (GET /api/mailbox/{lease_id}/messages); `wait` long-polls up to that many seconds for the first new one.",
        auth: Auth::Owner,
        shape: Shape::Json,
        schema: || {
            object(
                &[
                    ("lease_id", text("The mailbox's lease id `lse_…`")),
                    ("after", int("Cursor: the last seq seen (default 0)")),
                    ("limit", int("1..=1000 (default 100)")),
                    ("wait", int("Seconds to long-poll")),
                ],
                &["lease_id"],
            )
        },
        build: |a| {
            let mut query = Vec::new();
            for name in ["after", "limit", "wait"] {
                if let Some(n) = a.u64(name)? {
                    query.push(format!("{name}={n}"));
                }
            }
            Ok(Request::new(
                Method::GET,
                with_query(format!("/api/mailbox/{}/messages", a.segment("lease_id")?), &query),
            ))
        },
    },
    Tool {
        name: "leasehold_mailbox_read",
        title: "Read a message",
        description: "One message's bytes (GET /api/mailbox/{lease_id}/messages/{message_id}), inline up to the server's inline limit, else its `url`.",
        auth: Auth::Owner,
        shape: Shape::Content,
        schema: || {
            object(
                &[("lease_id", text("The mailbox's lease id `lse_…`")), ("message_id", text("The message id `msg_…`"))],
                &["lease_id", "message_id"],
            )
        },
        build: |a| {
            Ok(Request::new(
                Method::GET,
                format!("/api/mailbox/{}/messages/{}", a.segment("lease_id")?, a.segment("message_id")?),
            ))
        },
    },
    Tool {
        name: "leasehold_checkpoint_create",
        title: "Create a checkpoint",
        description: "Creates a versioned Checkpoint slot for `workflow_id` with its first version (POST /api/checkpoint). `content` is text, or any JSON value (sent as application/json). Paid: charged to the caller's account, or paid with x402.",
        auth: Auth::X402,
        shape: Shape::Json,
        schema: || {
            object(
                &[
                    ("workflow_id", text("1-128 of A-Z a-z 0-9 . _ -")),
                    ("duration_seconds", int("Lease duration in seconds")),
                    ("content", json_content()),
                    ("content_type", text("MIME type (default application/json)")),
                    ("max_body_bytes", int("Largest version")),
                    ("max_versions", int("Versions kept (1..=100)")),
                ],
                &["workflow_id", "duration_seconds", "content"],
            )
        },
        build: |a| {
            let body = a.content(true)?;
            Request::new(Method::POST, "/api/checkpoint".into())
                .header("x-workflow-id", &a.string("workflow_id")?.unwrap_or_default(), "workflow_id")?
                .header("x-duration-seconds", &a.u64("duration_seconds")?.unwrap_or(0).to_string(), "duration_seconds")?
                .header_opt("x-max-body-bytes", a.u64("max_body_bytes")?.map(|n| n.to_string()), "max_body_bytes")?
                .header_opt("x-max-versions", a.u64("max_versions")?.map(|n| n.to_string()), "max_versions")?
                .header_opt("content-type", a.string("content_type")?, "content_type")
                .map(|r| r.body(body))
        },
    },
    Tool {
        name: "leasehold_checkpoint_get",
        title: "Read a checkpoint",
        description: "The current version of a checkpoint, or `version` (GET /api/checkpoint/{workflow_id}[/versions/{n}]), inline up to the server's inline limit.",
        auth: Auth::Owner,
        shape: Shape::Content,
        schema: || {
            object(
                &[
                    ("workflow_id", text("The workflow id")),
                    ("version", int("A kept version (default: the current one)")),
                ],
                &["workflow_id"],
            )
        },
        build: |a| {
            let id = a.segment("workflow_id")?;
            Ok(match a.u64("version")? {
                Some(n) => Request::new(Method::GET, format!("/api/checkpoint/{id}/versions/{n}")),
                None => Request::new(Method::GET, format!("/api/checkpoint/{id}")),
            })
        },
    },
    Tool {
        name: "leasehold_checkpoint_put",
        title: "Write a checkpoint version",
        description: "Writes the next version (PUT /api/checkpoint/{workflow_id}); with `if_match` only if the current version is that number, else the error `version_conflict` with `current_version`.",
        auth: Auth::Owner,
        shape: Shape::Json,
        schema: || {
            object(
                &[
                    ("workflow_id", text("The workflow id")),
                    ("content", json_content()),
                    ("if_match", int("Write only if this is the current version")),
                    ("content_type", text("MIME type (default application/json)")),
                ],
                &["workflow_id", "content"],
            )
        },
        build: |a| {
            let body = a.content(true)?;
            Request::new(Method::PUT, format!("/api/checkpoint/{}", a.segment("workflow_id")?))
                .header_opt("if-match", a.u64("if_match")?.map(|n| format!("\"{n}\"")), "if_match")?
                .header_opt("content-type", a.string("content_type")?, "content_type")
                .map(|r| r.body(body))
        },
    },
    Tool {
        name: "leasehold_leases",
        title: "List leases",
        description: "The caller's leases, newest first (GET /api/leases).",
        auth: Auth::Owner,
        shape: Shape::Json,
        schema: || {
            object(
                &[
                    ("variant", text("storage, mailbox or checkpoint")),
                    ("state", text("active, expired or deleted")),
                    ("limit", int("1..=1000 (default 100)")),
                    ("cursor", text("next_cursor of the previous page")),
                ],
                &[],
            )
        },
        build: |a| {
            let mut query = Vec::new();
            for name in ["variant", "state", "cursor"] {
                if let Some(v) = a.string(name)? {
                    query.push(format!("{name}={}", utf8_percent_encode(&v, SEGMENT)));
                }
            }
            if let Some(n) = a.u64("limit")? {
                query.push(format!("limit={n}"));
            }
            Ok(Request::new(Method::GET, with_query("/api/leases".into(), &query)))
        },
    },
    Tool {
        name: "leasehold_lease_delete",
        title: "Delete a lease",
        description: "Deletes a lease now; its bytes are removed (DELETE /api/leases/{lease_id}). No refund.",
        auth: Auth::Owner,
        shape: Shape::Json,
        schema: || object(&[("lease_id", text("The lease id `lse_…`"))], &["lease_id"]),
        build: |a| Ok(Request::new(Method::DELETE, format!("/api/leases/{}", a.segment("lease_id")?))),
    },
];

/// `path` with `pairs` (already encoded) as its query, if any.
fn with_query(path: String, pairs: &[String]) -> String {
    if pairs.is_empty() { path } else { format!("{path}?{}", pairs.join("&")) }
}

/// The tool called `name`.
pub fn find(name: &str) -> Option<&'static Tool> {
    TOOLS.iter().find(|t| t.name == name)
}

/// The `tools/list` answer. Paid tools say so in their description's `_meta`.
pub fn list(state: &AppState) -> ListToolsResult {
    let x402 = state.config.x402.is_some();
    let tools: Vec<Value> = TOOLS
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "title": t.title,
                "description": t.description,
                "inputSchema": t.input_schema(),
                "annotations": {
                    "title": t.title,
                    "readOnlyHint": matches!(t.name, "leasehold_quote" | "leasehold_pricing" | "leasehold_download" | "leasehold_mailbox_poll" | "leasehold_mailbox_read" | "leasehold_checkpoint_get" | "leasehold_leases"),
                    "openWorldHint": false,
                },
                "_meta": { "leasehold/auth": t.auth_on(x402).as_str() },
            })
        })
        .collect();
    serde_json::from_value(json!({ "tools": tools }))
        .unwrap_or_else(|e| panic!("the tool list is a valid ListToolsResult: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_lists_its_required_arguments() {
        for tool in TOOLS {
            let schema = tool.input_schema();
            let properties = schema["properties"].as_object().expect("properties");
            for r in schema["required"].as_array().expect("required") {
                assert!(properties.contains_key(r.as_str().expect("name")), "{}: {r}", tool.name);
            }
        }
        assert_eq!(TOOLS.len(), 16, "SPEC §11 lists 16 tools");
    }

    #[test]
    fn unknown_and_mistyped_arguments_are_refused_by_name() {
        let tool = find("leasehold_quote").expect("tool");
        let args = Map::from_iter([("size_bytes".to_owned(), json!(1)), ("duration".to_owned(), json!(60))]);
        let e = tool.request(&args).expect_err("unknown argument");
        assert_eq!(e.body()["argument"], "duration");
        let args = Map::from_iter([("size_bytes".to_owned(), json!("1")), ("duration_seconds".to_owned(), json!(60))]);
        assert_eq!(tool.request(&args).expect_err("a string").body()["argument"], "size_bytes");
    }
}
