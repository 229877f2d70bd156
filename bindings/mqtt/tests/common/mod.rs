//! Shared helpers for the MQTT tests: the broker address, a flow-controlled publisher,
//! component files, a poison-aware app, and a guard that restarts the broker.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bindery_test_support::{Bindery, TestApp};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// The machine's Mosquitto.
pub const ADDR: &str = "127.0.0.1:1883";
/// Its URL.
pub const URL: &str = "tcp://127.0.0.1:1883";

/// Mosquitto's default `max_queued_messages`: a client's session holds at most this many
/// messages beyond those in flight, and the broker drops the rest. Publishers in these tests
/// keep the backlog below it.
pub const BROKER_QUEUE: usize = 1000;

/// Fail (never skip) when Mosquitto is not reachable.
pub async fn require_mosquitto() {
    let ok = tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(ADDR))
        .await
        .is_ok_and(|r| r.is_ok());
    assert!(
        ok,
        "Mosquitto is not reachable at {ADDR}: start it with scripts/backends.sh"
    );
}

/// The test harness's HTTP client needs a TLS crypto provider, as the binary installs one.
pub fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A fresh name (topic, consumer id).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

/// A component file for `bindings.mqtt3` named `name`, with short backoffs and `extra`
/// metadata.
pub fn component(name: &str, topic: &str, consumer_id: &str, extra: &[(&str, &str)]) -> String {
    let mut md = vec![
        ("url", URL.to_owned()),
        ("topic", topic.to_owned()),
        ("consumerID", consumer_id.to_owned()),
        ("backOffInitialInterval", "20ms".to_owned()),
        ("backOffMaxInterval", "500ms".to_owned()),
    ];
    for (k, v) in extra {
        md.retain(|(n, _)| n != k);
        md.push((k, (*v).to_owned()));
    }
    let mut yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: bindings.mqtt3\n  version: v1\n  metadata:\n"
    );
    for (k, v) in md {
        yaml.push_str(&format!("  - name: {k}\n    value: \"{v}\"\n"));
    }
    yaml
}

/// Start bindery with `file` for an app on `app_port`.
pub async fn start_bindery(app_id: &str, file: &str, app_port: u16) -> Bindery {
    crypto();
    Bindery::builder(app_id)
        .file("mqtt.yaml", file)
        .app_port(app_port)
        .start()
        .await
}

/// A QoS 1 publisher that counts the broker's PUBACKs.
pub struct Publisher {
    client: AsyncClient,
    acked: Arc<AtomicUsize>,
    sent: usize,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    /// Connect with a fresh client id.
    pub async fn new() -> Self {
        require_mosquitto().await;
        let mut o = MqttOptions::new(unique("test-pub"), "127.0.0.1", 1883);
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(o, 1000);
        let acked = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&acked);
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Publisher {
            client,
            acked,
            sent: 0,
            task,
        }
    }

    /// Publish `bodies` to `topic` and wait for every PUBACK.
    pub async fn publish_all(&mut self, topic: &str, bodies: &[String]) {
        for b in bodies {
            self.client
                .publish(topic, QoS::AtLeastOnce, false, b.as_bytes().to_vec())
                .await
                .unwrap();
            self.sent += 1;
        }
        let want = self.sent;
        bindery_test_support::wait_until(Duration::from_secs(30), "PUBACKs", || {
            let n = self.acked.load(Ordering::SeqCst);
            async move { (n >= want).then_some(()) }
        })
        .await;
    }

    /// Publish `bodies` in batches, each only once the apps have caught up to within
    /// `backlog` messages, so the broker's per-client queue never overflows.
    pub async fn publish_paced(
        &mut self,
        topic: &str,
        bodies: &[String],
        apps: &[&TestApp],
        path: &str,
        backlog: usize,
    ) {
        let batch = 100;
        let mut done = 0;
        for chunk in bodies.chunks(batch) {
            let end = Instant::now() + Duration::from_secs(120);
            loop {
                let (distinct, _) = accepted(apps, path);
                if done < backlog || distinct.len() + backlog >= done + chunk.len() {
                    break;
                }
                assert!(
                    Instant::now() < end,
                    "the apps stopped accepting: {} of {done} published",
                    distinct.len()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            self.publish_all(topic, chunk).await;
            done += chunk.len();
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Remove the persistent sessions of `client_ids` from the broker (connect with a clean
/// session, then disconnect), so test runs leave nothing behind.
pub async fn forget_sessions(client_ids: &[String]) {
    for id in client_ids {
        let mut o = MqttOptions::new(id.clone(), "127.0.0.1", 1883);
        o.set_clean_session(true);
        let (client, mut eventloop) = AsyncClient::new(o, 10);
        let _ = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = client.disconnect().await;
                    }
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
}

/// Bodies `<prefix>-0` … `<prefix>-<n-1>`.
pub fn bodies(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// The distinct accepted bodies at `path` across `apps`, and the total accepted count.
pub fn accepted(apps: &[&TestApp], path: &str) -> (HashSet<Vec<u8>>, usize) {
    let mut distinct = HashSet::new();
    let mut total = 0;
    for app in apps {
        for body in app.accepted(path) {
            total += 1;
            distinct.insert(body.to_vec());
        }
    }
    (distinct, total)
}

/// Wait until every one of `expected` was accepted at `path` across `apps`; fail with what is
/// missing after `deadline`. Returns the total accepted.
pub async fn wait_all_accepted(
    apps: &[&TestApp],
    path: &str,
    expected: &[String],
    deadline: Duration,
) -> usize {
    let end = Instant::now() + deadline;
    loop {
        let (distinct, total) = accepted(apps, path);
        let missing: Vec<&String> = expected
            .iter()
            .filter(|b| !distinct.contains(b.as_bytes()))
            .collect();
        if missing.is_empty() {
            return total;
        }
        if Instant::now() >= end {
            panic!(
                "{} of {} messages never reached the app within {deadline:?}; first missing: {:?}",
                missing.len(),
                expected.len(),
                &missing[..missing.len().min(5)]
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Wait until at least `n` distinct bodies were accepted at `path` across `apps`.
pub async fn wait_accepted_at_least(apps: &[&TestApp], path: &str, n: usize, deadline: Duration) {
    let end = Instant::now() + deadline;
    loop {
        let (distinct, _) = accepted(apps, path);
        if distinct.len() >= n {
            return;
        }
        assert!(
            Instant::now() < end,
            "only {} messages accepted within {deadline:?}, expected at least {n}",
            distinct.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /v1.0/healthz` status (0 when bindery does not answer).
pub async fn healthz(b: &Bindery) -> u16 {
    match b.client().get(b.url("/v1.0/healthz")).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

/// Wait until bindery's MQTT consumer has its SUBACK (it logs `subscribed … topic=<filter>`).
///
/// A new MQTT session gets only what is published after its SUBSCRIBE, so tests publish only
/// then. Neither `/v1.0/healthz` nor `/v1.0/metadata` tells: the component's health is shared
/// by its output side, which is connected first.
pub async fn wait_subscribed(b: &Bindery, filter: &str) {
    bindery_test_support::wait_until(Duration::from_secs(30), "the MQTT subscription", || {
        let logs = b.logs();
        let done = logs
            .lines()
            .any(|l| l.contains(" subscribed ") && l.contains(filter));
        async move { done.then_some(()) }
    })
    .await;
}

/// An app that accepts every delivery except those whose body contains `poison`, which it
/// always fails with 500.
#[derive(Clone, Default)]
pub struct PoisonApp {
    pub accepted: Arc<Mutex<Vec<Vec<u8>>>>,
    pub poison_attempts: Arc<Mutex<Vec<Instant>>>,
}

impl PoisonApp {
    /// Serve on a free port; returns the port.
    pub async fn start(&self) -> u16 {
        use axum::body::Bytes;
        use axum::http::{Method, StatusCode};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = self.clone();
        let router = axum::Router::new().fallback(move |method: Method, body: Bytes| {
            let app = app.clone();
            async move {
                if method == Method::OPTIONS {
                    return StatusCode::OK;
                }
                if body.windows(6).any(|w| w == b"poison") {
                    app.poison_attempts.lock().unwrap().push(Instant::now());
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                app.accepted.lock().unwrap().push(body.to_vec());
                StatusCode::OK
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        port
    }
}

/// Whether Mosquitto's port accepts connections.
pub fn port_open() -> bool {
    std::net::TcpStream::connect_timeout(&ADDR.parse().unwrap(), Duration::from_millis(500)).is_ok()
}

/// Wait (blocking) until the port is open (`true`) or closed (`false`).
pub fn wait_port(open: bool, deadline: Duration) {
    let end = Instant::now() + deadline;
    while port_open() != open {
        assert!(
            Instant::now() < end,
            "Mosquitto's port {ADDR} did not {} within {deadline:?}",
            if open { "open" } else { "close" }
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The command scripts/backends.sh starts Mosquitto with.
const START: &str = "mosquitto -d -c /etc/mosquitto/mosquitto.conf";

/// Starts Mosquitto again (scripts/backends.sh's command) whenever it is dropped while the
/// broker is down, also when the test panics, so the machine's broker is never left stopped.
pub struct RestartGuard;

impl RestartGuard {
    /// Stop Mosquitto with SIGTERM (it saves its persistence file on the way out) and wait
    /// until its port is closed.
    pub fn stop_broker(&self) {
        let pid = std::fs::read_to_string("/run/mosquitto/mosquitto.pid")
            .expect("Mosquitto's pid file /run/mosquitto/mosquitto.pid");
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.trim())
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {pid} failed");
        wait_port(false, Duration::from_secs(30));
    }

    /// Start it again and wait for its port.
    pub fn start_broker(&self) {
        if !port_open() {
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(START)
                .status()
                .unwrap();
            assert!(status.success(), "`{START}` failed");
        }
        wait_port(true, Duration::from_secs(30));
    }
}

impl Drop for RestartGuard {
    fn drop(&mut self) {
        if !port_open() {
            let _ = std::process::Command::new("sh")
                .arg("-c")
                .arg(START)
                .status();
            let end = Instant::now() + Duration::from_secs(30);
            while !port_open() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
