//! Mailbox commands; `poll --follow` rides the event stream (SSE) and, when the connection
//! drops, reconnects with `Last-Event-ID` so no message is printed twice or missed.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::args::Body;
use crate::client::{Api, Failure};
use crate::commands::segment;
use crate::output::Out;
use crate::transfer::{self, Sink};

/// The bytes of `--data` or `--file` (`-`: stdin).
pub async fn body_bytes(body: &Body) -> Result<Vec<u8>, Failure> {
    match (&body.data, &body.file) {
        (Some(text), _) => Ok(text.clone().into_bytes()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut bytes).await?;
            Ok(bytes)
        }
        (None, Some(path)) => {
            tokio::fs::read(path).await.map_err(|e| Failure::local("io_error", format!("{}: {e}", path.display())))
        }
        (None, None) => Err(Failure::local("usage", "give --data or --file")),
    }
}

/// `mailbox create --capacity SIZE --ttl DUR`.
pub async fn create(
    api: &Api,
    out: &Out,
    capacity: u64,
    ttl: u64,
    max_message: Option<u64>,
    webhook_url: Option<&str>,
) -> Result<(), Failure> {
    let mut request = api
        .request(Method::POST, "/api/mailbox")
        .header("X-Capacity-Bytes", capacity.to_string())
        .header("X-Duration-Seconds", ttl.to_string());
    if let Some(n) = max_message {
        request = request.header("X-Max-Message-Bytes", n.to_string());
    }
    if let Some(url) = webhook_url {
        request = request.header("X-Webhook-Url", url);
    }
    let created = Api::json(request).await?;
    out.print(&created, || {
        let mut lines = vec![
            format!("lease     {}", created["lease_id"].as_str().unwrap_or_default()),
            format!("drop url  {}", created["drop_url"].as_str().unwrap_or_default()),
            format!("expires   {}", created["expires_at"].as_str().unwrap_or_default()),
        ];
        if let Some(secret) = created["webhook_secret"].as_str() {
            lines.push(format!("webhook secret  {secret}   (shown once)"));
        }
        lines.join("\n")
    });
    Ok(())
}

/// `mailbox drop DROP_URL (--data TEXT | --file FILE) [--content-type T]`: no key.
pub async fn drop_message(
    api: &Api,
    out: &Out,
    drop_url: &str,
    body: &Body,
    content_type: Option<&str>,
) -> Result<(), Failure> {
    let bytes = body_bytes(body).await?;
    let mut request = api.anonymous(Method::POST, drop_url).body(bytes);
    if let Some(t) = content_type {
        request = request.header("Content-Type", t);
    }
    let dropped = Api::json(request).await?;
    out.print(&dropped, || format!("seq {} ({})", dropped["seq"], dropped["message_id"].as_str().unwrap_or_default()));
    Ok(())
}

/// `mailbox poll LEASE [--after N] [--wait S] [--follow]`.
pub async fn poll(
    api: &Api,
    out: &Out,
    lease: &str,
    after: u64,
    wait: Option<u64>,
    follow: bool,
) -> Result<(), Failure> {
    if follow {
        return self::follow(api, out, lease, after).await;
    }
    let mut path = format!("/api/mailbox/{}/messages?after={after}", segment(lease));
    if let Some(w) = wait {
        path.push_str(&format!("&wait={w}"));
    }
    let page = Api::json(api.request(Method::GET, &path)).await?;
    out.print(&page, || {
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let mut lines: Vec<String> = items.iter().map(describe).collect();
        lines.push(format!("next cursor {}", page["next_cursor"]));
        lines.join("\n")
    });
    Ok(())
}

fn describe(m: &Value) -> String {
    format!(
        "{:>6}  {}  {:>8} B  {}  {}",
        m["seq"],
        m["message_id"].as_str().unwrap_or_default(),
        m["size_bytes"],
        m["content_type"].as_str().unwrap_or_default(),
        m["received_at"].as_str().unwrap_or_default()
    )
}

/// Prints each message of the event stream as it arrives, one line each (JSON with
/// `--json`), until the mailbox expires or is deleted; a dropped connection is resumed
/// with `Last-Event-ID` after a short pause.
async fn follow(api: &Api, out: &Out, lease: &str, after: u64) -> Result<(), Failure> {
    let path = format!("/api/mailbox/{}/events", segment(lease));
    let mut last = after;
    let mut failures = 0u32;
    loop {
        let request = api
            .request(Method::GET, &path)
            .header("Accept", "text/event-stream")
            .header("Last-Event-ID", last.to_string());
        let response = match Api::send(request).await {
            Ok(r) => r,
            // The API refused (expired, deleted, unauthorized): that is the answer.
            Err(f) if f.body.is_some() => return Err(f),
            Err(f) => {
                failures += 1;
                if failures > 30 {
                    return Err(f);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        failures = 0;
        match read_events(response, out, &mut last).await {
            Ok(Some(end)) => {
                out.print(&json!({ "event": end, "lease_id": lease }), || format!("mailbox {end}"));
                return Ok(());
            }
            // The stream ended or broke without an end event: resume after the last seq.
            Ok(None) | Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Reads one connection's events; `Some(name)` when the mailbox ended (`expired`,
/// `deleted`).
async fn read_events(response: reqwest::Response, out: &Out, last: &mut u64) -> Result<Option<String>, Failure> {
    let mut stream = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let (mut event, mut data, mut id) = (String::new(), String::new(), None::<u64>);
    while let Some(chunk) = stream.next().await {
        buffer.extend_from_slice(&chunk?);
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_owned();
            if line.is_empty() {
                match event.as_str() {
                    "expired" | "deleted" => return Ok(Some(event)),
                    _ if !data.is_empty() => {
                        let message: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                        out.print(&message, || describe(&message));
                        if let Some(seq) = id {
                            *last = (*last).max(seq);
                        }
                    }
                    _ => {}
                }
                (event, data, id) = (String::new(), String::new(), None);
            } else if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            } else if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse().ok();
            }
        }
    }
    Ok(None)
}

/// `mailbox read LEASE MESSAGE [-o FILE]` (default stdout).
pub async fn read(api: &Api, lease: &str, message: &str, output: Option<&Path>) -> Result<(), Failure> {
    let path = format!("/api/mailbox/{}/messages/{}", segment(lease), segment(message));
    let response = Api::send(api.request(Method::GET, &path)).await?;
    let sink = output.map_or(Sink::Stdout, Sink::of);
    transfer::download(response, &sink, None).await?;
    Ok(())
}
