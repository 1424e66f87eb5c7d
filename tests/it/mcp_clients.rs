//! The official MCP clients, unchanged, on `/mcp` (SPEC §11): the PyPI package `mcp`
//! (`streamable_http_client` + `ClientSession`) and the TypeScript SDK
//! (`@modelcontextprotocol/sdk`). Each runs the agent flows of
//! `tests/clients/{python/mcp_agents.py,js/mcp.mjs}` through a round-robin balancer in
//! front of **two** API instances on one database, so one MCP conversation is served by
//! both pods. The Python run also pays a tool through the x402 MCP binding with a payload
//! made by the official `x402` client (its `x402MCPClient` wrapper).
//!
//! `LEASEHOLD_TEST_MCP_PYTHON` names a python whose environment has
//! `tests/clients/python/mcp-requirements.txt`; `LEASEHOLD_TEST_X402_NODE_DIR` the
//! `tests/clients/js` directory with its `node_modules` (`npm ci`). Without them the tests
//! are skipped (and fail with `LEASEHOLD_TEST_REQUIRE_ALL=1`); `.ci/run` installs both.

use std::path::{Path, PathBuf};
use std::time::Duration;

use leasehold_tests::balancer::Balancer;
use leasehold_tests::facilitator::{self, TestFacilitator};
use leasehold_tests::{Backend, TestApp, backend_tests};
use serde_json::Value;

backend_tests!(
    the_python_sdk_runs_the_agent_flows_on_two_pods,
    the_typescript_sdk_runs_the_agent_flows_on_two_pods,
    the_python_sdk_pays_a_tool_through_the_x402_binding
);

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// A fixed test wallet (never real funds).
const WALLET_KEY: &str = "0x5555555555555555555555555555555555555555555555555555555555555555";

fn required(name: &str) -> Option<String> {
    let value = std::env::var(name).ok().filter(|v| !v.is_empty());
    if value.is_none() {
        let all = std::env::var("LEASEHOLD_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1" || v == "true");
        assert!(!all, "LEASEHOLD_TEST_REQUIRE_ALL=1 but {name} is not set");
        eprintln!("skipped: set {name} to run the official MCP client (see .ci/run)");
    }
    value
}

fn python() -> Option<tokio::process::Command> {
    let python = required("LEASEHOLD_TEST_MCP_PYTHON")?;
    let mut c = tokio::process::Command::new(python);
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python/mcp_agents.py"));
    Some(c)
}

fn node() -> Option<tokio::process::Command> {
    let dir = PathBuf::from(required("LEASEHOLD_TEST_X402_NODE_DIR")?);
    assert!(dir.join("node_modules/@modelcontextprotocol/sdk").is_dir(), "{}: run `npm ci` there", dir.display());
    let mut c = tokio::process::Command::new("node");
    c.arg(dir.join("mcp.mjs"));
    Some(c)
}

/// Runs the client to its end; its last JSON line.
async fn run(mut command: tokio::process::Command, args: &[&str]) -> Value {
    let output = tokio::time::timeout(RUN_TIMEOUT, command.args(args).kill_on_drop(true).output())
        .await
        .expect("the client finished in time")
        .expect("the client started");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "client failed ({}): {stdout}\n{stderr}", output.status);
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("the client printed no JSON line: {stdout}\n{stderr}"))
}

/// What both agent flows must show.
fn check_agent_flows(out: &Value) {
    let tools = out["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 16, "{out}");
    for name in ["leasehold_store", "leasehold_claim", "leasehold_mailbox_poll", "leasehold_checkpoint_put"] {
        assert!(tools.iter().any(|t| t == name), "{name} listed");
    }
    assert_eq!(out["schemas_ok"], true);
    assert_eq!(out["first_claim"]["error"], false, "{out}");
    let first = &out["first_claim"]["result"];
    assert_eq!(first["variant"], "storage", "{out}");
    assert!(first["content"].as_str().is_some_and(|c| c.starts_with("hello")), "{out}");
    assert_eq!(first["claims_remaining"], 0, "{out}");
    assert_eq!(out["second_claim"]["error"], true, "{out}");
    assert_eq!(out["second_claim"]["code"], "handoff_exhausted", "{out}");
    assert_eq!(out["download"]["error"], false, "{out}");
    assert_eq!(out["drop"]["error"], false, "{out}");
    assert_eq!(out["drop"]["seq"], 1, "{out}");
    assert_eq!(out["poll"]["count"], 1, "{out}");
    assert_eq!(out["poll"]["next_cursor"], 1, "{out}");
    assert_eq!(out["read"]["content"], "{\"task\": 1}", "{out}");
    assert_eq!(out["put"]["error"], false, "{out}");
    assert_eq!(out["put"]["version"], 2, "{out}");
    assert_eq!(out["stale_put"]["error"], true, "{out}");
    assert_eq!(out["stale_put"]["code"], "version_conflict", "{out}");
    assert_eq!(out["stale_put"]["current_version"], 2, "{out}");
    assert_eq!(out["get"]["version"], 2, "{out}");
    assert_eq!(out["get"]["content"], "{\"step\":2}", "{out}");
    assert_eq!(out["no_credential"]["error"], true, "{out}");
    assert_eq!(out["no_credential"]["code"], "unauthorized", "{out}");
}

/// Two pods on one database behind a balancer; an account key.
async fn two_pods(backend: &Backend) -> (TestApp, TestApp, Balancer, String) {
    let first = TestApp::spawn(backend).await;
    let second = first.second_instance().await;
    let balancer = Balancer::start(vec![first.base.clone(), second.base.clone()]).await;
    let (_, key) = first.create_account(1_000_000).await;
    (first, second, balancer, key)
}

async fn the_python_sdk_runs_the_agent_flows_on_two_pods(backend: Backend) {
    let Some(command) = python() else { return };
    let (_a, _b, balancer, key) = two_pods(&backend).await;
    let out = run(command, &[&format!("{}/mcp", balancer.base), &key, "agents"]).await;
    check_agent_flows(&out);
    assert_eq!(out["bad_argument"]["code"], "bad_request", "{out}");
    assert_eq!(out["bad_argument"]["argument"], "size_bytes", "{out}");
    let served = balancer.served();
    assert!(served.iter().all(|&n| n >= 5), "both pods served the conversation: {served:?}");
}

async fn the_typescript_sdk_runs_the_agent_flows_on_two_pods(backend: Backend) {
    let Some(command) = node() else { return };
    let (_a, _b, balancer, key) = two_pods(&backend).await;
    let out = run(command, &[&format!("{}/mcp", balancer.base), &key]).await;
    check_agent_flows(&out);
    let served = balancer.served();
    assert!(served.iter().all(|&n| n >= 5), "both pods served the conversation: {served:?}");
}

async fn the_python_sdk_pays_a_tool_through_the_x402_binding(backend: Backend) {
    let Some(command) = python() else { return };
    let f = TestFacilitator::start().await;
    let x = facilitator::config(&f);
    let app = TestApp::spawn_with(&backend, move |c| c.x402 = Some(x)).await;
    let out = run(command, &[&app.url("/mcp"), WALLET_KEY, "x402"]).await;
    let wallet = out["wallet"].as_str().expect("wallet").to_owned();
    assert_eq!(out["payment_required"]["x402Version"], 2, "{out}");
    assert_eq!(out["payment_made"], true, "{out}");
    assert_eq!(out["is_error"], false, "{out}");
    assert_eq!(out["result"]["from_wallet"], wallet.as_str(), "{out}");
    assert_eq!(out["result_meta_keys"], serde_json::json!(["x402/payment-response"]), "{out}");
    assert_eq!(out["payment_response"]["success"], true, "{out}");
    assert_eq!(out["payment_response"]["payer"], wallet.as_str(), "{out}");
    let settled = f.settlements();
    assert_eq!(settled.len(), 1, "{settled:?}");
    assert_eq!(settled[0].payer, wallet);
    let lease_id = out["result"]["lease_id"].as_str().expect("lease_id");
    let payment = leasehold_core::payments::of_lease(&app.state.db, lease_id).await.expect("db").expect("payment row");
    assert_eq!(payment.tx_hash.as_deref(), settled[0].transaction.as_str().into());
}
