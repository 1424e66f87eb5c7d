//! Effects of a committed write beyond its response, for whoever composes the API with
//! other parts (the embedded shape's worker takes drops' webhook events at once). The API
//! only announces; it knows nothing of who listens.

use std::sync::{Arc, OnceLock};

/// What a committed write announces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Committed {
    /// Webhook events of this lease were written (a drop into a mailbox with a receiver).
    WebhookEvents {
        /// The lease.
        lease_id: leasehold_core::ids::LeaseId,
    },
}

/// A listener of committed writes; called on the request's task, so it must not block.
pub type Hook = Box<dyn Fn(Committed) + Send + Sync>;

/// The after-commit hook of an API instance: none until the composing process installs
/// one (at most once).
#[derive(Clone, Default)]
pub struct AfterCommit(Arc<OnceLock<Hook>>);

impl AfterCommit {
    /// Installs the listener; false if one was installed already.
    pub fn install(&self, hook: Hook) -> bool {
        self.0.set(hook).is_ok()
    }

    /// Announces a committed write.
    pub fn emit(&self, committed: Committed) {
        if let Some(hook) = self.0.get() {
            hook(committed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_reach_the_installed_listener_only() {
        let hook = AfterCommit::default();
        hook.emit(Committed::WebhookEvents { lease_id: "lse_1".into() });
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        assert!(hook.install(Box::new(move |c| sink.lock().expect("lock").push(c))));
        assert!(!hook.install(Box::new(|_| {})), "one listener");
        hook.clone().emit(Committed::WebhookEvents { lease_id: "lse_2".into() });
        assert_eq!(*seen.lock().expect("lock"), vec![Committed::WebhookEvents { lease_id: "lse_2".into() }]);
    }
}
