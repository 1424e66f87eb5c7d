//! S3 backend (AWS S3, MinIO, Garage, R2, s3s): single PUT for small objects, multipart
//! with one part in flight while the next is read for large ones, aborted on failure.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::list_multipart_uploads::ListMultipartUploadsError;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use super::{BlobEntry, BlobError, ByteRange, ByteStream, validate_key};
use crate::config::S3Config;

#[derive(Clone, Debug)]
pub(super) struct S3Backend {
    client: Client,
    bucket: String,
    prefix: String,
    part_size: usize,
    /// Where the bucket lives, for messages: the endpoint's host and port, or AWS's.
    place: String,
    region: String,
}

fn s3_err(e: impl std::error::Error) -> BlobError {
    BlobError::S3(DisplayErrorContext(e).to_string())
}

impl S3Backend {
    pub(super) async fn open(config: &S3Config) -> Self {
        let mut loader =
            aws_config::defaults(aws_config::BehaviorVersion::latest()).region(Region::new(config.region.clone()));
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(c) = &config.credentials {
            loader = loader.credentials_provider(Credentials::new(
                c.access_key_id.clone(),
                c.secret_access_key.expose().to_owned(),
                None,
                None,
                "leasehold-static",
            ));
        }
        let shared = loader.load().await;
        // Checksums only where S3 requires them: several S3-compatible stores reject the
        // newer default of streaming CRC trailers.
        let s3_config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.force_path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Self {
            client: Client::from_conf(s3_config),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            part_size: config.part_size,
            place: match &config.endpoint {
                Some(e) => e.split_once("://").map_or(e.as_str(), |(_, rest)| rest).trim_end_matches('/').to_owned(),
                None => format!("s3.{}.amazonaws.com", config.region),
            },
            region: config.region.clone(),
        }
    }

    fn full_key(&self, key: &str) -> Result<String, BlobError> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    pub(super) async fn put_stream(&self, key: &str, mut body: ByteStream) -> Result<u64, BlobError> {
        let key = self.full_key(key)?;
        let mut parts = PartBuffer::new(self.part_size);
        // Fill the first part; a body that ends before it is one plain PUT.
        let first = loop {
            match body.next().await {
                Some(chunk) => {
                    if let Some(part) = parts.push(chunk.map_err(BlobError::Source)?) {
                        break part;
                    }
                }
                None => {
                    let total = parts.total;
                    self.client
                        .put_object()
                        .bucket(&self.bucket)
                        .key(&key)
                        .body(S3Body::from(parts.take_rest()))
                        .send()
                        .await
                        .map_err(s3_err)?;
                    return Ok(total);
                }
            }
        };
        let created =
            self.client.create_multipart_upload().bucket(&self.bucket).key(&key).send().await.map_err(s3_err)?;
        let upload_id = created.upload_id().ok_or_else(|| BlobError::S3("no upload id".into()))?.to_owned();
        let mut upload =
            Multipart { backend: self, key: &key, upload_id: &upload_id, parts: Vec::new(), in_flight: None };
        let result = upload.run(first, parts, &mut body).await;
        if let Some(task) = upload.in_flight.take() {
            task.abort();
        }
        match result {
            Ok(total) => Ok(total),
            Err(e) => {
                if let Err(abort) = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&key)
                    .upload_id(&upload_id)
                    .send()
                    .await
                {
                    tracing::warn!(key = %key, error = %DisplayErrorContext(abort), "could not abort multipart upload");
                }
                Err(e)
            }
        }
    }

    pub(super) async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream, BlobError> {
        let mut req = self.client.get_object().bucket(&self.bucket).key(self.full_key(key)?);
        if let Some(r) = range {
            req = req.range(format!("bytes={}-{}", r.start, r.end));
        }
        let out = req.send().await.map_err(|e| {
            if e.as_service_error().is_some_and(|s| s.is_no_such_key()) { BlobError::NotFound } else { s3_err(e) }
        })?;
        let stream = futures_util::stream::unfold(out.body, |mut body| async move {
            body.next().await.map(|r| (r.map_err(std::io::Error::other), body))
        });
        Ok(Box::pin(stream))
    }

    pub(super) async fn delete_prefix(&self, prefix: &str) -> Result<u64, BlobError> {
        let mut deleted = 0u64;
        loop {
            // Always list from the start: the previous page is gone.
            let (page, _) = self.list_page(prefix, None).await?;
            if page.is_empty() {
                return Ok(deleted);
            }
            let keys: Vec<String> = page.into_iter().map(|e| e.key).collect();
            deleted += self.delete_keys(&keys).await?;
        }
    }

    pub(super) async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(format!("{}{key}", self.prefix))
            .send()
            .await
            .map_err(s3_err)?;
        Ok(())
    }

    /// Deletes these keys (relative to the store), up to 1000 per request; keys that do
    /// not exist count as deleted.
    pub(super) async fn delete_keys(&self, keys: &[String]) -> Result<u64, BlobError> {
        for batch in keys.chunks(1000) {
            let ids = batch
                .iter()
                .map(|k| ObjectIdentifier::builder().key(format!("{}{k}", self.prefix)).build().map_err(s3_err))
                .collect::<Result<Vec<_>, _>>()?;
            let delete = Delete::builder().set_objects(Some(ids)).quiet(true).build().map_err(s3_err)?;
            let out = self.client.delete_objects().bucket(&self.bucket).delete(delete).send().await.map_err(s3_err)?;
            if let Some(err) = out.errors().first() {
                return Err(BlobError::S3(format!(
                    "delete of {} failed: {}",
                    err.key().unwrap_or_default(),
                    err.message().unwrap_or_default()
                )));
            }
        }
        Ok(keys.len() as u64)
    }

    async fn list_page(
        &self,
        prefix: &str,
        token: Option<String>,
    ) -> Result<(Vec<BlobEntry>, Option<String>), BlobError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{}{prefix}", self.prefix))
            .set_continuation_token(token)
            .send()
            .await
            .map_err(s3_err)?;
        let entries = out
            .contents()
            .iter()
            .filter_map(|o| {
                let key = o.key()?.strip_prefix(&self.prefix)?.to_owned();
                Some(BlobEntry {
                    key,
                    size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    modified_ms: o.last_modified().map_or(0, |t| t.to_millis().unwrap_or(0)),
                })
            })
            .collect();
        let next =
            if out.is_truncated() == Some(true) { out.next_continuation_token().map(str::to_owned) } else { None };
        Ok((entries, next))
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>, BlobError> {
        let mut all = Vec::new();
        let mut token = None;
        loop {
            let (entries, next) = self.list_page(prefix, token).await?;
            all.extend(entries);
            match next {
                Some(t) => token = Some(t),
                None => return Ok(all),
            }
        }
    }

    /// Aborts the multipart uploads under this store's prefix that were started before
    /// `cutoff_ms` (a pod killed mid-upload leaves its parts billed and invisible). A store
    /// that cannot list uploads (s3s-fs answers `501 NotImplemented`) is skipped: there a
    /// bucket lifecycle rule (`AbortIncompleteMultipartUpload`) does this job.
    pub(super) async fn reap_incomplete(&self, cutoff_ms: i64) -> Result<u64, BlobError> {
        let mut aborted = 0;
        let (mut key_marker, mut upload_marker) = (None, None);
        loop {
            let listed = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(upload_marker.take())
                .send()
                .await;
            let out = match listed {
                Ok(out) => out,
                Err(e) if cannot_list_uploads(&e) => {
                    tracing::debug!("the S3 store cannot list multipart uploads; skipping");
                    return Ok(aborted);
                }
                Err(e) => return Err(s3_err(e)),
            };
            for upload in out.uploads() {
                let started = upload.initiated().map_or(i64::MAX, |t| t.to_millis().unwrap_or(i64::MAX));
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else { continue };
                if started < cutoff_ms {
                    let abort = self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(id);
                    match abort.send().await {
                        Ok(_) => {
                            tracing::info!(key = %key, "stale multipart upload aborted");
                            aborted += 1;
                        }
                        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_upload()) => {}
                        Err(e) => return Err(s3_err(e)),
                    }
                }
            }
            if out.is_truncated() != Some(true) {
                return Ok(aborted);
            }
            key_marker = out.next_key_marker().map(str::to_owned);
            upload_marker = out.next_upload_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                return Ok(aborted);
            }
        }
    }

    pub(super) async fn check(&self) -> Result<(), BlobError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::debug!(error = %DisplayErrorContext(&e), "S3 bucket check failed");
                Err(BlobError::Unusable(self.explain(&e)))
            }
        }
    }

    /// One line saying why the bucket cannot be used and what to do about it.
    fn explain<E: std::error::Error + 'static>(&self, e: &SdkError<E, HttpResponse>) -> String {
        let (bucket, place) = (&self.bucket, &self.place);
        if let Some(raw) = e.raw_response() {
            return match raw.status().as_u16() {
                404 => format!(
                    "S3 bucket \"{bucket}\" not found at {place} (LEASEHOLD_S3_BUCKET) — create it, or fix the name"
                ),
                401 | 403 => format!(
                    "S3 credentials refused by {place} for bucket \"{bucket}\" — check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the AWS profile in use) and the bucket's permissions"
                ),
                301 => {
                    let actual = raw.headers().get("x-amz-bucket-region").unwrap_or("another region");
                    format!(
                        "S3 bucket \"{bucket}\" is in {actual}, not {} — set LEASEHOLD_S3_REGION to the bucket's region",
                        self.region
                    )
                }
                // A signature scoped to another region: AWS and Garage answer 400
                // (AuthorizationHeaderMalformed), and a HEAD carries no body to say so.
                400 => format!(
                    "S3 at {place} answered 400 Bad Request for bucket \"{bucket}\" — the usual cause is LEASEHOLD_S3_REGION (\"{}\") not being the server's region (Garage's default is \"garage\")",
                    self.region
                ),
                status => format!("S3 at {place} answered {status} for bucket \"{bucket}\" (LEASEHOLD_S3_*)"),
            };
        }
        let mut root: &dyn std::error::Error = e;
        let mut about_credentials = false;
        while let Some(next) = root.source() {
            root = next;
            about_credentials |= root.to_string().contains("credentials");
        }
        if about_credentials {
            return "no S3 credentials found — set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or another source of the standard AWS chain)".into();
        }
        match e {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
                format!("cannot reach S3 at {place}: {root} — is it running there? (LEASEHOLD_S3_ENDPOINT)")
            }
            _ => format!("S3 at {place}, bucket \"{bucket}\": {root}"),
        }
    }
}

/// True when the store does not implement `ListMultipartUploads` (`501`, or the
/// `NotImplemented` code under another status).
fn cannot_list_uploads(e: &SdkError<ListMultipartUploadsError, HttpResponse>) -> bool {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    e.raw_response().is_some_and(|r| r.status().as_u16() == 501)
        || e.as_service_error().and_then(|s| s.code()) == Some("NotImplemented")
}

/// One multipart upload: at most one part uploading while the next is being read.
struct Multipart<'a> {
    backend: &'a S3Backend,
    key: &'a str,
    upload_id: &'a str,
    parts: Vec<CompletedPart>,
    in_flight: Option<JoinHandle<Result<CompletedPart, BlobError>>>,
}

impl Multipart<'_> {
    async fn run(&mut self, first: Bytes, mut parts: PartBuffer, body: &mut ByteStream) -> Result<u64, BlobError> {
        self.start_part(first).await?;
        while let Some(chunk) = body.next().await {
            if let Some(part) = parts.push(chunk.map_err(BlobError::Source)?) {
                self.start_part(part).await?;
            }
        }
        let total = parts.total;
        let rest = parts.take_rest();
        if !rest.is_empty() {
            self.start_part(rest).await?;
        }
        self.finish_in_flight().await?;
        let b = self.backend;
        b.client
            .complete_multipart_upload()
            .bucket(&b.bucket)
            .key(self.key)
            .upload_id(self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder().set_parts(Some(std::mem::take(&mut self.parts))).build(),
            )
            .send()
            .await
            .map_err(s3_err)?;
        Ok(total)
    }

    async fn finish_in_flight(&mut self) -> Result<(), BlobError> {
        if let Some(task) = self.in_flight.take() {
            let part = task.await.map_err(|e| BlobError::S3(format!("part upload task failed: {e}")))??;
            self.parts.push(part);
        }
        Ok(())
    }

    async fn start_part(&mut self, part: Bytes) -> Result<(), BlobError> {
        self.finish_in_flight().await?;
        let number = i32::try_from(self.parts.len() + 1).map_err(|_| BlobError::S3("too many parts".into()))?;
        let b = self.backend;
        let request = b
            .client
            .upload_part()
            .bucket(&b.bucket)
            .key(self.key)
            .upload_id(self.upload_id)
            .part_number(number)
            .body(S3Body::from(part));
        self.in_flight = Some(tokio::spawn(async move {
            let out = request.send().await.map_err(s3_err)?;
            Ok(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_owned)).build())
        }));
        Ok(())
    }
}

/// Collects body chunks into parts of exactly `part_size` bytes, each in its own exactly
/// sized allocation, so memory per upload stays at about two parts.
struct PartBuffer {
    part_size: usize,
    buf: BytesMut,
    total: u64,
}

impl PartBuffer {
    fn new(part_size: usize) -> Self {
        Self { part_size, buf: BytesMut::new(), total: 0 }
    }

    /// Adds a chunk; returns a full part when one is complete. Chunks are far smaller than
    /// a part, so at most one part completes per chunk; the remainder starts the next.
    fn push(&mut self, mut chunk: Bytes) -> Option<Bytes> {
        self.total += chunk.len() as u64;
        if self.buf.capacity() == 0 {
            self.buf = BytesMut::with_capacity(self.part_size);
        }
        let room = self.part_size - self.buf.len();
        if chunk.len() < room {
            self.buf.extend_from_slice(&chunk);
            return None;
        }
        let head = chunk.split_to(room);
        self.buf.extend_from_slice(&head);
        let full = std::mem::take(&mut self.buf).freeze();
        if !chunk.is_empty() {
            self.buf = BytesMut::with_capacity(self.part_size);
            self.buf.extend_from_slice(&chunk);
        }
        Some(full)
    }

    /// What is left (the last, short part).
    fn take_rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf).freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_exactly_part_size_and_nothing_is_lost() {
        let mut parts = PartBuffer::new(10);
        let mut out = Vec::new();
        for chunk in [&b"abcd"[..], b"efghij", b"klmnopqrstuvw", b"xyz"] {
            out.extend(parts.push(Bytes::copy_from_slice(chunk)));
        }
        assert_eq!(out, vec![Bytes::from_static(b"abcdefghij"), Bytes::from_static(b"klmnopqrst")]);
        assert_eq!(parts.take_rest(), Bytes::from_static(b"uvwxyz"));
        assert_eq!(parts.total, 26);
    }
}
