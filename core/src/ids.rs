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

/// A new payment id, `pay_<ULID>`.
pub fn payment_id() -> String {
    format!("pay_{}", Ulid::generate())
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

/// Declares an id newtype: the text as sent and stored (serialized as a bare string, so
/// queued job payloads keep their shape), compared and shown as that text.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type! {
    /// A lease id (`lse_<ULID>`) where it crosses crates: job payloads, after-commit
    /// announcements.
    LeaseId
}

id_type! {
    /// A webhook event id (`evt_<ULID>`) where it crosses crates: delivery jobs.
    EventId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_types_serialize_as_bare_text() {
        let id = LeaseId::from("lse_1");
        assert_eq!(serde_json::to_string(&id).expect("json"), "\"lse_1\"");
        assert_eq!(serde_json::from_str::<EventId>("\"evt_2\"").expect("json").as_str(), "evt_2");
        assert_eq!(id.to_string(), "lse_1");
    }

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
