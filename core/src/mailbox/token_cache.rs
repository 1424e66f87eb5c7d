//! Drop tokens recently looked up, so a burst of drops does not read the mailbox row for
//! each.

use leasehold_entities::lease;
use sea_orm::{ConnectionTrait, DbErr};

use super::find_by_drop_token_hash;
use crate::tokens;

/// Drop tokens recently looked up, so a burst of drops into one mailbox does not read its
/// row for each. A cached row can be stale by up to the TTL, which is harmless: it only
/// serves the quick checks before the bytes are stored, and the commit's conditional
/// `UPDATE` re-checks state, expiry and room against the database.
#[derive(Debug)]
pub struct TokenCache {
    ttl_ms: i64,
    entries: std::sync::Mutex<std::collections::HashMap<String, (lease::Model, i64)>>,
}

/// Entries kept before the cache starts over.
const TOKEN_CACHE_MAX: usize = 10_000;

impl TokenCache {
    /// A cache whose entries live `ttl_ms`.
    pub fn new(ttl_ms: i64) -> Self {
        Self { ttl_ms, entries: std::sync::Mutex::default() }
    }

    /// The Mailbox this token opens (`None`: no such token); `fresh` skips the cache.
    pub async fn find(
        &self,
        db: &impl ConnectionTrait,
        token: &str,
        now: i64,
        fresh: bool,
    ) -> Result<Option<lease::Model>, DbErr> {
        if !tokens::is_drop_token(token) {
            return Ok(None);
        }
        let hash = tokens::sha256_hex(token.as_bytes());
        let lock = || self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !fresh
            && let Some((lease, at)) = lock().get(&hash)
            && now - at < self.ttl_ms
        {
            return Ok(Some(lease.clone()));
        }
        let found = find_by_drop_token_hash(db, &hash).await?;
        if let Some(lease) = &found {
            let mut entries = lock();
            if entries.len() >= TOKEN_CACHE_MAX {
                entries.clear();
            }
            entries.insert(hash, (lease.clone(), now));
        }
        Ok(found)
    }
}
