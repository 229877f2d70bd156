use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A point-in-time view of a binding's health, as shown by `/v1.0/healthz` and `/v1.0/metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthSnapshot {
    /// Whether the binding currently holds a working connection to its backend.
    pub connected: bool,
    /// The last error the binding reported, if it has not recovered since.
    pub last_error: Option<String>,
    /// When the binding last received an event from its source (input bindings).
    pub last_event: Option<SystemTime>,
    /// How many times the binding reconnected after losing its backend.
    pub reconnects: u64,
}

/// A shared, cheap handle through which a binding reports its health.
///
/// Bindings call [`BindingHealth::connected`] once they can serve, and
/// [`BindingHealth::disconnected`] when they lose their backend; the runtime only reads it.
///
/// ```
/// let h = bindery_core::BindingHealth::default();
/// h.disconnected("connection refused");
/// assert!(!h.snapshot().connected);
/// h.connected();
/// assert_eq!(h.snapshot().reconnects, 1);
/// assert!(h.snapshot().last_error.is_none());
/// ```
#[derive(Debug, Clone, Default)]
pub struct BindingHealth {
    inner: Arc<Mutex<HealthSnapshot>>,
}

impl BindingHealth {
    fn update(&self, f: impl FnOnce(&mut HealthSnapshot)) {
        // A poisoned lock only means a panic elsewhere while updating plain data; keep going.
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard);
    }

    /// The binding can serve. Counts a reconnect when it had been lost before.
    pub fn connected(&self) {
        self.update(|h| {
            if h.last_error.is_some() {
                h.reconnects += 1;
            }
            h.connected = true;
            h.last_error = None;
        });
    }

    /// The binding lost (or never reached) its backend.
    pub fn disconnected(&self, error: impl Into<String>) {
        let error = error.into();
        self.update(|h| {
            h.connected = false;
            h.last_error = Some(error);
        });
    }

    /// An event arrived from the source.
    pub fn event_received(&self) {
        self.update(|h| h.last_event = Some(SystemTime::now()));
    }

    /// The current state.
    pub fn snapshot(&self) -> HealthSnapshot {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
