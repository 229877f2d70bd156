//! MariaDB stopped and started again under a running bindery: calls fail with a clear
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

/// The server's pid, from the pid file it names.
fn server_pid() -> String {
    let out = Command::new("mariadb")
        .args([
            "-h",
            "127.0.0.1",
            "-P",
            "3306",
            "-u",
            "root",
            "-N",
            "-e",
            "SELECT @@pid_file",
        ])
        .output()
        .expect("run mariadb");
    assert!(
        out.status.success(),
        "mariadb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("read {file}: {e}"))
        .trim()
        .to_owned()
}

/// Stop MariaDB and wait until the process is gone (its port closes earlier, and the start
/// command does nothing while the old process is still there).
fn stop_mariadb() {
    let pid = server_pid();
    let status = Command::new("mariadb-admin")
        .args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", "shutdown"])
        .status()
        .expect("run mariadb-admin");
    assert!(status.success(), "mariadb-admin shutdown failed: {status}");
    wait_port(ADDR, false, Duration::from_secs(30));
    let end = std::time::Instant::now() + Duration::from_secs(60);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            std::time::Instant::now() < end,
            "mariadbd {pid} did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The start command of scripts/backends.sh.
fn start_mariadb() {
    let status = Command::new("start-stop-daemon")
        .args([
            "--start",
            "--oknodo",
            "--background",
            "--exec",
            "/usr/sbin/mariadbd",
        ])
        .status()
        .expect("run start-stop-daemon");
    assert!(status.success(), "starting mariadbd failed: {status}");
    wait_port(ADDR, true, Duration::from_secs(60));
}

/// Starts MariaDB again if the test left it down, even when it panicked.
struct ServerGuard;

impl Drop for ServerGuard {
    fn drop(&mut self) {
        if !port_open(ADDR) {
            start_mariadb();
        }
    }
}

async fn connected(b: &Bindery, name: &str) -> Option<bool> {
    b.binding_status(name).await?["connected"].as_bool()
}

#[tokio::test]
async fn recovers_after_a_mariadb_restart() {
    let _lock = SERVER.lock().await;
    require_mysql();
    let _guard = ServerGuard;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: db\nspec:\n  type: bindings.mysql\n  version: v1\n  metadata:\n  - name: url\n    value: \"{DSN}?timeout=2s\"\n"
    );
    let b = Bindery::builder("mysql-restart")
        .file("mysql.yaml", &yaml)
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

    stop_mariadb();

    for _ in 0..3 {
        let r = b.invoke("db", select.clone()).await;
        assert_eq!(r.status(), 500);
        let body: Value = r.json().await.unwrap();
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("mysql at 127.0.0.1:3306 is unavailable"),
            "{message}"
        );
    }
    assert_eq!(connected(&b, "db").await, Some(false));

    start_mariadb();

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
    assert_eq!(rows, json!([{"v": "before"}]));
    assert_eq!(connected(&b, "db").await, Some(true));

    // Stopped and started between two calls: the pool drops the connection the server closed
    // and the very next call succeeds.
    stop_mariadb();
    start_mariadb();
    let r = b
        .invoke("db", exec(format!("INSERT INTO {t} VALUES ('after')")))
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = b.invoke("db", select.clone()).await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!([{"v": "before"}, {"v": "after"}])
    );
    assert_eq!(
        b.invoke("db", exec(format!("DROP TABLE {t}")))
            .await
            .status(),
        200
    );

    let logs = b.logs();
    assert!(logs.contains("mysql is unavailable"), "{logs}");
    assert!(logs.contains("mysql is available again"), "{logs}");
}
