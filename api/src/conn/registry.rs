//! The open connections of a process: what each is doing since when, and the cap.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use leasehold_core::config::HttpConfig;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What a connection is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Accepted; no byte yet.
    Opened = 0,
    /// Between two requests of a kept-alive connection.
    Idle = 1,
    /// A request head is arriving.
    Head = 2,
    /// A request is being served (its body read, its response written).
    Busy = 3,
}

impl Phase {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Opened,
            1 => Self::Idle,
            2 => Self::Head,
            _ => Self::Busy,
        }
    }
}

/// One connection's state, shared by its socket wrapper, its service and the watchdog.
pub struct Tracker {
    id: u64,
    epoch: Instant,
    phase: AtomicU8,
    /// Milliseconds after `epoch` when the phase began.
    since_ms: AtomicU64,
    /// Milliseconds after `epoch` when a write started waiting for the client; 0: none.
    write_blocked_ms: AtomicU64,
    evict: CancellationToken,
    registry: std::sync::Weak<Registry>,
}

impl Tracker {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    /// Enters `phase` now.
    pub fn set_phase(&self, phase: Phase) {
        self.since_ms.store(self.now_ms(), Ordering::Release);
        self.phase.store(phase as u8, Ordering::Release);
        if phase != Phase::Busy
            && let Some(registry) = self.registry.upgrade()
        {
            registry.changed.notify_waiters();
        }
    }

    /// Bytes of a request arrived: a head starts, unless one is already under way.
    pub fn on_read(&self) {
        let now = self.now_ms();
        for from in [Phase::Opened, Phase::Idle] {
            if self.phase.compare_exchange(from as u8, Phase::Head as u8, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                self.since_ms.store(now, Ordering::Release);
                return;
            }
        }
    }

    /// A write is waiting for the client to read (`true`), or went through (`false`).
    pub fn on_write(&self, blocked: bool) {
        if blocked {
            if self.write_blocked_ms.load(Ordering::Acquire) == 0 {
                self.write_blocked_ms.store(self.now_ms(), Ordering::Release);
            }
        } else {
            self.write_blocked_ms.store(0, Ordering::Release);
        }
    }

    /// Why the connection must be closed now, if it must.
    pub fn overdue(&self, http: &HttpConfig) -> Option<&'static str> {
        let now = self.now_ms();
        let waited = |since: u64| Duration::from_millis(now.saturating_sub(since));
        let blocked = self.write_blocked_ms.load(Ordering::Acquire);
        if blocked != 0 && waited(blocked) >= http.body_timeout {
            return Some("the client stopped reading the response");
        }
        let since = self.since_ms.load(Ordering::Acquire);
        match self.phase() {
            Phase::Opened | Phase::Head if waited(since) >= http.header_read_timeout => {
                Some("no complete request head within the header-read timeout")
            }
            Phase::Idle if waited(since) >= http.idle_timeout => Some("idle past the keep-alive timeout"),
            _ => None,
        }
    }

    /// Resolves when the registry closes this connection to make room.
    pub async fn evicted(&self) {
        self.evict.cancelled().await;
    }
}

/// Every open connection of the process.
pub struct Registry {
    max: usize,
    epoch: Instant,
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Tracker>>>,
    changed: Notify,
}

impl Registry {
    /// A registry holding at most `max` connections.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            epoch: Instant::now(),
            next: AtomicU64::new(1),
            open: Mutex::new(BTreeMap::new()),
            changed: Notify::new(),
        }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Tracker>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.open().len()
    }

    /// True when no connection is open.
    pub fn is_empty(&self) -> bool {
        self.open().is_empty()
    }

    /// Waits while the registry is full of connections that are all serving a request.
    pub async fn wait_for_room(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let open = self.open();
                if open.len() < self.max || open.values().any(|t| t.phase() != Phase::Busy) {
                    return;
                }
            }
            changed.await;
        }
    }

    /// Records a new connection; over the cap, the one that has waited longest without a
    /// request in progress is closed.
    pub fn register(self: &Arc<Self>) -> Arc<Tracker> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let tracker = Arc::new(Tracker {
            id,
            epoch: self.epoch,
            phase: AtomicU8::new(Phase::Opened as u8),
            since_ms: AtomicU64::new(0),
            write_blocked_ms: AtomicU64::new(0),
            evict: CancellationToken::new(),
            registry: Arc::downgrade(self),
        });
        tracker.since_ms.store(tracker.now_ms(), Ordering::Release);
        let mut open = self.open();
        open.insert(id, tracker.clone());
        while open.len() > self.max {
            let victim = open
                .values()
                .filter(|t| t.id != id && t.phase() != Phase::Busy)
                .min_by_key(|t| t.since_ms.load(Ordering::Acquire))
                .map(|t| t.id);
            let Some(victim) = victim.and_then(|v| open.remove(&v)) else { break };
            victim.evict.cancel();
        }
        tracker
    }

    /// Forgets a closed connection.
    pub fn remove(&self, tracker: &Tracker) {
        self.open().remove(&tracker.id);
        self.changed.notify_waiters();
    }

    /// Resolves once every connection has closed.
    pub async fn drained(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.is_empty() {
                return;
            }
            changed.await;
        }
    }
}

/// The cap on open connections: the configured one, lowered to fit the process's limit
/// on open files (less `reserve` for everything else the process opens).
pub fn effective_max_connections(configured: usize, reserve: usize) -> usize {
    match open_files_limit() {
        Some(limit) if limit > reserve * 2 => configured.min(limit - reserve),
        Some(limit) => configured.min((limit / 2).max(16)),
        None => configured,
    }
}

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits` (Linux).
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn over_the_cap_the_longest_idle_connection_is_closed() {
        let registry = Arc::new(Registry::new(2));
        let busy = registry.register();
        busy.set_phase(Phase::Busy);
        let idle = registry.register();
        idle.set_phase(Phase::Idle);
        let newest = registry.register();
        assert_eq!(registry.len(), 2);
        assert!(idle.evict.is_cancelled(), "the idle connection made room");
        assert!(!busy.evict.is_cancelled() && !newest.evict.is_cancelled());
    }

    #[tokio::test]
    async fn a_registry_full_of_busy_connections_waits() {
        let registry = Arc::new(Registry::new(1));
        let busy = registry.register();
        busy.set_phase(Phase::Busy);
        let wait = tokio::time::timeout(Duration::from_millis(50), registry.wait_for_room()).await;
        assert!(wait.is_err(), "no room while every connection serves a request");
        let waiter = tokio::spawn({
            let registry = registry.clone();
            async move { registry.wait_for_room().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        busy.set_phase(Phase::Idle);
        tokio::time::timeout(Duration::from_secs(1), waiter).await.expect("room once a request ends").expect("join");
    }

    #[test]
    fn phases_time_out_by_their_own_limits() {
        let http = HttpConfig {
            header_read_timeout: Duration::from_millis(0),
            idle_timeout: Duration::from_secs(3600),
            body_timeout: Duration::from_secs(3600),
            max_connections: 16,
        };
        let registry = Arc::new(Registry::new(4));
        let t = registry.register();
        assert!(t.overdue(&http).is_some(), "a silent new connection hits the header-read timeout");
        t.set_phase(Phase::Idle);
        assert!(t.overdue(&http).is_none(), "idle between requests waits for the idle timeout");
        t.on_read();
        assert_eq!(t.phase(), Phase::Head);
        assert!(t.overdue(&http).is_some(), "a head in progress hits the header-read timeout");
        t.set_phase(Phase::Busy);
        assert!(t.overdue(&http).is_none(), "a request in progress is never cut by these");
    }

    #[test]
    fn the_cap_fits_the_open_files_limit() {
        let limit = open_files_limit().expect("linux");
        assert!(effective_max_connections(usize::MAX, 256) < limit);
        assert_eq!(effective_max_connections(16, 256), 16);
    }
}
