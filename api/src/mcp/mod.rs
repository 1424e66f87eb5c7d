//! `/mcp`: the Model Context Protocol over streamable HTTP (SPEC §11), stateless, so any
//! request may land on any pod.
//!
//! Each tool is a thin translation onto one HTTP operation of this API ([`tools`]): its
//! arguments become the request (path, query, headers, body), the request runs through
//! the same router in process ([`call`]), and the answer becomes the tool result — the
//! API's JSON as text and as `structuredContent`, or a tool error (`isError: true`) with
//! the same `code`. No business rule is written twice: validation, pricing, idempotency,
//! ownership and x402 are the routes' own.
//!
//! The caller's `Authorization` (API key or wallet session) rides along from the MCP
//! request. Paid tools without a credential, with x402 on, follow the x402 MCP transport:
//! the `402` becomes a tool error with the v2 `PaymentRequired`; the payment comes back
//! in `params._meta["x402/payment"]` and goes on as the `PAYMENT-SIGNATURE` header; the
//! receipt (`PAYMENT-RESPONSE`) comes back in the result's `_meta["x402/payment-response"]`.

pub mod args;
pub mod call;
pub mod card;
pub mod tools;

use std::sync::Arc;

use axum::Router;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::state::AppState;

/// The MCP server of one API instance: the tools, and the router they call.
#[derive(Clone)]
pub struct Leasehold {
    state: AppState,
    inner: Router,
    listed: Arc<ListToolsResult>,
}

impl Leasehold {
    /// The server on `state`; tool calls go through `inner` (the API's routes).
    pub fn new(state: AppState, inner: Router) -> Self {
        let listed = Arc::new(tools::list(&state));
        Self { state, inner, listed }
    }
}

impl ServerHandler for Leasehold {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::default();
        info.capabilities = ServerCapabilities::builder().enable_tools().build();
        info.server_info.name = "leasehold".into();
        info.server_info.version = env!("CARGO_PKG_VERSION").into();
        info.server_info.title = Some("Leasehold".into());
        info.instructions = Some(tools::INSTRUCTIONS.into());
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok((*self.listed).clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let parts = context.extensions.get::<http::request::Parts>();
        // rmcp moves the request's `_meta` into the context; take it from either place.
        let meta = request.meta.as_ref().unwrap_or(&context.meta);
        let caller = call::Caller::of(parts, Some(meta));
        let Some(tool) = tools::find(&request.name) else {
            return Err(ErrorData::invalid_params(format!("unknown tool {}", request.name), None));
        };
        let arguments = request.arguments.unwrap_or_default();
        Ok(call::run(&self.state, &self.inner, tool, &arguments, &caller).await.into())
    }
}

/// The `/mcp` service: stateless (no sessions kept in any pod's memory), JSON answers,
/// and a `Host` check that admits loopback and the host of `LEASEHOLD_PUBLIC_URL`.
pub fn service(state: AppState, inner: Router) -> StreamableHttpService<Leasehold, NeverSessionManager> {
    let mut config = StreamableHttpServerConfig::default();
    config.legacy_session_mode = false;
    config.json_response = true;
    config.sse_keep_alive = None;
    config.allowed_hosts = allowed_hosts(&state.config.public_url);
    config.cancellation_token = state.shutting_down.child_token();
    // Content travels in the JSON-RPC body (base64 grows it by a third): room for twice
    // the inline limit, and never less than rmcp's default of 4 MiB.
    let inline = usize::try_from(state.config.limits.mcp_inline_max_bytes).unwrap_or(usize::MAX);
    config.max_request_body_bytes = inline.saturating_mul(2).saturating_add(1 << 20).max(4 << 20);
    let server = Leasehold::new(state, inner);
    StreamableHttpService::new(move || Ok(server.clone()), Arc::new(NeverSessionManager::default()), config)
}

/// Loopback names, and the public URL's host with and without its port.
fn allowed_hosts(public_url: &str) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].into_iter().map(str::to_owned).collect();
    if let Ok(url) = url::Url::parse(public_url)
        && let Some(host) = url.host_str()
    {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        if let Some(port) = url.port() {
            hosts.push(format!("{host}:{port}"));
        }
        hosts.push(host);
    }
    hosts.dedup();
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_host_is_allowed_beside_loopback() {
        let hosts = allowed_hosts("https://lease.example.com");
        assert!(hosts.contains(&"lease.example.com".to_owned()), "{hosts:?}");
        assert!(hosts.contains(&"127.0.0.1".to_owned()), "{hosts:?}");
        let hosts = allowed_hosts("http://Box.Local:8080");
        assert!(hosts.contains(&"box.local:8080".to_owned()), "{hosts:?}");
        assert!(hosts.contains(&"box.local".to_owned()), "{hosts:?}");
    }
}
