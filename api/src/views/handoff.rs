//! Handoffs.

use leasehold_core::time::rfc3339;
use leasehold_entities::{handoff, lease};
use serde_json::{Value, json};

use super::urls::{self, url};
use crate::state::AppState;

/// The public JSON of a handoff (never its token).
pub fn handoff_json(h: &handoff::Model) -> Value {
    json!({
        "handoff_id": h.id,
        "lease_id": h.lease_id,
        "max_claims": h.max_claims,
        "claims_completed": h.claims_completed,
        "claims_in_flight": h.claims_in_flight,
        "delete_on_claim": h.delete_on_claim,
        "created_at": rfc3339(h.created_at),
        "expires_at": rfc3339(h.expires_at),
        "revoked_at": h.revoked_at.map(rfc3339),
    })
}

/// The 201 body of an issued handoff, with its token and claim URL.
pub fn handoff_issued(state: &AppState, h: &handoff::Model, lease: &lease::Model, token: &str) -> Value {
    json!({
        "status": "ok",
        "handoff_id": h.id,
        "handoff_token": token,
        "claim_url": url(state, urls::CLAIM, token),
        "lease_id": lease.id,
        "variant": lease.variant,
        "max_claims": h.max_claims,
        "delete_on_claim": h.delete_on_claim,
        "created_at": rfc3339(h.created_at),
        "expires_at": rfc3339(h.expires_at),
        "lease_expires_at": rfc3339(lease.expires_at),
    })
}
