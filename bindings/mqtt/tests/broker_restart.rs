//! Mosquitto restarted mid-stream: stopped with SIGTERM and started again with the command
//! scripts/backends.sh uses (`mosquitto -d -c /etc/mosquitto/mosquitto.conf`).
//!
//! The machine's /etc/mosquitto/mosquitto.conf has `persistence true`: on SIGTERM Mosquitto
//! writes its sessions, subscriptions and queued QoS 1 messages to
//! /var/lib/mosquitto/mosquitto.db and loads them at start. So with `cleanSession: false` the
//! consumer's session, and every message not yet acknowledged, survive the restart; the binding
//! reconnects by itself and nothing is lost.
//! Its own test binary, so no other MQTT test of this crate runs while the broker is down.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::{Duration, Instant};

use bindery_test_support::{Answer, TestApp};
use common::{
    Publisher, RestartGuard, accepted, bodies, component, forget_sessions, healthz, start_bindery,
    unique, wait_accepted_at_least, wait_all_accepted,
};
use http::Method;

const ROUTE: &str = "/mqtt";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_loses_nothing() {
    let topic = unique("trestart");
    let consumer = unique("crestart");
    let mut publisher = Publisher::new().await;
    let app = TestApp::start().await;
    app.answer(Method::OPTIONS, ROUTE, vec![Answer::status(200)]);
    app.answer(
        Method::POST,
        ROUTE,
        vec![Answer::status(200).delay(Duration::from_millis(50))],
    );
    let b = start_bindery(
        "mqtt-restart",
        &component("mqtt", &topic, &consumer, &[]),
        app.port,
    )
    .await;
    common::wait_subscribed(&b, &topic).await;
    // Below the broker's per-session queue (1000), so the broker drops nothing.
    let expected = bodies("before", 800);
    publisher.publish_all(&topic, &expected).await;
    drop(publisher);
    wait_accepted_at_least(&[&app], ROUTE, 100, Duration::from_secs(60)).await;

    let guard = RestartGuard;
    let guard = tokio::task::spawn_blocking(move || {
        guard.stop_broker();
        guard
    })
    .await
    .unwrap();
    let (during, _) = accepted(&[&app], ROUTE);
    // While the broker is down bindery says it is not ready.
    bindery_test_support::wait_until(Duration::from_secs(30), "healthz 500", || async {
        (healthz(&b).await == 500).then_some(())
    })
    .await;
    let down_at = Instant::now();
    let guard = tokio::task::spawn_blocking(move || {
        guard.start_broker();
        guard
    })
    .await
    .unwrap();
    println!(
        "mqtt restart: {} of {} accepted before the broker went down; it was back after {:?}",
        during.len(),
        expected.len(),
        down_at.elapsed()
    );
    // ...and ready again once it reconnected by itself.
    bindery_test_support::wait_until(Duration::from_secs(60), "healthz 204 again", || async {
        (healthz(&b).await == 204).then_some(())
    })
    .await;
    let mut publisher = Publisher::new().await;
    let after = bodies("after", 200);
    publisher.publish_all(&topic, &after).await;
    // The output side reconnects by itself too (until then a call fails fast).
    bindery_test_support::wait_until(
        Duration::from_secs(30),
        "a create through bindery",
        || async {
            let resp = b
                .invoke(
                    "mqtt",
                    serde_json::json!({"operation": "create", "data": "via-output"}),
                )
                .await;
            (resp.status() == 204).then_some(())
        },
    )
    .await;
    let mut all: Vec<String> = expected.iter().chain(&after).cloned().collect();
    all.push("\"via-output\"".to_owned());
    let total = wait_all_accepted(&[&app], ROUTE, &all, Duration::from_secs(120)).await;
    println!(
        "mqtt restart: all {} messages accepted, {} duplicates",
        all.len(),
        total - all.len()
    );
    drop(b);
    forget_sessions(&[
        format!("{consumer}-consumer"),
        format!("{consumer}-producer"),
    ])
    .await;
    drop(guard);
}
