//! [`AppProcess`]: a real app in its own process (standard-library Python), for fault tests that
//! kill the app or make it hang. It accepts every delivery, records each body it accepted (one
//! line of UTF-8 text each) in a file, flushed before it answers, and can hang on a share of
//! deliveries.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The app: a threaded Python HTTP server that subscribes to every route, writes each body it
/// accepts to a file (flushed before it answers), and hangs for `HANG_SECONDS` on one delivery
/// in `HANG_EVERY` (none when 0).
const SCRIPT: &str = r#"
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

/// How the app behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Hang on one delivery in this many, chosen at random (0: never).
    pub hang_every: u32,
    /// How long a hang lasts.
    pub hang_for: Duration,
}

/// A running app process on a fixed port, killed when dropped. Start it again on the same
/// port and record file with [`AppProcess::restart`].
pub struct AppProcess {
    /// The port it listens on.
    pub port: u16,
    dir: tempfile::TempDir,
    faults: Faults,
    child: Option<Child>,
}

impl std::fmt::Debug for AppProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppProcess")
            .field("port", &self.port)
            .finish()
    }
}

impl AppProcess {
    /// Start on a free port and wait until it listens.
    pub fn start(faults: Faults) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("app.py"), SCRIPT).expect("write the app");
        let mut app = AppProcess {
            port: crate::free_port(),
            dir,
            faults,
            child: None,
        };
        app.restart();
        app
    }

    fn record(&self) -> PathBuf {
        self.dir.path().join("accepted.txt")
    }

    /// Kill the process (SIGKILL): deliveries in progress get no answer.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start the process again (after [`AppProcess::kill`]) on the same port and record file.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("python3")
            .arg(self.dir.path().join("app.py"))
            .args([
                self.port.to_string(),
                self.record().display().to_string(),
                self.faults.hang_every.to_string(),
                self.faults.hang_for.as_secs_f64().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the test app");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the app did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait (up to `deadline`) until the app accepted `n` bodies, kill it, keep it down for
    /// `down_for`, and start it again. Returns how many it had accepted when killed and when it
    /// came back (equal: a dead app accepts nothing).
    pub async fn crash_after(
        &mut self,
        n: usize,
        deadline: Duration,
        down_for: Duration,
    ) -> (usize, usize) {
        crate::wait_until(deadline, &format!("{n} accepted before the crash"), || {
            let got = self.accepted().len();
            async move { (got >= n).then_some(()) }
        })
        .await;
        self.kill();
        let at_kill = self.accepted().len();
        tokio::time::sleep(down_for).await;
        let at_restart = self.accepted().len();
        self.restart();
        (at_kill, at_restart)
    }

    /// Every body the app accepted, with how many times.
    pub fn accepted(&self) -> HashMap<String, u32> {
        let mut seen = HashMap::new();
        for line in std::fs::read_to_string(self.record())
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty())
        {
            *seen.entry(line.to_owned()).or_default() += 1;
        }
        seen
    }

    /// Wait until every one of `bodies` was accepted, then count: (distinct delivered,
    /// duplicates, lost).
    pub async fn settle(&self, bodies: &[String], deadline: Duration) -> (usize, u32, usize) {
        crate::wait_until(deadline, "every message at the app", || {
            let seen = self.accepted();
            let missing = bodies.iter().filter(|b| !seen.contains_key(*b)).count();
            async move { (missing == 0).then_some(()) }
        })
        .await;
        let seen = self.accepted();
        let duplicates = seen.values().map(|n| n - 1).sum();
        let lost = bodies.iter().filter(|b| !seen.contains_key(*b)).count();
        (seen.len(), duplicates, lost)
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
