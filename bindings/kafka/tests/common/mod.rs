//! What the Kafka tests share: the broker address and its check, unique names, a fast test
//! producer, component documents, and counting what the app accepted.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

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
        .create()
        .expect("test producer")
}

/// Publish `n` messages `<prefix>-<i>` with no key (spread over the partitions); returns the
/// bodies.
pub(crate) async fn publish(topic: &str, prefix: &str, n: usize) -> Vec<String> {
    let p = producer();
    let bodies: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let sends = bodies.iter().map(|b| {
        let p = &p;
        async move {
            p.send(
                FutureRecord::<(), str>::to(topic).payload(b.as_str()),
                Timeout::After(Duration::from_secs(30)),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("publish to the test topic")
        }
    });
    // Bounded concurrency: librdkafka batches whatever is queued.
    {
        use futures::StreamExt;
        let mut pending = futures::stream::iter(sends).buffer_unordered(2000);
        while pending.next().await.is_some() {}
    }
    p.flush(Duration::from_secs(10)).expect("flush");
    bodies
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

/// Create `topic` (Tansu creates topics with 3 partitions on first use) by publishing one
/// marker message to it, so that consumers see every partition from the start.
pub(crate) async fn create_topic(topic: &str) {
    let p = producer();
    p.send(
        FutureRecord::<(), str>::to(topic).payload("__created"),
        Timeout::After(Duration::from_secs(30)),
    )
    .await
    .map_err(|(e, _)| e)
    .expect("create the test topic");
}

/// The accepted bodies at `path` as text, without topic-creation markers.
pub(crate) fn accepted(app: &TestApp, path: &str) -> Vec<String> {
    app.accepted(path)
        .into_iter()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .filter(|b| b != "__created")
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
