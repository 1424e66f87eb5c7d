use super::*;
use crate::evm::{TestKey, recover_personal_sign};
use alloy_primitives::address;

/// 2021-09-30T16:25:24Z, the EIP-4361 example's issue time.
const ISSUED_MS: i64 = 1_633_019_124_000;

fn message() -> SiweMessage {
    SiweMessage {
        domain: "leasehold.example".into(),
        address: address!("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"),
        statement: Some(STATEMENT.into()),
        uri: "https://leasehold.example/v1/auth/siwe".into(),
        version: "1".into(),
        chain_id: 8453,
        nonce: "32891756abcdEFGH".into(),
        issued_at: ISSUED_MS,
        expiration_time: Some(ISSUED_MS + 300_123),
    }
}

const EXPECTED: &str = "leasehold.example wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

Sign in to Leasehold.

URI: https://leasehold.example/v1/auth/siwe
Version: 1
Chain ID: 8453
Nonce: 32891756abcdEFGH
Issued At: 2021-09-30T16:25:24Z
Expiration Time: 2021-09-30T16:30:24.123Z";

#[test]
fn to_text_writes_the_exact_layout() {
    assert_eq!(message().to_text(), EXPECTED);
}

#[test]
fn parse_round_trips_to_text() {
    let mut m = message();
    assert_eq!(SiweMessage::parse(&m.to_text()), Some(m.clone()));
    m.statement = None;
    m.expiration_time = None;
    let text = m.to_text();
    assert!(text.contains("Cc2\n\n\nURI: "), "{text}");
    assert!(text.ends_with("Issued At: 2021-09-30T16:25:24Z"), "{text}");
    assert_eq!(SiweMessage::parse(&text), Some(m));
}

#[test]
fn parse_accepts_the_legacy_form_without_statement() {
    let text = EXPECTED.replace("\nSign in to Leasehold.\n", "");
    assert!(text.contains("Cc2\n\nURI: "), "{text}");
    let parsed = SiweMessage::parse(&text).expect("legacy form");
    assert_eq!(parsed, SiweMessage { statement: None, ..message() });
}

#[test]
fn parse_accepts_lowercase_address_and_other_offsets() {
    let text = EXPECTED
        .replace("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2")
        .replace("16:25:24Z", "18:25:24+02:00");
    assert_eq!(SiweMessage::parse(&text), Some(message()));
}

#[test]
fn parse_rejects_deviations() {
    let cases = [
        EXPECTED.replace("Version: 1", "Version: 2"),
        EXPECTED.replace("Nonce: 32891756abcdEFGH\n", ""),
        EXPECTED.replace("Nonce: 32891756abcdEFGH", "Nonce: 1234567"),
        EXPECTED.replace("Nonce: 32891756abcdEFGH", "Nonce: 32891756-abcd"),
        EXPECTED.replace("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xc02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"),
        EXPECTED.replace("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc"),
        format!("{EXPECTED}\n"),
        format!("{EXPECTED}\nNot Before: 2021-09-30T16:25:24Z"),
        format!("{EXPECTED}\nResources:\n- https://leasehold.example/tos"),
        EXPECTED.replace("Chain ID: 8453", "Chain ID: 08453"),
        EXPECTED.replace("Chain ID: 8453", "Chain ID: +8453"),
        EXPECTED.replace("Chain ID: 8453", "Chain ID: base"),
        EXPECTED.replace("Issued At: 2021-09-30T16:25:24Z", "Issued At: yesterday"),
        EXPECTED.replace("Issued At: 2021-09-30T16:25:24Z\n", ""),
        EXPECTED.replace("URI: https://leasehold.example/v1/auth/siwe", "URI: not a uri"),
        EXPECTED.replace("leasehold.example wants", "leasehold example wants"),
        EXPECTED.replace("wants you to sign in", "wants you to log in"),
        EXPECTED.replace("Leasehold.\n\nURI", "Leasehold.\nURI"),
        EXPECTED.replace('\n', "\r\n"),
        String::new(),
    ];
    for text in &cases {
        assert_eq!(SiweMessage::parse(text), None, "accepted:\n{text}");
    }
}

#[test]
fn signed_message_recovers_its_address() {
    let key = TestKey::from_seed(11);
    let text = SiweMessage { address: key.address(), ..message() }.to_text();
    let signature = key.sign_personal(text.as_bytes());
    let parsed = SiweMessage::parse(&text).expect("parses");
    assert_eq!(recover_personal_sign(text.as_bytes(), &signature), Ok(parsed.address));
}

#[test]
fn nonces_are_24_alphanumerics_and_differ() {
    let (a, b) = (new_nonce(), new_nonce());
    for nonce in [&a, &b] {
        assert_eq!(nonce.len(), 24);
        assert!(nonce.bytes().all(|c| c.is_ascii_alphanumeric()), "{nonce}");
    }
    assert_ne!(a, b);
    let m = SiweMessage { nonce: a, ..message() };
    assert_eq!(SiweMessage::parse(&m.to_text()), Some(m));
}

#[test]
fn chain_ids_of_supported_networks() {
    assert_eq!(chain_id("base"), Some(8453));
    assert_eq!(chain_id("base-sepolia"), Some(84532));
    assert_eq!(chain_id("eip155:8453"), Some(8453));
    assert_eq!(chain_id("eip155:84532"), Some(84532));
    assert_eq!(chain_id("ethereum"), None);
    assert_eq!(chain_id("Base"), None);
}
