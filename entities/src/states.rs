//! States of webhook events and handoff claims, as stored (text columns) and as typed
//! values.

use sea_orm::entity::prelude::*;

/// Where a webhook event's delivery is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, serde::Serialize, serde::Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its (next) attempt at `next_attempt_at`.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// A receiver answered 2xx.
    #[sea_orm(string_value = "delivered")]
    Delivered,
    /// Stopped for good: the receiver answered 410, or the address is forbidden.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Every attempt of the schedule failed, or the lease ended before the next one.
    #[sea_orm(string_value = "exhausted")]
    Exhausted,
}

/// Where one claim of a handoff is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, serde::Serialize, serde::Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum ClaimState {
    /// Holding a slot.
    #[sea_orm(string_value = "in_flight")]
    InFlight,
    /// Body sent in full; counted.
    #[sea_orm(string_value = "completed")]
    Completed,
    /// The transfer broke; the slot went back.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// The process holding it stopped answering; the slot went back.
    #[sea_orm(string_value = "abandoned")]
    Abandoned,
}

/// Where an `Idempotency-Key` claim is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, serde::Serialize, serde::Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// The first request is still running.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// The first request's response is stored for replays.
    #[sea_orm(string_value = "done")]
    Done,
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::Iterable;

    #[test]
    fn stored_values_and_json_names_agree() {
        for s in DeliveryState::iter() {
            assert_eq!(serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_owned)), Some(s.to_value()));
        }
        for s in KeyState::iter() {
            assert_eq!(serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_owned)), Some(s.to_value()));
        }
        for s in ClaimState::iter() {
            assert_eq!(serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_owned)), Some(s.to_value()));
        }
    }
}

/// Where an x402 payment is (SPEC §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, serde::Serialize, serde::Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "lowercase")]
pub enum PaymentState {
    /// Its nonce is taken by a request that is verifying, storing or settling it.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// Settled by the facilitator (`tx_hash` set).
    #[sea_orm(string_value = "settled")]
    Settled,
}
