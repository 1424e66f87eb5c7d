//! Wakes long polls and event streams when a drop commits, on every pod: PostgreSQL
//! `LISTEN/NOTIFY` in the distributed shape (the drop's transaction sends the `NOTIFY`, so
//! it arrives only if the drop committed), an in-process channel in the embedded shape
//! (SQLite has one process; every instance on the same database file in that process
//! shares one hub).
//!
//! A wake-up only says "look again": waiters re-read the database, so a lost or duplicate
//! notification costs at most a query, never a message.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use leasehold_core::mailbox::NOTIFY_CHANNEL;
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::watch;

/// Waiters per mailbox; the value is a generation counter bumped on every wake-up.
#[derive(Debug, Default)]
struct Hub {
    waiters: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<u64>>> {
        self.waiters.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wake(&self, lease_id: &str) {
        if let Some(tx) = self.lock().get(lease_id) {
            tx.send_modify(|g| *g = g.wrapping_add(1));
        }
    }

    fn wake_all(&self) {
        for tx in self.lock().values() {
            tx.send_modify(|g| *g = g.wrapping_add(1));
        }
    }
}

/// Embedded hubs, one per SQLite database URL, shared by every instance in this process.
static EMBEDDED: LazyLock<Mutex<HashMap<String, Weak<Hub>>>> = LazyLock::new(Default::default);

/// The wake-up service of one API instance.
#[derive(Clone, Debug)]
pub struct Wake {
    hub: Arc<Hub>,
}

impl Wake {
    /// Joins the process's hub for this SQLite file, or starts listening on PostgreSQL.
    pub async fn start(db: &DatabaseConnection, database_url: &str) -> anyhow::Result<Self> {
        if db.get_database_backend() != DbBackend::Postgres {
            let mut hubs = EMBEDDED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            hubs.retain(|_, hub| hub.strong_count() > 0);
            if let Some(hub) = hubs.get(database_url).and_then(Weak::upgrade) {
                return Ok(Self { hub });
            }
            let hub = Arc::new(Hub::default());
            hubs.insert(database_url.to_owned(), Arc::downgrade(&hub));
            return Ok(Self { hub });
        }
        let hub = Arc::new(Hub::default());
        let mut listener = PgListener::connect_with(db.get_postgres_connection_pool()).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        tokio::spawn(listen(listener, Arc::downgrade(&hub)));
        Ok(Self { hub })
    }

    /// Wakes this process's waiters on `lease_id` (other pods hear the drop's `NOTIFY`).
    pub fn notify(&self, lease_id: &str) {
        self.hub.wake(lease_id);
    }

    /// Registers interest in `lease_id`; call before reading, then wait on
    /// [`Subscription::changed`].
    pub fn subscribe(&self, lease_id: &str) -> Subscription {
        let rx = self.hub.lock().entry(lease_id.to_owned()).or_insert_with(|| watch::channel(0).0).subscribe();
        Subscription { rx, hub: self.hub.clone(), lease_id: lease_id.to_owned() }
    }
}

/// Forwards notifications to the hub until the hub is gone. A lost connection is
/// re-established by the listener; everything is woken then, since notifications sent
/// meanwhile are lost.
async fn listen(mut listener: PgListener, hub: Weak<Hub>) {
    loop {
        let received = listener.try_recv().await;
        let Some(hub) = hub.upgrade() else { return };
        match received {
            Ok(Some(n)) => hub.wake(n.payload()),
            Ok(None) => {
                tracing::warn!("mailbox notification connection lost; reconnected, waking every waiter");
                hub.wake_all();
            }
            Err(e) => {
                tracing::warn!(error = %e, "mailbox notification listener failed; retrying");
                hub.wake_all();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Interest in one mailbox; dropping it unregisters.
#[derive(Debug)]
pub struct Subscription {
    rx: watch::Receiver<u64>,
    hub: Arc<Hub>,
    lease_id: String,
}

impl Subscription {
    /// Resolves at the next wake-up after the last one seen.
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut waiters = self.hub.lock();
        if waiters.get(&self.lease_id).is_some_and(|tx| tx.receiver_count() <= 1) {
            waiters.remove(&self.lease_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_reaches_subscribers_of_that_mailbox_only() {
        let wake = Wake { hub: Arc::new(Hub::default()) };
        let mut a = wake.subscribe("lse_a");
        let mut b = wake.subscribe("lse_b");
        wake.notify("lse_a");
        tokio::time::timeout(Duration::from_secs(1), a.changed()).await.expect("a woke");
        assert!(tokio::time::timeout(Duration::from_millis(50), b.changed()).await.is_err(), "b did not");
        drop(a);
        drop(b);
        assert!(wake.hub.lock().is_empty(), "unsubscribing cleans up");
    }
}
