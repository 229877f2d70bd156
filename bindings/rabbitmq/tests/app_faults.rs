//! Faults on the app's side of a RabbitMQ input, with a real app process: the app is killed
//! mid-stream and comes back, and the app hangs past the inbound timeout on some deliveries.
//! Each test reports messages sent, delivered, duplicated and lost; lost must be 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bindery_test_support::{free_port, wait_until};
use common::*;

/// The app: a threaded Python HTTP server that subscribes to `/faulty`, writes each body it
/// accepts to a file (flushed before it answers), and hangs for `HANG_SECONDS` on one delivery
/// in `HANG_EVERY` (none when 0).
const APP: &str = r#"
import http.server, os, sys, time, random
port, record, hang_every, hang_seconds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
out = open(record, "a", buffering=1)
class App(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def answer(self, status):
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()
    def do_OPTIONS(self):
        self.answer(200)
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if hang_every and random.randrange(hang_every) == 0:
            time.sleep(hang_seconds)
        out.write(body.decode() + "\n")
        out.flush()
        self.answer(200)
class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
Server(("127.0.0.1", port), App).serve_forever()
"#;

struct AppProcess {
    child: Child,
}

impl AppProcess {
    fn start(script: &Path, port: u16, record: &Path, hang_every: u32, hang_seconds: f64) -> Self {
        let child = Command::new("python3")
            .arg(script)
            .args([
                port.to_string(),
                record.display().to_string(),
                hang_every.to_string(),
                hang_seconds.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the test app");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "the app did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        AppProcess { child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Bodies the app recorded, with how often.
fn recorded(path: &Path) -> HashMap<String, u32> {
    let mut seen = HashMap::new();
    for line in std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
    {
        *seen.entry(line.to_owned()).or_default() += 1;
    }
    seen
}

struct Setup {
    _dir: tempfile::TempDir,
    script: PathBuf,
    record: PathBuf,
    port: u16,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("app.py");
    std::fs::write(&script, APP).unwrap();
    let record = dir.path().join("accepted.txt");
    Setup {
        script,
        record,
        port: free_port(),
        _dir: dir,
    }
}

/// Wait until every body was recorded; return (delivered distinct, duplicates, lost).
async fn settle(record: &Path, bodies: &[String], deadline: Duration) -> (usize, u32, usize) {
    wait_until(deadline, "every message at the app", || {
        let seen = recorded(record);
        let missing = bodies.iter().filter(|b| !seen.contains_key(*b)).count();
        async move { (missing == 0).then_some(()) }
    })
    .await;
    let seen = recorded(record);
    let duplicates = seen.values().map(|n| n - 1).sum();
    let lost = bodies.iter().filter(|b| !seen.contains_key(*b)).count();
    (seen.len(), duplicates, lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_killed_mid_stream_and_restarted_loses_nothing() {
    const N: usize = 3_000;
    let s = setup();
    let q = queue();
    let publisher = Publisher::new(&q).await;
    let bodies = bodies("crash", N);
    publisher.publish_all(bodies.clone()).await;

    let mut app = AppProcess::start(&s.script, s.port, &s.record, 0, 0.0);
    let b = start_bindery("rabbit-app-crash", &component("faulty", &q, &[]), s.port).await;
    wait_until(Duration::from_secs(60), "a third of the stream at the app", || {
        let n = recorded(&s.record).len();
        async move { (n >= N / 3).then_some(()) }
    })
    .await;
    app.kill();
    let at_kill = recorded(&s.record).len();
    // Deliveries fail while the app is gone; nothing is acknowledged for them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = recorded(&s.record).len();
    let _app = AppProcess::start(&s.script, s.port, &s.record, 0, 0.0);
    let (delivered, duplicates, lost) = settle(&s.record, &bodies, Duration::from_secs(120)).await;
    println!(
        "rabbitmq app crash: sent {N}, app killed after {at_kill} and restarted 2 s later; delivered {delivered}, duplicated {duplicates}, lost {lost}"
    );
    assert_eq!(during, at_kill, "a dead app accepted messages");
    assert_eq!(lost, 0);
    assert_eq!(delivered, N);
    wait_until(Duration::from_secs(20), "an empty queue", || async {
        (publisher.ready().await == 0).then_some(())
    })
    .await;
    drop(b);
    publisher.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_timing_out_gets_the_message_again_and_loses_nothing() {
    const N: usize = 1_000;
    let s = setup();
    let q = queue();
    let publisher = Publisher::new(&q).await;
    let bodies = bodies("slow", N);
    publisher.publish_all(bodies.clone()).await;

    // One delivery in 20 hangs for 1.5 s; bindery gives up on it after 300 ms.
    let _app = AppProcess::start(&s.script, s.port, &s.record, 20, 1.5);
    let resiliency = "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: app-timeout\nspec:\n  policies:\n    timeouts:\n      quick: 300ms\n  targets:\n    components:\n      faulty:\n        inbound:\n          timeout: quick\n";
    crypto();
    let b = bindery_test_support::Bindery::builder("rabbit-app-timeout")
        .file("rabbitmq.yaml", &component("faulty", &q, &[]))
        .file("resiliency.yaml", resiliency)
        .app_port(s.port)
        .start()
        .await;
    let (delivered, duplicates, lost) = settle(&s.record, &bodies, Duration::from_secs(120)).await;
    // A hung delivery still finishes at the app after bindery gave up on it: that copy and the
    // redelivered one are both recorded, which is at-least-once doing its job.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = recorded(&s.record);
    let duplicates_final: u32 = seen.values().map(|n| n - 1).sum();
    let timeouts = b.logs().matches("timed out").count();
    println!(
        "rabbitmq app timeouts: sent {N}; delivered {delivered}, duplicated {duplicates_final} (at settle {duplicates}), lost {lost}; {timeouts} timeouts logged"
    );
    assert_eq!(lost, 0);
    assert_eq!(delivered, N);
    assert!(
        duplicates_final > 0,
        "no delivery hung past the timeout, so the test proved nothing"
    );
    wait_until(Duration::from_secs(20), "an empty queue", || async {
        (publisher.ready().await == 0).then_some(())
    })
    .await;
    publisher.delete().await;
}
