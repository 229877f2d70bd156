//! PostgreSQL stopped and restarted under a running bindery: calls fail with a clear
//! `unavailable` error while it is down and succeed again once it is back, without restarting
//! bindery. It is the only test in this file (cargo runs test files one at a time), and a
//! process-wide lock keeps any test added here from running while the server is down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use bindery_test_support::{Bindery, wait_until};
use common::*;
use serde_json::{Value, json};

static SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The cluster's version folder under /etc/postgresql (e.g. `15`).
fn version() -> String {
    std::fs::read_dir("/etc/postgresql")
        .expect("read /etc/postgresql")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .expect("a cluster under /etc/postgresql")
}

fn pg_ctl(action: &str) {
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version(), "main", action])
        .status()
        .expect("run pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster {action} failed: {status}");
}

/// Starts PostgreSQL again if the test left it down, even when it panicked.
struct ServerGuard;

impl Drop for ServerGuard {
    fn drop(&mut self) {
        if !port_open(ADDR) {
            let _ = Command::new("pg_ctlcluster")
                .args(["--skip-systemctl-redirect", &version(), "main", "start"])
                .status();
            wait_port(ADDR, true, Duration::from_secs(30));
        }
    }
}

async fn connected(b: &Bindery, name: &str) -> Option<bool> {
    b.binding_status(name).await?["connected"].as_bool()
}

#[tokio::test]
async fn recovers_after_a_postgres_restart() {
    let _lock = SERVER.lock().await;
    require_postgres();
    let _guard = ServerGuard;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: db\nspec:\n  type: bindings.postgresql\n  version: v1\n  metadata:\n  - name: connectionString\n    value: \"{CONN}\"\n  - name: timeout\n    value: \"5s\"\n"
    );
    let b = Bindery::builder("pg-restart")
        .file("pg.yaml", &yaml)
        .start()
        .await;
    let t = table();
    let exec = |sql: String| json!({"operation": "exec", "metadata": {"sql": sql}});
    let select = json!({"operation": "query", "metadata": {"sql": format!("SELECT v FROM {t}")}});
    assert_eq!(
        b.invoke("db", exec(format!("CREATE TABLE {t} (v text)")))
            .await
            .status(),
        200
    );
    assert_eq!(
        b.invoke("db", exec(format!("INSERT INTO {t} VALUES ('before')")))
            .await
            .status(),
        200
    );
    assert_eq!(connected(&b, "db").await, Some(true));

    pg_ctl("stop");
    wait_port(ADDR, false, Duration::from_secs(30));

    // Down: every call fails, with a message that says so and names the server.
    for _ in 0..3 {
        let r = b.invoke("db", select.clone()).await;
        assert_eq!(r.status(), 500);
        let body: Value = r.json().await.unwrap();
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("postgres at 127.0.0.1:5432 is unavailable"),
            "{message}"
        );
    }
    assert_eq!(connected(&b, "db").await, Some(false));

    pg_ctl("start");
    wait_port(ADDR, true, Duration::from_secs(30));

    // Back without restarting bindery; the data survived the restart.
    let rows: Value = wait_until(
        Duration::from_secs(30),
        "a query to succeed again",
        || async {
            let r = b.invoke("db", select.clone()).await;
            if r.status() == 200 {
                r.json().await.ok()
            } else {
                None
            }
        },
    )
    .await;
    assert_eq!(rows, json!([["before"]]));
    assert_eq!(connected(&b, "db").await, Some(true));

    // A quick restart between two calls: the pool drops the connections the server closed and
    // the very next call succeeds.
    pg_ctl("restart");
    wait_port(ADDR, true, Duration::from_secs(30));
    let r = b
        .invoke("db", exec(format!("INSERT INTO {t} VALUES ('after')")))
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = b.invoke("db", select.clone()).await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!([["before"], ["after"]])
    );
    assert_eq!(
        b.invoke("db", exec(format!("DROP TABLE {t}")))
            .await
            .status(),
        200
    );

    let logs = b.logs();
    assert!(logs.contains("postgres is unavailable"), "{logs}");
    assert!(logs.contains("postgres is available again"), "{logs}");
}
