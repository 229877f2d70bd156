//! The real `bindery` binary, started for one test.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Where the `bindery` binary is: `BINDERY_BIN`, `CARGO_BIN_EXE_bindery`, or next to the test
/// executable's folder (`target/<profile>/bindery`).
fn binary() -> PathBuf {
    if let Some(p) =
        std::env::var_os("BINDERY_BIN").or_else(|| std::env::var_os("CARGO_BIN_EXE_bindery"))
    {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir.join("bindery");
    assert!(
        bin.exists(),
        "the bindery binary is not built at {}: run `cargo build -p bindery` first (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

/// How to start bindery for a test.
#[derive(Debug)]
pub struct BinderyBuilder {
    app_id: String,
    resources: TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    app_port: Option<u16>,
    wait_ready: bool,
}

impl BinderyBuilder {
    /// Add a file to the resources folder.
    pub fn file(self, name: &str, contents: &str) -> Self {
        let path = self.resources.path().join(name);
        std::fs::write(&path, contents).expect("write resource file");
        self
    }

    /// The resources folder, to add other files.
    pub fn resources_dir(&self) -> &Path {
        self.resources.path()
    }

    /// Add command-line arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Set an environment variable for the process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Deliver input events to an app on `port`.
    pub fn app_port(mut self, port: u16) -> Self {
        self.app_port = Some(port);
        self
    }

    /// Do not wait for `/v1.0/healthz/outbound` (for tests of startup failures).
    pub fn no_wait(mut self) -> Self {
        self.wait_ready = false;
        self
    }

    /// Start the process; unless [`BinderyBuilder::no_wait`], wait until its outbound health
    /// answers 204 (or fail with its log when it exits first).
    pub async fn start(self) -> Bindery {
        let http_port = free_port();
        let grpc_port = free_port();
        let metrics_port = free_port();
        let mut cmd = Command::new(binary());
        cmd.arg("--app-id")
            .arg(&self.app_id)
            .arg("--dapr-http-port")
            .arg(http_port.to_string())
            .arg("--dapr-grpc-port")
            .arg(grpc_port.to_string())
            .arg("--metrics-port")
            .arg(metrics_port.to_string())
            .arg("--resources-path")
            .arg(self.resources.path())
            .arg("--log-level")
            .arg("debug");
        if let Some(p) = self.app_port {
            cmd.arg("--app-port").arg(p.to_string());
        }
        cmd.args(&self.args)
            .env_remove("DAPR_API_TOKEN")
            .env_remove("APP_API_TOKEN")
            .env_remove("NAMESPACE")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn bindery");
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if std::env::var_os("BINDERY_TEST_LOG").is_some() {
                        eprintln!("[bindery] {line}");
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let mut b = Bindery {
            child,
            http_port,
            grpc_port,
            metrics_port,
            log,
            resources: self.resources,
            client: reqwest::Client::new(),
        };
        if self.wait_ready {
            b.wait_outbound_ready().await;
        }
        b
    }
}

/// A running `bindery` process. Killed when dropped.
#[derive(Debug)]
pub struct Bindery {
    child: Child,
    /// The Dapr HTTP API port.
    pub http_port: u16,
    /// The Dapr gRPC API port.
    pub grpc_port: u16,
    /// The metrics port.
    pub metrics_port: u16,
    log: Arc<Mutex<String>>,
    resources: TempDir,
    client: reqwest::Client,
}

impl Bindery {
    /// A builder for app id `app_id` with an empty resources folder.
    pub fn builder(app_id: &str) -> BinderyBuilder {
        // reqwest is built without a TLS provider of its own; the harness's client needs one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        BinderyBuilder {
            app_id: app_id.into(),
            resources: tempfile::tempdir().expect("temp dir"),
            args: Vec::new(),
            env: Vec::new(),
            app_port: None,
            wait_ready: true,
        }
    }

    /// `http://127.0.0.1:<http port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    /// A shared HTTP client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The resources folder.
    pub fn resources_dir(&self) -> &Path {
        self.resources.path()
    }

    /// Everything bindery logged so far.
    pub fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running process has a pid")
    }

    /// The `status` object `/v1.0/metadata` reports for component `name` (`connected`,
    /// `lastError`, ...); `None` while the sidecar does not answer or does not list it.
    pub async fn binding_status(&self, name: &str) -> Option<serde_json::Value> {
        let md: serde_json::Value = self
            .client
            .get(self.url("/v1.0/metadata"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        md["components"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["status"].clone())
    }

    /// `POST /v1.0/bindings/<name>` with a JSON body.
    pub async fn invoke(&self, name: &str, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/v1.0/bindings/{name}")))
            .json(&body)
            .send()
            .await
            .expect("bindery answers")
    }

    async fn wait_outbound_ready(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Give the log readers a moment to drain the pipes.
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "bindery exited with {status} before it was ready; log:\n{}",
                    self.logs()
                );
            }
            let answer = self
                .client
                .get(self.url("/v1.0/healthz/outbound"))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().as_u16() == 204) {
                return;
            }
            if std::time::Instant::now() > deadline {
                panic!("bindery was not ready within 30s; log:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait for the process to exit by itself within `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                status
            }
            Ok(Err(e)) => panic!("waiting for bindery failed: {e}"),
            Err(_) => panic!(
                "bindery did not exit within {timeout:?}; log:\n{}",
                self.logs()
            ),
        }
    }

    /// Send a signal (`TERM`, `INT`, `KILL`) to the process.
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }
}
