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
/// A handle made with [`BindingHealth::named`] (the runtime makes one per binding) also logs
/// each change of state once, whichever binding reports it: `binding connection lost` (warn, with
/// the `reason`) when a connected binding loses its backend, `binding connected` or `binding
/// connection recovered` (info) when it serves again. Reports that change nothing are debug.
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
    inner: Arc<Mutex<State>>,
    /// The binding's name and type, for the transition logs; `None` logs nothing.
    label: Option<Arc<(String, String)>>,
}

#[derive(Debug, Default)]
struct State {
    snapshot: HealthSnapshot,
    /// Whether the binding was ever connected, to tell a recovery from a late first connect.
    ever_connected: bool,
}

/// A change of state worth a log line.
enum Transition {
    Connected { after: Option<String> },
    Recovered { after: String, reconnects: u64 },
    Lost { reason: String },
    Unchanged,
}

impl BindingHealth {
    /// A handle for binding `name` of type `type_name` that logs its changes of state.
    pub fn named(name: &str, type_name: &str) -> Self {
        BindingHealth {
            inner: Arc::default(),
            label: Some(Arc::new((name.to_owned(), type_name.to_owned()))),
        }
    }

    fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A poisoned lock only means a panic elsewhere while updating plain data; keep going.
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// The binding can serve. Counts a reconnect when it had been lost before.
    pub fn connected(&self) {
        let transition = self.update(|s| {
            let h = &mut s.snapshot;
            let was_connected = h.connected;
            let error = h.last_error.take();
            if error.is_some() {
                h.reconnects += 1;
            }
            h.connected = true;
            let ever = std::mem::replace(&mut s.ever_connected, true);
            match error {
                Some(after) if ever => Transition::Recovered {
                    after,
                    reconnects: h.reconnects,
                },
                after if !was_connected => Transition::Connected { after },
                _ => Transition::Unchanged,
            }
        });
        self.log(transition);
    }

    /// The binding lost (or never reached) its backend.
    pub fn disconnected(&self, error: impl Into<String>) {
        let error = error.into();
        let was_connected = self.update(|s| {
            s.snapshot.last_error = Some(error.clone());
            std::mem::replace(&mut s.snapshot.connected, false)
        });
        if was_connected {
            self.log(Transition::Lost { reason: error });
        } else if let Some(label) = &self.label {
            tracing::debug!(binding = %label.0, r#type = %label.1, reason = %error, "binding still not connected");
        }
    }

    fn log(&self, transition: Transition) {
        let Some(label) = &self.label else { return };
        let (name, type_name) = (&label.0, &label.1);
        match transition {
            Transition::Lost { reason } => {
                tracing::warn!(binding = %name, r#type = %type_name, reason = %reason, "binding connection lost");
            }
            Transition::Recovered { after, reconnects } => {
                tracing::info!(binding = %name, r#type = %type_name, reconnects, after = %after, "binding connection recovered");
            }
            Transition::Connected { after: Some(after) } => {
                tracing::info!(binding = %name, r#type = %type_name, after = %after, "binding connected");
            }
            Transition::Connected { after: None } => {
                tracing::debug!(binding = %name, r#type = %type_name, "binding connected");
            }
            Transition::Unchanged => {}
        }
    }

    /// An event arrived from the source.
    pub fn event_received(&self) {
        self.update(|s| s.snapshot.last_event = Some(SystemTime::now()));
    }

    /// The current state.
    pub fn snapshot(&self) -> HealthSnapshot {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .snapshot
            .clone()
    }
}
