//! A stand-in S3 endpoint that answers only `ListMultipartUploads` (in two pages, or
//! `501 NotImplemented` as s3s-fs does) and records `AbortMultipartUpload`s: for the
//! reaper's abort path, which the test S3 server (s3s-fs) cannot exercise. Anything else
//! is answered 400, as a server does to a request signed for another region.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use leasehold_core::config::{BlobConfig, S3Config, StaticCredentials};
use leasehold_core::secret::Secret;

/// One unfinished multipart upload the fake lists.
#[derive(Clone, Debug)]
pub struct FakeUpload {
    /// Full object key (with the store's prefix).
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// `Initiated`, RFC 3339.
    pub initiated: String,
}

#[derive(Default)]
struct Inner {
    pages: Vec<Vec<FakeUpload>>,
    listable: bool,
    aborted: Vec<String>,
}

/// A running fake; its endpoint is `http://<addr>`.
#[derive(Clone)]
pub struct FakeS3 {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeS3 {
    /// Serves `pages` of uploads (`listable`), or answers `501 NotImplemented` to listing.
    pub async fn start(pages: Vec<Vec<FakeUpload>>, listable: bool) -> Self {
        let inner = Arc::new(Mutex::new(Inner { pages, listable, aborted: Vec::new() }));
        let app = axum::Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { endpoint, inner }
    }

    /// A store configuration (bucket `fake`, prefix `p/`) pointing at this fake.
    pub fn store_config(&self) -> BlobConfig {
        BlobConfig::S3(S3Config {
            bucket: "fake".into(),
            endpoint: Some(self.endpoint.clone()),
            region: "us-east-1".into(),
            force_path_style: true,
            prefix: "p/".into(),
            part_size: 8 << 20,
            credentials: Some(StaticCredentials { access_key_id: "k".into(), secret_access_key: Secret::new("s") }),
        })
    }

    /// Upload ids aborted so far.
    pub fn aborted(&self) -> Vec<String> {
        self.inner.lock().expect("fake s3 state").aborted.clone()
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().expect("fake s3 state");
    if method == Method::DELETE
        && let Some(id) = query.get("uploadId")
    {
        inner.aborted.push(id.clone());
        return StatusCode::NO_CONTENT.into_response();
    }
    if method != Method::GET || !query.contains_key("uploads") {
        return (StatusCode::BAD_REQUEST, format!("fake s3 does not serve {method} {uri}")).into_response();
    }
    if !inner.listable {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NotImplemented</Code>\
                    <Message>ListMultipartUploads is not implemented yet</Message></Error>";
        return (StatusCode::NOT_IMPLEMENTED, [("content-type", "application/xml")], body).into_response();
    }
    // Page n is asked for with the key marker `page-n` (the first without one).
    let page: usize = query.get("key-marker").and_then(|m| m.strip_prefix("page-")?.parse().ok()).unwrap_or(0);
    let uploads = inner.pages.get(page).cloned().unwrap_or_default();
    let truncated = page + 1 < inner.pages.len();
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>fake</Bucket>",
    );
    if truncated {
        let next = page + 1;
        xml.push_str(&format!(
            "<NextKeyMarker>page-{next}</NextKeyMarker><NextUploadIdMarker>marker-{next}</NextUploadIdMarker>"
        ));
    }
    xml.push_str(&format!("<MaxUploads>1000</MaxUploads><IsTruncated>{truncated}</IsTruncated>"));
    for u in uploads {
        xml.push_str(&format!(
            "<Upload><Key>{}</Key><UploadId>{}</UploadId><Initiated>{}</Initiated></Upload>",
            u.key, u.upload_id, u.initiated
        ));
    }
    xml.push_str("</ListMultipartUploadsResult>");
    ([("content-type", "application/xml")], xml).into_response()
}
