//! Shared helpers for the RabbitMQ tests: the broker address, a publisher, component files, a
//! poison-aware app, and a guard that restarts the broker.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bindery_test_support::{Bindery, TestApp};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};

/// The machine's RabbitMQ.
pub const ADDR: &str = "127.0.0.1:5672";
/// Its URL, with the default credentials.
pub const URL: &str = "amqp://guest:guest@127.0.0.1:5672";

/// Fail (never skip) when RabbitMQ is not reachable.
pub async fn require_rabbitmq() {
    let ok = tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(ADDR))
        .await
        .is_ok_and(|r| r.is_ok());
    assert!(
        ok,
        "RabbitMQ is not reachable at {ADDR}: start it with scripts/backends.sh"
    );
}

/// A fresh queue name.
pub fn queue() -> String {
    format!("bindery-test-{}", uuid::Uuid::new_v4())
}

/// A component file for `bindings.rabbitmq` named `name` on `queue`, with short backoffs and
/// `extra` metadata lines.
pub fn component(name: &str, queue: &str, extra: &[(&str, &str)]) -> String {
    let mut md = vec![
        ("host", URL.to_owned()),
        ("queueName", queue.to_owned()),
        ("durable", "true".to_owned()),
        ("reconnectWaitInSeconds", "1".to_owned()),
        ("backOffInitialInterval", "20ms".to_owned()),
        ("backOffMaxInterval", "500ms".to_owned()),
    ];
    for (k, v) in extra {
        md.retain(|(n, _)| n != k);
        md.push((k, (*v).to_owned()));
    }
    let mut yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: bindings.rabbitmq\n  version: v1\n  metadata:\n"
    );
    for (k, v) in md {
        yaml.push_str(&format!("  - name: {k}\n    value: \"{v}\"\n"));
    }
    yaml
}

/// The test harness's HTTP client needs a TLS crypto provider, as the binary installs one.
pub fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Start bindery with `component` for an app on `app_port`.
pub async fn start_bindery(app_id: &str, file: &str, app_port: u16) -> Bindery {
    crypto();
    Bindery::builder(app_id)
        .file("rabbitmq.yaml", file)
        .app_port(app_port)
        .start()
        .await
}

/// A publisher on its own connection.
pub struct Publisher {
    _conn: Connection,
    ch: Channel,
    queue: String,
}

impl Publisher {
    /// Connect, declare `queue` (durable, as the components here do) and enable confirms.
    pub async fn new(queue: &str) -> Self {
        require_rabbitmq().await;
        let conn = Connection::connect(URL, ConnectionProperties::default())
            .await
            .expect("connect to RabbitMQ");
        let ch = conn.create_channel().await.unwrap();
        ch.queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        Publisher {
            _conn: conn,
            ch,
            queue: queue.into(),
        }
    }

    /// Publish every body persistently and wait for the broker's confirmations.
    pub async fn publish_all<I: IntoIterator<Item = String>>(&self, bodies: I) {
        let bodies: Vec<String> = bodies.into_iter().collect();
        for chunk in bodies.chunks(1000) {
            let mut confirms = Vec::with_capacity(chunk.len());
            for body in chunk {
                let c = self
                    .ch
                    .basic_publish(
                        "".into(),
                        self.queue.as_str().into(),
                        BasicPublishOptions::default(),
                        body.as_bytes(),
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await
                    .unwrap();
                confirms.push(c);
            }
            for c in futures::future::join_all(confirms).await {
                assert!(matches!(c.unwrap(), Confirmation::Ack(None)));
            }
        }
    }

    /// How many messages wait in the queue (ready, not unacknowledged).
    pub async fn ready(&self) -> u32 {
        self.ch
            .queue_declare(
                self.queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap()
            .message_count()
    }

    /// Delete the queue.
    pub async fn delete(&self) {
        let _ = self
            .ch
            .queue_delete(self.queue.as_str().into(), Default::default())
            .await;
    }
}

/// Delete `queue` (whatever its arguments).
pub async fn delete_queue(queue: &str) {
    let conn = Connection::connect(URL, ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ");
    let ch = conn.create_channel().await.unwrap();
    let _ = ch.queue_delete(queue.into(), Default::default()).await;
    let _ = conn.close(200, "bye".into()).await;
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

/// Wait until every one of `expected` bodies was accepted at `path` across `apps`, polling
/// twice a second; fail with what is missing after `deadline`. Returns the total accepted.
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

/// Wait until at least `n` deliveries were accepted at `path` across `apps`.
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

/// `GET /v1.0/healthz` status.
pub async fn healthz(b: &Bindery) -> u16 {
    match b.client().get(b.url("/v1.0/healthz")).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

/// An app that accepts every delivery except those whose body contains `poison`, which it
/// always fails with 500. It records the bodies it accepted and counts the poison attempts.
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

/// Run a shell command; panic with its output when it fails.
pub fn sh(cmd: &str) {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether RabbitMQ's port accepts connections.
pub fn port_open() -> bool {
    std::net::TcpStream::connect_timeout(&ADDR.parse().unwrap(), Duration::from_millis(500)).is_ok()
}

/// Wait (blocking) until the port is open (`true`) or closed (`false`).
pub fn wait_port(open: bool, deadline: Duration) {
    let end = Instant::now() + deadline;
    while port_open() != open {
        assert!(
            Instant::now() < end,
            "RabbitMQ's port {ADDR} did not {} within {deadline:?}",
            if open { "open" } else { "close" }
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts RabbitMQ again, with scripts/backends.sh's command, whenever it is dropped while the
/// broker is down (also when the test panics), so the machine's broker is never left stopped.
pub struct RestartGuard;

impl RestartGuard {
    /// Stop the broker (`rabbitmqctl stop`) and wait until its port is closed.
    pub fn stop_broker(&self) {
        sh("rabbitmqctl stop");
        wait_port(false, Duration::from_secs(60));
    }

    /// Start it again with `rabbitmq-server -detached` and wait for its port.
    pub fn start_broker(&self) {
        if !port_open() {
            sh("rabbitmq-server -detached");
        }
        wait_port(true, Duration::from_secs(90));
    }
}

impl Drop for RestartGuard {
    fn drop(&mut self) {
        if !port_open() {
            let _ = std::process::Command::new("sh")
                .arg("-c")
                .arg("rabbitmq-server -detached")
                .status();
            let end = Instant::now() + Duration::from_secs(90);
            while !port_open() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}
