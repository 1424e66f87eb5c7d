//! Reading raw values: the `LEASEHOLD_*` environment over `leasehold.toml`, and the
//! parsers shared by several settings groups (numbers, flags, URLs, address lists).

use std::collections::BTreeMap;
use std::path::Path;

use super::ConfigError;

/// Environment values (`LEASEHOLD_*`) over file values (lower-case keys without the
/// prefix); every getter takes the key as its environment variable suffix.
pub(super) struct Source<'a> {
    pub(super) env: &'a BTreeMap<String, String>,
    pub(super) file: &'a BTreeMap<String, String>,
}

impl Source<'_> {
    pub(super) fn get(&self, key: &str) -> Option<String> {
        self.env
            .get(&format!("LEASEHOLD_{key}"))
            .or_else(|| self.file.get(&key.to_ascii_lowercase()))
            .map(|v| v.trim().to_owned())
    }

    pub(super) fn parse<T: std::str::FromStr>(
        &self,
        key: &str,
        default: &str,
        expected: &str,
    ) -> Result<T, ConfigError> {
        let raw = self.get(key).unwrap_or_else(|| default.to_owned());
        raw.parse().map_err(|_| ConfigError::new(key, format!("expected {expected}, got {raw:?}")))
    }

    pub(super) fn number(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        self.parse(key, &default.to_string(), "a whole number")
    }

    pub(super) fn flag(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key).as_deref().map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(ConfigError::new(key, format!("expected true or false, got {other:?}"))),
        }
    }
}

pub(super) fn is_sqlite_url(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// A comma-separated list of addresses or CIDRs (`LEASEHOLD_TRUSTED_PROXIES`,
/// `LEASEHOLD_WEBHOOK_ALLOW_CIDRS`).
pub(super) fn cidrs(src: &Source<'_>, key: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let raw = src.get(key).unwrap_or_default();
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| ConfigError::new(key, format!("expected addresses or CIDRs, got {p:?}")))
        })
        .collect()
}

pub(super) fn validate_url(key: &str, url: &str) -> Result<String, ConfigError> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(url.trim_end_matches('/').to_owned()),
        _ => Err(ConfigError::new(key, format!("expected an http:// or https:// URL, got {url:?}"))),
    }
}

pub(super) fn read_toml(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("CONFIG", format!("cannot read {}: {e}", path.display())))?;
    let table: toml::Table =
        text.parse().map_err(|e| ConfigError::new("CONFIG", format!("{} is not valid TOML: {e}", path.display())))?;
    table
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(ConfigError::new(
                        &key.to_ascii_uppercase(),
                        format!("expected a string, number or boolean, got {}", other.type_str()),
                    ));
                }
            };
            Ok((key, text))
        })
        .collect()
}
