//! Webhook benchmark (issue 7): drop → webhook received latency at a steady drop rate
//! (open loop), then deliveries per second after a burst of drops, next to the rate at
//! which the API accepted the same drops. The receiver is an axum server in this process
//! that answers 200 at once; webhooks are matched to drops by `message_id`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use bytes::Bytes;

use crate::Target;
use crate::server::Server;

/// The latency target of issue 7.
const TARGET_P99_MS: f64 = 250.0;

/// How long the latency phase waits for stragglers after its last drop was sent.
const STRAGGLER_WAIT: Duration = Duration::from_secs(10);

/// Options of the webhook benchmark.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// The `leasehold-worker` binary, started next to the API when it runs no worker
    /// itself (with `--database-url`).
    #[arg(long, default_value = "target/release/leasehold-worker")]
    pub worker_bin: String,
    /// Mailboxes the drops go to, round-robin (one webhook URL each, same receiver).
    #[arg(long, default_value_t = 10)]
    pub mailboxes: usize,
    /// Drops per second in the latency phase (each sent on schedule in its own task).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds of the latency phase.
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    /// Drops of the throughput phase, sent as fast as the API takes them.
    #[arg(long, default_value_t = 5000)]
    pub burst: usize,
    /// Concurrent droppers of the throughput phase.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Longest wait for the burst's webhooks after its last drop was accepted.
    #[arg(long, default_value_t = 20.0)]
    pub burst_wait_seconds: f64,
}

/// Every request the receiver got: its arrival instant and its JSON body (`Null` when
/// the body was not JSON).
#[derive(Default)]
struct Inbox {
    hits: Mutex<Vec<(Instant, serde_json::Value)>>,
}

impl Inbox {
    /// First arrival per `message_id` of `mailbox.message.received` events, the number
    /// of repeated deliveries, and the number of requests that were something else.
    fn arrivals(&self) -> Arrivals {
        let hits = self.hits.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Arrivals { first: HashMap::with_capacity(hits.len()), ..Arrivals::default() };
        for (at, body) in hits.iter() {
            let Some(id) = message_id(body) else {
                out.other += 1;
                continue;
            };
            match out.first.entry(id.to_owned()) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    out.repeats += 1;
                    if *at < *e.get() {
                        e.insert(*at);
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(*at);
                }
            }
        }
        out
    }

    /// A few of the requests that were not drop events, for the error message.
    fn others(&self) -> Vec<String> {
        let hits = self.hits.lock().unwrap_or_else(PoisonError::into_inner);
        hits.iter().filter(|(_, b)| message_id(b).is_none()).take(3).map(|(_, b)| b.to_string()).collect()
    }
}

#[derive(Default)]
struct Arrivals {
    first: HashMap<String, Instant>,
    repeats: usize,
    other: usize,
}

impl Arrivals {
    fn count_of<'a>(&self, ids: impl IntoIterator<Item = &'a String>) -> usize {
        ids.into_iter().filter(|id| self.first.contains_key(*id)).count()
    }
}

/// The message id of a `mailbox.message.received` payload (top level, as SPEC §8 has it;
/// also under `data`, should the payload nest its event fields).
fn message_id(body: &serde_json::Value) -> Option<&str> {
    if body["type"] != "mailbox.message.received" {
        return None;
    }
    body["message_id"].as_str().or_else(|| body["data"]["message_id"].as_str())
}

async fn receive(State(inbox): State<Arc<Inbox>>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    inbox.hits.lock().unwrap_or_else(PoisonError::into_inner).push((at, json));
    StatusCode::OK
}

/// Starts the receiver on 127.0.0.1; returns its hook URL.
async fn start_receiver(inbox: Arc<Inbox>) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(inbox);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("webhook receiver failed: {e}");
        }
    });
    Ok((url, task))
}

/// Runs the benchmark and prints its figures.
pub async fn run(target: &Target, o: &Options) -> anyhow::Result<()> {
    anyhow::ensure!(
        o.mailboxes > 0 && o.rate > 0.0 && o.concurrency > 0,
        "mailboxes, rate and concurrency must be > 0"
    );
    let inbox = Arc::new(Inbox::default());
    let (hook_url, receiver) = start_receiver(inbox.clone()).await?;
    let env = [
        ("LEASEHOLD_DROP_RATE_PER_IP", "0"),
        ("LEASEHOLD_DROP_RATE_PER_MAILBOX", "0"),
        ("LEASEHOLD_WEBHOOK_ALLOW_PRIVATE", "true"),
    ];
    let server = Server::start_with(target, &env).await?;
    // With PostgreSQL the API runs no worker and only a worker delivers webhooks. The
    // worker gets the API's environment, so the same settings; dropped before the server.
    let worker = match target.database_url {
        Some(_) => Some(server.start_worker(&o.worker_bin).await?),
        None => None,
    };
    let key = server.api_key().await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(o.concurrency.max(64)).build()?;
    let mut mailboxes = Vec::with_capacity(o.mailboxes);
    for _ in 0..o.mailboxes {
        mailboxes.push(create_mailbox(&client, &server, &key, &hook_url).await?);
    }
    let drop_urls: Vec<String> = mailboxes.iter().map(|(_, url)| url.clone()).collect();

    warm_up(&client, &server, &key, &inbox, &mailboxes).await?;
    let steady = steady(&client, &inbox, &drop_urls, o).await?;
    let burst = burst(&client, &inbox, &drop_urls, o).await?;
    let all = inbox.arrivals();
    drop(worker);
    drop(server);
    receiver.abort();

    let shape = if target.database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    let worker = if target.database_url.is_some() { "a leasehold-worker process" } else { "the API process" };
    println!(
        "webhook benchmark: blob store {:?}, metadata {shape}, deliveries by {worker}; {} mailboxes (drops round-robin), {DROP_BYTES}-byte JSON drops; receiver on loopback answering 200 at once",
        target.backend, o.mailboxes
    );
    steady.print(o);
    burst.print(o);
    println!(
        "  webhook requests in all: {} drop events ({} repeated deliveries), {} other requests",
        all.first.len(),
        all.repeats,
        all.other
    );
    Ok(())
}

/// Creates a mailbox whose webhook goes to `hook_url`; returns its lease id and drop URL.
async fn create_mailbox(
    client: &reqwest::Client,
    server: &Server,
    key: &str,
    hook_url: &str,
) -> anyhow::Result<(String, String)> {
    let res = client
        .post(format!("{}/api/mailbox", server.base))
        .bearer_auth(key)
        .header("X-Capacity-Bytes", (64u64 << 20).to_string())
        .header("X-Duration-Seconds", "3600")
        .header("X-Max-Messages", "100000")
        .header("X-Webhook-Url", hook_url)
        .send()
        .await?;
    let status = res.status();
    let body: serde_json::Value = res.json().await?;
    anyhow::ensure!(status == 201, "mailbox creation failed: {status} {body}");
    anyhow::ensure!(body["webhook_url"] == hook_url, "the mailbox kept no webhook URL: {body}");
    Ok((
        body["lease_id"].as_str().context("lease_id")?.to_owned(),
        body["drop_url"].as_str().context("drop_url")?.to_owned(),
    ))
}

/// Size of every drop.
const DROP_BYTES: usize = 64;

/// One drop of a `DROP_BYTES` JSON document; returns its `message_id`.
async fn send_drop(client: &reqwest::Client, url: &str, n: usize) -> anyhow::Result<String> {
    let head = format!(r#"{{"bench":"webhook","n":{n},"pad":""#);
    let body = format!(r#"{head}{}"}}"#, "x".repeat(DROP_BYTES.saturating_sub(head.len() + 2)));
    let res = client.post(url).header("Content-Type", "application/json").body(body).send().await?;
    let status = res.status();
    let text = res.text().await?;
    anyhow::ensure!(status == 201, "drop failed: {status} {text}");
    let json: serde_json::Value = serde_json::from_str(&text)?;
    Ok(json["message_id"].as_str().context("message_id in the drop's answer")?.to_owned())
}

/// Waits until every id in `ids` has arrived or `deadline` passes; returns the arrivals.
async fn await_arrivals(inbox: &Inbox, ids: &[String], deadline: Instant) -> Arrivals {
    loop {
        let arrivals = inbox.arrivals();
        if arrivals.count_of(ids) == ids.len() || Instant::now() >= deadline {
            return arrivals;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One drop per mailbox, whose webhooks must all arrive: connections are open and the
/// worker is running before anything is measured. Explains what it can when nothing comes.
async fn warm_up(
    client: &reqwest::Client,
    server: &Server,
    key: &str,
    inbox: &Inbox,
    mailboxes: &[(String, String)],
) -> anyhow::Result<()> {
    let mut ids = Vec::new();
    for (n, (_, url)) in mailboxes.iter().enumerate() {
        ids.push(send_drop(client, url, n).await?);
    }
    let arrivals = await_arrivals(inbox, &ids, Instant::now() + Duration::from_secs(30)).await;
    let got = arrivals.count_of(&ids);
    if got == ids.len() {
        return Ok(());
    }
    // Say what the server knows about the first mailbox's deliveries.
    let deliveries =
        client.get(format!("{}/api/leases/{}/deliveries", server.base, mailboxes[0].0)).bearer_auth(key).send().await?;
    let deliveries = format!("{} {}", deliveries.status(), deliveries.text().await?);
    anyhow::bail!(
        "warm-up: {got} of {} webhooks arrived within 30 s ({} other requests: {:?}); GET /api/leases/{}/deliveries: {deliveries}",
        ids.len(),
        arrivals.other,
        inbox.others(),
        mailboxes[0].0
    )
}

/// Results of the latency phase.
struct Steady {
    sent: usize,
    accepted: usize,
    first_error: Option<String>,
    /// Drop sent → webhook received, of the webhooks that arrived, sorted.
    latencies: Vec<Duration>,
    /// Drop sent → 201 answer, sorted.
    answers: Vec<Duration>,
    /// Seconds the sending took (the schedule says `seconds`).
    sending: f64,
}

/// Drops at `rate` per second for `seconds`, open loop: a ticker fires on schedule and
/// each drop runs in its own task, so slow answers do not lower the rate.
async fn steady(client: &reqwest::Client, inbox: &Inbox, drop_urls: &[String], o: &Options) -> anyhow::Result<Steady> {
    let total = (o.rate * o.seconds).round() as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / o.rate));
    // A late tick is made up at once: the schedule, not the ticker, sets the count per second.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(total);
    let started = Instant::now();
    for n in 0..total {
        ticker.tick().await;
        let (client, url) = (client.clone(), drop_urls[n % drop_urls.len()].clone());
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let res = send_drop(&client, &url, n).await;
            (sent, sent.elapsed(), res)
        }));
    }
    let last_sent = Instant::now();
    let sending = last_sent.duration_since(started).as_secs_f64();
    let (mut sent_at, mut answers, mut first_error) = (HashMap::with_capacity(total), Vec::new(), None);
    for t in tasks {
        let (sent, answer, res) = t.await?;
        match res {
            Ok(id) => {
                sent_at.insert(id, sent);
                answers.push(answer);
            }
            Err(e) => {
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let ids: Vec<String> = sent_at.keys().cloned().collect();
    let arrivals = await_arrivals(inbox, &ids, last_sent + STRAGGLER_WAIT).await;
    let mut latencies: Vec<Duration> = sent_at
        .iter()
        .filter_map(|(id, sent)| arrivals.first.get(id).map(|at| at.saturating_duration_since(*sent)))
        .collect();
    latencies.sort_unstable();
    answers.sort_unstable();
    Ok(Steady { sent: total, accepted: sent_at.len(), first_error, latencies, answers, sending })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `p` quantile of `sorted` in milliseconds, where `total - sorted.len()` more samples
/// never arrived and count as slower than any: `None` when the quantile falls on one.
fn quantile(sorted: &[Duration], total: usize, p: f64) -> Option<f64> {
    if total == 0 {
        return None;
    }
    let i = ((total as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map(|d| ms(*d))
}

impl Steady {
    fn print(&self, o: &Options) {
        let received = self.latencies.len();
        let fmt = |q: Option<f64>| q.map_or_else(|| "not received".to_owned(), |v| format!("{v:.1} ms"));
        let p99 = quantile(&self.latencies, self.accepted, 0.99);
        let met = p99.is_some_and(|v| v <= TARGET_P99_MS) && self.accepted == self.sent;
        println!(
            "latency: {:.0} drops/s for {:.0} s, open loop ({} drops sent in {:.1} s)",
            o.rate, o.seconds, self.sent, self.sending
        );
        println!(
            "  drops sent {}, accepted {}, webhooks received {} (missing {}, waited up to {} s after the last drop)",
            self.sent,
            self.accepted,
            received,
            self.accepted - received,
            STRAGGLER_WAIT.as_secs()
        );
        if let Some(e) = &self.first_error {
            println!("  first failed drop: {e}");
        }
        println!(
            "  drop sent -> webhook received: p50 {}, p99 {}, max {} (target p99 <= {TARGET_P99_MS:.0} ms: {})",
            fmt(quantile(&self.latencies, self.accepted, 0.5)),
            fmt(p99),
            fmt(quantile(&self.latencies, self.accepted, 1.0)),
            if met { "met" } else { "missed" }
        );
        let slow = self.latencies.iter().filter(|d| ms(**d) > TARGET_P99_MS).count();
        println!(
            "  distribution: p90 {}, p95 {}, p99.9 {}; over {TARGET_P99_MS:.0} ms: {slow} ({:.2}%)",
            fmt(quantile(&self.latencies, self.accepted, 0.9)),
            fmt(quantile(&self.latencies, self.accepted, 0.95)),
            fmt(quantile(&self.latencies, self.accepted, 0.999)),
            100.0 * (slow + self.accepted - received) as f64 / self.accepted.max(1) as f64
        );
        println!(
            "  context: drop sent -> 201 answer: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            crate::load::percentile(&self.answers, 0.5),
            crate::load::percentile(&self.answers, 0.99),
            crate::load::percentile(&self.answers, 1.0)
        );
    }
}

/// Results of the throughput phase.
struct Burst {
    accepted: usize,
    /// Seconds from the first drop sent to the last one accepted.
    drop_span: f64,
    delivered: usize,
    /// Seconds from the first webhook received to the last (of this phase's drops).
    delivery_span: f64,
    /// Seconds from the first drop sent to the last webhook received.
    end_to_end: f64,
    waited: f64,
}

/// `burst` drops from `concurrency` tasks as fast as the API takes them; then waits for
/// their webhooks.
async fn burst(client: &reqwest::Client, inbox: &Inbox, drop_urls: &[String], o: &Options) -> anyhow::Result<Burst> {
    let next = Arc::new(AtomicUsize::new(0));
    let urls: Arc<[String]> = drop_urls.into();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(o.concurrency);
    for _ in 0..o.concurrency {
        let (client, next, urls, burst) = (client.clone(), next.clone(), urls.clone(), o.burst);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= burst {
                    return anyhow::Ok(ids);
                }
                ids.push(send_drop(&client, &urls[n % urls.len()], n).await?);
            }
        }));
    }
    let mut ids = Vec::with_capacity(o.burst);
    for t in tasks {
        ids.extend(t.await??);
    }
    let accepted_at = Instant::now();
    let arrivals = await_arrivals(inbox, &ids, accepted_at + Duration::from_secs_f64(o.burst_wait_seconds)).await;
    let waited = accepted_at.elapsed().as_secs_f64();
    let times: Vec<Instant> = ids.iter().filter_map(|id| arrivals.first.get(id).copied()).collect();
    let (first, last) = (times.iter().min().copied(), times.iter().max().copied());
    let delivery_span = match (first, last) {
        (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
        _ => 0.0,
    };
    Ok(Burst {
        accepted: ids.len(),
        drop_span: accepted_at.duration_since(started).as_secs_f64(),
        delivered: times.len(),
        delivery_span,
        end_to_end: last.map_or(0.0, |l| l.duration_since(started).as_secs_f64()),
        waited,
    })
}

impl Burst {
    fn print(&self, o: &Options) {
        let drops = self.accepted as f64 / self.drop_span;
        let deliveries = if self.delivery_span > 0.0 { self.delivered as f64 / self.delivery_span } else { f64::NAN };
        println!(
            "throughput: {} drops at concurrency {} as fast as accepted, then their webhooks counted at the receiver",
            o.burst, o.concurrency
        );
        println!("{:<40} {:>10} {:>10} {:>10}", "", "count", "seconds", "per s");
        println!(
            "{:<40} {:>10} {:>10.2} {:>10.0}",
            "drops accepted by the API (baseline)", self.accepted, self.drop_span, drops
        );
        println!(
            "{:<40} {:>10} {:>10.2} {:>10.0}",
            "webhooks received, first to last", self.delivered, self.delivery_span, deliveries
        );
        println!("ratio deliveries / drops: {:.0}%", 100.0 * deliveries / drops);
        if self.delivered == self.accepted {
            println!(
                "  all {} webhooks received {:.2} s after the first drop was sent ({:.0}/s end to end)",
                self.delivered,
                self.end_to_end,
                self.delivered as f64 / self.end_to_end
            );
        } else {
            println!(
                "  only {} of {} webhooks received within {:.0} s of the last drop (the rate above is of those)",
                self.delivered, self.accepted, self.waited
            );
        }
    }
}
