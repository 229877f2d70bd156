//! The runtime: the table of running bindings and their lifecycle.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use bindery_core::{BindingError, BindingHealth, ComponentContext, InputBinding, OutputBinding};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::AppChannel;
use crate::loader::{ComponentDef, ConfigIssue, Loaded, OtherComponent};
use crate::options::RuntimeOptions;
use crate::resiliency::{Direction, Policy, Resiliency};

/// The version reported by `/v1.0/metadata` and `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Whether the app subscribed to an input binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    /// Not asked yet (no app, or the app is not reachable yet).
    Unknown,
    /// The app wants the events; the binding reads.
    Subscribed,
    /// The app said no (404, or not in `ListInputBindings`).
    NotSubscribed,
}

/// One binding component and its running sides.
pub(crate) struct Binding {
    pub(crate) def: ComponentDef,
    pub(crate) health: BindingHealth,
    pub(crate) output: RwLock<Option<Arc<dyn OutputBinding>>>,
    pub(crate) input: Mutex<Option<Arc<dyn InputBinding>>>,
    pub(crate) subscription: Mutex<Subscription>,
    /// Stops this binding's background work (connect retries, read loop).
    pub(crate) stop: CancellationToken,
    /// This binding's read loop, connect retries and deliveries in flight.
    pub(crate) tasks: TaskTracker,
    /// Whether its input side was started (probed and reading), so it starts once.
    started: AtomicBool,
    /// Stops the current read loop only (pause), a child of `stop`.
    reading: Mutex<Option<CancellationToken>>,
    /// When the current read loop started, for the stall watchdog.
    reading_since: Mutex<Option<std::time::Instant>>,
    /// Copies of delivered events for `bindery tap`; sent only while someone listens.
    pub(crate) tap: tokio::sync::broadcast::Sender<Arc<TapEvent>>,
}

/// A copy of one input event and what became of it, for `bindery tap`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TapEvent {
    /// The input binding.
    pub binding: String,
    /// The event's metadata.
    pub metadata: std::collections::HashMap<String, String>,
    /// The event's payload.
    #[serde(skip)]
    pub data: bytes::Bytes,
    /// What became of it: `accepted`, `dropped`, `dead-lettered`, `failed`, `closed`.
    pub outcome: String,
}

impl Binding {
    fn new(def: ComponentDef) -> Arc<Binding> {
        Arc::new(Binding {
            health: BindingHealth::named(&def.name, &def.type_name),
            def,
            output: RwLock::new(None),
            input: Mutex::new(None),
            subscription: Mutex::new(Subscription::Unknown),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            started: AtomicBool::new(false),
            reading: Mutex::new(None),
            reading_since: Mutex::new(None),
            tap: tokio::sync::broadcast::channel(TAP_CAPACITY).0,
        })
    }

    pub(crate) fn output(&self) -> Option<Arc<dyn OutputBinding>> {
        self.output
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn context(&self, app_id: &str) -> ComponentContext {
        ComponentContext {
            name: self.def.name.clone(),
            app_id: app_id.to_owned(),
            metadata: self.def.metadata.clone(),
            health: self.health.clone(),
        }
    }

    pub(crate) fn subscription(&self) -> Subscription {
        *self.subscription.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_subscription(&self, s: Subscription) {
        *self.subscription.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }

    /// Whether this binding is serving: its output is built and its input (if reading) is
    /// connected.
    fn ready(&self) -> Result<(), String> {
        let snap = self.health.snapshot();
        // An output counts once it is built, and only while its binding reports a working
        // connection (a binding that lost its backend says so through its health handle).
        if self.def.sides.output && (self.output().is_none() || !snap.connected) {
            return Err(snap
                .last_error
                .unwrap_or_else(|| "output not connected yet".into()));
        }
        if self.def.sides.input
            && self.subscription() == Subscription::Subscribed
            && !snap.connected
        {
            return Err(snap
                .last_error
                .unwrap_or_else(|| "input not connected yet".into()));
        }
        Ok(())
    }
}

/// A component as `/v1.0/metadata` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentInfo {
    /// `metadata.name`.
    pub name: String,
    /// `spec.type`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// `spec.version`.
    pub version: String,
    /// `INPUT_BINDING` and/or `OUTPUT_BINDING`.
    pub capabilities: Vec<String>,
    /// bindery's view of the binding's health (absent for non-binding components).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ComponentStatus>,
}

/// The health of one binding, as `/v1.0/metadata` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Whether the binding is serving.
    pub ready: bool,
    /// Whether it holds a working connection to its backend.
    pub connected: bool,
    /// The input subscription: `subscribed`, `not-subscribed` or `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<&'static str>,
    /// The last error, while it has not recovered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the last event arrived, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event_time: Option<String>,
    /// Reconnects since start.
    pub reconnects: u64,
}

/// The app connection as `/v1.0/metadata` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppConnectionInfo {
    /// `--app-port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `--app-protocol`.
    pub protocol: String,
    /// `--app-channel-address`.
    pub channel_address: String,
    /// `--app-max-concurrency`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<usize>,
}

/// What `/v1.0/metadata` and gRPC `GetMetadata` report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataInfo {
    /// The app id.
    pub id: String,
    /// bindery's version.
    pub runtime_version: String,
    /// Enabled features.
    pub enabled_features: Vec<String>,
    /// Loaded components.
    pub components: Vec<ComponentInfo>,
    /// Attributes set through `PUT /v1.0/metadata/{key}`, plus `daprRuntimeVersion`.
    pub extended: BTreeMap<String, String>,
    /// The app connection.
    pub app_connection_properties: AppConnectionInfo,
}

/// The running sidecar: bindings, app channel, readiness and shutdown.
pub struct Runtime {
    pub(crate) options: RuntimeOptions,
    pub(crate) bindings: RwLock<BTreeMap<String, Arc<Binding>>>,
    others: RwLock<Vec<OtherComponent>>,
    extended: Mutex<BTreeMap<String, String>>,
    pub(crate) app: Option<Arc<dyn AppChannel>>,
    pub(crate) app_limit: Option<Arc<Semaphore>>,
    resiliency: RwLock<Arc<Resiliency>>,
    pub(crate) metrics: crate::metrics::Metrics,
    app_ready: AtomicBool,
    outbound_ready: AtomicBool,
    /// Set by a blocked shutdown: input bindings stay paused whatever the app's health.
    inputs_blocked: AtomicBool,
    /// Fired when someone asks bindery to stop (signal or `/v1.0/shutdown`).
    shutdown_requested: CancellationToken,
    /// Fired when input delivery must stop taking events.
    pub(crate) closing: CancellationToken,
    /// Spans and trace context; Dapr's default sampling and no exporter until one is set.
    tracer: std::sync::OnceLock<crate::trace::Tracer>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("app_id", &self.options.app_id)
            .finish_non_exhaustive()
    }
}

/// Events a slow `tap` listener may fall behind by before it misses some.
const TAP_CAPACITY: usize = 1024;

const BUILD_BACKOFF_START: Duration = Duration::from_millis(250);
const BUILD_BACKOFF_MAX: Duration = Duration::from_secs(30);

impl Runtime {
    /// A runtime for `loaded` components. Nothing is connected until [`Runtime::start`].
    pub fn new(
        options: RuntimeOptions,
        loaded: Loaded,
        app: Option<Arc<dyn AppChannel>>,
    ) -> Arc<Self> {
        let resiliency = Resiliency::compile(
            &loaded.resiliency,
            loaded.bindings.iter().map(|b| b.name.as_str()),
        );
        let bindings = loaded
            .bindings
            .into_iter()
            .map(|def| (def.name.clone(), Binding::new(def)))
            .collect();
        let app_limit = options
            .app_max_concurrency
            .map(|n| Arc::new(Semaphore::new(n.max(1))));
        let mut extended = BTreeMap::new();
        extended.insert("daprRuntimeVersion".to_owned(), VERSION.to_owned());
        Arc::new(Runtime {
            options,
            bindings: RwLock::new(bindings),
            others: RwLock::new(loaded.others),
            extended: Mutex::new(extended),
            app,
            app_limit,
            resiliency: RwLock::new(Arc::new(resiliency)),
            metrics: crate::metrics::Metrics::default(),
            app_ready: AtomicBool::new(false),
            outbound_ready: AtomicBool::new(false),
            inputs_blocked: AtomicBool::new(false),
            shutdown_requested: CancellationToken::new(),
            closing: CancellationToken::new(),
            tracer: std::sync::OnceLock::new(),
        })
    }

    /// Use `tracer` for output calls and deliveries (sampling, export). Set once, before
    /// serving; a second call hands the tracer back.
    pub fn set_tracer(&self, tracer: crate::trace::Tracer) -> Result<(), crate::trace::Tracer> {
        self.tracer.set(tracer)
    }

    /// The tracer in use.
    pub fn tracer(&self) -> &crate::trace::Tracer {
        self.tracer.get().unwrap_or(&crate::trace::DEFAULT_TRACER)
    }

    /// The options it runs with.
    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }

    /// The resiliency policy for `component` in direction `dir`, if one applies.
    pub(crate) fn policy(&self, component: &str, dir: Direction) -> Option<Arc<Policy>> {
        self.resiliency
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .policy(component, dir)
    }

    pub(crate) fn binding(&self, name: &str) -> Option<Arc<Binding>> {
        self.bindings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    fn all_bindings(&self) -> Vec<Arc<Binding>> {
        self.bindings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Build every binding: outputs connect (each waited for up to its `initTimeout`, then
    /// retried in the background with backoff), inputs are created. Errors that no retry can
    /// fix (invalid configuration found while building) are returned for every binding at once,
    /// except for components with `ignoreErrors: true`.
    pub async fn start(self: &Arc<Self>) -> Result<(), Vec<ConfigIssue>> {
        let builds = self.all_bindings().into_iter().map(|b| {
            let rt = Arc::clone(self);
            async move { rt.build(b).await }
        });
        let issues: Vec<ConfigIssue> = futures::future::join_all(builds)
            .await
            .into_iter()
            .flatten()
            .collect();
        if !issues.is_empty() {
            return Err(issues);
        }
        self.outbound_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Build one binding's sides. Returns a fatal issue, if any.
    async fn build(self: &Arc<Self>, b: Arc<Binding>) -> Option<ConfigIssue> {
        let ctx = b.context(&self.options.app_id);
        if b.def.sides.input {
            match b.def.factory.build_input(&ctx).await {
                Ok(input) => {
                    *b.input.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::from(input));
                    tracing::info!(binding = %b.def.name, r#type = %b.def.type_name, "successful init for input binding");
                }
                Err(e) => return self.build_failed(&b, "input", &e),
            }
        }
        if b.def.sides.output {
            let first =
                tokio::time::timeout(b.def.init_timeout, b.def.factory.build_output(&ctx)).await;
            match first {
                Ok(Ok(out)) => {
                    self.set_output(&b, Arc::from(out));
                    tracing::info!(binding = %b.def.name, r#type = %b.def.type_name, "successful init for output binding");
                }
                Ok(Err(e)) if !e.is_retryable() => return self.build_failed(&b, "output", &e),
                Ok(Err(e)) => {
                    b.health.disconnected(e.to_string());
                    tracing::warn!(binding = %b.def.name, r#type = %b.def.type_name, error = %e, "output binding cannot connect yet; retrying in the background");
                    self.spawn_output_retry(Arc::clone(&b));
                }
                Err(_) => {
                    b.health.disconnected(format!(
                        "not connected within initTimeout {:?}",
                        b.def.init_timeout
                    ));
                    tracing::warn!(binding = %b.def.name, r#type = %b.def.type_name, timeout = ?b.def.init_timeout, "output binding did not connect within its initTimeout; retrying in the background");
                    self.spawn_output_retry(Arc::clone(&b));
                }
            }
        }
        None
    }

    /// Install a built output. Its health logs the connect that follows a failed start.
    fn set_output(&self, b: &Binding, out: Arc<dyn OutputBinding>) {
        *b.output.write().unwrap_or_else(|p| p.into_inner()) = Some(out);
        b.health.connected();
    }

    fn build_failed(&self, b: &Binding, side: &str, e: &BindingError) -> Option<ConfigIssue> {
        b.health.disconnected(e.to_string());
        if b.def.ignore_errors {
            tracing::warn!(binding = %b.def.name, r#type = %b.def.type_name, side, error = %e, "binding failed to initialise; going on without it (ignoreErrors)");
            return None;
        }
        Some(ConfigIssue {
            file: Some(b.def.source.file.clone()),
            document: Some(b.def.source.document),
            line: None,
            component: Some(b.def.name.clone()),
            field: e.field().map(|f| format!("spec.metadata.{f}")),
            message: format!("{side} binding failed to initialise: {e}"),
        })
    }

    fn spawn_output_retry(self: &Arc<Self>, b: Arc<Binding>) {
        let rt = Arc::clone(self);
        let tasks = b.tasks.clone();
        tasks.spawn(async move {
            let ctx = b.context(&rt.options.app_id);
            let mut wait = BUILD_BACKOFF_START;
            loop {
                tokio::select! {
                    _ = b.stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                match b.def.factory.build_output(&ctx).await {
                    Ok(out) => {
                        rt.set_output(&b, Arc::from(out));
                        return;
                    }
                    Err(e) => {
                        b.health.disconnected(e.to_string());
                        // The first failure was logged at warn; the health handle logs the connect.
                        tracing::debug!(binding = %b.def.name, error = %e, retry_in = ?wait, "output binding still cannot connect");
                        wait = (wait * 2).min(BUILD_BACKOFF_MAX);
                    }
                }
            }
        });
    }

    /// Mark the API servers as listening: `/v1.0/healthz/outbound` turns 204.
    pub fn outbound_ready(&self) -> bool {
        self.outbound_ready.load(Ordering::Acquire)
    }

    /// Whether every binding without `ignoreErrors` is serving and the app is ready.
    /// `Err` lists what is not.
    pub fn health(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !self.outbound_ready() {
            problems.push("components are not loaded yet".to_owned());
        }
        if self.app.is_some() && !self.app_ready.load(Ordering::Acquire) {
            problems.push("app is not ready".to_owned());
        }
        for b in self.all_bindings() {
            if b.def.ignore_errors {
                continue;
            }
            if let Err(why) = b.ready() {
                problems.push(format!("binding {}: {why}", b.def.name));
            } else if b.def.sides.input
                && self.app.is_some()
                && b.subscription() == Subscription::Unknown
                && b.input.lock().unwrap_or_else(|p| p.into_inner()).is_some()
            {
                // The app is reachable but not yet asked about this binding.
                problems.push(format!(
                    "binding {}: the app's subscription is not known yet",
                    b.def.name
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Set an attribute shown under `extended` by `/v1.0/metadata`.
    pub fn set_extended(&self, key: String, value: String) {
        self.extended
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, value);
    }

    /// What `/v1.0/metadata` reports.
    pub fn metadata(&self) -> MetadataInfo {
        let mut components = Vec::new();
        for b in self.all_bindings() {
            let mut caps = Vec::new();
            if b.def.sides.input {
                caps.push("INPUT_BINDING".to_owned());
            }
            if b.def.sides.output {
                caps.push("OUTPUT_BINDING".to_owned());
            }
            let snap = b.health.snapshot();
            let subscription = b.def.sides.input.then(|| match b.subscription() {
                Subscription::Unknown => "unknown",
                Subscription::Subscribed => "subscribed",
                Subscription::NotSubscribed => "not-subscribed",
            });
            components.push(ComponentInfo {
                name: b.def.name.clone(),
                type_name: b.def.type_name.clone(),
                version: b.def.version.clone(),
                capabilities: caps,
                status: Some(ComponentStatus {
                    ready: b.ready().is_ok(),
                    connected: snap.connected,
                    subscription,
                    last_error: snap.last_error,
                    last_event_time: snap.last_event.map(rfc3339),
                    reconnects: snap.reconnects,
                }),
            });
        }
        for o in self.others.read().unwrap_or_else(|p| p.into_inner()).iter() {
            components.push(ComponentInfo {
                name: o.name.clone(),
                type_name: o.type_name.clone(),
                version: o.version.clone(),
                capabilities: Vec::new(),
                status: None,
            });
        }
        MetadataInfo {
            id: self.options.app_id.clone(),
            runtime_version: VERSION.to_owned(),
            enabled_features: Vec::new(),
            components,
            extended: self
                .extended
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            app_connection_properties: AppConnectionInfo {
                port: self.options.app_port,
                protocol: self.options.app_protocol.as_str().to_owned(),
                channel_address: self.options.app_channel_address.clone(),
                max_concurrency: self.options.app_max_concurrency,
            },
        }
    }

    /// Ask bindery to stop (what `/v1.0/shutdown` and gRPC `Shutdown` do).
    pub fn request_shutdown(&self) {
        self.shutdown_requested.cancel();
    }

    /// Resolves when someone asked bindery to stop.
    pub async fn shutdown_requested(&self) {
        self.shutdown_requested.cancelled().await;
    }

    /// Wait for the app, probe its subscriptions and start reading from the input bindings the
    /// app subscribed to. Runs until every input binding is started (or shutdown).
    pub async fn start_inputs(self: &Arc<Self>) {
        if self.app.is_none() {
            let names: Vec<String> = self
                .all_bindings()
                .iter()
                .filter(|b| b.def.sides.input)
                .map(|b| b.def.name.clone())
                .collect();
            if !names.is_empty() {
                tracing::warn!(bindings = ?names, "no --app-port given: input bindings are loaded but nothing is delivered");
            }
            return;
        }
        let addr = format!(
            "{}:{}",
            self.options.app_channel_address,
            self.options.app_port.unwrap_or_default()
        );
        if !self.wait_for_app(&addr).await {
            return;
        }
        tracing::info!(app = %addr, "app is reachable");
        match self.options.app_health.clone() {
            None => {
                self.app_ready.store(true, Ordering::Release);
                self.resume_inputs().await;
            }
            Some(check) => self.watch_app_health(&check).await,
        }
    }

    /// Probe the app's health until shutdown: input bindings start once it is healthy, pause
    /// after `threshold` failed probes in a row, and start again when it recovers.
    async fn watch_app_health(self: &Arc<Self>, check: &crate::options::AppHealthCheck) {
        let Some(app) = self.app.clone() else { return };
        let mut failures = 0u32;
        let mut healthy = false;
        loop {
            let probe = tokio::time::timeout(check.timeout, app.healthy(&check.path)).await;
            let result =
                probe.unwrap_or_else(|_| Err(format!("no answer within {:?}", check.timeout)));
            match result {
                Ok(()) => {
                    failures = 0;
                    if !healthy {
                        healthy = true;
                        tracing::info!("app is healthy: starting input bindings");
                        self.app_ready.store(true, Ordering::Release);
                        self.resume_inputs().await;
                    }
                }
                Err(why) => {
                    failures += 1;
                    tracing::debug!(failures, reason = %why, "app health probe failed");
                    if healthy && failures >= check.threshold.max(1) {
                        healthy = false;
                        tracing::warn!(reason = %why, "app is unhealthy: pausing input bindings");
                        self.app_ready.store(false, Ordering::Release);
                        self.pause_inputs();
                    }
                }
            }
            tokio::select! {
                _ = self.closing.cancelled() => return,
                _ = tokio::time::sleep(check.interval) => {}
            }
        }
    }

    /// Probe the app for `b` and start its read loop if the app subscribes. Does nothing when
    /// `b` has no input side, the app is not ready yet, or it was started already.
    async fn start_input(self: &Arc<Self>, b: &Arc<Binding>) {
        let Some(app) = self.app.clone() else { return };
        if !b.def.sides.input
            || !self.app_ready.load(Ordering::Acquire)
            || self.inputs_blocked.load(Ordering::Acquire)
        {
            return;
        }
        let Some(input) = b.input.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
            return;
        };
        if b.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let subscribed = if b.def.sides.explicit_input {
            true
        } else {
            self.probe(&*app, b).await
        };
        if !subscribed {
            b.set_subscription(Subscription::NotSubscribed);
            tracing::info!(binding = %b.def.name, "app has not subscribed to binding {}.", b.def.name);
            return;
        }
        b.set_subscription(Subscription::Subscribed);
        let reading = b.stop.child_token();
        *b.reading.lock().unwrap_or_else(|p| p.into_inner()) = Some(reading.clone());
        *b.reading_since.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(std::time::Instant::now());
        crate::delivery::spawn_read_loop(self, b, input, app, reading);
    }

    /// Stop reading from every input binding, letting deliveries in flight finish; they start
    /// again (probed anew) with [`Runtime::resume_inputs`].
    pub fn pause_inputs(&self) {
        for b in self.all_bindings() {
            if let Some(reading) = b.reading.lock().unwrap_or_else(|p| p.into_inner()).take() {
                reading.cancel();
                tracing::info!(binding = %b.def.name, "input binding paused");
            }
            b.started.store(false, Ordering::Release);
        }
    }

    /// The stall watchdog: every `every`, an input binding that is reading, has nothing in
    /// flight, received nothing for `stall_after` and whose source reports a backlog gets its
    /// read loop restarted. Runs until shutdown.
    pub async fn watch_stalls(self: &Arc<Self>, every: Duration, stall_after: Duration) {
        loop {
            tokio::select! {
                _ = self.closing.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            for b in self.all_bindings() {
                if self.stalled(&b, stall_after).await {
                    tracing::warn!(binding = %b.def.name, quiet_for = ?stall_after,
                        "input binding receives nothing while its source has a backlog; restarting it");
                    b.health.disconnected("stalled: restarted by the watchdog");
                    if let Some(reading) =
                        b.reading.lock().unwrap_or_else(|p| p.into_inner()).take()
                    {
                        reading.cancel();
                    }
                    b.started.store(false, Ordering::Release);
                    self.start_input(&b).await;
                }
            }
        }
    }

    async fn stalled(&self, b: &Binding, stall_after: Duration) -> bool {
        let Some(since) = *b.reading_since.lock().unwrap_or_else(|p| p.into_inner()) else {
            return false;
        };
        if b.reading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
            || self.metrics.binding(&b.def.name).in_flight() > 0
        {
            return false;
        }
        let quiet_since = b
            .health
            .snapshot()
            .last_event
            .and_then(|t| t.elapsed().ok())
            .map_or(since.elapsed(), |e| e.min(since.elapsed()));
        if quiet_since < stall_after {
            return false;
        }
        let Some(input) = b.input.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
            return false;
        };
        matches!(tokio::time::timeout(Duration::from_secs(5), input.backlog()).await, Ok(Some(n)) if n > 0)
    }

    /// Start reading again from every input binding the app subscribes to.
    pub async fn resume_inputs(self: &Arc<Self>) {
        for b in self.all_bindings() {
            self.start_input(&b).await;
        }
    }

    async fn wait_for_app(&self, addr: &str) -> bool {
        let mut logged = false;
        loop {
            let attempt = tokio::time::timeout(
                Duration::from_millis(500),
                tokio::net::TcpStream::connect(addr),
            );
            tokio::select! {
                _ = self.closing.cancelled() => return false,
                r = attempt => if let Ok(Ok(_)) = r { return true },
            }
            if !logged {
                tracing::info!(app = %addr, "waiting for the app to listen");
                logged = true;
            }
            tokio::select! {
                _ = self.closing.cancelled() => return false,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    /// Ask the app whether it wants `b`'s events, retrying transport errors until the probe
    /// deadline.
    async fn probe(&self, app: &dyn AppChannel, b: &Binding) -> bool {
        let deadline = tokio::time::Instant::now() + self.options.binding_options_timeout;
        let mut last_err = String::new();
        while tokio::time::Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, app.subscribed(&b.def.name, &b.def.route)).await
            {
                Ok(Ok(yes)) => return yes,
                Ok(Err(e)) => last_err = e,
                Err(_) => {
                    last_err = "no answer".into();
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::warn!(binding = %b.def.name, route = %b.def.route, error = %last_err, timeout = ?self.options.binding_options_timeout,
            "could not ask the app whether it subscribes to the binding; not delivering its events");
        false
    }

    /// Every metric in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let health: Vec<_> = self
            .all_bindings()
            .iter()
            .map(|b| (b.def.name.clone(), b.health.snapshot()))
            .collect();
        let mut out = self.metrics.render(&self.options.app_id, &health);
        let app = self
            .options
            .app_id
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        out.push_str(&format!(
            "# HELP bindery_trace_spans_dropped_total Spans dropped because the exporter's queue was full.\n# TYPE bindery_trace_spans_dropped_total counter\nbindery_trace_spans_dropped_total{{app_id=\"{app}\"}} {}\n",
            self.tracer().dropped()
        ));
        out
    }

    /// Listen to the events input binding `name` delivers, without taking them from the app.
    /// `None` when there is no such input binding.
    pub fn tap(&self, name: &str) -> Option<tokio::sync::broadcast::Receiver<Arc<TapEvent>>> {
        self.binding(name)
            .filter(|b| b.def.sides.input)
            .map(|b| b.tap.subscribe())
    }

    /// `--dapr-block-shutdown-duration`: stop reading from input bindings for good, and keep
    /// serving output calls for up to `duration`, or until the app turns unhealthy (when app
    /// health checks are on), before the normal shutdown.
    pub async fn block_shutdown(&self, duration: Duration) {
        tracing::info!(
            ?duration,
            "shutdown blocked: input bindings stopped, output bindings keep serving"
        );
        self.inputs_blocked.store(true, Ordering::Release);
        self.pause_inputs();
        let deadline = tokio::time::Instant::now() + duration;
        while tokio::time::Instant::now() < deadline {
            if self.options.app_health.is_some() && !self.app_ready.load(Ordering::Acquire) {
                tracing::info!("the app is unhealthy: ending the blocked shutdown early");
                return;
            }
            if self.shutdown_requested.is_cancelled() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stop: refuse new events, stop the read loops, let in-flight deliveries finish within the
    /// grace period, then close every component.
    pub async fn shutdown(&self) {
        tracing::info!(grace = ?self.options.graceful_shutdown, "shutting down: stopping input bindings");
        self.closing.cancel();
        let all = self.all_bindings();
        drain(&all, self.options.graceful_shutdown).await;
        tracing::info!("all components closed");
    }

    /// Swap in `loaded` while running: new components are built and started, removed ones
    /// drained and closed, changed ones built to ready before the old instance drains. A changed
    /// component whose new instance cannot be built keeps running as it was.
    pub async fn reload(self: &Arc<Self>, loaded: Loaded) {
        let current: BTreeMap<String, Arc<Binding>> = self
            .bindings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut next: BTreeMap<String, Arc<Binding>> = BTreeMap::new();
        let mut retired = Vec::new();
        let mut fresh = Vec::new();
        for def in loaded.bindings.iter().cloned() {
            match current.get(&def.name) {
                Some(old) if old.def.fingerprint == def.fingerprint => {
                    next.insert(def.name.clone(), Arc::clone(old));
                }
                old => {
                    let name = def.name.clone();
                    let b = Binding::new(def);
                    if let Some(issue) = self.build(Arc::clone(&b)).await {
                        tracing::error!("{issue}; keeping the running version");
                        if let Some(old) = old {
                            next.insert(name, Arc::clone(old));
                        }
                        continue;
                    }
                    if let Some(old) = old {
                        if b.def.sides.output && b.output().is_none() {
                            tracing::error!(binding = %name, error = ?b.health.snapshot().last_error,
                                "the changed component cannot connect; keeping the running version");
                            b.stop.cancel();
                            next.insert(name, Arc::clone(old));
                            continue;
                        }
                        retired.push(Arc::clone(old));
                        tracing::info!(binding = %name, "component updated");
                    } else {
                        tracing::info!(binding = %name, "component added");
                    }
                    fresh.push(Arc::clone(&b));
                    next.insert(name, b);
                }
            }
        }
        for (name, old) in &current {
            if !next.contains_key(name) {
                tracing::info!(binding = %name, "component removed");
                retired.push(Arc::clone(old));
            }
        }
        let resiliency = Resiliency::compile(&loaded.resiliency, next.keys().map(String::as_str));
        *self.resiliency.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(resiliency);
        *self.others.write().unwrap_or_else(|p| p.into_inner()) = loaded.others;
        *self.bindings.write().unwrap_or_else(|p| p.into_inner()) = next;
        // The new instances serve before the old ones stop.
        for b in &fresh {
            self.start_input(b).await;
        }
        drain(&retired, self.options.graceful_shutdown).await;
    }
}

/// Stop `bindings`: no new events, read loops cancelled, in-flight work given `grace` to
/// finish, then every instance closed.
async fn drain(bindings: &[Arc<Binding>], grace: Duration) {
    for b in bindings {
        b.stop.cancel();
        b.tasks.close();
    }
    let waits = bindings.iter().map(|b| b.tasks.wait());
    if tokio::time::timeout(grace, futures::future::join_all(waits))
        .await
        .is_err()
    {
        tracing::warn!(grace = ?grace, "in-flight work did not finish within the grace period");
    }
    for b in bindings {
        let input = b.input.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(input) = input
            && let Err(e) = input.close().await
        {
            tracing::warn!(binding = %b.def.name, error = %e, "closing input binding failed");
        }
        let output = b.output.write().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(output) = output
            && let Err(e) = output.close().await
        {
            tracing::warn!(binding = %b.def.name, error = %e, "closing output binding failed");
        }
    }
}

/// A listening address helper for the API crates: `host:port` for each listen address.
pub fn listen_addrs(hosts: &[String], port: u16) -> Result<Vec<SocketAddr>, String> {
    hosts
        .iter()
        .map(|h| {
            let h = h.trim();
            let with_port = if h.contains(':') && !h.starts_with('[') {
                format!("[{h}]:{port}")
            } else {
                format!("{h}:{port}")
            };
            with_port
                .parse::<SocketAddr>()
                .map_err(|_| format!("invalid listen address {h:?}"))
        })
        .collect()
}

fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = bindery_core::time::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_600_000_000_123);
        assert_eq!(rfc3339(t), "2020-09-13T12:26:40.123Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn listen_addrs_accept_v4_and_v6() {
        let a = listen_addrs(&["127.0.0.1".into(), "::1".into()], 3500).unwrap();
        assert_eq!(a[0].to_string(), "127.0.0.1:3500");
        assert_eq!(a[1].to_string(), "[::1]:3500");
        assert!(listen_addrs(&["nope".into()], 1).is_err());
    }
}
