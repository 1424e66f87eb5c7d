//! x402 payments (SPEC §4.2): on when both `LEASEHOLD_X402_PAY_TO` and
//! `LEASEHOLD_X402_FACILITATOR_URL` are set; one without the other is refused, so an
//! operator never believes payments are on when they are not.

use std::time::Duration;

use super::ConfigError;
use super::source::{Source, validate_url};

/// The networks a payment may be made on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// Base mainnet.
    Base,
    /// Base Sepolia testnet.
    BaseSepolia,
}

impl Network {
    /// The x402 v1 name (`base`, `base-sepolia`).
    pub fn v1_name(self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::BaseSepolia => "base-sepolia",
        }
    }

    /// The x402 v2 (CAIP-2) name (`eip155:8453`, `eip155:84532`).
    pub fn caip2(self) -> &'static str {
        match self {
            Self::Base => "eip155:8453",
            Self::BaseSepolia => "eip155:84532",
        }
    }

    /// The EVM chain id.
    pub fn chain_id(self) -> u64 {
        match self {
            Self::Base => 8453,
            Self::BaseSepolia => 84_532,
        }
    }

    /// The network of a v1 or CAIP-2 name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Base, Self::BaseSepolia].into_iter().find(|n| n.v1_name() == name || n.caip2() == name)
    }

    /// USDC on this network: its contract address and EIP-712 domain name and version.
    fn usdc(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Base => ("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "USD Coin", "2"),
            Self::BaseSepolia => ("0x036CbD53842c5426634e7929541eC2318f3dCF7e", "USDC", "2"),
        }
    }
}

/// x402 settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct X402Config {
    /// The wallet payments go to (`0x` + 40 hex).
    pub pay_to: String,
    /// Base URL of the facilitator (`…/verify`, `…/settle`, `…/supported`).
    pub facilitator_url: String,
    /// The network.
    pub network: Network,
    /// The token contract (USDC by default).
    pub asset: String,
    /// The token's EIP-712 domain name (`extra.name`).
    pub asset_name: String,
    /// The token's EIP-712 domain version (`extra.version`).
    pub asset_version: String,
    /// How long a payment authorization must stay valid (`maxTimeoutSeconds`): it must
    /// cover the slowest upload, since settlement follows the upload.
    pub max_timeout: Duration,
    /// Per-call timeout of the facilitator.
    pub facilitator_timeout: Duration,
}

/// True for `0x` followed by 40 hex digits.
pub fn is_evm_address(s: &str) -> bool {
    s.strip_prefix("0x").is_some_and(|h| h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub(super) fn x402_config(src: &Source<'_>) -> Result<Option<X402Config>, ConfigError> {
    let pay_to = src.get("X402_PAY_TO").filter(|v| !v.is_empty());
    let facilitator = src.get("X402_FACILITATOR_URL").filter(|v| !v.is_empty());
    let (pay_to, facilitator_url) = match (pay_to, facilitator) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(ConfigError::new("X402_FACILITATOR_URL", "required when LEASEHOLD_X402_PAY_TO is set"));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new("X402_PAY_TO", "required when LEASEHOLD_X402_FACILITATOR_URL is set"));
        }
        (Some(p), Some(f)) => (p, f),
    };
    if !is_evm_address(&pay_to) {
        return Err(ConfigError::new("X402_PAY_TO", "expected an EVM address (0x followed by 40 hex digits)"));
    }
    let facilitator_url = validate_url("X402_FACILITATOR_URL", facilitator_url.trim_end_matches('/'))?;
    let network = match src.get("X402_NETWORK") {
        None => Network::Base,
        Some(name) => Network::parse(&name)
            .ok_or_else(|| ConfigError::new("X402_NETWORK", format!("expected base or base-sepolia, got {name:?}")))?,
    };
    let (usdc, usdc_name, usdc_version) = network.usdc();
    let asset = src.get("X402_ASSET").filter(|v| !v.is_empty()).unwrap_or_else(|| usdc.into());
    if !is_evm_address(&asset) {
        return Err(ConfigError::new("X402_ASSET", "expected a token contract address (0x followed by 40 hex digits)"));
    }
    let max_timeout = src.number("X402_MAX_TIMEOUT_SECONDS", 3600)?;
    if !(60..=7 * 86_400).contains(&max_timeout) {
        return Err(ConfigError::new("X402_MAX_TIMEOUT_SECONDS", "must be between 60 and 604800"));
    }
    let facilitator_timeout = src.number("X402_FACILITATOR_TIMEOUT_SECONDS", 15)?;
    if !(1..=300).contains(&facilitator_timeout) {
        return Err(ConfigError::new("X402_FACILITATOR_TIMEOUT_SECONDS", "must be between 1 and 300"));
    }
    Ok(Some(X402Config {
        pay_to,
        facilitator_url,
        network,
        asset,
        asset_name: src.get("X402_ASSET_NAME").filter(|v| !v.is_empty()).unwrap_or_else(|| usdc_name.into()),
        asset_version: src.get("X402_ASSET_VERSION").filter(|v| !v.is_empty()).unwrap_or_else(|| usdc_version.into()),
        max_timeout: Duration::from_secs(max_timeout),
        facilitator_timeout: Duration::from_secs(facilitator_timeout),
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::config::{Config, env};

    const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

    #[test]
    fn x402_is_off_without_its_keys_and_on_with_both() {
        let off = Config::from_sources(&BTreeMap::new(), &BTreeMap::new()).expect("defaults");
        assert!(off.x402.is_none());
        let on = Config::from_sources(
            &env(&[
                ("LEASEHOLD_X402_PAY_TO", PAY_TO),
                ("LEASEHOLD_X402_FACILITATOR_URL", "https://x402.org/facilitator/"),
            ]),
            &BTreeMap::new(),
        )
        .expect("valid");
        let x = on.x402.expect("on");
        assert_eq!(x.network, super::Network::Base);
        assert_eq!(x.asset, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913");
        assert_eq!((x.asset_name.as_str(), x.asset_version.as_str()), ("USD Coin", "2"));
        assert_eq!(x.facilitator_url, "https://x402.org/facilitator");
        assert_eq!(x.max_timeout.as_secs(), 3600);
        let sepolia = Config::from_sources(
            &env(&[
                ("LEASEHOLD_X402_PAY_TO", PAY_TO),
                ("LEASEHOLD_X402_FACILITATOR_URL", "http://127.0.0.1:9"),
                ("LEASEHOLD_X402_NETWORK", "eip155:84532"),
            ]),
            &BTreeMap::new(),
        )
        .expect("valid")
        .x402
        .expect("on");
        assert_eq!(sepolia.network.v1_name(), "base-sepolia");
        assert_eq!(sepolia.asset_name, "USDC");
    }

    #[test]
    fn half_a_configuration_or_a_bad_value_is_refused_by_name() {
        for (pairs, key) in [
            (vec![("LEASEHOLD_X402_PAY_TO", PAY_TO)], "LEASEHOLD_X402_FACILITATOR_URL"),
            (vec![("LEASEHOLD_X402_FACILITATOR_URL", "https://f.example")], "LEASEHOLD_X402_PAY_TO"),
            (
                vec![("LEASEHOLD_X402_PAY_TO", "0x12"), ("LEASEHOLD_X402_FACILITATOR_URL", "https://f.example")],
                "LEASEHOLD_X402_PAY_TO",
            ),
            (
                vec![
                    ("LEASEHOLD_X402_PAY_TO", PAY_TO),
                    ("LEASEHOLD_X402_FACILITATOR_URL", "https://f.example"),
                    ("LEASEHOLD_X402_NETWORK", "mainnet"),
                ],
                "LEASEHOLD_X402_NETWORK",
            ),
            (
                vec![
                    ("LEASEHOLD_X402_PAY_TO", PAY_TO),
                    ("LEASEHOLD_X402_FACILITATOR_URL", "https://f.example"),
                    ("LEASEHOLD_X402_MAX_TIMEOUT_SECONDS", "5"),
                ],
                "LEASEHOLD_X402_MAX_TIMEOUT_SECONDS",
            ),
        ] {
            let err = Config::from_sources(&env(&pairs), &BTreeMap::new()).expect_err(key);
            assert_eq!(err.key, key);
        }
    }
}
