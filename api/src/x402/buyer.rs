//! Who creates (and pays for) a priced lease, in SPEC §4.2's order: an `Authorization`
//! header is the owner path (an account pays from its balance); else `PAYMENT-SIGNATURE`
//! (v2) or `X-PAYMENT` (v1) is the payment path; else `402 payment_required` when x402 is
//! on, `401` when it is off. The `402` quotes the request's own headers, so it is answered
//! by the handler after validation ([`Buyer::terms`]): nobody is asked to pay for a
//! request that cannot succeed.
//!
//! A wallet session has no balance: it pays each creation with x402 from its own wallet
//! (a payment from another wallet is `402 payment_invalid`, reason `payer_mismatch`;
//! none is `402 payment_required`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use leasehold_core::leases::Owner;

use super::payment::{Payment, invalid};
use super::{Offer, Paying};
use crate::error::ApiError;
use crate::extract::OwnerAuth;
use crate::state::AppState;
use crate::write::Payer;

/// The buyer of a priced creation.
pub struct Buyer {
    owner: Option<OwnerAuth>,
    payment: Option<Result<Payment, String>>,
}

impl FromRequestParts<AppState> for Buyer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let owner = if parts.headers.contains_key(axum::http::header::AUTHORIZATION) || state.config.x402.is_none() {
            Some(OwnerAuth::from_request_parts(parts, state).await?)
        } else {
            None
        };
        let payment = state.config.x402.as_ref().and_then(|_| Payment::from_headers(&parts.headers));
        Ok(Self { owner, payment })
    }
}

impl Buyer {
    /// The owner of the new lease and who pays `cost_micros` for it; `path` and
    /// `description` name what is bought in a `402`.
    pub fn terms(
        self,
        state: &AppState,
        path: &str,
        description: &str,
        cost_micros: i64,
    ) -> Result<(Owner, Payer), ApiError> {
        let session_wallet = match self.owner {
            Some(OwnerAuth::Account(account)) => {
                return Ok((Owner::account(&account.id), Payer::Account(account.id)));
            }
            Some(OwnerAuth::Wallet(session)) => Some(session.wallet),
            None => None,
        };
        let (Some(x), Some(facilitator)) = (&state.config.x402, &state.facilitator) else {
            return Err(ApiError::unauthorized().with("reason", "a wallet session pays with x402, which is off here"));
        };
        let offer = Offer::new(x, &state.url(path), description, cost_micros);
        let payment = match self.payment {
            None => {
                let message = "payment required: pay with x402, or send an API key";
                return Err(offer.answer("payment_required", message, None));
            }
            Some(Err(why)) => {
                tracing::info!(reason = %why, "unreadable x402 payment");
                return Err(invalid(&offer, "invalid_payload"));
            }
            Some(Ok(payment)) => payment,
        };
        let paying = Paying::new(x, payment, offer)?;
        let owner = paying.owner();
        if session_wallet.is_some_and(|w| !w.eq_ignore_ascii_case(&owner.id)) {
            return Err(invalid(paying.offer(), "payer_mismatch"));
        }
        Ok((owner, Payer::X402(Box::new(paying), facilitator.clone())))
    }

    /// The account's balance, when an account pays (a quick refusal before any bytes).
    pub fn balance(&self) -> Option<i64> {
        match &self.owner {
            Some(OwnerAuth::Account(account)) => Some(account.balance_micros),
            _ => None,
        }
    }
}
