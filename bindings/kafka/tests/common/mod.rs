//! What the Kafka tests share: the broker address and its check, unique names, a fast test
//! producer, component documents, and counting what the app accepted.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) use bindery_test_support::{Bindery, BinderyBuilder, TestApp, wait_until};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use serde_json::Value;

/// The Kafka-protocol broker (Tansu) scripts/backends.sh starts.
pub(crate) const BROKER: &str = "127.0.0.1:19092";

/// Fail (never skip) when the broker is not reachable.
pub(crate) fn require_broker() {
    let addr = BROKER.parse().unwrap();
    if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
        panic!("the Kafka broker is not reachable on {BROKER}; start it with scripts/backends.sh");
    }
}

/// A name no other test or earlier run uses.
pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A builder for app id `app_id`. reqwest is built without a TLS provider of its own, so one
/// is installed before the harness builds its client.
pub(crate) fn bindery(app_id: &str) -> BinderyBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Bindery::builder(app_id)
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
pub(crate) fn q(s: &str) -> String {
    Value::from(s).to_string()
}

/// A `bindings.kafka` component with string metadata.
pub(crate) fn component(name: &str, metadata: &[(&str, &str)]) -> String {
    let mut doc = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {}\nspec:\n  type: bindings.kafka\n  version: v1\n  metadata:\n",
        q(name)
    );
    for (k, v) in metadata {
        doc.push_str(&format!("  - name: {}\n    value: {}\n", q(k), q(v)));
    }
    doc
}

/// An input component on `topic` for group `group`, tuned for tests: short group timers (the
/// first join takes ~23 s with librdkafka's defaults on Tansu), reading from the oldest
/// message, and a short redelivery backoff.
pub(crate) fn input_component(
    name: &str,
    topic: &str,
    group: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut md = vec![
        ("brokers", BROKER),
        ("authType", "none"),
        ("topics", topic),
        ("consumerGroup", group),
        ("initialOffset", "oldest"),
        ("sessionTimeout", "6s"),
        ("heartbeatInterval", "1s"),
        ("backOffPolicy", "exponential"),
        ("backOffInitialInterval", "10ms"),
        ("backOffMaxInterval", "200ms"),
    ];
    md.extend_from_slice(extra);
    component(name, &md)
}

/// A producer for the tests themselves, to publish fast without going through bindery.
pub(crate) fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", BROKER)
        .set("message.timeout.ms", "30000")
        .set("linger.ms", "5")
        // Spread key-less messages over every partition, not one partition per batch.
        .set("sticky.partitioning.linger.ms", "0")
        .create()
        .expect("test producer")
}

/// Publish `n` messages `<prefix>-<i>` with no key (spread over the partitions); returns the
/// bodies.
pub(crate) async fn publish(topic: &str, prefix: &str, n: usize) -> Vec<String> {
    publish_placed(topic, prefix, n)
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect()
}

/// Like [`publish`], returning each body with the partition it landed on.
pub(crate) async fn publish_placed(topic: &str, prefix: &str, n: usize) -> Vec<(String, i32)> {
    use futures::StreamExt;
    let p = producer();
    let bodies: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let placed: Vec<(String, i32)> = {
        let sends = bodies.iter().map(|b| {
            let p = &p;
            async move {
                let d = p
                    .send(
                        FutureRecord::<(), str>::to(topic).payload(b.as_str()),
                        Timeout::After(Duration::from_secs(30)),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .expect("publish to the test topic");
                (b.clone(), d.partition)
            }
        });
        // Bounded concurrency: librdkafka batches whatever is queued.
        futures::stream::iter(sends)
            .buffer_unordered(2000)
            .collect()
            .await
    };
    p.flush(Duration::from_secs(10)).expect("flush");
    placed
}

/// Publish one message to `partition`.
pub(crate) async fn publish_to(topic: &str, partition: i32, body: &str) {
    let p = producer();
    p.send(
        FutureRecord::<(), str>::to(topic)
            .payload(body)
            .partition(partition),
        Timeout::After(Duration::from_secs(30)),
    )
    .await
    .map_err(|(e, _)| e)
    .expect("publish to the test topic");
}

/// Create `topic` with 3 partitions (Tansu would create 4 on first use), so that consumers
/// see every partition from the start.
pub(crate) async fn create_topic(topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", BROKER)
        .create()
        .expect("admin client");
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, 3, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create the test topic");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t} failed: {e}"));
    }
}

/// The accepted bodies at `path` as text.
pub(crate) fn accepted(app: &TestApp, path: &str) -> Vec<String> {
    app.accepted(path)
        .into_iter()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

/// How many distinct of `expected` the apps accepted, and how many accepted deliveries were
/// duplicates.
pub(crate) fn tally(apps: &[&TestApp], path: &str, expected: &[String]) -> (usize, usize) {
    let want: HashSet<&str> = expected.iter().map(String::as_str).collect();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for app in apps {
        for b in accepted(app, path) {
            *seen.entry(b).or_default() += 1;
        }
    }
    let distinct = seen.keys().filter(|k| want.contains(k.as_str())).count();
    let duplicates = seen.values().map(|n| n - 1).sum();
    (distinct, duplicates)
}

/// Wait until every one of `expected` was accepted by one of `apps`.
pub(crate) async fn wait_all_accepted(
    apps: &[&TestApp],
    path: &str,
    expected: &[String],
    deadline: Duration,
) -> (usize, usize) {
    let total = expected.len();
    let end = std::time::Instant::now() + deadline;
    loop {
        let (distinct, dups) = tally(apps, path, expected);
        if distinct == total {
            return (distinct, dups);
        }
        if std::time::Instant::now() > end {
            let want: HashSet<&str> = expected.iter().map(String::as_str).collect();
            let got: HashSet<String> = apps.iter().flat_map(|a| accepted(a, path)).collect();
            let mut missing: Vec<&&str> = want.iter().filter(|w| !got.contains(**w)).collect();
            missing.sort();
            missing.truncate(10);
            panic!(
                "only {distinct} of {total} messages were accepted within {deadline:?}; missing e.g. {missing:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Which partitions each delivery accepted at `path` came from, counted.
pub(crate) fn partitions_of(app: &TestApp, path: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in app.received_at(&http::Method::POST, path) {
        if (200..300).contains(&r.status)
            && let Some(p) = r.header("__partition")
        {
            *counts.entry(p).or_default() += 1;
        }
    }
    counts
}

/// The last partition assignment a bindery logged, when it logged one.
pub(crate) fn last_assignment(b: &Bindery) -> Option<String> {
    let logs = strip_ansi(&b.logs());
    let line = logs
        .lines()
        .rfind(|l| l.contains("kafka partitions assigned"))?;
    let start = line.find("partitions=")? + "partitions=".len();
    let rest = &line[start..];
    let value = rest.split_whitespace().next().unwrap_or("");
    Some(value.trim_matches('"').to_owned())
}

/// `text` without terminal colour sequences (`ESC [ ... m`).
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// An app that accepts every delivery except those whose body contains `poison`, which it
/// always fails with 500. It records what it accepted with the `__partition` header, and when
/// each poison attempt came.
#[derive(Clone, Default)]
pub(crate) struct PoisonApp {
    pub(crate) accepted: Arc<Mutex<Vec<(String, String)>>>,
    pub(crate) poison_attempts: Arc<Mutex<Vec<Instant>>>,
}

impl PoisonApp {
    /// Serve on a free port; returns the port.
    pub(crate) async fn start(&self) -> u16 {
        use axum::body::Bytes;
        use axum::http::{HeaderMap, Method, StatusCode};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = self.clone();
        let router =
            axum::Router::new().fallback(move |method: Method, headers: HeaderMap, body: Bytes| {
                let app = app.clone();
                async move {
                    if method == Method::OPTIONS {
                        return StatusCode::OK;
                    }
                    let body = String::from_utf8_lossy(&body).into_owned();
                    if body.contains("poison") {
                        app.poison_attempts.lock().unwrap().push(Instant::now());
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let partition = headers
                        .get("__partition")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    app.accepted.lock().unwrap().push((body, partition));
                    StatusCode::OK
                }
            });
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        port
    }
}

/// `GET /v1.0/healthz`'s status.
pub(crate) async fn healthz(b: &Bindery) -> u16 {
    match b.client().get(b.url("/v1.0/healthz")).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

/// Wait until `/v1.0/healthz` answers `status`.
pub(crate) async fn wait_health(b: &Bindery, status: u16, deadline: Duration, what: &str) {
    wait_until(deadline, what, || async {
        (healthz(b).await == status).then_some(())
    })
    .await;
}
