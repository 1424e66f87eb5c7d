//! Pure Ethereum (EVM) primitives for wallet sign-in and x402 payments: addresses,
//! secp256k1 signature recovery, the EIP-3009 typed-data hash and EIP-4361 messages.
//!
//! Why it exists: Leasehold accepts two things signed by an Ethereum wallet — a
//! Sign-In with Ethereum message (EIP-191 `personal_sign` over an EIP-4361 text) and
//! an x402 `exact` payment (an EIP-712 signature over an EIP-3009
//! `TransferWithAuthorization`). Both come down to "which address signed this?",
//! answered here without any I/O so the API, the worker and the tests share one
//! implementation. Everything that parses outside input is strict: wrong-case
//! checksums, malleable (high-s) signatures and unexpected lines are rejected rather
//! than normalised.

pub mod eip712;
pub mod signature;
pub mod siwe;

pub use alloy_primitives::{Address, B256, U256};
pub use eip712::{Authorization, Domain, domain_separator, recover_transfer_signer, transfer_hash};
pub use signature::{SignatureError, TestKey, parse_signature, recover_personal_sign, recover_prehash};
pub use siwe::{SiweMessage, chain_id, new_nonce};

/// Parses `0x` followed by 40 hex digits into an address.
///
/// All-lowercase and all-uppercase digits are accepted as they are; digits in mixed
/// case are an EIP-55 checksum and must be exactly the checksum of the address, so a
/// mistyped character is caught instead of silently naming another account.
pub fn parse_address(s: &str) -> Option<Address> {
    let digits = s.strip_prefix("0x")?;
    if digits.len() != 40 {
        return None;
    }
    let mut bytes = [0u8; 20];
    hex::decode_to_slice(digits, &mut bytes).ok()?;
    let address = Address::from(bytes);
    let has_lower = digits.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = digits.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper && checksum(&address) != s {
        return None;
    }
    Some(address)
}

/// The EIP-55 mixed-case checksum form of an address, `0x` included.
pub fn checksum(a: &Address) -> String {
    a.to_checksum(None)
}

/// The EIP-55 form of an address given as `0x` + 40 hex digits in any case (a client's
/// case is not trusted); anything else is returned unchanged.
pub fn checksum_str(s: &str) -> String {
    parse_address(&s.to_ascii_lowercase()).map_or_else(|| s.to_owned(), |a| checksum(&a))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "all mixed case" vectors of the EIP-55 specification.
    const EIP55_VECTORS: [&str; 4] = [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ];

    #[test]
    fn eip55_vectors_round_trip() {
        for vector in EIP55_VECTORS {
            let address = parse_address(vector).expect("valid checksum");
            assert_eq!(checksum(&address), vector);
        }
    }

    #[test]
    fn eip55_checksum_is_computed_from_lowercase() {
        for vector in EIP55_VECTORS {
            let lower = vector.to_ascii_lowercase();
            let address = parse_address(&lower).expect("lowercase is unchecksummed");
            assert_eq!(checksum(&address), vector);
        }
    }

    #[test]
    fn wrong_case_is_rejected() {
        for vector in EIP55_VECTORS {
            // Flip the case of the first letter digit: still the same bytes, bad checksum.
            let position = vector[2..].find(|c: char| c.is_ascii_alphabetic()).expect("vector has letters") + 2;
            let mut chars: Vec<char> = vector.chars().collect();
            let c = chars[position];
            chars[position] = if c.is_ascii_uppercase() { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() };
            let tampered: String = chars.into_iter().collect();
            assert_eq!(parse_address(&tampered), None, "{tampered}");
        }
    }

    #[test]
    fn single_case_forms_are_accepted() {
        let lower = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
        let upper = "0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED";
        let a = parse_address(lower).expect("lowercase");
        assert_eq!(parse_address(upper), Some(a));
        assert_eq!(checksum(&a), EIP55_VECTORS[0]);
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        let good = "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
        for bad in [
            good.to_string(),              // no prefix
            format!("0X{good}"),           // upper-case prefix
            format!("0x{}", &good[..39]),  // 39 digits
            format!("0x{good}0"),          // 41 digits
            format!("0x{}g", &good[..39]), // not hex
            format!(" 0x{good}"),          // whitespace
            String::from("0x"),
        ] {
            assert_eq!(parse_address(&bad), None, "{bad}");
        }
    }
}
