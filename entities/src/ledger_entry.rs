//! One charge or credit of an account.

use sea_orm::entity::prelude::*;

/// A row of `ledger_entry`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_entry")]
pub struct Model {
    /// ULID; orders entries by time.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Account charged or credited.
    pub account_id: String,
    /// `charge` or `credit`.
    pub kind: String,
    /// Amount in micros, always positive; `kind` gives the direction.
    pub amount_micros: i64,
    /// Balance right after this entry.
    pub balance_after_micros: i64,
    /// Lease paid for, for charges.
    pub lease_id: Option<String>,
    /// Operator's note, for credits.
    pub memo: Option<String>,
    /// Time of the entry (unix ms).
    pub created_at: i64,
}

/// Relations of `ledger_entry`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
