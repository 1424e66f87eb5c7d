//! Secrets in paths (SPEC §10): handoff tokens and drop tokens are bearer secrets, so a
//! path is redacted before it is logged, traced or labelled.

use std::borrow::Cow;

/// What a redacted segment reads as.
pub const REDACTED: &str = "<redacted>";

/// `path` with every secret segment replaced by `<redacted>`: the token of
/// `/api/claim/{token}`, and anywhere any segment shaped like a secret (`drp_…`,
/// `rs_live_…`, `rs_wallet_…`, `whsec_…`, or 32+ hex digits such as a handoff token
/// given to `DELETE /api/handoffs/{id}`).
pub fn path(path: &str) -> Cow<'_, str> {
    let segments: Vec<&str> = path.split('/').collect();
    let secret =
        |i: usize, s: &str| (i >= 2 && segments[i - 2..i] == ["api", "claim"] && !s.is_empty()) || looks_secret(s);
    if !segments.iter().enumerate().any(|(i, s)| secret(i, s)) {
        return Cow::Borrowed(path);
    }
    let out: Vec<&str> = segments.iter().enumerate().map(|(i, s)| if secret(i, s) { REDACTED } else { s }).collect();
    Cow::Owned(out.join("/"))
}

fn looks_secret(segment: &str) -> bool {
    // Percent-encoded forms of the same characters are secrets too.
    let lower = segment.to_ascii_lowercase();
    ["drp_", "drp%5f", "rs_live_", "rs_wallet_", "whsec_"].iter().any(|p| lower.starts_with(p))
        || (segment.len() >= 32 && segment.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_paths_are_redacted() {
        let token = "ab".repeat(32);
        assert_eq!(path(&format!("/api/claim/{token}")), "/api/claim/<redacted>");
        assert_eq!(path("/api/claim/short-guess"), "/api/claim/<redacted>");
        assert_eq!(path(&format!("/api/mailbox/drp_{token}/drop")), "/api/mailbox/<redacted>/drop");
        assert_eq!(path(&format!("/api/mailbox/DRP%5F{token}/drop")), "/api/mailbox/<redacted>/drop");
        assert_eq!(path(&format!("/api/handoffs/{token}")), "/api/handoffs/<redacted>");
    }

    #[test]
    fn ordinary_paths_are_kept() {
        for p in ["/api/leases/lse_01JABCDEF", "/api/mailbox/lse_01J/messages/msg_01J", "/healthz", "/", "/api/claim/"]
        {
            assert_eq!(path(p), p);
        }
    }
}
