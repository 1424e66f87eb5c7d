//! The mixed workload: uploads (up to the configured size) and downloads, claims racing on
//! shared tokens, drops racing for a mailbox's caps with a long-poller and an SSE reader
//! watching, checkpoint writers racing on `If-Match`, every lease with a webhook and a
//! short life. Each task records what it saw for the checks at the end.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;

use super::hooks::Receiver;
use super::report::{Check, Record};

/// The pseudo-random block every upload repeats after its own 16-byte header.
const BLOCK: usize = 1 << 20;

/// What the workload tasks share.
pub struct Load {
    pub client: reqwest::Client,
    pub base: String,
    pub keys: Vec<String>,
    pub record: Arc<Record>,
    pub hooks: Arc<Receiver>,
    pub deadline: Instant,
    pub max_upload: u64,
    block: Bytes,
    counter: AtomicU64,
    /// Handoffs the claim task issued: (handoff id, max claims, bodies received whole).
    pub tokens: Mutex<Vec<(String, i64, i64)>>,
}

impl Load {
    pub fn new(
        base: String,
        keys: Vec<String>,
        record: Arc<Record>,
        hooks: Arc<Receiver>,
        seconds: f64,
        max_upload: u64,
    ) -> Self {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let block: Vec<u8> = (0..BLOCK)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(180))
            .pool_max_idle_per_host(64)
            .build()
            .expect("client");
        Self {
            client,
            base,
            keys,
            record,
            hooks,
            deadline: Instant::now() + Duration::from_secs_f64(seconds),
            max_upload,
            block: Bytes::from(block),
            counter: AtomicU64::new(1),
            tokens: Mutex::new(Vec::new()),
        }
    }

    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    fn running(&self) -> bool {
        Instant::now() < self.deadline
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A small random number from the counter (xorshift of a fresh value).
    fn roll(&self, below: u64) -> u64 {
        let mut x = self.next().wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0xdead_beef;
        x ^= x >> 29;
        x % below.max(1)
    }

    /// The bytes of upload `header` of `size`: the header, then the block repeated.
    fn body(&self, header: [u8; 16], size: u64) -> reqwest::Body {
        let block = self.block.clone();
        let mut pieces = vec![Bytes::copy_from_slice(&header[..16.min(size as usize)])];
        let mut left = size.saturating_sub(16);
        let mut at = 0usize;
        while left > 0 {
            let n = (left as usize).min(BLOCK - at).min(256 * 1024);
            pieces.push(block.slice(at..at + n));
            at = (at + n) % BLOCK;
            left -= n as u64;
        }
        reqwest::Body::wrap_stream(futures_util::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>)))
    }

    /// Reads a response body and compares it with upload `header` of `size`: `Some(true)`
    /// whole and equal, `Some(false)` whole but different, `None` cut short.
    async fn compare(&self, res: reqwest::Response, header: [u8; 16], size: u64) -> Option<bool> {
        let mut stream = res.bytes_stream();
        let mut offset = 0u64;
        let mut equal = true;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.ok()?;
            for (i, byte) in chunk.iter().enumerate() {
                let at = offset + i as u64;
                let want = if at < 16 { header[at as usize] } else { self.block[((at - 16) % BLOCK as u64) as usize] };
                if at >= size || *byte != want {
                    equal = false;
                    break;
                }
            }
            offset += chunk.len() as u64;
        }
        Some(equal && offset == size)
    }

    fn webhook(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.header("X-Webhook-Url", self.hooks.url()).header("X-Webhook-Secret", super::hooks::SECRET)
    }

    /// Stores a file; returns (lease id, header, size).
    async fn store(&self, key: &str, size: u64, ttl: u64) -> Option<(String, [u8; 16], u64)> {
        let n = self.next();
        let mut header = [0u8; 16];
        header[..8].copy_from_slice(&n.to_be_bytes());
        header[8..].copy_from_slice(b"leasehld");
        let req = self
            .client
            .post(self.url("/api/store"))
            .bearer_auth(key)
            .header("X-File-Name", format!("file-{n}.bin"))
            .header("X-Size-Bytes", size)
            .header("X-Duration-Seconds", ttl)
            .body(self.body(header, size));
        let started = Instant::now();
        let res = self.webhook(req).send().await;
        let body = self.record.outcome("store", started, res, 201).await?;
        Some((body["lease_id"].as_str()?.to_owned(), header, size))
    }

    /// Uploads and downloads until the deadline: mostly small files, now and then one up
    /// to the configured size; lives of 10–60 s.
    pub async fn storage_task(self: Arc<Self>, worker: usize) {
        let key = self.keys[worker % self.keys.len()].clone();
        while self.running() {
            let size = if self.roll(8) == 0 { 1 + self.roll(self.max_upload) } else { 1024 + self.roll(1 << 20) };
            let size = size.max(16);
            let ttl = 10 + self.roll(50);
            let Some((lease, header, size)) = self.store(&key, size, ttl).await else { continue };
            for _ in 0..2 {
                let started = Instant::now();
                let res = self.client.get(self.url(&format!("/api/download/{lease}"))).bearer_auth(&key).send().await;
                match res {
                    Ok(res) if res.status() == 200 => match self.compare(res, header, size).await {
                        Some(true) => {
                            self.record.latency("download", started);
                            self.record.check(Check::Downloads, true, String::new);
                        }
                        Some(false) => {
                            self.record.check(Check::Downloads, false, || format!("{lease}: other bytes than uploaded"))
                        }
                        None => self.record.failed("download"),
                    },
                    Ok(res) if res.status().is_server_error() => self.record.failed("download"),
                    Ok(_) => self.record.refused("download"),
                    Err(_) => self.record.failed("download"),
                }
            }
        }
    }

    /// Stores a file, hands it off with 1–3 claims and sends five claimers at once.
    pub async fn claim_task(self: Arc<Self>, worker: usize) {
        let key = self.keys[worker % self.keys.len()].clone();
        while self.running() {
            let Some((lease, header, size)) = self.store(&key, 16 + self.roll(2 << 20), 60).await else { continue };
            let max_claims = 1 + self.roll(3) as i64;
            let started = Instant::now();
            let res = self
                .client
                .post(self.url(&format!("/api/handoff/{lease}")))
                .bearer_auth(&key)
                .json(&serde_json::json!({ "max_claims": max_claims }))
                .send()
                .await;
            let Some(handoff) = self.record.outcome("handoff", started, res, 201).await else { continue };
            let (Some(id), Some(url)) = (handoff["handoff_id"].as_str(), handoff["claim_url"].as_str()) else {
                continue;
            };
            let claims = (0..5).map(|_| {
                let this = self.clone();
                let url = url.to_owned();
                async move {
                    let started = Instant::now();
                    match this.client.get(&url).send().await {
                        Ok(res) if res.status() == 200 => match this.compare(res, header, size).await {
                            Some(true) => {
                                this.record.latency("claim", started);
                                1
                            }
                            Some(false) => {
                                this.record.check(Check::Downloads, false, || format!("claim {url}: other bytes"));
                                0
                            }
                            None => {
                                this.record.failed("claim");
                                0
                            }
                        },
                        Ok(res) if res.status().is_server_error() => {
                            this.record.failed("claim");
                            0
                        }
                        Ok(_) => {
                            this.record.refused("claim");
                            0
                        }
                        Err(_) => {
                            this.record.failed("claim");
                            0
                        }
                    }
                }
            });
            let whole: i64 = futures_util::future::join_all(claims).await.into_iter().sum();
            self.tokens.lock().unwrap_or_else(PoisonError::into_inner).push((id.to_owned(), max_claims, whole));
        }
    }

    /// A mailbox with tight caps, four droppers racing to fill it, a long-poller and an
    /// SSE reader; then the caps, the acknowledged drops and both readers are checked.
    pub async fn mailbox_task(self: Arc<Self>, worker: usize) {
        let key = self.keys[worker % self.keys.len()].clone();
        while self.running() {
            let (capacity, max_messages) = (48 * 1024i64, 30i64);
            let started = Instant::now();
            let req = self
                .client
                .post(self.url("/api/mailbox"))
                .bearer_auth(&key)
                .header("X-Capacity-Bytes", capacity)
                .header("X-Max-Messages", max_messages)
                .header("X-Max-Message-Bytes", 4096)
                .header("X-Duration-Seconds", 30 + self.roll(30));
            let res = self.webhook(req).send().await;
            let Some(created) = self.record.outcome("mailbox", started, res, 201).await else { continue };
            let (Some(lease), Some(drop_url)) = (created["lease_id"].as_str(), created["drop_url"].as_str()) else {
                continue;
            };
            let (lease, drop_url) = (lease.to_owned(), drop_url.to_owned());
            let done = Arc::new(tokio::sync::Notify::new());
            let poller = tokio::spawn(self.clone().long_poll(key.clone(), lease.clone(), done.clone()));
            let sse = tokio::spawn(self.clone().sse(key.clone(), lease.clone(), done.clone()));
            let droppers = (0..4).map(|_| self.clone().dropper(drop_url.clone()));
            let acked: Vec<String> = futures_util::future::join_all(droppers).await.into_iter().flatten().collect();
            // What the server holds, while the mailbox lives.
            let res = self
                .client
                .get(self.url(&format!("/api/mailbox/{lease}/messages?after=0&limit=1000")))
                .bearer_auth(&key)
                .send()
                .await;
            let Some(page) = (match res {
                Ok(r) if r.status() == 200 => r.json::<serde_json::Value>().await.ok(),
                _ => None,
            }) else {
                poller.abort();
                sse.abort();
                continue;
            };
            let items = page["items"].as_array().cloned().unwrap_or_default();
            let ids: BTreeSet<String> = items.iter().filter_map(|m| m["id"].as_str().map(str::to_owned)).collect();
            let seqs: BTreeSet<i64> = items.iter().filter_map(|m| m["seq"].as_i64()).collect();
            let bytes: i64 = items.iter().filter_map(|m| m["size_bytes"].as_i64()).sum();
            let within = items.len() as i64 <= max_messages
                && bytes <= capacity
                && page["message_count"].as_i64() == Some(items.len() as i64)
                && page["used_bytes"].as_i64() == Some(bytes);
            self.record.check(Check::MailboxCaps, within, || {
                format!(
                    "{lease}: {} messages, {bytes} bytes (caps {max_messages}, {capacity}); counters {} / {}",
                    items.len(),
                    page["message_count"],
                    page["used_bytes"]
                )
            });
            let lost: Vec<&String> = acked.iter().filter(|id| !ids.contains(*id)).collect();
            self.record
                .check(Check::AckedDrops, lost.is_empty(), || format!("{lease}: acknowledged drops missing: {lost:?}"));
            // The readers get ten seconds to catch up, then stop.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let wait_until = Instant::now() + Duration::from_secs(10);
            let mut poller = poller;
            let mut sse = sse;
            done.notify_waiters();
            let polled = tokio::time::timeout_at(wait_until.into(), &mut poller).await;
            let streamed = tokio::time::timeout_at(wait_until.into(), &mut sse).await;
            poller.abort();
            sse.abort();
            for (name, seen) in [("long poll", polled), ("SSE", streamed)] {
                let seen = seen.ok().and_then(Result::ok).unwrap_or_default();
                let missing: Vec<&i64> = seqs.iter().filter(|s| !seen.contains(s)).collect();
                let extra: Vec<&i64> = seen.iter().filter(|s| !seqs.contains(s)).collect();
                self.record.check(Check::Readers, missing.is_empty() && extra.is_empty(), || {
                    format!("{lease} {name}: missing seqs {missing:?}, unknown seqs {extra:?}")
                });
            }
        }
    }

    /// Drops until the mailbox answered `mailbox_full` three times or 15 s passed; the ids
    /// of the acknowledged drops.
    async fn dropper(self: Arc<Self>, drop_url: String) -> Vec<String> {
        let mut acked = Vec::new();
        let (mut full, until) = (0, Instant::now() + Duration::from_secs(15));
        while full < 3 && Instant::now() < until && self.running() {
            let size = 512 + self.roll(3584) as usize;
            let started = Instant::now();
            let res = self
                .client
                .post(&drop_url)
                .header("Content-Type", "application/octet-stream")
                .body(self.block.slice(..size))
                .send()
                .await;
            match res {
                Ok(r) if r.status() == 201 => {
                    self.record.latency("drop", started);
                    if let Ok(body) = r.json::<serde_json::Value>().await {
                        acked.extend(body["message_id"].as_str().map(str::to_owned));
                    }
                }
                Ok(r) if r.status() == 413 => {
                    self.record.refused("drop");
                    full += 1;
                }
                Ok(r) if r.status().is_client_error() => {
                    self.record.refused("drop");
                    break;
                }
                _ => self.record.failed("drop"),
            }
        }
        acked
    }

    /// Long polls from the last cursor until told to stop, then once more.
    async fn long_poll(self: Arc<Self>, key: String, lease: String, done: Arc<tokio::sync::Notify>) -> BTreeSet<i64> {
        let mut seen = BTreeSet::new();
        let mut cursor = 0i64;
        let stop = done.notified();
        tokio::pin!(stop);
        let mut last = false;
        loop {
            let wait = if last { 0 } else { 5 };
            let url = self.url(&format!("/api/mailbox/{lease}/messages?after={cursor}&wait={wait}&limit=1000"));
            let started = Instant::now();
            let poll = self.client.get(&url).bearer_auth(&key).send();
            let res = tokio::select! {
                res = poll => res,
                () = &mut stop, if !last => { last = true; continue; }
            };
            match res {
                Ok(r) if r.status() == 200 => {
                    self.record.latency("long poll", started);
                    if let Ok(page) = r.json::<serde_json::Value>().await {
                        for item in page["items"].as_array().into_iter().flatten() {
                            seen.extend(item["seq"].as_i64());
                        }
                        cursor = page["next_cursor"].as_i64().unwrap_or(cursor);
                    }
                    if last {
                        return seen;
                    }
                }
                Ok(r) if r.status().is_client_error() => {
                    self.record.refused("long poll");
                    return seen;
                }
                _ => {
                    self.record.failed("long poll");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Reads the event stream, resuming with `Last-Event-ID` after a cut, until told to
    /// stop (it then reads what is already sent for a second).
    async fn sse(self: Arc<Self>, key: String, lease: String, done: Arc<tokio::sync::Notify>) -> BTreeSet<i64> {
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let reader = {
            let seen = seen.clone();
            let this = self.clone();
            async move {
                loop {
                    let last = seen.lock().unwrap_or_else(PoisonError::into_inner).last().copied().unwrap_or(0);
                    let started = Instant::now();
                    let res = this
                        .client
                        .get(this.url(&format!("/api/mailbox/{lease}/events")))
                        .bearer_auth(&key)
                        .header("Last-Event-ID", last.to_string())
                        .timeout(Duration::from_secs(3600))
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.status() == 200 => {
                            this.record.latency("sse connect", started);
                            let mut stream = r.bytes_stream();
                            let mut text = String::new();
                            while let Some(Ok(chunk)) = stream.next().await {
                                text.push_str(&String::from_utf8_lossy(&chunk));
                                while let Some(end) = text.find("\n\n") {
                                    let event: String = text.drain(..end + 2).collect();
                                    let id = event.lines().find_map(|l| l.strip_prefix("id:"));
                                    if let Some(Ok(seq)) = id.map(|id| id.trim().parse::<i64>()) {
                                        seen.lock().unwrap_or_else(PoisonError::into_inner).insert(seq);
                                    }
                                }
                            }
                            this.record.failed("sse connect");
                        }
                        Ok(r) if r.status().is_client_error() => return,
                        _ => this.record.failed("sse connect"),
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        tokio::select! {
            () = reader => {}
            () = async { done.notified().await; tokio::time::sleep(Duration::from_secs(1)).await } => {}
        }
        seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A checkpoint with three writers racing on `If-Match` for 10 s; every version must
    /// have one winner, and the current body must be the last winner's.
    pub async fn checkpoint_task(self: Arc<Self>, worker: usize) {
        let key = self.keys[worker % self.keys.len()].clone();
        while self.running() {
            let workflow = format!("wf-{}", self.next());
            let started = Instant::now();
            let req = self
                .client
                .post(self.url("/api/checkpoint"))
                .bearer_auth(&key)
                .header("X-Workflow-Id", &workflow)
                .header("X-Max-Versions", 5)
                .header("X-Duration-Seconds", 30 + self.roll(30))
                .header("Content-Type", "application/json")
                .body(r#"{"writer":-1}"#);
            let res = self.webhook(req).send().await;
            if self.record.outcome("checkpoint", started, res, 201).await.is_none() {
                continue;
            }
            let winners: Arc<Mutex<HashMap<i64, Vec<String>>>> = Arc::default();
            let until = Instant::now() + Duration::from_secs(10);
            let writers = (0..3).map(|w| {
                let (this, key, workflow, winners) = (self.clone(), key.clone(), workflow.clone(), winners.clone());
                async move {
                    let mut i = 0;
                    while Instant::now() < until && this.running() {
                        i += 1;
                        let url = this.url(&format!("/api/checkpoint/{workflow}"));
                        let current = match this.client.get(&url).bearer_auth(&key).send().await {
                            Ok(r) if r.status() == 200 => version(&r),
                            _ => None,
                        };
                        let Some(current) = current else {
                            this.record.failed("cas put");
                            continue;
                        };
                        let body = format!(r#"{{"writer":{w},"i":{i}}}"#);
                        let started = Instant::now();
                        let res = this
                            .client
                            .put(&url)
                            .bearer_auth(&key)
                            .header("If-Match", format!("\"{current}\""))
                            .header("Content-Type", "application/json")
                            .body(body.clone())
                            .send()
                            .await;
                        match res {
                            Ok(r) if r.status() == 200 => {
                                this.record.latency("cas put", started);
                                let version = version(&r).unwrap_or(-1);
                                this.record.check(Check::Cas, version == current + 1, || {
                                    format!("{workflow}: If-Match {current} wrote version {version}")
                                });
                                winners
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .entry(version)
                                    .or_default()
                                    .push(body);
                            }
                            Ok(r) if r.status() == 412 => this.record.refused("cas put"),
                            Ok(r) if r.status().is_client_error() => {
                                this.record.refused("cas put");
                                return;
                            }
                            _ => this.record.failed("cas put"),
                        }
                    }
                }
            });
            futures_util::future::join_all(writers).await;
            let winners = std::mem::take(&mut *winners.lock().unwrap_or_else(PoisonError::into_inner));
            for (version, bodies) in &winners {
                self.record.check(Check::Cas, bodies.len() == 1, || {
                    format!("{workflow}: version {version} won by {} writers", bodies.len())
                });
            }
            // The current body is the one its winner wrote (when its answer arrived).
            let current =
                self.client.get(self.url(&format!("/api/checkpoint/{workflow}"))).bearer_auth(&key).send().await;
            if let Ok(r) = current
                && r.status() == 200
            {
                let version = version(&r);
                let body = r.text().await.unwrap_or_default();
                if let Some(bodies) = version.and_then(|v| winners.get(&v)) {
                    self.record.check(Check::Cas, bodies.contains(&body), || {
                        format!("{workflow}: current body {body} is not its winner's {bodies:?}")
                    });
                }
            }
        }
    }
}

/// A checkpoint answer's `X-Checkpoint-Version`.
fn version(res: &reqwest::Response) -> Option<i64> {
    res.headers().get("X-Checkpoint-Version")?.to_str().ok()?.parse().ok()
}

impl Check {
    /// Every check a run reports, in order.
    pub const ALL: [Check; 11] = [
        Check::Claims,
        Check::MailboxCaps,
        Check::AckedDrops,
        Check::Readers,
        Check::Cas,
        Check::Downloads,
        Check::Balances,
        Check::Webhooks,
        Check::LeaseHasBlob,
        Check::BlobHasLease,
        Check::ExpiredGone,
    ];
}
