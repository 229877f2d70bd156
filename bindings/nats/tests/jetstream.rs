//! `bindings.nats` with JetStream through the real `bindery` binary: nothing is lost when the
//! app fails deliveries, when bindery is killed, when a message always fails, or when replicas
//! share a durable consumer and one of them dies. NATS runs with `-js -sd`, so the stream and
//! the consumer's progress are on disk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::Duration;

use bindery_test_support::{Bindery, wait_until};
use common::*;
use futures::StreamExt;
use serde_json::json;

async fn start(app: &App, route: &str, md: &[(&str, &str)]) -> Bindery {
    install_crypto();
    let b = Bindery::builder("nats-js")
        .file("nats.yaml", &component(route, md))
        .app_port(app.port)
        .start()
        .await;
    // Ready means subscribed: wait for the binding's own word, then for the health endpoint.
    wait_until(Duration::from_secs(30), "the binding to read", || async {
        (b.logs().contains("pulling from JetStream") && healthz(&b).await == 204).then_some(())
    })
    .await;
    b
}

fn bodies(n: usize) -> impl Iterator<Item = String> {
    (0..n).map(|i| format!("m-{i}"))
}

#[tokio::test]
async fn ten_thousand_messages_with_random_failures() {
    let stream = TestStream::create().await;
    let durable = unique("d");
    let app = App::start("orders").await;
    app.fail_randomly(0.1);
    let _b = start(
        &app,
        "orders",
        &[
            ("subject", &stream.subject),
            ("jetStream", "true"),
            ("streamName", &stream.name),
            ("durableName", &durable),
            ("concurrency", "8"),
            ("backOffInitialInterval", "10ms"),
            ("backOffMaxInterval", "200ms"),
        ],
    )
    .await;
    const N: usize = 10_000;
    stream.publish_all(bodies(N)).await;
    eventually(
        Duration::from_secs(240),
        "all 10,000 messages accepted",
        || distinct_and_duplicates(&app.accepted()).0 >= N,
    )
    .await;
    let accepted = app.accepted();
    let (distinct, dups) = distinct_and_duplicates(&accepted);
    let refused = app.deliveries().len() - accepted.len();
    println!(
        "jetstream 10k: {distinct} distinct accepted, {dups} duplicates, {refused} deliveries refused by the app"
    );
    assert_eq!(distinct, N);
    assert!(refused > 0, "the app refused some deliveries");
    assert!(
        bodies(N).all(|b| accepted.contains(&b)),
        "every published message was accepted"
    );
}

#[tokio::test]
async fn a_poison_message_does_not_stop_the_others() {
    let stream = TestStream::create().await;
    let app = App::start("poisoned").await;
    app.poison("poison");
    let _b = start(
        &app,
        "poisoned",
        &[
            ("subject", &stream.subject),
            ("jetStream", "true"),
            ("durableName", &unique("d")),
            ("backOffInitialInterval", "10ms"),
            ("backOffMaxInterval", "100ms"),
        ],
    )
    .await;
    stream
        .publish_all(std::iter::once("poison".to_owned()).chain(bodies(300)))
        .await;
    eventually(Duration::from_secs(60), "the 300 good messages", || {
        distinct_and_duplicates(&app.accepted()).0 >= 300
    })
    .await;
    eventually(
        Duration::from_secs(20),
        "the poison to be redelivered",
        || app.deliveries_of("poison") >= 3,
    )
    .await;
    let (_, h) = app
        .deliveries()
        .into_iter()
        .rev()
        .find(|(b, _)| b == "poison")
        .unwrap();
    let n: i64 = h["numdelivered"].parse().unwrap();
    println!(
        "jetstream poison: delivered {} times so far (numDelivered {n}); 300 others accepted",
        app.deliveries_of("poison")
    );
    assert!(n >= 3);
    assert_eq!(h["sequence"], "1");
    assert_eq!(h["stream"], stream.name);
}

#[tokio::test]
async fn sigkill_mid_stream_loses_nothing() {
    let stream = TestStream::create().await;
    let durable = unique("d");
    let app = App::start("orders").await;
    app.delay(Duration::from_millis(2));
    let md = [
        ("subject", stream.subject.as_str()),
        ("jetStream", "true"),
        ("streamName", stream.name.as_str()),
        ("durableName", durable.as_str()),
        ("concurrency", "4"),
        ("ackWait", "2s"),
    ];
    const N: usize = 3000;
    stream.publish_all(bodies(N)).await;
    let first = start(&app, "orders", &md).await;
    eventually(Duration::from_secs(60), "a part of the messages", || {
        app.accepted_count() >= 500
    })
    .await;
    first.signal("KILL");
    let before = app.accepted_count();
    drop(first);
    let _second = start(&app, "orders", &md).await;
    eventually(
        Duration::from_secs(120),
        "every message after the restart",
        || distinct_and_duplicates(&app.accepted()).0 >= N,
    )
    .await;
    let (distinct, dups) = distinct_and_duplicates(&app.accepted());
    println!(
        "jetstream SIGKILL: {before} accepted before the kill; {distinct} distinct in the end, {dups} duplicates"
    );
    assert_eq!(distinct, N);
}

#[tokio::test]
async fn three_replicas_share_a_durable_consumer_and_survive_a_kill() {
    let stream = TestStream::create().await;
    let durable = unique("shared");
    let md = [
        ("subject", stream.subject.as_str()),
        ("jetStream", "true"),
        ("durableName", durable.as_str()),
        ("concurrency", "2"),
        ("ackWait", "2s"),
    ];
    let mut apps = Vec::new();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let app = App::start("work").await;
        app.delay(Duration::from_millis(2));
        replicas.push(start(&app, "work", &md).await);
        apps.push(app);
    }
    const N: usize = 6000;
    stream.publish_all(bodies(N)).await;
    let total = |apps: &[App]| apps.iter().map(App::accepted_count).sum::<usize>();
    eventually(Duration::from_secs(60), "a quarter of the messages", || {
        total(&apps) >= N / 4
    })
    .await;
    replicas[0].signal("KILL");
    let at_kill: Vec<usize> = apps.iter().map(App::accepted_count).collect();
    eventually(Duration::from_secs(120), "every message", || {
        let all: Vec<String> = apps.iter().flat_map(App::accepted).collect();
        distinct_and_duplicates(&all).0 >= N
    })
    .await;
    let split: Vec<usize> = apps.iter().map(App::accepted_count).collect();
    let all: Vec<String> = apps.iter().flat_map(App::accepted).collect();
    let (distinct, dups) = distinct_and_duplicates(&all);
    println!(
        "jetstream 3 replicas: split {split:?} (replica 0 killed at {at_kill:?}); {distinct} distinct, {dups} duplicates"
    );
    assert_eq!(distinct, N);
    assert!(
        at_kill.iter().all(|n| *n > 0),
        "every replica got work before the kill: {at_kill:?}"
    );
    assert!(
        split[1] > at_kill[1] && split[2] > at_kill[2],
        "the survivors took over"
    );
}

#[tokio::test]
async fn create_awaits_the_stream_and_deduplicates() {
    install_crypto();
    let stream = TestStream::create().await;
    let nc = client().await;
    let mut sub = nc.subscribe(stream.subject.clone()).await.unwrap();
    nc.flush().await.unwrap();
    let b = Bindery::builder("nats-js-out")
        .file(
            "nats.yaml",
            &component(
                "events",
                &[("publishSubject", &stream.subject), ("jetStream", "true")],
            ),
        )
        .start()
        .await;
    let call = json!({"operation": "create", "data": {"n": 1}, "metadata": {"msgID": "order-1", "X-Tenant": "acme"}});
    let r = b.invoke("events", call.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["metadata.stream"], stream.name.as_str());
    assert_eq!(r.headers()["metadata.sequence"], "1");
    assert_eq!(r.headers()["metadata.duplicate"], "false");
    let r = b.invoke("events", call).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["metadata.duplicate"], "true");
    assert_eq!(stream.messages().await, 1);

    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.payload.as_ref(), br#"{"n":1}"#);
    let h = m.headers.unwrap();
    assert_eq!(h.get("Nats-Msg-Id").unwrap().as_str(), "order-1");
    assert_eq!(h.get("X-Tenant").unwrap().as_str(), "acme");

    // A subject no stream captures is refused, not silently dropped.
    let r = b
        .invoke(
            "events",
            json!({"operation": "create", "data": 1, "metadata": {"subject": unique("nostream.")}}),
        )
        .await;
    assert_eq!(r.status(), 500);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no JetStream stream captures subject"),
        "{body}"
    );
}

#[tokio::test]
async fn a_long_delivery_is_kept_in_progress() {
    let stream = TestStream::create().await;
    let durable = unique("d");
    let app = App::start("slow").await;
    // Each delivery takes three times ackWait; without "in progress" JetStream would send the
    // message again meanwhile (concurrency 2 leaves room to receive it).
    app.delay(Duration::from_secs(3));
    let _b = start(
        &app,
        "slow",
        &[
            ("subject", &stream.subject),
            ("jetStream", "true"),
            ("durableName", &durable),
            ("ackWait", "1s"),
            ("concurrency", "2"),
        ],
    )
    .await;
    stream.publish_all(["slow-1".to_owned()]).await;
    eventually(
        Duration::from_secs(20),
        "the slow message to be accepted",
        || app.accepted_count() >= 1,
    )
    .await;
    let js_stream = stream.js.get_stream(&stream.name).await.unwrap();
    let info = wait_until(
        Duration::from_secs(10),
        "the ack to reach the server",
        || async {
            let info = js_stream.consumer_info(&durable).await.ok()?;
            (info.num_ack_pending == 0).then_some(info)
        },
    )
    .await;
    // Every delivery, redeliveries included, takes a consumer sequence: one means no resend.
    assert_eq!(info.delivered.stream_sequence, 1);
    assert_eq!(
        info.delivered.consumer_sequence, 1,
        "JetStream delivered the message again during the long delivery"
    );
}
