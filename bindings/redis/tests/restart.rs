//! Redis restarted under a running bindery: calls fail with a clear `unavailable` error while
//! it is down and succeed again once it is back, without restarting bindery.
//!
//! The shared Redis keeps nothing on disk (`--save "" --appendonly no`), so a restart loses its
//! data: this proves reconnecting, not persistence. It is the only test in this file, so no
//! other test of this crate runs while Redis is down (cargo runs test files one at a time).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use bindery_test_support::{Bindery, wait_until};
use common::*;
use serde_json::json;

async fn connected(b: &Bindery, name: &str) -> Option<bool> {
    b.binding_status(name).await?["connected"].as_bool()
}

#[tokio::test]
async fn recovers_after_a_redis_restart() {
    install_crypto();
    require_shared_redis();
    let _guard = SharedRedisGuard;
    let yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: cache\nspec:\n  type: bindings.redis\n  version: v1\n  metadata:\n  - name: redisHost\n    value: \"{SHARED}\"\n"
    );
    let b = Bindery::builder("redis-restart")
        .file("redis.yaml", &yaml)
        .start()
        .await;
    let k = key();
    let create =
        |value: &str| json!({"operation": "create", "data": value, "metadata": {"key": k}});
    assert_eq!(b.invoke("cache", create("before")).await.status(), 204);
    assert_eq!(connected(&b, "cache").await, Some(true));

    // Stop Redis through its own protocol (no process hunting), and wait for the port.
    let _ = Command::new("redis-cli")
        .args(["-p", "6379", "shutdown", "nosave"])
        .status();
    wait_port(SHARED, false, Duration::from_secs(10));

    let r = b.invoke("cache", create("while-down")).await;
    assert_eq!(r.status(), 500);
    let body: serde_json::Value = r.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("redis binding: redis at 127.0.0.1:6379 is unavailable"),
        "{message}"
    );
    let r = b
        .invoke("cache", json!({"operation": "get", "metadata": {"key": k}}))
        .await;
    assert_eq!(r.status(), 500);
    assert_eq!(connected(&b, "cache").await, Some(false));

    start_shared_redis();

    // Back without restarting bindery. Redis lost its data (nothing on disk), so read what is
    // written after the restart.
    wait_until(
        Duration::from_secs(15),
        "a create to succeed again",
        || async { (b.invoke("cache", create("after")).await.status() == 204).then_some(()) },
    )
    .await;
    let r = b
        .invoke("cache", json!({"operation": "get", "metadata": {"key": k}}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"\"after\"");
    assert_eq!(connected(&b, "cache").await, Some(true));
    let logs = b.logs();
    assert!(logs.contains("redis is unavailable"), "{logs}");
}
