//! Shared helpers for the NATS binding's tests: the machine's NATS (JetStream on, data on disk),
//! unique streams, a recording app that can refuse chosen bodies, bindery components.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;

/// The machine's NATS.
pub(crate) const NATS: &str = "127.0.0.1:4222";
/// Its URL for components.
pub(crate) const NATS_URL: &str = "nats://127.0.0.1:4222";

/// The command scripts/backends.sh starts NATS with (JetStream data in /var/lib/nats-server).
pub(crate) const NATS_START: &[&str] = &[
    "start-stop-daemon",
    "--start",
    "--oknodo",
    "--background",
    "--exec",
    "/usr/sbin/nats-server",
    "--",
    "-a",
    "127.0.0.1",
    "-p",
    "4222",
    "-js",
    "-sd",
    "/var/lib/nats-server",
    "-l",
    "/var/log/nats-server.log",
];

pub(crate) fn port_open(addr: &str) -> bool {
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(200)).is_ok()
}

/// Fail (never skip) when NATS is down.
pub(crate) fn require_nats() {
    assert!(
        port_open(NATS),
        "NATS is not reachable on {NATS}: start it with scripts/backends.sh"
    );
}

pub(crate) fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub(crate) async fn client() -> async_nats::Client {
    require_nats();
    async_nats::connect(NATS_URL).await.unwrap()
}

/// A name no other test (or earlier run) uses.
pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// A file-backed stream capturing `<subject>.>` and `<subject>`, deleted when dropped.
pub(crate) struct TestStream {
    pub(crate) name: String,
    pub(crate) subject: String,
    pub(crate) js: jetstream::Context,
}

impl TestStream {
    pub(crate) async fn create() -> Self {
        let js = jetstream::new(client().await);
        let name = unique("BINDERY_");
        let subject = unique("bindery.js.");
        js.create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone(), format!("{subject}.>")],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .unwrap();
        TestStream { name, subject, js }
    }

    /// Publish `bodies` to the stream's subject, pipelined, and wait for every ack.
    pub(crate) async fn publish_all(&self, bodies: impl IntoIterator<Item = String>) {
        let mut acks = Vec::new();
        for b in bodies {
            acks.push(
                self.js
                    .publish(self.subject.clone(), b.into())
                    .await
                    .unwrap(),
            );
            if acks.len() >= 500 {
                for a in acks.drain(..) {
                    a.await.unwrap();
                }
            }
        }
        for a in acks {
            a.await.unwrap();
        }
    }

    pub(crate) async fn messages(&self) -> u64 {
        let mut s = self.js.get_stream(&self.name).await.unwrap();
        s.info().await.unwrap().state.messages
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let js = self.js.clone();
        let name = self.name.clone();
        // Best effort: the stream is unique, a leftover does not disturb other tests.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async move {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(5), js.delete_stream(&name)).await;
                });
            }
        })
        .join();
    }
}

/// A component file for `bindings.nats`.
pub(crate) fn component(name: &str, md: &[(&str, &str)]) -> String {
    let mut yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: bindings.nats\n  version: v1\n  metadata:\n  - name: natsURL\n    value: \"{NATS_URL}\"\n"
    );
    for (k, v) in md {
        yaml.push_str(&format!("  - name: {k}\n    value: \"{v}\"\n"));
    }
    yaml
}

#[derive(Default)]
struct AppState {
    /// Bodies answered 2xx, in order.
    accepted: Vec<String>,
    /// Every delivery: body and headers.
    deliveries: Vec<(String, HashMap<String, String>)>,
    /// Bodies always refused.
    poison: Vec<String>,
    /// Bodies refused this many more times.
    fail_first: HashMap<String, usize>,
    /// Share of other deliveries refused at random.
    fail_ratio: f64,
    rng: u64,
    /// How long each delivery takes.
    delay: Duration,
}

/// A recording app for one route: OPTIONS answers 200; POST answers 200, or 500 for poison
/// bodies and a random share of the others.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) port: u16,
    state: Arc<Mutex<AppState>>,
}

impl App {
    pub(crate) async fn start(route: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(AppState {
            rng: 0x9E37_79B9_7F4A_7C15,
            ..Default::default()
        }));
        let route = format!("/{route}");
        let router = Router::new()
            .route(&route, axum::routing::any(handle))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        App { port, state }
    }

    pub(crate) fn poison(&self, body: &str) {
        self.state.lock().unwrap().poison.push(body.to_owned());
    }

    /// Refuse `body` the next `times` times it arrives.
    pub(crate) fn fail_first(&self, body: &str, times: usize) {
        self.state
            .lock()
            .unwrap()
            .fail_first
            .insert(body.to_owned(), times);
    }

    pub(crate) fn fail_randomly(&self, ratio: f64) {
        self.state.lock().unwrap().fail_ratio = ratio;
    }

    pub(crate) fn delay(&self, d: Duration) {
        self.state.lock().unwrap().delay = d;
    }

    pub(crate) fn accepted(&self) -> Vec<String> {
        self.state.lock().unwrap().accepted.clone()
    }

    pub(crate) fn accepted_count(&self) -> usize {
        self.state.lock().unwrap().accepted.len()
    }

    pub(crate) fn deliveries(&self) -> Vec<(String, HashMap<String, String>)> {
        self.state.lock().unwrap().deliveries.clone()
    }

    pub(crate) fn deliveries_of(&self, body: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .deliveries
            .iter()
            .filter(|(b, _)| b == body)
            .count()
    }
}

async fn handle(State(state): State<Arc<Mutex<AppState>>>, req: Request) -> StatusCode {
    if req.method() == axum::http::Method::OPTIONS {
        return StatusCode::OK;
    }
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body: Bytes = axum::body::to_bytes(req.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&body).into_owned();
    let delay = state.lock().unwrap().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut s = state.lock().unwrap();
    s.deliveries.push((body.clone(), headers));
    if s.poison.contains(&body) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if let Some(n) = s.fail_first.get_mut(&body)
        && *n > 0
    {
        *n -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if s.fail_ratio > 0.0 {
        s.rng ^= s.rng << 13;
        s.rng ^= s.rng >> 7;
        s.rng ^= s.rng << 17;
        if (s.rng % 10_000) as f64 / 10_000.0 < s.fail_ratio {
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    s.accepted.push(body);
    StatusCode::OK
}

/// Wait, polling every 200 ms, until `check` holds; fail with `what` after `deadline`.
pub(crate) async fn eventually(deadline: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !check() {
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many distinct bodies and how many duplicates `accepted` holds.
pub(crate) fn distinct_and_duplicates(accepted: &[String]) -> (usize, usize) {
    let distinct: std::collections::HashSet<&String> = accepted.iter().collect();
    (distinct.len(), accepted.len() - distinct.len())
}

/// `/v1.0/healthz` status.
pub(crate) async fn healthz(b: &bindery_test_support::Bindery) -> u16 {
    b.client()
        .get(b.url("/v1.0/healthz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// The pid of the process listening on 127.0.0.1:4222 (the machine's nats-server).
fn nats_pid() -> Option<u32> {
    let out = Command::new("ss")
        .args(["-ltnpH", "sport = :4222"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text.find("pid=")?;
    text[at + 4..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

/// Stop the machine's NATS (SIGTERM to the pid listening on its port: it shuts down cleanly
/// and keeps its JetStream data) and wait until the port is closed.
pub(crate) fn stop_nats() {
    let pid = nats_pid().expect("find the nats-server listening on 127.0.0.1:4222");
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let end = Instant::now() + Duration::from_secs(20);
    while port_open(NATS) {
        assert!(Instant::now() < end, "NATS did not stop within 20s");
        std::thread::sleep(Duration::from_millis(50));
    }
    // start-stop-daemon finds a running server by its executable; wait until it is gone.
    while Command::new("kill")
        .args(["-0", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(Instant::now() < end, "nats-server {pid} did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Start NATS with the command of scripts/backends.sh and wait for its port.
pub(crate) fn start_nats() {
    let status = Command::new(NATS_START[0])
        .args(&NATS_START[1..])
        .status()
        .expect("run start-stop-daemon");
    assert!(status.success(), "starting nats-server failed: {status}");
    let end = Instant::now() + Duration::from_secs(20);
    while !port_open(NATS) {
        assert!(Instant::now() < end, "NATS did not open {NATS} within 20s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Restarts NATS if a test left it down, even when the test panicked.
pub(crate) struct NatsGuard;

impl Drop for NatsGuard {
    fn drop(&mut self) {
        if !port_open(NATS) {
            start_nats();
        }
    }
}
