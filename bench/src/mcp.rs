//! MCP benchmark (issue 15): `leasehold_quote` through `/mcp` (JSON-RPC `tools/call`,
//! stateless) next to `GET /api/quote`, in alternating phases of the same run. The
//! difference is what the MCP layer adds: JSON-RPC parsing, the in-process request
//! through the router, and the tool result's encoding.

use serde_json::json;

use crate::Target;
use crate::load::{Phase, hammer};
use crate::server::Server;

/// Runs the benchmark and prints its figures.
pub async fn run(target: &Target, concurrency: usize, seconds: f64, rounds: u32) -> anyhow::Result<()> {
    let server = Server::start(target).await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency * 2).build()?;
    let (mut http, mut mcp) = (Phase::default(), Phase::default());
    for round in 0..=rounds {
        let h = quote_http(&client, &server.base, concurrency, seconds).await?;
        let m = quote_mcp(&client, &server.base, concurrency, seconds).await?;
        if round > 0 {
            http.absorb(h);
            mcp.absorb(m);
        }
    }
    println!(
        "MCP benchmark: a quote (1 MiB for an hour), concurrency {concurrency}, {rounds} alternating rounds of {seconds} s per side after a warm-up; metadata {}",
        if target.database_url.is_some() { "PostgreSQL" } else { "SQLite" }
    );
    println!("{:<34} {:>10} {:>10} {:>10}", "", "calls/s", "p50 ms", "p99 ms");
    for (name, p) in [("GET /api/quote (baseline)", &http), ("MCP tools/call leasehold_quote", &mcp)] {
        println!("{name:<34} {:>10.0} {:>10.2} {:>10.2}", p.rate(), p.pct(0.5), p.pct(0.99));
    }
    println!("MCP adds: p50 {:+.2} ms, p99 {:+.2} ms", mcp.pct(0.5) - http.pct(0.5), mcp.pct(0.99) - http.pct(0.99));
    Ok(())
}

async fn quote_http(client: &reqwest::Client, base: &str, concurrency: usize, seconds: f64) -> anyhow::Result<Phase> {
    let (client, url) = (client.clone(), format!("{base}/api/quote?size_bytes=1048576&duration_seconds=3600"));
    hammer(concurrency, seconds, move |_, _| {
        let req = client.get(&url);
        async move {
            let res = req.send().await?;
            anyhow::ensure!(res.status() == 200, "quote failed: {}", res.status());
            res.bytes().await?;
            Ok(())
        }
    })
    .await
}

async fn quote_mcp(client: &reqwest::Client, base: &str, concurrency: usize, seconds: f64) -> anyhow::Result<Phase> {
    let (client, url) = (client.clone(), format!("{base}/mcp"));
    let call = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "leasehold_quote", "arguments": { "size_bytes": 1_048_576, "duration_seconds": 3600 } } });
    hammer(concurrency, seconds, move |_, _| {
        let req = client
            .post(&url)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-06-18")
            .json(&call);
        async move {
            let res = req.send().await?;
            anyhow::ensure!(res.status() == 200, "MCP call failed: {}", res.status());
            let body: serde_json::Value = res.json().await?;
            anyhow::ensure!(body["result"]["isError"] == false, "MCP quote failed: {body}");
            Ok(())
        }
    })
    .await
}
