//! The HTTP side: one client with the base URL and the credential, and the API's error
//! envelope turned into an error that carries its `code`.

use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

/// A failure, with the API's `code` when the API refused.
#[derive(Debug)]
pub struct Failure {
    /// The API's `code`, or a local one (`transfer_failed`, `io_error`, …).
    pub code: String,
    /// What happened.
    pub message: String,
    /// The API's whole error body, when there is one.
    pub body: Option<Value>,
}

impl Failure {
    /// A local failure.
    pub fn local(code: &str, message: impl std::fmt::Display) -> Self {
        Self { code: code.to_owned(), message: message.to_string(), body: None }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl From<reqwest::Error> for Failure {
    fn from(e: reqwest::Error) -> Self {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        Self::local("transfer_failed", text)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self::local("io_error", e)
    }
}

/// The API client.
#[derive(Clone, Debug)]
pub struct Api {
    base: String,
    key: Option<String>,
    http: reqwest::Client,
}

impl Api {
    /// A client of the server at `base` with `key`.
    pub fn new(base: &str, key: Option<String>) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("leasehold-cli/", env!("CARGO_PKG_VERSION")))
            .tcp_nodelay(true)
            .build()?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), key: key.filter(|k| !k.is_empty()), http })
    }

    /// The absolute URL of `path` (or `path` itself when it already is one).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// A request with the credential.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// A request without the credential (claims and drops: the URL is the capability).
    pub fn anonymous(&self, method: Method, url: &str) -> RequestBuilder {
        self.http.request(method, self.url(url))
    }

    /// Sends `request`; a non-2xx answer becomes a [`Failure`] with the API's `code`.
    pub async fn send(request: RequestBuilder) -> Result<Response, Failure> {
        let response = request.send().await?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(refusal(response).await)
    }

    /// Sends `request` and reads its JSON answer.
    pub async fn json(request: RequestBuilder) -> Result<Value, Failure> {
        let response = Self::send(request).await?;
        Ok(response.json().await?)
    }
}

/// The API's error envelope as a [`Failure`].
async fn refusal(response: Response) -> Failure {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<Value>(&text) {
        Ok(body) if body["code"].is_string() => Failure {
            code: body["code"].as_str().unwrap_or_default().to_owned(),
            message: body["error"].as_str().unwrap_or_default().to_owned(),
            body: Some(body),
        },
        _ => Failure::local("http_error", format!("HTTP {status}: {}", text.chars().take(200).collect::<String>())),
    }
}
