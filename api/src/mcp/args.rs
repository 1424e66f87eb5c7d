//! Reading a tool call's arguments with errors that name the argument, and the small
//! JSON Schema builders the tool table uses.

use base64::Engine as _;
use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// The arguments of one call, read with the error that names the argument.
pub struct Args<'a>(pub &'a Map<String, Value>);

impl Args<'_> {
    pub fn string(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(name, "must be a string")),
        }
    }

    pub fn u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| invalid(name, "must be a whole number ≥ 0")),
        }
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_bool().map(Some).ok_or_else(|| invalid(name, "must be true or false")),
        }
    }

    /// A required string as one path segment (percent-encoded, so it cannot leave it).
    pub fn segment(&self, name: &str) -> Result<String, ApiError> {
        let value = self.string(name)?.filter(|s| !s.is_empty()).ok_or_else(|| invalid(name, "is required"))?;
        Ok(utf8_percent_encode(&value, SEGMENT).to_string())
    }

    /// The token of `url_arg` (the path segment after `marker`) or of `token_arg`:
    /// exactly one of them.
    pub fn token(&self, url_arg: &str, token_arg: &str, marker: &str) -> Result<String, ApiError> {
        let token = match (self.string(url_arg)?, self.string(token_arg)?) {
            (Some(url), None) => {
                token_in(&url, marker).ok_or_else(|| invalid(url_arg, "is not a URL this server handed out"))?
            }
            (None, Some(token)) => token,
            (Some(_), Some(_)) => {
                return Err(invalid(token_arg, format!("give `{url_arg}` or `{token_arg}`, not both")));
            }
            (None, None) => return Err(invalid(url_arg, format!("is required (or give `{token_arg}`)"))),
        };
        if token.is_empty() {
            return Err(invalid(token_arg, "is empty"));
        }
        Ok(utf8_percent_encode(&token, SEGMENT).to_string())
    }

    /// The bytes of `content` or `content_base64`, exactly one of them. With `any_json`,
    /// `content` may also be any JSON value, sent as its JSON text.
    pub fn content(&self, any_json: bool) -> Result<Bytes, ApiError> {
        match (self.0.get("content"), self.0.get("content_base64")) {
            (Some(Value::String(s)), None) => Ok(Bytes::from(s.clone().into_bytes())),
            (Some(v), None) if any_json && !v.is_null() => Ok(Bytes::from(v.to_string().into_bytes())),
            (Some(_), None) => Err(invalid("content", "must be a string")),
            (None, Some(Value::String(b64))) => base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map(Bytes::from)
                .map_err(|_| invalid("content_base64", "is not valid base64")),
            (None, Some(_)) => Err(invalid("content_base64", "must be a string")),
            (Some(_), Some(_)) => Err(invalid("content_base64", "give `content` or `content_base64`, not both")),
            (None, None) => Err(invalid("content", "is required (or give `content_base64`)")),
        }
    }
}

/// Characters escaped in a path segment or query value: all but unreserved ones.
pub const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The path segment after `marker` in a URL (its fragment and query dropped).
fn token_in(url: &str, marker: &str) -> Option<String> {
    let url = url.split(['#', '?']).next().unwrap_or_default();
    let rest = &url[url.rfind(marker)? + marker.len()..];
    let token = rest.split('/').next().unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(token).decode_utf8().ok()?;
    (!decoded.is_empty()).then(|| decoded.into_owned())
}

/// `400 bad_request` naming the `argument` at fault.
pub fn invalid(argument: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("`{argument}` {problem}")).with("argument", argument)
}

/// An object schema that admits only `properties` and requires `required`.
pub fn object(properties: &[(&str, Value)], required: &[&str]) -> Value {
    let properties: Map<String, Value> = properties.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
}

/// A whole number ≥ 0.
pub fn int(description: &str) -> Value {
    json!({ "type": "integer", "minimum": 0, "description": description })
}

/// A string.
pub fn text(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

/// A boolean.
pub fn boolean(description: &str) -> Value {
    json!({ "type": "boolean", "description": description })
}

/// Text or any JSON value.
pub fn json_content() -> Value {
    json!({ "description": "The version's body: text, or any JSON value (sent as its JSON text)" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_from_urls_and_stay_one_segment() {
        let url = "https://lh.example/api/claim/clm_abc?x=1#AGE-SECRET-KEY-1XYZ";
        assert_eq!(token_in(url, "/claim/").as_deref(), Some("clm_abc"));
        let drop = "http://127.0.0.1:8080/api/mailbox/drp_00ff/drop";
        assert_eq!(token_in(drop, "/mailbox/").as_deref(), Some("drp_00ff"));
        assert_eq!(token_in("https://lh.example/other", "/claim/"), None);
        let args = Map::from_iter([("token".to_owned(), json!("../../admin/accounts"))]);
        let token = Args(&args).token("claim_url", "token", "/claim/").expect("token");
        assert!(!token.contains('/'), "{token}");
    }
}
