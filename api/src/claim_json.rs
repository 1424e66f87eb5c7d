//! The JSON body of a Mailbox claim (SPEC §7), streamed a message at a time:
//! `{"status":"ok","lease_id":…,"items":[…]}` with every message up to the claim's last
//! `seq`, in order. A JSON message (JSON content type, valid, at most `INLINE_JSON_MAX`
//! bytes) is inlined as `body`; any other is `body_base64`, encoded as its bytes stream in,
//! so memory holds a few chunks per claim whatever the mailbox's size.

use std::io;

use base64::Engine;
use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use leasehold_core::blob::{BlobError, BlobStore, ByteStream};
use leasehold_core::time::rfc3339;
use leasehold_core::{checkpoint, mailbox};
use leasehold_entities::mailbox_message;
use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;

/// Largest JSON message inlined as `body` (it is parsed whole to check it); larger ones
/// are given as `body_base64`.
pub const INLINE_JSON_MAX: i64 = 1024 * 1024;

/// Messages read from the database at a time.
const PAGE: u64 = 100;

/// Pieces queued between the producer and the socket.
const QUEUE: usize = 4;

/// Streams the claim body of mailbox `lease_id` up to `last_seq`.
pub fn stream(db: DatabaseConnection, blobs: BlobStore, lease_id: String, last_seq: i64) -> ByteStream {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(QUEUE);
    tokio::spawn(async move {
        let out = Out(tx);
        if let Err(e) = produce(&db, &blobs, &lease_id, last_seq, &out).await {
            // The reader went away (nothing to tell), or a read failed: fail the body.
            if e.kind() != io::ErrorKind::BrokenPipe {
                tracing::warn!(lease.id = %lease_id, error = %e, "mailbox claim body failed");
                out.0.send(Err(e)).await.ok();
            }
        }
    });
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }))
}

struct Out(mpsc::Sender<io::Result<Bytes>>);

impl Out {
    async fn send(&self, bytes: impl Into<Bytes>) -> io::Result<()> {
        self.0.send(Ok(bytes.into())).await.map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "reader gone"))
    }
}

async fn produce(
    db: &DatabaseConnection,
    blobs: &BlobStore,
    lease_id: &str,
    last_seq: i64,
    out: &Out,
) -> io::Result<()> {
    let head = serde_json::json!({"status": "ok", "lease_id": lease_id}).to_string();
    out.send(format!("{},\"items\":[", head.trim_end_matches('}'))).await?;
    let (mut cursor, mut first) = (0i64, true);
    while cursor < last_seq {
        let page = mailbox::messages_after(db, lease_id, cursor, PAGE).await.map_err(io::Error::other)?;
        let Some(last) = page.last().map(|m| m.seq) else { break };
        for m in page.iter().filter(|m| m.seq <= last_seq) {
            if write_item(blobs, m, first, out).await? {
                first = false;
            }
        }
        cursor = last;
    }
    out.send(Bytes::from_static(b"]}")).await
}

/// Writes one message as an item; false if it was deleted meanwhile.
async fn write_item(blobs: &BlobStore, m: &mailbox_message::Model, first: bool, out: &Out) -> io::Result<bool> {
    let mut body = match blobs.get(&m.blob_key, None).await {
        Ok(s) => s,
        Err(BlobError::NotFound) => return Ok(false),
        Err(e) => return Err(io::Error::other(e)),
    };
    let meta = serde_json::json!({
        "id": m.id,
        "seq": m.seq,
        "size_bytes": m.size_bytes,
        "content_type": m.content_type,
        "received_at": rfc3339(m.received_at),
    })
    .to_string();
    let open = format!("{}{},", if first { "" } else { "," }, meta.trim_end_matches('}'));
    if checkpoint::is_json(&m.content_type) && m.size_bytes <= INLINE_JSON_MAX {
        let mut whole = BytesMut::with_capacity(usize::try_from(m.size_bytes).unwrap_or(0));
        while let Some(chunk) = body.next().await {
            whole.extend_from_slice(&chunk?);
        }
        if serde_json::from_slice::<serde::de::IgnoredAny>(&whole).is_ok() {
            out.send(format!("{open}\"body\":")).await?;
            out.send(whole.freeze()).await?;
            out.send(Bytes::from_static(b"}")).await?;
        } else {
            out.send(format!("{open}\"body_base64\":\"")).await?;
            out.send(base64::engine::general_purpose::STANDARD.encode(&whole)).await?;
            out.send(Bytes::from_static(b"\"}")).await?;
        }
        return Ok(true);
    }
    out.send(format!("{open}\"body_base64\":\"")).await?;
    let mut carry = BytesMut::new();
    while let Some(chunk) = body.next().await {
        carry.extend_from_slice(&chunk?);
        let whole = carry.len() / 3 * 3;
        if whole > 0 {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&carry[..whole]);
            carry.advance(whole);
            out.send(encoded).await?;
        }
    }
    out.send(format!("{}\"}}", base64::engine::general_purpose::STANDARD.encode(&carry))).await?;
    Ok(true)
}
