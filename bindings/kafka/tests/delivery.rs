//! Black-box tests: the real `bindery` binary, the Kafka-protocol broker scripts/backends.sh
//! starts (Tansu on 127.0.0.1:19092) and a real HTTP app. Build the binary first
//! (`cargo build -p bindery`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use bindery_test_support::{Answer, TestApp};
use http::Method;
use serde_json::json;

use common::{
    BROKER, PoisonApp, accepted, bindery, component, create_topic, healthz, input_component,
    last_assignment, partitions_of, publish, publish_placed, require_broker, tally, unique,
    wait_all_accepted, wait_health, wait_until,
};

const ROUTE: &str = "/kafka-in";
const NAME: &str = "kafka-in";

/// `create` through the Dapr HTTP API: the key, forced partition, topic override and headers
/// arrive, the excluded metadata does not, and the event carries Dapr's metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_publishes_key_partition_and_headers() {
    require_broker();
    let topic = unique("create");
    let other = unique("create-other");
    create_topic(&topic).await;
    create_topic(&other).await;
    let group = unique("g");
    let app = TestApp::start().await;
    app.subscribe(ROUTE);
    let topics = format!("{topic},{other}");
    let b = bindery("kafka-create")
        .app_port(app.port)
        .file(
            "kafka.yaml",
            &input_component(
                NAME,
                &topics,
                &group,
                &[
                    ("publishTopic", topic.as_str()),
                    ("excludeHeaderMetaRegex", "^secret"),
                ],
            ),
        )
        .start()
        .await;
    wait_health(&b, 204, Duration::from_secs(30), "bindery ready").await;

    let resp = b
        .invoke(
            NAME,
            json!({
                "operation": "create",
                "data": {"order": 1},
                "metadata": {"partitionKey": "key-1", "partitionNumber": "2", "x-trace": "abc", "secret-token": "hidden"}
            }),
        )
        .await;
    assert_eq!(
        resp.status().as_u16(),
        204,
        "{}",
        resp.text().await.unwrap()
    );
    let resp = b
        .invoke(
            NAME,
            json!({"operation": "create", "data": "to the other topic", "metadata": {"topic": other}}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 204);

    let got = wait_until(Duration::from_secs(60), "both messages at the app", || {
        let got = app.received_at(&Method::POST, ROUTE);
        async move { (got.len() >= 2).then_some(got) }
    })
    .await;
    let first = got
        .iter()
        .find(|r| r.body.as_ref() == br#"{"order":1}"#)
        .expect("the first message");
    assert_eq!(first.header("__key").as_deref(), Some("key-1"));
    assert_eq!(first.header("__partition").as_deref(), Some("2"));
    assert_eq!(first.header("__topic").as_deref(), Some(topic.as_str()));
    assert_eq!(first.header("x-trace").as_deref(), Some("abc"));
    assert_eq!(first.header("partitionkey").as_deref(), Some("key-1"));
    assert_eq!(first.header("secret-token"), None);
    let ts: i64 = first.header("__timestamp").unwrap().parse().unwrap();
    assert!(ts > 1_600_000_000_000, "timestamp {ts} is not Unix ms");
    assert!(first.header("__offset").unwrap().parse::<i64>().is_ok());
    let second = got
        .iter()
        .find(|r| r.body.as_ref() == br#""to the other topic""#)
        .expect("the message to the other topic");
    assert_eq!(second.header("__topic").as_deref(), Some(other.as_str()));
    assert_eq!(second.header("__key"), None);

    // A bad partition number is the caller's mistake.
    let resp = b
        .invoke(
            NAME,
            json!({"operation": "create", "data": 1, "metadata": {"partitionNumber": "two"}}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 500);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("invalid partitionNumber")
    );
}

/// 10,000 messages while the app fails a random 10 % of deliveries: every one is accepted, in
/// offset order per partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_with_random_failures_all_arrive() {
    require_broker();
    let topic = unique("tenk");
    let group = unique("g");
    create_topic(&topic).await;
    let expected = publish(&topic, "m", 10_000).await;
    let app = TestApp::start().await;
    app.fail_randomly(ROUTE, 0.1);
    let b = bindery("kafka-10k")
        .app_port(app.port)
        .file("kafka.yaml", &input_component(NAME, &topic, &group, &[]))
        .start()
        .await;
    let (distinct, duplicates) =
        wait_all_accepted(&[&app], ROUTE, &expected, Duration::from_secs(240)).await;
    let posts = app.received_at(&Method::POST, ROUTE);
    let failed = posts.iter().filter(|r| r.status == 500).count();
    println!(
        "kafka 10k: {distinct} distinct accepted, {duplicates} duplicates, {failed} deliveries failed by the app and redelivered"
    );
    assert_eq!(distinct, 10_000);
    assert!(failed > 500, "the app failed only {failed} deliveries");
    // Within a partition, the app saw the offsets in order: a failed message was redelivered
    // before the next one.
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for r in posts.iter().filter(|r| r.status == 200) {
        let p = r.header("__partition").unwrap();
        let o: i64 = r.header("__offset").unwrap().parse().unwrap();
        if let Some(prev) = last.insert(p.clone(), o) {
            assert!(o > prev, "partition {p}: offset {o} accepted after {prev}");
        }
    }
    assert_eq!(healthz(&b).await, 204);
}

/// A message the app always fails holds its own partition (ordering) but not the others, and
/// is redelivered with backoff, not in a hot loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_message_does_not_stop_the_other_partitions() {
    require_broker();
    let topic = unique("poison");
    let group = unique("g");
    create_topic(&topic).await;
    common::publish_to(&topic, 0, "poison-pill").await;
    let placed = publish_placed(&topic, "p", 600).await;
    let app = PoisonApp::default();
    let port = app.start().await;
    let _b = bindery("kafka-poison")
        .app_port(port)
        .file("kafka.yaml", &input_component(NAME, &topic, &group, &[]))
        .start()
        .await;
    let others: HashSet<String> = placed
        .iter()
        .filter(|(_, p)| *p != 0)
        .map(|(b, _)| b.clone())
        .collect();
    let behind: HashSet<String> = placed
        .iter()
        .filter(|(_, p)| *p == 0)
        .map(|(b, _)| b.clone())
        .collect();
    assert!(!others.is_empty() && !behind.is_empty());
    wait_until(
        Duration::from_secs(90),
        "every message of partitions 1 and 2",
        || {
            let got: HashSet<String> = app
                .accepted
                .lock()
                .unwrap()
                .iter()
                .map(|(b, _)| b.clone())
                .collect();
            let done = others.iter().all(|o| got.contains(o));
            async move { done.then_some(()) }
        },
    )
    .await;
    // The poison message keeps being retried, with backoff (10 ms doubling to 200 ms).
    let before = app.poison_attempts.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attempts = app.poison_attempts.lock().unwrap().clone();
    let in_window = attempts.len() - before;
    assert!(
        in_window >= 3,
        "the poison message was retried only {in_window} times in 2s"
    );
    assert!(
        in_window <= 40,
        "the poison message was retried {in_window} times in 2s: a hot loop"
    );
    // Nothing behind it in partition 0 was delivered: the partition keeps its order.
    let accepted_behind = app
        .accepted
        .lock()
        .unwrap()
        .iter()
        .filter(|(b, _)| behind.contains(b))
        .count();
    assert_eq!(accepted_behind, 0);
    println!(
        "kafka poison: {} messages of the other partitions accepted, {} poison attempts, {} messages held behind it",
        others.len(),
        attempts.len(),
        behind.len()
    );
}

/// bindery killed with SIGKILL mid-stream and started again with the same consumer group:
/// every message is accepted; what was accepted but not yet committed comes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing() {
    require_broker();
    let topic = unique("kill");
    let group = unique("g");
    create_topic(&topic).await;
    let expected = publish(&topic, "k", 10_000).await;
    let app = TestApp::start().await;
    app.subscribe(ROUTE);
    app.answer(
        Method::POST,
        ROUTE,
        vec![Answer::status(200).delay(Duration::from_millis(1))],
    );
    let doc = input_component(NAME, &topic, &group, &[]);
    let first = bindery("kafka-kill")
        .app_port(app.port)
        .file("kafka.yaml", &doc)
        .start()
        .await;
    wait_until(
        Duration::from_secs(60),
        "2000 accepted before the kill",
        || {
            let n = accepted(&app, ROUTE).len();
            async move { (n >= 2000).then_some(()) }
        },
    )
    .await;
    first.signal("KILL");
    let at_kill = accepted(&app, ROUTE).len();
    drop(first);
    let _second = bindery("kafka-kill")
        .app_port(app.port)
        .file("kafka.yaml", &doc)
        .start()
        .await;
    let (distinct, duplicates) =
        wait_all_accepted(&[&app], ROUTE, &expected, Duration::from_secs(240)).await;
    println!(
        "kafka SIGKILL: killed after {at_kill} accepted; {distinct} distinct accepted, {duplicates} duplicates"
    );
    assert_eq!(distinct, 10_000);
}

/// SIGTERM mid-stream: bindery finishes what is in flight and commits what the app accepted,
/// so its successor redelivers nothing that was accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_commits_what_was_accepted() {
    require_broker();
    let topic = unique("term");
    let group = unique("g");
    create_topic(&topic).await;
    let expected = publish(&topic, "t", 3_000).await;
    let app = TestApp::start().await;
    app.subscribe(ROUTE);
    app.answer(
        Method::POST,
        ROUTE,
        vec![Answer::status(200).delay(Duration::from_millis(1))],
    );
    let doc = input_component(NAME, &topic, &group, &[]);
    let mut first = bindery("kafka-term")
        .app_port(app.port)
        .file("kafka.yaml", &doc)
        .start()
        .await;
    wait_until(
        Duration::from_secs(60),
        "500 accepted before the stop",
        || {
            let n = accepted(&app, ROUTE).len();
            async move { (n >= 500).then_some(()) }
        },
    )
    .await;
    first.signal("TERM");
    let status = first.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "bindery exited with {status}");
    let at_stop = accepted(&app, ROUTE).len();
    let _second = bindery("kafka-term")
        .app_port(app.port)
        .file("kafka.yaml", &doc)
        .start()
        .await;
    let (distinct, duplicates) =
        wait_all_accepted(&[&app], ROUTE, &expected, Duration::from_secs(120)).await;
    println!(
        "kafka SIGTERM: stopped after {at_stop} accepted; {distinct} distinct accepted, {duplicates} duplicates"
    );
    assert_eq!(distinct, 3_000);
    assert_eq!(
        duplicates, 0,
        "messages accepted before the graceful stop came again"
    );
}

/// Three replicas in one consumer group share the three partitions; killing one mid-stream
/// loses nothing, its partitions move to the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_the_partitions_and_survive_a_kill() {
    require_broker();
    let topic = unique("replicas");
    let group = unique("g");
    create_topic(&topic).await;
    let doc = input_component(NAME, &topic, &group, &[]);
    let mut apps = Vec::new();
    let mut replicas = Vec::new();
    for i in 0..3 {
        let app = TestApp::start().await;
        app.subscribe(ROUTE);
        app.answer(
            Method::POST,
            ROUTE,
            vec![Answer::status(200).delay(Duration::from_millis(2))],
        );
        let b = bindery(&format!("kafka-replica-{i}"))
            .app_port(app.port)
            .file("kafka.yaml", &doc)
            .start()
            .await;
        apps.push(app);
        replicas.push(Some(b));
    }
    // Wait until the group settled with one partition per replica.
    let split = wait_until(
        Duration::from_secs(90),
        "each replica to own one partition",
        || {
            let assigned: Vec<Option<String>> = replicas
                .iter()
                .map(|b| b.as_ref().and_then(last_assignment))
                .collect();
            let settled = assigned.iter().all(|a| {
                a.as_deref()
                    .is_some_and(|a| !a.is_empty() && !a.contains(','))
            });
            let distinct = assigned.iter().collect::<HashSet<_>>().len();
            async move { (settled && distinct == 3).then_some(assigned) }
        },
    )
    .await;
    println!("kafka replicas: assignment {split:?}");
    let expected = publish(&topic, "r", 10_000).await;
    wait_until(Duration::from_secs(60), "replica 0 mid-stream", || {
        let n = accepted(&apps[0], ROUTE).len();
        async move { (n >= 500).then_some(()) }
    })
    .await;
    let killed = replicas[0].take().unwrap();
    killed.signal("KILL");
    let at_kill: Vec<usize> = apps.iter().map(|a| accepted(a, ROUTE).len()).collect();
    drop(killed);
    let app_refs: Vec<&TestApp> = apps.iter().collect();
    let (distinct, duplicates) =
        wait_all_accepted(&app_refs, ROUTE, &expected, Duration::from_secs(240)).await;
    let per_replica: Vec<usize> = apps.iter().map(|a| accepted(a, ROUTE).len()).collect();
    let partitions: Vec<BTreeMap<String, usize>> =
        apps.iter().map(|a| partitions_of(a, ROUTE)).collect();
    println!(
        "kafka replicas: accepted per replica at the kill {at_kill:?}, at the end {per_replica:?}; partitions per replica {partitions:?}; {distinct} distinct, {duplicates} duplicates"
    );
    assert_eq!(distinct, 10_000);
    for (i, n) in at_kill.iter().enumerate() {
        assert!(*n > 0, "replica {i} got no work before the kill");
    }
    let (d, _) = tally(&app_refs[1..], ROUTE, &expected);
    assert!(d > 0);
}

/// A topic that does not exist yet when bindery subscribes is read once it is created (Tansu
/// does not create topics for consumers), without waiting minutes for a metadata refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_created_after_start_is_read() {
    require_broker();
    let topic = unique("late");
    let group = unique("g");
    let app = TestApp::start().await;
    app.subscribe(ROUTE);
    let b = bindery("kafka-late")
        .app_port(app.port)
        .file("kafka.yaml", &input_component(NAME, &topic, &group, &[]))
        .start()
        .await;
    wait_until(
        Duration::from_secs(30),
        "the missing topic to be noticed",
        || {
            let noticed = b.logs().contains("does not exist (yet)");
            async move { noticed.then_some(()) }
        },
    )
    .await;
    let expected = publish(&topic, "late", 50).await;
    let (distinct, _) = wait_all_accepted(&[&app], ROUTE, &expected, Duration::from_secs(60)).await;
    assert_eq!(distinct, 50);
}

/// A component whose brokers cannot be reached: the binding reports not ready and `create`
/// fails fast with a clear error, while bindery keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_brokers_are_reported() {
    let port = bindery_test_support::free_port();
    let brokers = format!("127.0.0.1:{port}");
    let b = bindery("kafka-down")
        .file(
            "kafka.yaml",
            &component(
                "kafka-out",
                &[
                    ("brokers", brokers.as_str()),
                    ("authType", "none"),
                    ("publishTopic", "t"),
                    ("dialTimeout", "1s"),
                ],
            ),
        )
        .start()
        .await;
    assert_eq!(healthz(&b).await, 500);
    let resp = b
        .invoke("kafka-out", json!({"operation": "create", "data": 1}))
        .await;
    assert_eq!(resp.status().as_u16(), 500);
    let _ = BROKER;
}
