//! secp256k1 signatures as wallets hand them over (65 bytes `r ‖ s ‖ v`, hex) and
//! recovery of the signing address, plus a deterministic local signer for tests.
//!
//! Parsing is deliberately stricter than `alloy-primitives`: only `v` ∈ {0, 1, 27, 28}
//! is accepted (no EIP-155 values, which have no place in message signatures), and a
//! signature whose `s` lies in the upper half of the curve order is rejected as EIP-2
//! demands. alloy would silently normalise such an `s`, which makes every signature
//! malleable: the same authorisation would then have two valid encodings.

use alloy_primitives::{Address, B256, Signature, eip191_hash_message, keccak256};
use k256::ecdsa::SigningKey;

/// Half the secp256k1 group order, `n / 2`, big-endian: the largest `s` EIP-2 allows.
const HALF_ORDER: [u8; 32] = [
    0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x5D, 0x57, 0x6E,
    0x73, 0x57, 0xA4, 0x50, 0x1D, 0xDF, 0xE9, 0x2F, 0x46, 0x68, 0x1B, 0x20, 0xA0,
];

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature is not exactly 65 bytes.
    #[error("signature must be exactly 65 bytes")]
    Length,
    /// The signature is not hexadecimal.
    #[error("signature is not hex")]
    Encoding,
    /// The last byte (`v`) is not 0, 1, 27 or 28.
    #[error("signature recovery id must be 0, 1, 27 or 28")]
    RecoveryId,
    /// `s` is above half the curve order (a malleable signature, refused by EIP-2).
    #[error("signature s value is above half the curve order")]
    HighS,
    /// No public key could be recovered from the signature and hash.
    #[error("signature does not recover a public key")]
    Invalid,
}

/// Parses a 65-byte `r ‖ s ‖ v` signature from hex, with or without `0x`.
///
/// Rejects a `v` outside {0, 1, 27, 28} and a high `s` (see the module docs).
pub fn parse_signature(hex_sig: &str) -> Result<Signature, SignatureError> {
    let digits = hex_sig.strip_prefix("0x").unwrap_or(hex_sig);
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SignatureError::Encoding);
    }
    if digits.len() != 130 {
        return Err(SignatureError::Length);
    }
    let mut bytes = [0u8; 65];
    hex::decode_to_slice(digits, &mut bytes).map_err(|_| SignatureError::Encoding)?;
    let y_parity = match bytes[64] {
        0 | 27 => false,
        1 | 28 => true,
        _ => return Err(SignatureError::RecoveryId),
    };
    if bytes[32..64] > HALF_ORDER[..] {
        return Err(SignatureError::HighS);
    }
    Ok(Signature::from_bytes_and_parity(&bytes[..64], y_parity))
}

/// Recovers the address that signed a 32-byte hash.
pub fn recover_prehash(hash: &B256, signature_hex: &str) -> Result<Address, SignatureError> {
    let signature = parse_signature(signature_hex)?;
    signature.recover_address_from_prehash(hash).map_err(|_| SignatureError::Invalid)
}

/// Recovers the address that signed `message` with `personal_sign` (EIP-191 version
/// `0x45`): the hash is keccak256 of `"\x19Ethereum Signed Message:\n"`, the message
/// length in decimal, then the message bytes.
pub fn recover_personal_sign(message: &[u8], signature_hex: &str) -> Result<Address, SignatureError> {
    recover_prehash(&eip191_hash_message(message), signature_hex)
}

/// A local secp256k1 key that signs like a wallet: for tests and the project's own
/// test tooling, never for real funds (its secrets are derivable from a `u8`).
#[derive(Clone, Debug)]
pub struct TestKey {
    key: SigningKey,
}

impl TestKey {
    /// The key numbered `seed`: its secret is keccak256 of the single byte `seed`
    /// (re-hashed in the astronomically unlikely case that is not a valid scalar), so
    /// the same seed always gives the same address.
    pub fn from_seed(seed: u8) -> Self {
        let mut secret = keccak256([seed]);
        loop {
            if let Some(key) = Self::from_secret(&secret) {
                return key;
            }
            secret = keccak256(secret);
        }
    }

    /// The key with this 32-byte big-endian secret, or `None` if it is zero or not
    /// below the curve order.
    pub fn from_secret(secret: &B256) -> Option<Self> {
        SigningKey::from_slice(secret.as_slice()).ok().map(|key| Self { key })
    }

    /// The Ethereum address of the key.
    pub fn address(&self) -> Address {
        Address::from_private_key(&self.key)
    }

    /// Signs a 32-byte hash (RFC 6979, deterministic) and returns `0x` + 65 bytes hex,
    /// `r ‖ s ‖ v` with low `s` and `v` = 27 or 28.
    ///
    /// Signing can only fail if RFC 6979 yields a zero `r` or `s` (probability about
    /// 2⁻²⁵⁶); the all-zero signature returned then is refused by every verifier.
    pub fn sign_prehash(&self, hash: &B256) -> String {
        let mut bytes = [0u8; 65];
        if let Ok((signature, recovery_id)) = self.key.sign_prehash_recoverable(hash.as_slice()) {
            bytes[..64].copy_from_slice(&signature.to_bytes());
            bytes[64] = 27 + u8::from(recovery_id.is_y_odd());
        }
        format!("0x{}", hex::encode(bytes))
    }

    /// Signs `message` as `personal_sign` does (see [`recover_personal_sign`]).
    pub fn sign_personal(&self, message: &[u8]) -> String {
        self.sign_prehash(&eip191_hash_message(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{U256, address, b256};

    /// secp256k1 group order n.
    const ORDER: U256 = U256::from_be_bytes([
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xBA, 0xAE,
        0xDC, 0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36, 0x41, 0x41,
    ]);

    fn raw(signature_hex: &str) -> [u8; 65] {
        let mut bytes = [0u8; 65];
        hex::decode_to_slice(&signature_hex[2..], &mut bytes).expect("65-byte hex");
        bytes
    }

    fn to_hex(bytes: &[u8]) -> String {
        format!("0x{}", hex::encode(bytes))
    }

    #[test]
    fn half_order_constant_is_n_over_two() {
        assert_eq!(U256::from_be_bytes(HALF_ORDER), ORDER >> 1);
    }

    #[test]
    fn personal_sign_round_trips_with_every_v_encoding() {
        let key = TestKey::from_seed(1);
        let message = b"Sign in to Leasehold.";
        let signature = key.sign_personal(message);
        let mut bytes = raw(&signature);
        assert!(bytes[64] == 27 || bytes[64] == 28, "v = {}", bytes[64]);
        assert_eq!(recover_personal_sign(message, &signature), Ok(key.address()));
        bytes[64] -= 27;
        let zero_one = to_hex(&bytes);
        assert_eq!(recover_personal_sign(message, &zero_one), Ok(key.address()));
        assert_eq!(recover_personal_sign(message, &zero_one[2..]), Ok(key.address()));
    }

    #[test]
    fn tampered_message_or_flipped_v_recovers_another_address() {
        let key = TestKey::from_seed(2);
        let signature = key.sign_personal(b"pay 1 USDC");
        let other = recover_personal_sign(b"pay 9 USDC", &signature).expect("recovers");
        assert_ne!(other, key.address());
        let mut bytes = raw(&signature);
        bytes[64] = 55 - bytes[64]; // 27 <-> 28
        let flipped = recover_personal_sign(b"pay 1 USDC", &to_hex(&bytes)).expect("recovers");
        assert_ne!(flipped, key.address());
    }

    /// @metamask/eth-sig-util's `personalSign` vector.
    #[test]
    fn known_personal_sign_vector() {
        let signature = "0x90a938f7457df6e8f741264c32697fc52f9a8f867c52dd70713d9d2d472f2e415d9c94148991bbe1f4a1818d1dff09165782749c877f5cf1eff4ef126e55714d1c";
        let signer = address!("0x29c76e6ad8f28bb1004902578fb108c507be341b");
        assert_eq!(recover_personal_sign(b"Hello, world!", signature), Ok(signer));
        let secret = b256!("0x4af1bceebf7f3634ec3cff8a2c38e51178d5d4ce585c52d6043e5e2cc3418bb0");
        let key = TestKey::from_secret(&secret).expect("valid secret");
        assert_eq!(key.address(), signer);
        assert_eq!(key.sign_personal(b"Hello, world!"), signature);
    }

    /// A second eth-sig-util vector, whose key is 32 bytes of 0x69.
    #[test]
    fn known_personal_sign_vector_low_v() {
        let signature = "0xce909e8ea6851bc36c007a0072d0524b07a3ff8d4e623aca4c71ca8e57250c4d0a3fc38fa8fbaaa81ead4b9f6bd03356b6f8bf18bccad167d78891636e1d69561b";
        let signer = address!("0xbe93f9bacbcffc8ee6663f2647917ed7a20a57bb");
        assert_eq!(recover_personal_sign(b"hello world", signature), Ok(signer));
        let key = TestKey::from_secret(&B256::repeat_byte(0x69)).expect("valid secret");
        assert_eq!(key.sign_personal(b"hello world"), signature);
    }

    /// The `Mail` example of the EIP-712 specification: digest, signature and signer
    /// (whose secret is keccak256("cow")).
    #[test]
    fn known_prehash_vector() {
        let digest = b256!("0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2");
        let signature = "0x4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b915621c";
        let signer = address!("0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826");
        assert_eq!(recover_prehash(&digest, signature), Ok(signer));
        let key = TestKey::from_secret(&keccak256("cow")).expect("valid secret");
        assert_eq!(key.address(), signer);
        assert_eq!(key.sign_prehash(&digest), signature);
    }

    #[test]
    fn wrong_lengths_and_encodings_are_refused() {
        let signature = TestKey::from_seed(3).sign_personal(b"x");
        assert_eq!(parse_signature(&signature[..130]), Err(SignatureError::Length));
        assert_eq!(parse_signature(&format!("{signature}00")), Err(SignatureError::Length));
        assert_eq!(parse_signature(&format!("{signature}0")), Err(SignatureError::Length));
        assert_eq!(parse_signature(""), Err(SignatureError::Length));
        let not_hex = format!("{}zz", &signature[..130]);
        assert_eq!(parse_signature(&not_hex), Err(SignatureError::Encoding));
        assert_eq!(parse_signature(&format!(" {signature}")), Err(SignatureError::Encoding));
    }

    #[test]
    fn recovery_ids_outside_the_four_are_refused() {
        let mut bytes = raw(&TestKey::from_seed(4).sign_personal(b"x"));
        for v in [2u8, 26, 29, 35, 36, 255] {
            bytes[64] = v;
            assert_eq!(parse_signature(&to_hex(&bytes)), Err(SignatureError::RecoveryId), "v={v}");
        }
    }

    #[test]
    fn high_s_twin_is_refused() {
        let key = TestKey::from_seed(5);
        let message = b"malleable";
        let mut bytes = raw(&key.sign_personal(message));
        let s = U256::from_be_slice(&bytes[32..64]);
        bytes[32..64].copy_from_slice(&(ORDER - s).to_be_bytes::<32>());
        bytes[64] = 55 - bytes[64]; // 27 <-> 28: the twin recovers the same key
        let twin = to_hex(&bytes);
        assert_eq!(recover_personal_sign(message, &twin), Err(SignatureError::HighS));
        // alloy alone would accept the twin: the explicit check is what refuses it.
        let lenient = Signature::from_raw(&bytes).expect("alloy parses it");
        let hash = eip191_hash_message(message);
        assert_eq!(lenient.recover_address_from_prehash(&hash).ok(), Some(key.address()));
    }

    #[test]
    fn s_equal_to_half_order_is_allowed_and_one_more_is_not() {
        let mut bytes = [0u8; 65];
        bytes[31] = 1;
        bytes[32..64].copy_from_slice(&HALF_ORDER);
        bytes[64] = 27;
        assert!(parse_signature(&to_hex(&bytes)).is_ok());
        bytes[63] += 1;
        assert_eq!(parse_signature(&to_hex(&bytes)), Err(SignatureError::HighS));
    }

    #[test]
    fn unrecoverable_signature_is_invalid() {
        let zero = to_hex(&[0u8; 65]);
        assert_eq!(recover_prehash(&B256::ZERO, &zero), Err(SignatureError::Invalid));
    }

    #[test]
    fn seeds_give_distinct_deterministic_keys() {
        let addresses: std::collections::HashSet<Address> =
            (0..=u8::MAX).map(|seed| TestKey::from_seed(seed).address()).collect();
        assert_eq!(addresses.len(), 256);
        assert_eq!(TestKey::from_seed(7).address(), TestKey::from_seed(7).address());
        let expected = TestKey::from_secret(&keccak256([7u8])).expect("valid").address();
        assert_eq!(TestKey::from_seed(7).address(), expected);
    }
}
