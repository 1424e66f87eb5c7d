//! An account with a prepaid balance.

use sea_orm::entity::prelude::*;

/// A row of `account`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account")]
pub struct Model {
    /// `acct_<ULID>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Display name.
    pub name: String,
    /// Prepaid balance in micros; never negative.
    pub balance_micros: i64,
    /// Creation time (unix ms).
    pub created_at: i64,
}

/// Relations of `account`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
