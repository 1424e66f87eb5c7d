//! `Range: bytes=…` parsing (RFC 9110 §14): one range; anything else serves the whole file.

use axum::http::HeaderValue;
use leasehold_core::blob::ByteRange;

/// What a `Range` header asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No (usable) range: the whole representation.
    Full,
    /// One satisfiable range.
    Partial(ByteRange),
    /// A well-formed range that lies outside the representation (416).
    Unsatisfiable,
}

/// Resolves a `Range` header against a representation of `size` bytes. Malformed and
/// multi-range headers are ignored, as RFC 9110 allows.
pub fn parse_range(header: Option<&HeaderValue>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.to_str().ok()).and_then(|s| s.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeRequest::Full };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match num(suffix) {
            None => RangeRequest::Full,
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Partial(ByteRange { start: size.saturating_sub(n), end: size - 1 }),
        },
        (start, end) => {
            let Some(start) = num(start) else { return RangeRequest::Full };
            let end = if end.is_empty() { Some(u64::MAX) } else { num(end) };
            match end {
                None => RangeRequest::Full,
                Some(end) if end < start => RangeRequest::Full,
                Some(_) if start >= size => RangeRequest::Unsatisfiable,
                Some(end) => RangeRequest::Partial(ByteRange { start, end: end.min(size - 1) }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str, size: u64) -> RangeRequest {
        parse_range(Some(&HeaderValue::from_str(s).expect("header")), size)
    }

    fn part(start: u64, end: u64) -> RangeRequest {
        RangeRequest::Partial(ByteRange { start, end })
    }

    #[test]
    fn single_ranges_resolve() {
        assert_eq!(parse("bytes=0-9", 100), part(0, 9));
        assert_eq!(parse("bytes=90-", 100), part(90, 99));
        assert_eq!(parse("bytes=-10", 100), part(90, 99));
        assert_eq!(parse("bytes=-1000", 100), part(0, 99));
        assert_eq!(parse("bytes=50-5000", 100), part(50, 99));
    }

    #[test]
    fn ranges_outside_the_file_are_unsatisfiable() {
        assert_eq!(parse("bytes=100-", 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse("bytes=-0", 100), RangeRequest::Unsatisfiable);
    }

    #[test]
    fn malformed_or_multiple_ranges_serve_everything() {
        for s in ["bytes=a-b", "bytes=5-1", "items=0-1", "bytes=0-1,5-6", "bytes=-", "bytes=1"] {
            assert_eq!(parse(s, 100), RangeRequest::Full, "{s}");
        }
        assert_eq!(parse_range(None, 100), RangeRequest::Full);
    }
}
