//! JSON shapes shared by several routes and the CLI.

use leasehold_core::time::rfc3339;
use leasehold_entities::account;
use serde_json::{Value, json};

/// The public JSON of an account.
pub fn account(a: &account::Model) -> Value {
    json!({
        "account_id": a.id,
        "name": a.name,
        "balance_micros": a.balance_micros.to_string(),
        "created_at": rfc3339(a.created_at),
    })
}
