//! Shared helpers for the redis binding's tests: the shared Redis on 127.0.0.1:6379, private
//! `redis-server` processes on free ports, and building the binding on its traits.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bindery_core::{
    BindingFactory, BindingHealth, ComponentContext, InvokeRequest, Metadata, OutputBinding,
};

/// The machine's Redis.
pub(crate) const SHARED: &str = "127.0.0.1:6379";

/// The command scripts/backends.sh starts the shared Redis with.
pub(crate) const SHARED_START: &[&str] = &[
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
];

pub(crate) fn port_open(addr: &str) -> bool {
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(200)).is_ok()
}

/// Fail (never skip) when the shared Redis is down.
pub(crate) fn require_shared_redis() {
    assert!(
        port_open(SHARED),
        "Redis is not reachable on {SHARED}: start it with scripts/backends.sh"
    );
}

pub(crate) fn wait_port(addr: &str, open: bool, deadline: Duration) {
    let end = Instant::now() + deadline;
    while port_open(addr) != open {
        assert!(
            Instant::now() < end,
            "{addr} did not {} within {deadline:?}",
            if open { "open" } else { "close" }
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Start the shared Redis with the command of scripts/backends.sh and wait for its port.
pub(crate) fn start_shared_redis() {
    let status = Command::new(SHARED_START[0])
        .args(&SHARED_START[1..])
        .status()
        .expect("run redis-server");
    assert!(status.success(), "redis-server failed to start: {status}");
    wait_port(SHARED, true, Duration::from_secs(10));
}

/// Restarts the shared Redis if a test left it down, even when the test panicked.
pub(crate) struct SharedRedisGuard;

impl Drop for SharedRedisGuard {
    fn drop(&mut self) {
        if !port_open(SHARED) {
            start_shared_redis();
        }
    }
}

/// A free port on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    bindery_test_support::free_port()
}

/// A `redis-server` this test started, on a free port, stopped (by its pid) when dropped.
pub(crate) struct PrivateRedis {
    pub(crate) port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl PrivateRedis {
    /// Start `redis-server` on `port` with `args` added, and wait until `ready_port` listens.
    pub(crate) fn start(port: u16, ready_port: u16, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, port, ready_port, args)
    }

    pub(crate) fn start_in(
        dir: tempfile::TempDir,
        port: u16,
        ready_port: u16,
        args: &[&str],
    ) -> Self {
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
                "--dir",
            ])
            .arg(dir.path())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        wait_port(
            &format!("127.0.0.1:{ready_port}"),
            true,
            Duration::from_secs(10),
        );
        PrivateRedis {
            port,
            child,
            _dir: dir,
        }
    }

    /// Start a sentinel from `conf` (written to a temp dir) on `port`.
    pub(crate) fn sentinel(port: u16, conf: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sentinel.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new("redis-server")
            .arg(&path)
            .arg("--sentinel")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis sentinel");
        wait_port(&format!("127.0.0.1:{port}"), true, Duration::from_secs(10));
        PrivateRedis {
            port,
            child,
            _dir: dir,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self._dir.path()
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `redis-cli` with `args` and return its output (panics on failure).
pub(crate) fn redis_cli(args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(args)
        .output()
        .expect("run redis-cli");
    assert!(
        out.status.success(),
        "redis-cli {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Build the output binding from `pairs` on its traits.
pub(crate) async fn build(
    pairs: &[(&str, &str)],
) -> Result<Box<dyn OutputBinding>, bindery_core::BindingError> {
    let md = Metadata::from_pairs(pairs.iter().copied());
    let factory = bindery_binding_redis::RedisFactory;
    if let Err(e) = factory.validate(&md) {
        panic!("metadata refused: {e:?}");
    }
    factory
        .build_output(&ComponentContext {
            name: "redis-test".into(),
            app_id: "test".into(),
            metadata: md,
            health: BindingHealth::default(),
        })
        .await
}

/// A request for `operation` on `key` with `data` and extra metadata.
pub(crate) fn req(
    operation: &str,
    key: &str,
    data: &[u8],
    extra: &[(&str, &str)],
) -> InvokeRequest {
    let mut metadata: std::collections::HashMap<String, String> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    metadata.insert("key".into(), key.into());
    InvokeRequest {
        operation: operation.into(),
        data: bytes::Bytes::copy_from_slice(data),
        metadata,
    }
}

/// A fresh key.
pub(crate) fn key() -> String {
    format!("bindery-test-{}", uuid::Uuid::new_v4())
}

/// Install the ring crypto provider for TLS tests (the binary does this at start).
pub(crate) fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
