//! The log tells each change of a binding's connection once, with the same fields whatever the
//! binding: `binding connection lost` (warn, `reason`) and `binding connection recovered` (info),
//! both with `binding` and `type`. Checked in `--log-as-json` form against a Redis server this
//! test stops and starts again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bindery_test_support::redaction::component;
use bindery_test_support::{Bindery, free_port, wait_until};
use serde_json::{Value, json};

fn redis_server(port: u16) -> Child {
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is installed");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// The JSON log lines whose message is `message`.
fn lines(b: &Bindery, message: &str) -> Vec<Value> {
    b.logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == message)
        .collect()
}

#[tokio::test]
async fn a_lost_and_recovered_connection_is_logged_once_each() {
    let port = free_port();
    let mut redis = redis_server(port);
    let b = Bindery::builder("logs")
        .args(["--log-as-json"])
        .file(
            "cache.yaml",
            &component(
                "cache",
                "bindings.redis",
                &[
                    ("redisHost", &format!("127.0.0.1:{port}")),
                    ("redisMaxRetries", "0"),
                ],
            ),
        )
        .start()
        .await;
    let create = json!({"operation": "create", "data": "v", "metadata": {"key": "k"}});
    assert!(
        b.invoke("cache", create.clone())
            .await
            .status()
            .is_success()
    );
    assert!(lines(&b, "binding connection lost").is_empty());

    redis.kill().unwrap();
    redis.wait().unwrap();
    // Every failing call reports the loss; the log says it once.
    for _ in 0..3 {
        assert_eq!(b.invoke("cache", create.clone()).await.status(), 500);
    }
    let lost = wait_until(Duration::from_secs(10), "the loss in the log", || async {
        let l = lines(&b, "binding connection lost");
        (!l.is_empty()).then_some(l)
    })
    .await;
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0]["level"], "WARN");
    assert_eq!(lost[0]["binding"], "cache");
    assert_eq!(lost[0]["type"], "bindings.redis");
    assert!(
        lost[0]["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{}",
        lost[0]
    );

    let mut redis = redis_server(port);
    wait_until(Duration::from_secs(20), "calls to work again", || async {
        b.invoke("cache", create.clone())
            .await
            .status()
            .is_success()
            .then_some(())
    })
    .await;
    assert!(
        b.invoke("cache", create.clone())
            .await
            .status()
            .is_success()
    );
    let recovered = lines(&b, "binding connection recovered");
    assert_eq!(recovered.len(), 1, "{}", b.logs());
    assert_eq!(recovered[0]["level"], "INFO");
    assert_eq!(recovered[0]["binding"], "cache");
    assert_eq!(recovered[0]["type"], "bindings.redis");
    assert_eq!(recovered[0]["reconnects"], 1);
    assert_eq!(lines(&b, "binding connection lost").len(), 1);
    redis.kill().unwrap();
    redis.wait().unwrap();
}
