//! The checks of a receiver's URL: its form, and every address it resolves to through
//! the SSRF guard of [`crate::ssrf`].

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::MAX_URL_LEN;
use crate::ssrf::{AddressPolicy, Refusal};

/// Why a webhook URL is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    /// Not an absolute http(s) URL with a host, or too long.
    #[error("{0}")]
    Malformed(&'static str),
    /// The host does not resolve.
    #[error("host {0} does not resolve")]
    Unresolvable(String),
    /// The host is, or resolves to, an address deliveries may not go to.
    #[error("host {host} resolves to {ip}, {why}")]
    Forbidden {
        /// The URL's host.
        host: String,
        /// The refused address.
        ip: IpAddr,
        /// The registry entry that refuses it.
        why: Refusal,
    },
}

/// Checks the form of a webhook URL: http or https, a host, at most 2048 characters.
pub fn parse_url(raw: &str) -> Result<url::Url, UrlRefusal> {
    if raw.len() > MAX_URL_LEN {
        return Err(UrlRefusal::Malformed("must be at most 2048 characters"));
    }
    if raw.bytes().any(|b| b <= 0x20 || b == 0x7f) {
        return Err(UrlRefusal::Malformed("must not contain spaces or control characters"));
    }
    let rest = raw.split_once("://").map(|(_, rest)| rest).unwrap_or_default();
    if rest.is_empty() || rest.starts_with(['/', '\\', '?', '#', ':', '@']) {
        return Err(UrlRefusal::Malformed("must be an http:// or https:// URL naming a host"));
    }
    let url = url::Url::parse(raw).map_err(|_| UrlRefusal::Malformed("must be an absolute http:// or https:// URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefusal::Malformed("must be an http:// or https:// URL"));
    }
    match url.host_str() {
        Some(h) if !h.is_empty() => Ok(url),
        _ => Err(UrlRefusal::Malformed("must name a host")),
    }
}

/// How long a name lookup may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves the URL's host and checks every address it resolves to; returns them. An IP
/// literal is checked as is.
pub async fn resolve_checked(policy: &AddressPolicy, url: &url::Url) -> Result<Vec<SocketAddr>, UrlRefusal> {
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(url::Host::Domain(name)) => resolve_name(policy, name, port).await?,
        None => return Err(UrlRefusal::Malformed("must name a host")),
    };
    let host = url.host_str().unwrap_or_default();
    check_addrs(policy, host, addrs)
}

/// Resolves a host name and checks every address (used for deliveries' connections too,
/// so they go exactly to checked addresses).
pub async fn resolve_name(policy: &AddressPolicy, name: &str, port: u16) -> Result<Vec<SocketAddr>, UrlRefusal> {
    let lookup = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port))).await;
    let addrs: Vec<SocketAddr> = match lookup {
        Ok(Ok(found)) => found.collect(),
        _ => Vec::new(),
    };
    if addrs.is_empty() {
        return Err(UrlRefusal::Unresolvable(name.to_owned()));
    }
    check_addrs(policy, name, addrs)
}

fn check_addrs(policy: &AddressPolicy, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, UrlRefusal> {
    for a in &addrs {
        policy.check(a.ip()).map_err(|why| UrlRefusal::Forbidden { host: host.to_owned(), ip: a.ip(), why })?;
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_with_a_host_and_short() {
        for bad in ["ftp://example.com", "file:///etc/passwd", "https://", "http:///x", "example.com", "http://a b"] {
            assert!(matches!(parse_url(bad), Err(UrlRefusal::Malformed(_))), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(3000));
        assert!(parse_url(&long).is_err());
        assert!(parse_url("https://example.com:8443/hook?x=1").is_ok());
    }

    #[tokio::test]
    async fn literals_and_names_are_checked_against_the_policy() {
        let strict = AddressPolicy::default();
        for url in ["http://127.0.0.1/x", "http://[::1]:9/x", "http://localhost/x", "http://169.254.169.254/latest"] {
            let parsed = parse_url(url).expect("well-formed");
            assert!(matches!(resolve_checked(&strict, &parsed).await, Err(UrlRefusal::Forbidden { .. })), "{url}");
        }
        let public = parse_url("https://93.184.216.34:8443/hook").expect("url");
        assert_eq!(
            resolve_checked(&strict, &public).await.expect("public"),
            vec!["93.184.216.34:8443".parse().expect("addr")]
        );
    }
}
