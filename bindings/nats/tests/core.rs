//! `bindings.nats` on core NATS: Dapr's conformance steps on the traits, then the real `bindery`
//! binary delivering to a real app. Core NATS keeps nothing: a message published while no one
//! subscribes is gone, and the server cannot redeliver, so these tests publish only once the
//! binding is subscribed (`/v1.0/healthz` is 204 only then) and check the in-process retries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::Duration;

use bindery_core::Metadata;
use bindery_test_support::conformance::{self, Conformance};
use bindery_test_support::{Bindery, wait_until};
use common::*;
use futures::StreamExt;
use serde_json::json;

#[tokio::test]
async fn conformance_core() {
    require_nats();
    let subject = unique("bindery.core.");
    let mut c = Conformance::new(
        "nats-conformance",
        Metadata::from_pairs([("natsURL", NATS_URL), ("subject", subject.as_str())]),
    );
    c.operations = vec!["create"];
    c.read = true;
    let events = conformance::run(&bindery_binding_nats::NatsFactory, c).await;
    assert_eq!(events[0].metadata["subject"], subject);
    assert_eq!(
        events[0].data.as_ref(),
        conformance::DEFAULT_OUTPUT_DATA.as_bytes()
    );
}

#[tokio::test]
async fn conformance_jetstream() {
    let stream = TestStream::create().await;
    let durable = unique("conf");
    let mut c = Conformance::new(
        "nats-conformance-js",
        Metadata::from_pairs([
            ("natsURL", NATS_URL),
            ("subject", stream.subject.as_str()),
            ("jetStream", "true"),
            ("durableName", durable.as_str()),
        ]),
    );
    c.operations = vec!["create"];
    c.read = true;
    let events = conformance::run(&bindery_binding_nats::NatsFactory, c).await;
    let e = &events[0];
    assert_eq!(e.metadata["stream"], stream.name);
    assert_eq!(e.metadata["sequence"], "1");
    assert_eq!(e.metadata["numDelivered"], "1");
    assert!(e.metadata["timestamp"].ends_with('Z'));
}

async fn start_bindery(app: &App, name: &str, md: &[(&str, &str)]) -> Bindery {
    let b = Bindery::builder(&unique("nats-app-"))
        .file("nats.yaml", &component(name, md))
        .app_port(app.port)
        .start()
        .await;
    // Ready means subscribed: wait for the binding's own word, then for the health endpoint.
    wait_until(Duration::from_secs(30), "the binding to read", || async {
        (b.logs().contains("subscribed to core NATS") && healthz(&b).await == 204).then_some(())
    })
    .await;
    b
}

#[tokio::test]
async fn delivers_with_metadata_and_retries_in_process() {
    install_crypto();
    let nc = client().await;
    let subject = unique("bindery.core.");
    let app = App::start("orders").await;
    app.fail_first("flaky", 3);
    let b = start_bindery(
        &app,
        "orders",
        &[
            ("subject", &format!("{subject}.>")),
            ("backOffInitialInterval", "20ms"),
            ("backOffMaxInterval", "100ms"),
        ],
    )
    .await;

    let mut headers = async_nats::HeaderMap::new();
    headers.insert("X-Tenant", "acme");
    headers.insert("Content-Type", "text/plain");
    nc.publish_with_reply_and_headers(
        format!("{subject}.eu"),
        "_INBOX.answer",
        headers,
        "flaky".into(),
    )
    .await
    .unwrap();
    nc.flush().await.unwrap();

    eventually(
        Duration::from_secs(20),
        "the flaky message to be accepted",
        || app.accepted().contains(&"flaky".to_owned()),
    )
    .await;
    // Refused three times, then accepted: core NATS cannot redeliver, bindery retried it.
    assert_eq!(app.deliveries_of("flaky"), 4);
    let (_, h) = &app.deliveries()[0];
    assert_eq!(h["subject"], format!("{subject}.eu"));
    assert_eq!(h["reply"], "_INBOX.answer");
    assert_eq!(h["x-tenant"], "acme");
    assert_eq!(h["content-type"], "text/plain");
    drop(b);
}

#[tokio::test]
async fn a_poison_message_does_not_stop_the_others() {
    install_crypto();
    let nc = client().await;
    let subject = unique("bindery.core.");
    let app = App::start("poisoned").await;
    app.poison("poison");
    let b = start_bindery(
        &app,
        "poisoned",
        &[
            ("subject", &subject),
            ("backOffInitialInterval", "10ms"),
            ("backOffMaxInterval", "50ms"),
        ],
    )
    .await;
    nc.publish(subject.clone(), "poison".into()).await.unwrap();
    for i in 0..200 {
        nc.publish(subject.clone(), format!("m-{i}").into())
            .await
            .unwrap();
    }
    nc.flush().await.unwrap();
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while app.accepted_count() < 200 {
        assert!(
            std::time::Instant::now() < end,
            "{} of the 200 good messages accepted after 30 s; poison delivered {} times\n{}",
            app.accepted_count(),
            app.deliveries_of("poison"),
            b.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (distinct, dups) = distinct_and_duplicates(&app.accepted());
    assert_eq!(distinct, 200);
    assert_eq!(dups, 0);
    // The poison is still being retried in process.
    eventually(Duration::from_secs(10), "the poison to be retried", || {
        app.deliveries_of("poison") >= 3
    })
    .await;
}

#[tokio::test]
async fn a_queue_group_shares_the_messages() {
    install_crypto();
    let nc = client().await;
    let subject = unique("bindery.core.");
    let group = unique("workers");
    let mut apps = Vec::new();
    let mut binderies = Vec::new();
    for _ in 0..3 {
        let app = App::start("work").await;
        app.delay(Duration::from_millis(2));
        binderies.push(
            start_bindery(
                &app,
                "work",
                &[("subject", &subject), ("queueGroupName", &group)],
            )
            .await,
        );
        apps.push(app);
    }
    const N: usize = 600;
    for i in 0..N {
        nc.publish(subject.clone(), format!("m-{i}").into())
            .await
            .unwrap();
    }
    nc.flush().await.unwrap();
    eventually(Duration::from_secs(60), "every message", || {
        apps.iter().map(App::accepted_count).sum::<usize>() >= N
    })
    .await;
    let all: Vec<String> = apps.iter().flat_map(App::accepted).collect();
    let (distinct, dups) = distinct_and_duplicates(&all);
    let split: Vec<usize> = apps.iter().map(App::accepted_count).collect();
    println!("core queue group: {N} messages split {split:?}, duplicates {dups}");
    assert_eq!(distinct, N);
    assert_eq!(dups, 0, "a queue group delivers each message to one member");
    assert!(
        split.iter().all(|n| *n > 0),
        "every replica got work: {split:?}"
    );
}

#[tokio::test]
async fn create_publishes_with_headers_and_subject_override() {
    install_crypto();
    let nc = client().await;
    let subject = unique("bindery.out.");
    let mut sub = nc.subscribe(format!("{subject}.>")).await.unwrap();
    nc.flush().await.unwrap();
    let b = Bindery::builder("nats-out")
        .file(
            "nats.yaml",
            &component(
                "events",
                &[("publishSubject", &format!("{subject}.default"))],
            ),
        )
        .start()
        .await;

    let r = b
        .invoke(
            "events",
            json!({"operation": "create", "data": {"id": 7}, "metadata": {"X-Tenant": "acme", "msgID": "id-1"}}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.subject.as_str(), format!("{subject}.default"));
    assert_eq!(m.payload.as_ref(), br#"{"id":7}"#);
    let h = m.headers.unwrap();
    assert_eq!(h.get("X-Tenant").unwrap().as_str(), "acme");
    assert_eq!(h.get("Nats-Msg-Id").unwrap().as_str(), "id-1");

    let r = b
        .invoke(
            "events",
            json!({"operation": "create", "data": "x", "metadata": {"subject": format!("{subject}.other")}}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.subject.as_str(), format!("{subject}.other"));
    assert!(m.headers.is_none_or(|h| h.get("subject").is_none()));

    let r = b
        .invoke(
            "events",
            json!({"operation": "create", "data": "x", "metadata": {"subject": "bad.*"}}),
        )
        .await;
    assert_eq!(r.status(), 500);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("invalid subject"),
        "{body}"
    );
}
