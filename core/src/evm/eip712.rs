//! The EIP-712 hash of an EIP-3009 `TransferWithAuthorization`: the message a payer's
//! wallet signs in x402's `exact` scheme on EVM chains, and that USDC's
//! `transferWithAuthorization` checks on chain.
//!
//! The struct and domain types come from `alloy-sol-types`, so the type string, the
//! ABI encoding and the `0x19 0x01` envelope are the library's, not hand-rolled; the
//! tests pin them to constants published with USDC.

use std::borrow::Cow;

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::{Eip712Domain, SolStruct};

use super::signature::{SignatureError, recover_prehash};

mod sol {
    alloy_sol_types::sol! {
        /// EIP-3009 `TransferWithAuthorization`, field for field.
        struct TransferWithAuthorization {
            address from;
            address to;
            uint256 value;
            uint256 validAfter;
            uint256 validBefore;
            bytes32 nonce;
        }
    }
}

/// One EIP-3009 transfer authorisation: `from` lets anyone move `value` token units to
/// `to`, once (`nonce`), strictly between `valid_after` and `valid_before` (Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// The payer, whose signature authorises the transfer.
    pub from: Address,
    /// The payee.
    pub to: Address,
    /// Amount in the token's smallest unit (USDC: 10⁻⁶).
    pub value: U256,
    /// The transfer is invalid at or before this Unix time (seconds).
    pub valid_after: u64,
    /// The transfer is invalid at or after this Unix time (seconds).
    pub valid_before: u64,
    /// A random 32-byte value the token contract records to refuse replays.
    pub nonce: B256,
}

/// The EIP-712 domain of a token contract: `EIP712Domain(string name,string version,
/// uint256 chainId,address verifyingContract)`, as USDC declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    /// The token's EIP-712 name (USDC on Base: `USD Coin`; on Base Sepolia: `USDC`).
    pub name: String,
    /// The token's EIP-712 version (USDC: `2`).
    pub version: String,
    /// The EIP-155 chain id (Base: 8453).
    pub chain_id: u64,
    /// The token contract's address.
    pub verifying_contract: Address,
}

impl Domain {
    fn to_eip712(&self) -> Eip712Domain {
        Eip712Domain::new(
            Some(Cow::Owned(self.name.clone())),
            Some(Cow::Owned(self.version.clone())),
            Some(U256::from(self.chain_id)),
            Some(self.verifying_contract),
            None,
        )
    }
}

impl Authorization {
    fn to_sol(&self) -> sol::TransferWithAuthorization {
        sol::TransferWithAuthorization {
            from: self.from,
            to: self.to,
            value: self.value,
            validAfter: U256::from(self.valid_after),
            validBefore: U256::from(self.valid_before),
            nonce: self.nonce,
        }
    }
}

/// The domain separator (`hashStruct(EIP712Domain)`) a contract with this domain
/// exposes as `DOMAIN_SEPARATOR()`.
pub fn domain_separator(domain: &Domain) -> B256 {
    domain.to_eip712().separator()
}

/// The EIP-712 signing hash of `auth` under `domain`:
/// keccak256(`0x19 0x01` ‖ domainSeparator ‖ hashStruct(auth)).
pub fn transfer_hash(domain: &Domain, auth: &Authorization) -> B256 {
    auth.to_sol().eip712_signing_hash(&domain.to_eip712())
}

/// Recovers the address that signed `auth` under `domain` (a 65-byte hex signature;
/// high-`s` and unusual `v` refused as in [`super::parse_signature`]). The caller
/// still has to check the result equals `auth.from`.
pub fn recover_transfer_signer(
    domain: &Domain,
    auth: &Authorization,
    signature_hex: &str,
) -> Result<Address, SignatureError> {
    recover_prehash(&transfer_hash(domain, auth), signature_hex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evm::TestKey;
    use alloy_primitives::{address, b256, keccak256};

    /// USDC's Ethereum mainnet domain, whose separator is published on chain.
    fn usdc_mainnet() -> Domain {
        Domain {
            name: "USD Coin".into(),
            version: "2".into(),
            chain_id: 1,
            verifying_contract: address!("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"),
        }
    }

    fn base_usdc() -> Domain {
        Domain {
            name: "USD Coin".into(),
            version: "2".into(),
            chain_id: 8453,
            verifying_contract: address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
        }
    }

    fn authorization(from: Address) -> Authorization {
        Authorization {
            from,
            to: address!("0x488d87a9A88a6A878B3E7cf0bEece8984af9518D"),
            value: U256::from(1_000_000u64),
            valid_after: 0,
            valid_before: 1_770_422_000,
            nonce: B256::with_last_byte(1),
        }
    }

    #[test]
    fn type_hash_matches_usdc_constant() {
        let sol = authorization(Address::ZERO).to_sol();
        let expected = b256!("0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267");
        assert_eq!(sol.eip712_type_hash(), expected);
    }

    #[test]
    fn domain_separator_matches_usdc_mainnet() {
        let expected = b256!("0x06c37168a7db5138defc7866392bb87a741f9b3d104deb5094588ce041cae335");
        assert_eq!(domain_separator(&usdc_mainnet()), expected);
    }

    /// Rebuilds the digest by hand, the way a Solidity contract does, from the two
    /// published constants: `0x1901 ‖ DOMAIN_SEPARATOR ‖ keccak256(abi.encode(...))`.
    #[test]
    fn transfer_hash_matches_manual_encoding() {
        let auth = authorization(address!("0x0D42aa898242f52c8876688605f31E87d81A3e26"));
        let word = |a: Address| B256::left_padding_from(a.as_slice());
        let mut encoded = Vec::new();
        encoded
            .extend_from_slice(b256!("0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267").as_slice());
        encoded.extend_from_slice(word(auth.from).as_slice());
        encoded.extend_from_slice(word(auth.to).as_slice());
        encoded.extend_from_slice(&auth.value.to_be_bytes::<32>());
        encoded.extend_from_slice(&U256::from(auth.valid_after).to_be_bytes::<32>());
        encoded.extend_from_slice(&U256::from(auth.valid_before).to_be_bytes::<32>());
        encoded.extend_from_slice(auth.nonce.as_slice());
        let mut envelope = vec![0x19, 0x01];
        envelope
            .extend_from_slice(b256!("0x06c37168a7db5138defc7866392bb87a741f9b3d104deb5094588ce041cae335").as_slice());
        envelope.extend_from_slice(keccak256(&encoded).as_slice());
        assert_eq!(transfer_hash(&usdc_mainnet(), &auth), keccak256(&envelope));
    }

    #[test]
    fn signed_authorization_recovers_the_payer() {
        let key = TestKey::from_seed(9);
        let auth = authorization(key.address());
        let signature = key.sign_prehash(&transfer_hash(&base_usdc(), &auth));
        assert_eq!(recover_transfer_signer(&base_usdc(), &auth, &signature), Ok(key.address()));
    }

    #[test]
    fn changing_any_field_changes_the_signer() {
        let key = TestKey::from_seed(10);
        let domain = base_usdc();
        let auth = authorization(key.address());
        let signature = key.sign_prehash(&transfer_hash(&domain, &auth));
        let other = address!("0x0000000000000000000000000000000000000001");
        let auths = [
            Authorization { value: auth.value + U256::from(1), ..auth.clone() },
            Authorization { nonce: B256::with_last_byte(2), ..auth.clone() },
            Authorization { to: other, ..auth.clone() },
            Authorization { from: other, ..auth.clone() },
            Authorization { valid_after: 1, ..auth.clone() },
            Authorization { valid_before: auth.valid_before + 1, ..auth.clone() },
        ];
        for changed in &auths {
            let recovered = recover_transfer_signer(&domain, changed, &signature);
            assert_ne!(recovered, Ok(key.address()), "{changed:?}");
        }
        let domains = [
            Domain { chain_id: 84532, ..domain.clone() },
            Domain { verifying_contract: other, ..domain.clone() },
            Domain { name: "USDC".into(), ..domain.clone() },
            Domain { version: "1".into(), ..domain.clone() },
        ];
        for changed in &domains {
            let recovered = recover_transfer_signer(changed, &auth, &signature);
            assert_ne!(recovered, Ok(key.address()), "{changed:?}");
        }
    }
}
