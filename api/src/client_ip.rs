//! The client address of a request: the socket peer, or, when the peer is a configured
//! trusted proxy, the right-most `X-Forwarded-For` entry that is not itself a trusted
//! proxy (entries further left are whatever the client chose to send).

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The client's address for rate limiting. An unparsable entry stops the walk at the
/// last trusted hop, so a malformed header never lets a client pick its own address.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !trusted(peer, proxies) {
        return peer;
    }
    let mut client = peer;
    let values: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    for entry in values.iter().rev().flat_map(|v| v.rsplit(',')) {
        let Some(ip) = parse_entry(entry).map(canonical) else { return client };
        client = ip;
        if !trusted(ip, proxies) {
            return ip;
        }
    }
    client
}

/// IPv4-mapped IPv6 addresses count as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().expect("header"));
        }
        h
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let h = xff(&["6.6.6.6, 1.2.3.4"]);
        assert_eq!(client_ip(ip("9.9.9.9"), &h, &proxies), ip("9.9.9.9"), "untrusted peer: header ignored");
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &proxies), ip("1.2.3.4"), "right-most untrusted entry");
        let chained = xff(&["6.6.6.6, 1.2.3.4, 10.0.0.7"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &chained, &proxies), ip("1.2.3.4"), "trusted hops are skipped");
        let split = xff(&["6.6.6.6", "1.2.3.4"]);
        assert_eq!(client_ip(ip("10.0.0.5"), &split, &proxies), ip("1.2.3.4"), "repeated headers are one list");
    }

    #[test]
    fn malformed_entries_stop_at_the_last_trusted_hop() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        assert_eq!(client_ip(ip("10.0.0.5"), &xff(&["1.2.3.4, garbage"]), &proxies), ip("10.0.0.5"));
        assert_eq!(client_ip(ip("10.0.0.5"), &xff(&["[2001:db8::1]:443"]), &proxies), ip("2001:db8::1"));
        assert_eq!(client_ip(ip("10.0.0.5"), &HeaderMap::new(), &proxies), ip("10.0.0.5"));
        assert_eq!(client_ip(ip("::ffff:10.0.0.5"), &xff(&["1.2.3.4"]), &proxies), ip("1.2.3.4"));
    }
}
