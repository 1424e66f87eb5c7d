//! The paying side, for this project's own tools (the benchmarks): an `exact` EVM payment
//! for v2 requirements, signed the way the official clients sign — `validAfter` ten
//! minutes back, `validBefore` = now + `maxTimeoutSeconds`, the EIP-712
//! `TransferWithAuthorization` over the asset's domain.

use leasehold_core::evm::{self, Authorization, B256, Domain, TestKey, U256};

use super::wire::{Authorization as WireAuthorization, ExactPayload, PaymentRequiredV2, PaymentV2};

/// A signed v2 payment of the first accepted requirements, with this nonce; `None` when
/// the requirements are not an `exact` EVM payment this signer understands.
pub fn sign_v2(key: &TestKey, required: &PaymentRequiredV2, now_s: u64, nonce: B256) -> Option<PaymentV2> {
    let accepted = required.accepts.first()?.clone();
    let extra = accepted.extra.clone()?;
    let pay_to = evm::parse_address(&accepted.pay_to.to_ascii_lowercase())?;
    let value: u128 = accepted.amount.parse().ok()?;
    let auth = Authorization {
        from: key.address(),
        to: pay_to,
        value: U256::from(value),
        valid_after: now_s.saturating_sub(600),
        valid_before: now_s + accepted.max_timeout_seconds,
        nonce,
    };
    let domain = Domain {
        name: extra.name,
        version: extra.version,
        chain_id: evm::chain_id(&accepted.network)?,
        verifying_contract: evm::parse_address(&accepted.asset.to_ascii_lowercase())?,
    };
    let signature = key.sign_prehash(&evm::transfer_hash(&domain, &auth));
    let authorization = WireAuthorization {
        from: evm::checksum(&auth.from),
        to: accepted.pay_to.clone(),
        value: value.to_string(),
        valid_after: auth.valid_after.to_string(),
        valid_before: auth.valid_before.to_string(),
        nonce: format!("{nonce:#x}"),
    };
    Some(PaymentV2 {
        x402_version: 2,
        resource: Some(required.resource.clone()),
        accepted,
        payload: ExactPayload { signature, authorization },
        extensions: None,
    })
}
