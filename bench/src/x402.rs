//! x402 benchmark (issue 14): creation latency of a small Storage lease paid through the
//! x402 path, against a facilitator in this process that answers at once, next to the
//! same creation paid with an API key, in alternating phases of the same run. The
//! difference is what the payment path adds: the nonce row, the two facilitator round
//! trips and the payment row.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use axum::Json;
use leasehold_api::x402::client::sign_v2;
use leasehold_api::x402::wire::{self, PaymentRequiredV2};
use leasehold_core::evm::{B256, TestKey};
use serde_json::{Value, json};

use crate::Target;
use crate::load::{Phase, hammer};
use crate::server::Server;

const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
const BODY: &[u8] = b"0123456789abcdef";

/// A facilitator that verifies and settles everything at once.
async fn instant_facilitator() -> anyhow::Result<String> {
    let ok = |Json(body): Json<Value>| async move {
        let payer = body["paymentPayload"]["payload"]["authorization"]["from"].clone();
        let network = body["paymentRequirements"]["network"].clone();
        Json(json!({ "isValid": true, "success": true, "payer": payer, "network": network,
            "transaction": format!("0x{}", "ab".repeat(32)) }))
    };
    let app = axum::Router::new().route("/verify", axum::routing::post(ok)).route("/settle", axum::routing::post(ok));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    Ok(url)
}

fn store(client: &reqwest::Client, base: &str) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/api/store"))
        .header("X-Duration-Seconds", "3600")
        .header("X-Size-Bytes", BODY.len().to_string())
        .header("X-File-Name", "bench.bin")
        .body(BODY)
}

/// Signed `PAYMENT-SIGNATURE` values, one per creation (signing is not timed).
fn payments(required: &PaymentRequiredV2, count: usize) -> Vec<String> {
    let key = TestKey::from_seed(42);
    let now = u64::try_from(chrono_now()).unwrap_or_default();
    (0..count)
        .filter_map(|_| {
            let nonce: B256 = leasehold_core::tokens::random_hex32().parse().ok()?;
            sign_v2(&key, required, now, nonce).map(|p| wire::encode(&p))
        })
        .collect()
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Runs the benchmark and prints its figures.
pub async fn run(target: &Target, concurrency: usize, seconds: f64, rounds: u32) -> anyhow::Result<()> {
    let facilitator = instant_facilitator().await?;
    let env = [
        ("LEASEHOLD_X402_PAY_TO", PAY_TO),
        ("LEASEHOLD_X402_FACILITATOR_URL", facilitator.as_str()),
        ("LEASEHOLD_X402_NETWORK", "base-sepolia"),
    ];
    let server = Server::start_with(target, &env).await?;
    let key = server.api_key().await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency * 2).build()?;
    let asked = store(&client, &server.base).send().await?;
    anyhow::ensure!(asked.status() == 402, "expected a 402, got {}", asked.status());
    let header = asked.headers().get("payment-required").context("no PAYMENT-REQUIRED")?.to_str()?.to_owned();
    let required: PaymentRequiredV2 = wire::decode(&header).map_err(anyhow::Error::msg)?;
    // Enough signed payments for the fastest plausible rate over every phase.
    let pool = Arc::new(payments(&required, 1500 * (rounds as usize + 1) * seconds.ceil() as usize));
    let next = Arc::new(AtomicUsize::new(0));
    let (mut keyed, mut paid) = (Phase::default(), Phase::default());
    for round in 0..=rounds {
        let k = with_key(&client, &server.base, &key, concurrency, seconds).await?;
        let p = with_payment(&client, &server.base, &pool, &next, concurrency, seconds).await?;
        if round > 0 {
            keyed.absorb(k);
            paid.absorb(p);
        }
    }
    let shape = if target.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    println!(
        "x402 benchmark: {}-byte Storage leases, concurrency {concurrency}, {rounds} alternating rounds of {seconds} s per side after a warm-up; blob store {:?}, metadata {shape}; facilitator in process, answering at once",
        BODY.len(),
        target.backend
    );
    println!("{:<28} {:>10} {:>10} {:>10}", "", "creations/s", "p50 ms", "p99 ms");
    for (name, p) in [("API key", &keyed), ("x402 payment (v2)", &paid)] {
        println!("{name:<28} {:>10.0} {:>10.2} {:>10.2}", p.rate(), p.pct(0.5), p.pct(0.99));
    }
    println!(
        "payment path adds: p50 {:+.2} ms, p99 {:+.2} ms",
        paid.pct(0.5) - keyed.pct(0.5),
        paid.pct(0.99) - keyed.pct(0.99)
    );
    Ok(())
}

async fn with_key(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    concurrency: usize,
    seconds: f64,
) -> anyhow::Result<Phase> {
    let (client, base, key) = (client.clone(), base.to_owned(), key.to_owned());
    hammer(concurrency, seconds, move |_, _| {
        let req = store(&client, &base).bearer_auth(&key);
        async move {
            let res = req.send().await?;
            anyhow::ensure!(res.status() == 201, "API-key creation failed: {}", res.status());
            Ok(())
        }
    })
    .await
}

async fn with_payment(
    client: &reqwest::Client,
    base: &str,
    pool: &Arc<Vec<String>>,
    next: &Arc<AtomicUsize>,
    concurrency: usize,
    seconds: f64,
) -> anyhow::Result<Phase> {
    let (client, base, pool, next) = (client.clone(), base.to_owned(), pool.clone(), next.clone());
    hammer(concurrency, seconds, move |_, _| {
        let payment = pool.get(next.fetch_add(1, Ordering::Relaxed)).cloned();
        let req = store(&client, &base);
        async move {
            let payment = payment.context("the pool of signed payments ran out")?;
            let res = req.header("PAYMENT-SIGNATURE", payment).send().await?;
            anyhow::ensure!(res.status() == 201, "paid creation failed: {}", res.status());
            Ok(())
        }
    })
    .await
}
