//! Public identifiers: a type prefix and a ULID (SPEC §2).

use ulid::Ulid;

/// A new lease id, `lse_<ULID>`.
pub fn lease_id() -> String {
    format!("lse_{}", Ulid::generate())
}

/// A new message id, `msg_<ULID>`.
pub fn message_id() -> String {
    format!("msg_{}", Ulid::generate())
}

/// A new handoff id, `hnd_<ULID>`.
pub fn handoff_id() -> String {
    format!("hnd_{}", Ulid::generate())
}

/// A new account id, `acct_<ULID>`.
pub fn account_id() -> String {
    format!("acct_{}", Ulid::generate())
}

/// A new internal row id (ledger entries, API keys): a bare ULID.
pub fn row_id() -> String {
    Ulid::generate().to_string()
}

/// A new webhook event id, `evt_<ULID>`.
pub fn event_id() -> String {
    format!("evt_{}", Ulid::generate())
}

/// True when `id` is `<prefix>_` followed by a well-formed ULID.
pub fn is_valid(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|ulid| ulid.len() == 26 && Ulid::from_string(ulid).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_prefixed() {
        let id = lease_id();
        assert!(is_valid("lse", &id), "{id}");
        assert!(!is_valid("acct", &id));
        assert!(is_valid("acct", &account_id()));
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in ["", "lse_", "lse_123", "lse_../../etc", "lse-01ARZ3NDEKTSV4RRFFQ69G5FAV"] {
            assert!(!is_valid("lse", bad), "{bad}");
        }
        assert!(is_valid("lse", "lse_01ARZ3NDEKTSV4RRFFQ69G5FAV"));
    }
}
