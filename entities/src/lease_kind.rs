//! The lease's variant, state and owner kind, as stored (text columns) and as typed values.

use sea_orm::entity::prelude::*;

/// What a lease holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, serde::Serialize, serde::Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// A write-once file.
    #[sea_orm(string_value = "storage")]
    Storage,
    /// A drop point.
    #[sea_orm(string_value = "mailbox")]
    Mailbox,
    /// A versioned state slot.
    #[sea_orm(string_value = "checkpoint")]
    Checkpoint,
}

impl Variant {
    /// Every variant.
    pub const ALL: [Self; 3] = [Self::Storage, Self::Mailbox, Self::Checkpoint];

    /// The name as stored and shown (`storage`, `mailbox`, `checkpoint`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Storage => "storage",
            Self::Mailbox => "mailbox",
            Self::Checkpoint => "checkpoint",
        }
    }

    /// The variant of a name, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == name)
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a lease is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, serde::Serialize, serde::Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "lowercase")]
pub enum LeaseState {
    /// Serving (until its expiry instant).
    #[sea_orm(string_value = "active")]
    Active,
    /// Past its expiry instant (a tombstone).
    #[sea_orm(string_value = "expired")]
    Expired,
    /// Deleted by its owner or its last claim (a tombstone).
    #[sea_orm(string_value = "deleted")]
    Deleted,
}

impl LeaseState {
    /// Every state.
    pub const ALL: [Self; 3] = [Self::Active, Self::Expired, Self::Deleted];

    /// The name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Deleted => "deleted",
        }
    }

    /// The state of a name, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for LeaseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_stored_values() {
        for v in Variant::ALL {
            assert_eq!(Variant::parse(v.as_str()), Some(v));
            assert_eq!(v.to_value(), v.as_str());
        }
        for s in LeaseState::ALL {
            assert_eq!(LeaseState::parse(s.as_str()), Some(s));
            assert_eq!(s.to_value(), s.as_str());
        }
        assert_eq!(Variant::parse("Storage"), None);
    }
}

/// Who may own leases and handoffs (SPEC §4): an operator-made account, or a wallet that
/// paid (§4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, serde::Serialize, serde::Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "lowercase")]
pub enum OwnerKind {
    /// An account with API keys and a prepaid balance.
    #[sea_orm(string_value = "account")]
    Account,
    /// A wallet address (EIP-55).
    #[sea_orm(string_value = "wallet")]
    Wallet,
}

impl OwnerKind {
    /// The name as stored and shown (`account`, `wallet`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Wallet => "wallet",
        }
    }
}

impl std::fmt::Display for OwnerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
