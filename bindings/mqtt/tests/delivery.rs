//! Black-box tests: the real `bindery` binary, the machine's Mosquitto and a real HTTP app.
//! Build the binary first (`cargo build -p bindery`).
//!
//! Mosquitto runs with the machine's configuration: persistence on, and the defaults
//! `max_inflight_messages 20` and `max_queued_messages 1000`. A session holds at most 1000
//! queued messages and the broker drops the rest, so publishers here pace themselves to stay
//! below that backlog (a broker limit, not a bindery one).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use bindery_test_support::{Answer, TestApp};
use common::{
    Publisher, accepted, bodies, component, forget_sessions, start_bindery, unique,
    wait_accepted_at_least, wait_all_accepted,
};
use http::Method;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;

const ROUTE: &str = "/mqtt";

fn session_ids(consumer_id: &str) -> Vec<String> {
    vec![
        format!("{consumer_id}-consumer"),
        format!("{consumer_id}-producer"),
    ]
}

/// 10,000 messages while the app fails a random 10 % of deliveries: every one is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_with_random_failures_all_arrive() {
    let topic = unique("t10k");
    let consumer = unique("c10k");
    let mut publisher = Publisher::new().await;
    let app = TestApp::start().await;
    app.fail_randomly(ROUTE, 0.1);
    let b = start_bindery(
        "mqtt-10k",
        &component("mqtt", &topic, &consumer, &[]),
        app.port,
    )
    .await;
    common::wait_subscribed(&b, &topic).await;
    let expected = bodies("m", 10_000);
    publisher
        .publish_paced(&topic, &expected, &[&app], ROUTE, 300)
        .await;
    let total = wait_all_accepted(&[&app], ROUTE, &expected, Duration::from_secs(180)).await;
    let failed = app
        .received_at(&Method::POST, ROUTE)
        .iter()
        .filter(|r| r.status == 500)
        .count();
    println!(
        "mqtt 10k: {} distinct accepted, {} duplicates, {failed} deliveries failed by the app and redelivered",
        expected.len(),
        total - expected.len()
    );
    assert!(failed > 500, "the app failed only {failed} deliveries");
    drop(b);
    forget_sessions(&session_ids(&consumer)).await;
}

/// A message the app always fails is retried with backoff and never stops the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_message_does_not_stop_the_others() {
    let topic = unique("tpoison");
    let consumer = unique("cpoison");
    let mut publisher = Publisher::new().await;
    let app = common::PoisonApp::default();
    let port = app.start().await;
    let b = start_bindery(
        "mqtt-poison",
        &component(
            "mqtt",
            &topic,
            &consumer,
            &[
                ("backOffInitialInterval", "100ms"),
                ("backOffMaxInterval", "400ms"),
            ],
        ),
        port,
    )
    .await;
    common::wait_subscribed(&b, &topic).await;
    publisher
        .publish_all(&topic, &["poison-1".to_owned()])
        .await;
    let expected = bodies("ok", 500);
    publisher.publish_all(&topic, &expected).await;
    bindery_test_support::wait_until(Duration::from_secs(60), "every good message", || {
        let got: HashSet<Vec<u8>> = app.accepted.lock().unwrap().iter().cloned().collect();
        let done = expected.iter().all(|b| got.contains(b.as_bytes()));
        async move { done.then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let attempts = app.poison_attempts.lock().unwrap().clone();
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    println!("mqtt poison: {} attempts, gaps {gaps:?}", attempts.len());
    assert!(attempts.len() >= 3, "the poison message was retried");
    assert!(
        attempts.len() < 60,
        "{} attempts: a hot loop",
        attempts.len()
    );
    assert!(
        gaps.iter()
            .skip(2)
            .all(|g| *g >= Duration::from_millis(250)),
        "the backoff grows: {gaps:?}"
    );
    drop(b);
    forget_sessions(&session_ids(&consumer)).await;
}

/// bindery killed with SIGKILL mid-stream and started again with the same consumerID: the
/// persistent session (cleanSession false) brings every unacknowledged message back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing() {
    let topic = unique("tkill");
    let consumer = unique("ckill");
    let mut publisher = Publisher::new().await;
    let app = TestApp::start().await;
    app.answer(Method::OPTIONS, ROUTE, vec![Answer::status(200)]);
    app.answer(
        Method::POST,
        ROUTE,
        vec![Answer::status(200).delay(Duration::from_millis(50))],
    );
    let file = component("mqtt", &topic, &consumer, &[]);
    let first = start_bindery("mqtt-kill", &file, app.port).await;
    common::wait_subscribed(&first, &topic).await;
    // Below the broker's per-session queue, so nothing is dropped while bindery is down.
    let expected = bodies("k", 800);
    publisher.publish_all(&topic, &expected).await;
    wait_accepted_at_least(&[&app], ROUTE, 100, Duration::from_secs(60)).await;
    first.signal("KILL");
    let (before, _) = accepted(&[&app], ROUTE);
    assert!(
        before.len() < expected.len(),
        "everything arrived before the kill"
    );
    drop(first);
    let _second = start_bindery("mqtt-kill", &file, app.port).await;
    let total = wait_all_accepted(&[&app], ROUTE, &expected, Duration::from_secs(120)).await;
    println!(
        "mqtt SIGKILL: {} had reached the app before the kill, {} duplicates overall",
        before.len(),
        total - expected.len()
    );
    drop(_second);
    forget_sessions(&session_ids(&consumer)).await;
}

/// Three replicas share a `$share/<group>/<topic>` subscription (Mosquitto offers shared
/// subscriptions to MQTT 3.1.1 clients too); one is killed mid-stream.
///
/// Mosquitto keeps round-robining messages to a shared-subscription member whose persistent
/// session is offline, and keeps them in that session: they are not redistributed to the
/// other members. So the killed replica is started again with its consumerID (as an
/// orchestrator would restart it), and its session delivers them. Nothing is lost; those
/// messages wait for the replica to come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_a_subscription_and_one_dies() {
    let topic = unique("tshare");
    let group = unique("g");
    let filter = format!("$share/{group}/{topic}");
    let mut publisher = Publisher::new().await;
    let consumers: Vec<String> = (0..3).map(|i| unique(&format!("crep{i}"))).collect();
    let mut apps = Vec::new();
    let mut replicas = Vec::new();
    for (i, consumer) in consumers.iter().enumerate() {
        let app = TestApp::start().await;
        app.answer(Method::OPTIONS, ROUTE, vec![Answer::status(200)]);
        app.answer(
            Method::POST,
            ROUTE,
            vec![Answer::status(200).delay(Duration::from_millis(5))],
        );
        let b = start_bindery(
            &format!("mqtt-replica-{i}"),
            &component("mqtt", &filter, consumer, &[]),
            app.port,
        )
        .await;
        common::wait_subscribed(&b, &topic).await;
        replicas.push(Some(b));
        apps.push(app);
    }
    let app_refs: Vec<&TestApp> = apps.iter().collect();
    let expected = bodies("r", 3000);
    let (first_half, second_half) = expected.split_at(1200);
    publisher
        .publish_paced(&topic, first_half, &app_refs, ROUTE, 300)
        .await;
    wait_accepted_at_least(&app_refs, ROUTE, 600, Duration::from_secs(60)).await;
    if let Some(b) = replicas[0].take() {
        b.signal("KILL");
    }
    let killed_had = apps[0].accepted(ROUTE).len();
    // A third of what follows goes to the dead replica's session (at most the broker's queue).
    publisher.publish_all(&topic, second_half).await;
    // The two live replicas take their share while replica 0 is down.
    let live: Vec<&TestApp> = apps[1..].iter().collect();
    wait_accepted_at_least(&live, ROUTE, 1500, Duration::from_secs(60)).await;
    let b = start_bindery(
        "mqtt-replica-0",
        &component("mqtt", &filter, &consumers[0], &[]),
        apps[0].port,
    )
    .await;
    replicas[0] = Some(b);
    let total = wait_all_accepted(&app_refs, ROUTE, &expected, Duration::from_secs(120)).await;
    let split: Vec<usize> = apps.iter().map(|a| a.accepted(ROUTE).len()).collect();
    println!(
        "mqtt replicas ($share): split {split:?}; replica 0 had {killed_had} when killed and got {} after its restart; {} duplicates",
        split[0] - killed_had,
        total - expected.len()
    );
    assert!(
        split.iter().all(|n| *n > 0),
        "every replica took work: {split:?}"
    );
    drop(replicas);
    let mut ids = Vec::new();
    for c in &consumers {
        ids.extend(session_ids(c));
    }
    forget_sessions(&ids).await;
}

/// `create` through the Dapr HTTP API: QoS 1 to the component topic or the request's `topic`,
/// with the retain flag; events carry the actual topic of wildcard subscriptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_publishes_and_events_carry_the_topic() {
    common::require_mosquitto().await;
    let base = unique("tapi");
    let consumer = unique("capi");
    let app = TestApp::start().await;
    app.subscribe(ROUTE);
    let file = component(
        "mqtt",
        &format!("{base}/#"),
        &consumer,
        &[("retain", "true")],
    );
    let b = start_bindery("mqtt-api", &file, app.port).await;
    common::wait_subscribed(&b, &base).await;
    let resp = b
        .invoke(
            "mqtt",
            json!({"operation": "create", "data": {"n": 1}, "metadata": {"topic": format!("{base}/a/b")}}),
        )
        .await;
    assert_eq!(resp.status(), 204, "{:?}", resp.text().await);
    let got = app
        .wait_for(Method::POST, ROUTE, 1, Duration::from_secs(20))
        .await;
    assert_eq!(&got[0].body[..], br#"{"n":1}"#);
    assert_eq!(
        got[0].header("topic").as_deref(),
        Some(format!("{base}/a/b").as_str())
    );
    // A wildcard topic cannot be published to.
    let resp = b
        .invoke("mqtt", json!({"operation": "create", "data": "x"}))
        .await;
    assert_eq!(resp.status(), 500);

    // retain: a subscriber that comes later still gets the message.
    let mut o = MqttOptions::new(unique("late"), "127.0.0.1", 1883);
    o.set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(o, 10);
    client
        .subscribe(format!("{base}/a/b"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let retained = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::Incoming(Packet::Publish(p)) = eventloop.poll().await.unwrap() {
                return p;
            }
        }
    })
    .await
    .expect("the retained message");
    assert!(retained.retain);
    assert_eq!(&retained.payload[..], br#"{"n":1}"#);
    // Clear the retained message.
    client
        .publish(format!("{base}/a/b"), QoS::AtLeastOnce, true, Vec::new())
        .await
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Ok(Event::Incoming(Packet::PubAck(_))) = eventloop.poll().await {
                break;
            }
        }
    })
    .await;
    drop(b);
    forget_sessions(&session_ids(&consumer)).await;
}

/// SIGTERM: bindery stops taking messages, finishes and acknowledges what is under way, and
/// leaves the rest in the session; a later instance with the same consumerID gets it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_leaves_the_rest_in_the_session() {
    let topic = unique("tterm");
    let consumer = unique("cterm");
    let mut publisher = Publisher::new().await;
    let app = TestApp::start().await;
    app.answer(Method::OPTIONS, ROUTE, vec![Answer::status(200)]);
    app.answer(
        Method::POST,
        ROUTE,
        vec![Answer::status(200).delay(Duration::from_millis(20))],
    );
    let file = component("mqtt", &topic, &consumer, &[]);
    let mut first = start_bindery("mqtt-term", &file, app.port).await;
    common::wait_subscribed(&first, &topic).await;
    let expected = bodies("t", 800);
    publisher.publish_all(&topic, &expected).await;
    wait_accepted_at_least(&[&app], ROUTE, 100, Duration::from_secs(60)).await;
    first.signal("TERM");
    let status = first.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "bindery exited with {status}");
    let (before, _) = accepted(&[&app], ROUTE);
    assert!(before.len() < expected.len());
    let _second = start_bindery("mqtt-term", &file, app.port).await;
    let total = wait_all_accepted(&[&app], ROUTE, &expected, Duration::from_secs(60)).await;
    println!(
        "mqtt SIGTERM: {} delivered before the stop, {} duplicates",
        before.len(),
        total - expected.len()
    );
    assert_eq!(
        total,
        expected.len(),
        "a graceful stop causes no duplicates"
    );
    drop(_second);
    forget_sessions(&session_ids(&consumer)).await;
}
