//! Storage, handoff, claim, lease and quote commands.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::{Value, json};

use crate::args::{HandoffOptions, Store};
use crate::client::{Api, Failure};
use crate::crypt::{self, IDENTITY_PREFIX, Sealing};
use crate::output::Out;
use crate::transfer::{self, Sink};

/// `store FILE --ttl DUR [--handoff N] [--delete-on-claim] [--encrypt]`.
pub async fn store(api: &Api, out: &Out, s: &Store) -> Result<(), Failure> {
    let sealing = s.encrypt.then(Sealing::new);
    let name = match &s.name {
        Some(n) => n.clone(),
        None => s.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into()),
    };
    let upload = transfer::upload(&s.file, sealing.as_ref()).await?;
    let content_type = match (&s.content_type, s.encrypt) {
        (Some(t), _) => t.clone(),
        (None, true) => "application/age".into(),
        (None, false) => "application/octet-stream".into(),
    };
    let request = api
        .request(Method::POST, "/api/store")
        .header("X-File-Name", if s.encrypt { format!("{name}.age") } else { name })
        .header("X-Duration-Seconds", s.ttl.to_string())
        .header("X-Size-Bytes", upload.length.to_string())
        .header("Content-Type", content_type)
        .body(upload.body);
    let answered = Api::json(request).await;
    upload.bar.finish_and_clear();
    if let Some(task) = upload.sealing {
        let sealed = task.await.map_err(|e| Failure::local("encrypt_failed", e))?;
        if let (Err(e), Ok(_)) = (&sealed, &answered) {
            return Err(Failure::local("encrypt_failed", e));
        }
    }
    let mut created = answered?;
    let identity = sealing.as_ref().map(Sealing::identity);
    if let Some(id) = &identity {
        created["age_identity"] = id.clone().into();
    }
    if let Some(claims) = s.handoff {
        let lease_id = created["lease_id"].as_str().unwrap_or_default().to_owned();
        let options = HandoffOptions { claims: Some(claims), ttl: None, delete_on_claim: s.delete_on_claim };
        let mut handoff = issue(api, &lease_id, &options).await?;
        if let (Some(id), Some(url)) = (&identity, handoff["claim_url"].as_str()) {
            handoff["claim_url"] = format!("{url}#{id}").into();
        }
        created["handoff"] = handoff;
    }
    out.print(&created, || {
        let mut lines = vec![
            format!("lease     {}", created["lease_id"].as_str().unwrap_or_default()),
            format!("expires   {}", created["expires_at"].as_str().unwrap_or_default()),
            format!("cost      {} micros", text(&created["cost_micros"])),
        ];
        if let Some(url) = created["handoff"]["claim_url"].as_str() {
            lines.push(format!("claim     {url}"));
        } else if let Some(id) = &identity {
            lines.push(format!("identity  {id}   (keep it: only it decrypts the file; `leasehold get --identity`)"));
        }
        lines.join("\n")
    });
    Ok(())
}

/// `POST /api/handoff/{lease}`.
async fn issue(api: &Api, lease: &str, o: &HandoffOptions) -> Result<Value, Failure> {
    let mut body = json!({});
    if let Some(n) = o.claims {
        body["max_claims"] = n.into();
    }
    if let Some(t) = o.ttl {
        body["ttl_seconds"] = t.into();
    }
    if o.delete_on_claim {
        body["delete_on_claim"] = true.into();
    }
    Api::json(api.request(Method::POST, &format!("/api/handoff/{}", segment(lease))).json(&body)).await
}

/// `handoff LEASE [--claims N] [--ttl DUR] [--delete-on-claim]`.
pub async fn handoff(api: &Api, out: &Out, lease: &str, o: &HandoffOptions) -> Result<(), Failure> {
    let h = issue(api, lease, o).await?;
    out.print(&h, || h["claim_url"].as_str().unwrap_or_default().to_owned());
    Ok(())
}

/// `revoke HANDOFF`.
pub async fn revoke(api: &Api, out: &Out, handoff: &str) -> Result<(), Failure> {
    let h = Api::json(api.request(Method::DELETE, &format!("/api/handoffs/{}", segment(handoff)))).await?;
    out.print(&h, || format!("revoked at {}", h["revoked_at"].as_str().unwrap_or_default()));
    Ok(())
}

/// `claim URL[#AGE-SECRET-KEY-1…] [-o FILE]`: the fragment never leaves this process.
pub async fn claim(api: &Api, out: &Out, url: &str, output: Option<&Path>) -> Result<(), Failure> {
    let (url, fragment) = url.split_once('#').unwrap_or((url, ""));
    let identity = if fragment.starts_with(IDENTITY_PREFIX) {
        Some(crypt::parse_identity(fragment).map_err(|e| Failure::local("bad_identity", e))?)
    } else {
        None
    };
    let response = Api::send(api.anonymous(Method::GET, url)).await?;
    let remaining = response.headers().get("x-claims-remaining").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let lease_id = response.headers().get("x-lease-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (target, written) = save(response, output, identity.as_ref()).await?;
    let shown = json!({
        "status": "ok", "lease_id": lease_id, "output": target.display().to_string(), "bytes": written,
        "decrypted": identity.is_some(), "claims_remaining": remaining.and_then(|r| r.parse::<i64>().ok()),
    });
    out.note(&shown, || format!("{} bytes -> {}", written, target.display()), &target);
    Ok(())
}

/// Writes `response` to `output`, or to the file's own name; the path and the bytes written.
async fn save(
    response: reqwest::Response,
    output: Option<&Path>,
    identity: Option<&age::x25519::Identity>,
) -> Result<(PathBuf, u64), Failure> {
    let target = match output {
        Some(p) => p.to_owned(),
        None => PathBuf::from(default_name(&response, identity.is_some())),
    };
    let written = transfer::download(response, &Sink::of(&target), identity).await?;
    Ok((target, written))
}

/// The file's own name (without `.age` when decrypting), else `download`.
fn default_name(response: &reqwest::Response, decrypting: bool) -> String {
    let name = transfer::disposition_name(response).unwrap_or_else(|| "download".into());
    match name.strip_suffix(".age") {
        Some(plain) if decrypting && !plain.is_empty() => plain.to_owned(),
        _ => name,
    }
}

/// `get LEASE [-o FILE] [--identity KEY]`.
pub async fn get(
    api: &Api,
    out: &Out,
    lease: &str,
    output: Option<&Path>,
    identity: Option<&str>,
) -> Result<(), Failure> {
    let identity = identity.map(crypt::parse_identity).transpose().map_err(|e| Failure::local("bad_identity", e))?;
    let response = Api::send(api.request(Method::GET, &format!("/api/download/{}", segment(lease)))).await?;
    let (target, written) = save(response, output, identity.as_ref()).await?;
    let shown = json!({ "status": "ok", "lease_id": lease, "output": target.display().to_string(), "bytes": written });
    out.note(&shown, || format!("{} bytes -> {}", written, target.display()), &target);
    Ok(())
}

/// `quote SIZE DUR`.
pub async fn quote(api: &Api, out: &Out, size: u64, duration: u64) -> Result<(), Failure> {
    let q = Api::json(api.anonymous(Method::GET, &format!("/api/quote?size_bytes={size}&duration_seconds={duration}")))
        .await?;
    out.print(&q, || format!("{} micros", text(&q["cost_micros"])));
    Ok(())
}

/// `leases [--variant V] [--state S]`.
pub async fn leases(api: &Api, out: &Out, variant: Option<&str>, state: Option<&str>) -> Result<(), Failure> {
    let mut query = Vec::new();
    if let Some(v) = variant {
        query.push(format!("variant={}", segment(v)));
    }
    if let Some(s) = state {
        query.push(format!("state={}", segment(s)));
    }
    let path = if query.is_empty() { "/api/leases".to_owned() } else { format!("/api/leases?{}", query.join("&")) };
    let page = Api::json(api.request(Method::GET, &path)).await?;
    out.print(&page, || {
        let items = page["items"].as_array().cloned().unwrap_or_default();
        items
            .iter()
            .map(|l| {
                format!(
                    "{}  {:<10} {:<8} {}",
                    l["lease_id"].as_str().unwrap_or_default(),
                    l["variant"].as_str().unwrap_or_default(),
                    l["state"].as_str().unwrap_or_default(),
                    l["expires_at"].as_str().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// `rm LEASE`.
pub async fn rm(api: &Api, out: &Out, lease: &str) -> Result<(), Failure> {
    let gone = Api::json(api.request(Method::DELETE, &format!("/api/leases/{}", segment(lease)))).await?;
    out.print(&gone, || format!("deleted {lease}"));
    Ok(())
}

/// A JSON value as text: a string without its quotes (micros are strings in the API).
pub fn text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

/// One path segment or query value, percent-encoded.
pub fn segment(value: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(value, SET).to_string()
}
