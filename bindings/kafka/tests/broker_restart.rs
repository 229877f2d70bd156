//! The broker restarted under a running bindery. Alone in its test binary, because it stops
//! the shared broker that every other Kafka test uses (cargo runs test binaries one at a time).
//!
//! Tansu keeps everything in memory: a restart loses every topic, message and committed
//! offset, and offsets start again at 0, which no real Kafka cluster does. So this test cannot
//! show that messages survive a restart; it shows what bindery is responsible for: the binding
//! notices (health not ready), reconnects by itself (ready again), and messages published after
//! the restart arrive. Nothing is consumed before the restart, so no consumer position from
//! the old broker can point past the new broker's messages.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bindery_test_support::TestApp;
use serde_json::json;

use common::{
    BROKER, bindery, input_component, publish, require_broker, unique, wait_all_accepted,
    wait_health,
};

const ROUTE: &str = "/kafka-in";
const NAME: &str = "kafka-in";

/// The repository root (scripts/backends.sh and .test-env/ live there).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn port_open() -> bool {
    std::net::TcpStream::connect_timeout(&BROKER.parse().unwrap(), Duration::from_millis(300))
        .is_ok()
}

fn wait_port(open: bool, deadline: Duration) {
    let end = Instant::now() + deadline;
    while port_open() != open {
        assert!(
            Instant::now() < end,
            "the Kafka broker on {BROKER} did not {} within {deadline:?}",
            if open { "open" } else { "close" }
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops the broker scripts/backends.sh started, and starts it again with that script (the
/// same command) — also when the test panics, so the shared broker is never left down.
struct BrokerGuard;

impl BrokerGuard {
    /// The broker's pid: the Tansu process serving our port, found in /proc (whichever
    /// checkout's scripts/backends.sh started it).
    fn broker_pid() -> u32 {
        let tansu = std::fs::read_dir("/proc")
            .expect("read /proc")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                cmdline.contains("tansu") && cmdline.contains("broker") && cmdline.contains("19092")
            });
        tansu.unwrap_or_else(|| {
            panic!("no Tansu broker process serves {BROKER}: start it with scripts/backends.sh")
        })
    }

    fn stop_broker(&self) {
        let pid = Self::broker_pid();
        let status = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {pid} failed");
        wait_port(false, Duration::from_secs(30));
    }

    fn start_broker(&self) {
        let out = std::process::Command::new(repo_root().join("scripts/backends.sh"))
            .current_dir(repo_root())
            .output()
            .expect("run scripts/backends.sh");
        assert!(
            out.status.success(),
            "scripts/backends.sh failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        wait_port(true, Duration::from_secs(60));
    }
}

impl Drop for BrokerGuard {
    fn drop(&mut self) {
        if !port_open() {
            let _ = std::process::Command::new(repo_root().join("scripts/backends.sh"))
                .current_dir(repo_root())
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_is_survived_and_health_follows() {
    require_broker();
    let guard = BrokerGuard;
    let topic = unique("restart");
    let group = unique("g");
    common::create_topic(&topic).await;
    let app = TestApp::start().await;
    app.subscribe(ROUTE);
    let b = bindery("kafka-restart")
        .app_port(app.port)
        .file(
            "kafka.yaml",
            &input_component(
                NAME,
                &topic,
                &group,
                &[("publishTopic", topic.as_str()), ("writeTimeout", "20s")],
            ),
        )
        .start()
        .await;
    wait_health(&b, 204, Duration::from_secs(60), "ready before the restart").await;

    guard.stop_broker();
    wait_health(
        &b,
        500,
        Duration::from_secs(30),
        "not ready while the broker is down",
    )
    .await;
    let down = b
        .client()
        .get(b.url("/v1.0/healthz"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    println!("kafka restart: health while down: {down}");
    assert!(down.contains(NAME), "{down}");

    guard.start_broker();
    let restarted = Instant::now();
    wait_health(
        &b,
        204,
        Duration::from_secs(90),
        "ready again after the restart",
    )
    .await;
    println!(
        "kafka restart: ready {:?} after the broker came back",
        restarted.elapsed()
    );

    // Published after the restart, by another client and through bindery's own output side.
    let mut expected = publish(&topic, "after", 300).await;
    for i in 0..20 {
        let body = format!("via-bindery-{i}");
        let resp = b
            .invoke(NAME, json!({"operation": "create", "data": body}))
            .await;
        assert_eq!(
            resp.status().as_u16(),
            204,
            "{}",
            resp.text().await.unwrap()
        );
        // Over HTTP the data is JSON, so the message is the quoted string.
        expected.push(format!("\"{body}\""));
    }
    let (distinct, duplicates) =
        wait_all_accepted(&[&app], ROUTE, &expected, Duration::from_secs(120)).await;
    println!(
        "kafka restart: {distinct} messages published after the restart accepted, {duplicates} duplicates"
    );
    assert_eq!(distinct, expected.len());
    drop(guard);
}
