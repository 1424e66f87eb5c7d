//! Checkpoint commands.

use base64::Engine as _;
use reqwest::Method;
use serde_json::json;

use crate::args::Body;
use crate::client::{Api, Failure};
use crate::commands::segment;
use crate::mailbox::body_bytes;
use crate::output::Out;

/// `checkpoint create WORKFLOW --ttl DUR (--data TEXT | --file FILE)`.
pub async fn create(
    api: &Api,
    out: &Out,
    workflow: &str,
    ttl: u64,
    body: &Body,
    content_type: Option<&str>,
) -> Result<(), Failure> {
    let request = api
        .request(Method::POST, "/api/checkpoint")
        .header("X-Workflow-Id", workflow)
        .header("X-Duration-Seconds", ttl.to_string())
        .header("Content-Type", content_type.unwrap_or("application/json"))
        .body(body_bytes(body).await?);
    let created = Api::json(request).await?;
    out.print(&created, || {
        format!(
            "lease     {}\nversion   {}\nexpires   {}",
            created["lease_id"].as_str().unwrap_or_default(),
            created["version"],
            created["expires_at"].as_str().unwrap_or_default()
        )
    });
    Ok(())
}

/// `checkpoint get WORKFLOW`: the current version's body on stdout (with `--json`, its
/// version, content type and body as JSON).
pub async fn get(api: &Api, out: &Out, workflow: &str) -> Result<(), Failure> {
    let response = Api::send(api.request(Method::GET, &format!("/api/checkpoint/{}", segment(workflow)))).await?;
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (version, content_type) = (header("x-checkpoint-version"), header("content-type"));
    let bytes = response.bytes().await?;
    if out.json {
        let body = match std::str::from_utf8(&bytes) {
            Ok(text) => json!({ "content": text }),
            Err(_) => json!({ "content_base64": base64::engine::general_purpose::STANDARD.encode(&bytes) }),
        };
        let mut shown = json!({ "status": "ok", "workflow_id": workflow, "version": version.parse::<i64>().ok(), "content_type": content_type });
        if let (Some(o), Some(b)) = (shown.as_object_mut(), body.as_object()) {
            o.extend(b.clone());
        }
        println!("{shown}");
    } else {
        use std::io::Write;
        let mut stdout = std::io::stdout();
        stdout.write_all(&bytes)?;
        if !bytes.ends_with(b"\n") && std::io::IsTerminal::is_terminal(&stdout) {
            writeln!(stdout)?;
        }
        eprintln!("version {version} ({content_type})");
    }
    Ok(())
}

/// `checkpoint put WORKFLOW (--data TEXT | --file FILE) [--if-match N]`.
pub async fn put(
    api: &Api,
    out: &Out,
    workflow: &str,
    body: &Body,
    if_match: Option<u64>,
    content_type: Option<&str>,
) -> Result<(), Failure> {
    let mut request = api
        .request(Method::PUT, &format!("/api/checkpoint/{}", segment(workflow)))
        .header("Content-Type", content_type.unwrap_or("application/json"))
        .body(body_bytes(body).await?);
    if let Some(n) = if_match {
        request = request.header("If-Match", format!("\"{n}\""));
    }
    let written = Api::json(request).await?;
    out.print(&written, || format!("version {}", written["version"]));
    Ok(())
}
