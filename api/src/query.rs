//! Query strings: every value is checked before a handler (and so the database) sees it.
//! A value must be UTF-8 without control characters (PostgreSQL refuses a NUL in text
//! with an encoding error), a parameter may appear once, and a value must have its
//! parameter's type; anything else is `400 bad_request` with `parameter` naming it.
//! Parameters a route does not know are ignored, once checked.

use std::collections::BTreeSet;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `400 bad_request` about one query parameter, with `parameter` naming it.
pub fn bad_parameter(name: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("query parameter {name} {why}")).with("parameter", name)
}

/// Query string parameters, checked (see the module).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parse(parts.uri.query().unwrap_or_default()).map(Self)
    }
}

/// Checks and deserializes a raw query string.
pub fn parse<T: DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    check(raw)?;
    let deserializer = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(raw.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let name = e.path().to_string();
        bad_parameter(&name, format_args!("is invalid: {}", e.inner()))
    })
}

/// Every parameter decodes to UTF-8 without control characters and appears once.
fn check(raw: &str) -> Result<(), ApiError> {
    let mut seen = BTreeSet::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(key).map_err(|why| bad_parameter(&lossy(key), format_args!("has a name that {why}")))?;
        decode(value).map_err(|why| bad_parameter(&name, format_args!("has a value that {why}")))?;
        if !seen.insert(name.clone()) {
            return Err(bad_parameter(&name, "is given more than once"));
        }
    }
    Ok(())
}

/// Form decoding (`+` is a space, `%XX` a byte), refusing what SQL text must not hold.
fn decode(part: &str) -> Result<String, &'static str> {
    let spaced = part.replace('+', " ");
    let text = percent_encoding::percent_decode_str(&spaced).decode_utf8().map_err(|_| "is not UTF-8")?;
    if text.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    Ok(text.into_owned())
}

/// A name for the error message, control characters escaped.
fn lossy(key: &str) -> String {
    let text = String::from_utf8_lossy(&percent_encoding::percent_decode_str(key).collect::<Vec<u8>>()).into_owned();
    text.chars().flat_map(char::escape_default).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Page {
        limit: Option<u64>,
        cursor: Option<String>,
    }

    fn refused(raw: &str) -> (String, String) {
        let e = parse::<Page>(raw).expect_err(raw);
        (e.code().to_owned(), e.field("parameter").and_then(|v| v.as_str()).unwrap_or_default().to_owned())
    }

    #[test]
    fn well_formed_queries_deserialize_and_unknown_parameters_are_ignored() {
        let page: Page = parse("limit=5&cursor=lse_01ARZ3NDEKTSV4RRFFQ69G5FAV&_=1").expect("valid");
        assert_eq!(page, Page { limit: Some(5), cursor: Some("lse_01ARZ3NDEKTSV4RRFFQ69G5FAV".into()) });
        assert_eq!(parse::<Page>("").expect("empty"), Page { limit: None, cursor: None });
        assert_eq!(parse::<Page>("cursor=a+b%20c").expect("spaces").cursor.as_deref(), Some("a b c"));
    }

    #[test]
    fn nul_control_characters_bad_utf8_duplicates_and_wrong_types_name_the_parameter() {
        for (raw, name) in [
            ("cursor=%00", "cursor"),
            ("cursor=a%0Ab", "cursor"),
            ("cursor=%FF", "cursor"),
            ("cursor=%C3", "cursor"),
            ("other=%00", "other"),
            ("limit=1&limit=2", "limit"),
            ("x=1&x=1", "x"),
            ("limit=abc", "limit"),
            ("limit=-1", "limit"),
            ("a%00b=1", "a\\u{0}b"),
        ] {
            assert_eq!(refused(raw), ("bad_request".to_owned(), name.to_owned()), "{raw}");
        }
    }
}
