//! `/mcp` spoken as raw JSON-RPC over HTTP (SPEC §11): tool errors carry the API's
//! `code`; content beyond the inline limit comes back as a URL and a claim is then not
//! taken; x402 through the MCP binding makes exactly one lease owned by the payer; the
//! `Host` check refuses foreign hosts; the server card lists every tool. The official
//! clients are in `mcp_clients.rs`.

use leasehold_tests::facilitator::{self, Payer, TestFacilitator, b64, decode};
use leasehold_tests::{Backend, TestApp, backend_tests};
use serde_json::{Value, json};

backend_tests!(
    tool_errors_carry_the_api_code,
    content_beyond_the_inline_limit_is_a_url_and_no_claim_is_taken,
    a_wallet_pays_a_tool_through_the_x402_binding_once,
    foreign_hosts_are_refused_and_the_card_lists_every_tool
);

/// One JSON-RPC request to `/mcp` (stateless: no session header), its `result` or `error`.
async fn rpc(app: &TestApp, key: Option<&str>, method: &str, params: Value) -> Value {
    let mut req = app
        .client
        .post(app.url("/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-06-18")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let res = req.send().await.expect("mcp");
    assert_eq!(res.status(), 200, "{method}");
    let text = res.text().await.expect("body");
    let message: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method}: not JSON ({e}): {text}"));
    message.get("result").or_else(|| message.get("error")).cloned().unwrap_or(message)
}

/// A `tools/call`: the result, checked to carry its JSON both as text and structured.
async fn call(app: &TestApp, key: Option<&str>, tool: &str, arguments: Value) -> Value {
    call_with(app, key, tool, arguments, None).await
}

async fn call_with(app: &TestApp, key: Option<&str>, tool: &str, arguments: Value, meta: Option<Value>) -> Value {
    let mut params = json!({ "name": tool, "arguments": arguments });
    if let Some(meta) = meta {
        params["_meta"] = meta;
    }
    let result = rpc(app, key, "tools/call", params).await;
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().expect("text content")).expect("json");
    assert_eq!(text, result["structuredContent"], "{tool}: the text is the structured content");
    result
}

fn is_error(result: &Value) -> bool {
    result["isError"] == true
}

async fn tool_errors_carry_the_api_code(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let (_, key) = app.create_account(1_000_000).await;
    let none = call(&app, None, "leasehold_leases", json!({})).await;
    assert!(is_error(&none));
    assert_eq!(none["structuredContent"]["code"], "unauthorized", "{none}");
    let unknown = call(&app, None, "leasehold_claim", json!({ "token": "clm_nope" })).await;
    assert!(is_error(&unknown));
    assert_eq!(unknown["structuredContent"]["code"], "handoff_not_found", "{unknown}");
    let bad = call(&app, Some(&key), "leasehold_store", json!({ "file_name": "a", "duration_seconds": 3600 })).await;
    assert_eq!(bad["structuredContent"]["code"], "bad_request", "{bad}");
    assert_eq!(bad["structuredContent"]["argument"], "content", "{bad}");
    let extra =
        call(&app, Some(&key), "leasehold_quote", json!({ "size_bytes": 1, "duration_seconds": 60, "x": 1 })).await;
    assert_eq!(extra["structuredContent"]["argument"], "x", "{extra}");
    // The API's own validation answers, with its code: a too-short lease.
    let short =
        call(&app, Some(&key), "leasehold_store", json!({ "content": "x", "file_name": "a", "duration_seconds": 1 }))
            .await;
    assert!(is_error(&short));
    assert_eq!(short["structuredContent"]["code"], "duration_out_of_range", "{short}");
    // Nothing was stored by the refused calls.
    assert!(app.blob_keys().await.is_empty());
    // A path argument cannot leave its segment.
    let escape = call(&app, Some(&key), "leasehold_download", json!({ "lease_id": "../v1/account" })).await;
    assert!(is_error(&escape));
    assert_eq!(escape["structuredContent"]["code"], "not_found", "{escape}");
}

async fn content_beyond_the_inline_limit_is_a_url_and_no_claim_is_taken(backend: Backend) {
    let app = TestApp::spawn_with(&backend, |c| c.limits.mcp_inline_max_bytes = 64).await;
    let (_, key) = app.create_account(1_000_000).await;
    let big = "x".repeat(100);
    let stored = call(
        &app,
        Some(&key),
        "leasehold_store",
        json!({ "content": big, "file_name": "big.txt", "duration_seconds": 3600 }),
    )
    .await;
    assert!(!is_error(&stored), "{stored}");
    let lease_id = stored["structuredContent"]["lease_id"].as_str().expect("lease_id").to_owned();
    let got = call(&app, Some(&key), "leasehold_download", json!({ "lease_id": lease_id })).await;
    assert_eq!(got["structuredContent"]["inline"], false, "{got}");
    assert_eq!(got["structuredContent"]["url"], app.url(&format!("/api/download/{lease_id}")));
    assert!(got["structuredContent"].get("content").is_none());

    let handoff = call(&app, Some(&key), "leasehold_handoff", json!({ "lease_id": lease_id })).await;
    let claim_url = handoff["structuredContent"]["claim_url"].as_str().expect("claim_url").to_owned();
    let claimed = call(&app, None, "leasehold_claim", json!({ "claim_url": claim_url })).await;
    assert!(!is_error(&claimed), "{claimed}");
    assert_eq!(claimed["structuredContent"]["inline"], false, "{claimed}");
    // The one claim is still there for a direct download.
    let res = app.client.get(&claim_url).send().await.expect("claim");
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.expect("body"), big);

    // Small content travels inline, as UTF-8 text.
    let small = call(
        &app,
        Some(&key),
        "leasehold_store",
        json!({ "content_base64": "/wA=", "file_name": "b.bin", "duration_seconds": 3600 }),
    )
    .await;
    let small_id = small["structuredContent"]["lease_id"].as_str().expect("lease_id");
    let got = call(&app, Some(&key), "leasehold_download", json!({ "lease_id": small_id })).await;
    assert_eq!(got["structuredContent"]["content_base64"], "/wA=", "{got}");
    assert_eq!(got["structuredContent"]["size_bytes"], 2);
}

async fn a_wallet_pays_a_tool_through_the_x402_binding_once(backend: Backend) {
    let f = TestFacilitator::start().await;
    let x = facilitator::config(&f);
    let app = TestApp::spawn_with(&backend, move |c| c.x402 = Some(x)).await;
    let args = json!({ "content": "paid over mcp", "file_name": "p.txt", "duration_seconds": 3600 });
    let asked = call(&app, None, "leasehold_store", args.clone()).await;
    assert!(is_error(&asked), "{asked}");
    let required = &asked["structuredContent"];
    assert_eq!(required["x402Version"], 2, "{asked}");
    assert_eq!(required["accepts"][0]["scheme"], "exact");
    // The API's error follows the offer.
    let api_error: Value = serde_json::from_str(asked["content"][1]["text"].as_str().expect("text")).expect("json");
    assert_eq!(api_error["code"], "payment_required");

    let payer = Payer::new(7);
    let payment = decode(&payer.pay_v2(&b64(required)));
    let meta = json!({ "x402/payment": payment });
    let paid = call_with(&app, None, "leasehold_store", args.clone(), Some(meta.clone())).await;
    assert!(!is_error(&paid), "{paid}");
    let receipt = &paid["_meta"]["x402/payment-response"];
    assert_eq!(receipt["success"], true, "{paid}");
    assert_eq!(receipt["payer"], payer.address().as_str());
    assert_eq!(paid["structuredContent"]["from_wallet"], payer.address().as_str());
    // The same payment again settles nothing more.
    let again = call_with(&app, None, "leasehold_store", args, Some(meta)).await;
    assert!(is_error(&again), "{again}");
    assert_eq!(f.settlements().len(), 1);
}

async fn foreign_hosts_are_refused_and_the_card_lists_every_tool(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let res = app
        .client
        .post(app.url("/mcp"))
        .header("Host", "evil.example")
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {} }))
        .send()
        .await
        .expect("mcp");
    assert!(res.status().is_client_error(), "a foreign Host: {}", res.status());

    let listed = rpc(&app, None, "tools/list", json!({})).await;
    let names: Vec<&str> =
        listed["tools"].as_array().expect("tools").iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names.len(), 16, "{names:?}");
    let card: Value = app
        .client
        .get(app.url("/.well-known/mcp/server-card.json"))
        .send()
        .await
        .expect("card")
        .json()
        .await
        .expect("json");
    assert_eq!(card["remotes"][0]["type"], "streamable-http");
    assert_eq!(card["remotes"][0]["url"], app.url("/mcp"));
    let tools = card["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), names.len());
    for tool in tools {
        assert!(names.contains(&tool["name"].as_str().expect("name")), "{tool}");
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        assert!(["none", "x402", "owner"].contains(&tool["auth"].as_str().expect("auth")), "{tool}");
    }
    let by_name = |n: &str| tools.iter().find(|t| t["name"] == n).expect("tool").clone();
    assert_eq!(by_name("leasehold_claim")["auth"], "none");
    assert_eq!(by_name("leasehold_download")["auth"], "owner");
    // Without x402 a paid tool needs an owner.
    assert_eq!(by_name("leasehold_store")["auth"], "owner");
    assert_eq!(card["x402"]["enabled"], false);
    // llms.txt points agents at MCP, the card and the CLI.
    let llms = app.client.get(app.url("/llms.txt")).send().await.expect("llms").text().await.expect("text");
    for needle in ["POST /mcp", "/.well-known/mcp/server-card.json", "`leasehold`"] {
        assert!(llms.contains(needle), "llms.txt mentions {needle}");
    }
}
