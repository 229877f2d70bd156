//! Wire compatibility with the official Dapr SDKs: start the real `bindery` binary with a
//! temporary resources folder and run the scripts under `tests/sdk/` against it.
//!
//! The SDKs live in `.test-env/` (git-ignored); `scripts/install-sdks.sh` installs them. A
//! missing SDK fails the test with that instruction: it never skips. The binary is found as
//! `bindery_test_support::Bindery` finds it (`cargo build -p bindery`, or `$BINDERY_BIN`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::routing::any;
use bindery_test_support::{Bindery, BinderyBuilder, free_port};
use tokio::process::Command;

/// How long one SDK script may run. The scripts bound their own waits well below this.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the crate sits two folders below the repository root")
        .to_path_buf()
}

fn python() -> PathBuf {
    let py = repo_root().join(".test-env/py/bin/python");
    assert!(
        py.exists(),
        "the Python Dapr SDK is not installed ({} is missing): run scripts/install-sdks.sh",
        py.display()
    );
    py
}

fn node_modules() -> PathBuf {
    let modules = repo_root().join(".test-env/js/node_modules");
    assert!(
        modules.join("@dapr/dapr/package.json").exists(),
        "the JS Dapr SDK is not installed ({} has no @dapr/dapr): run scripts/install-sdks.sh",
        modules.display()
    );
    modules
}

/// A bindery for `app_id`; the test client inside needs a TLS provider chosen first.
fn bindery(app_id: &str) -> BinderyBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Bindery::builder(app_id)
}

/// An HTTP endpoint for the `http` binding: `/echo` answers 200 `echo:<body>`, `/status/<n>`
/// answers status `n`.
async fn http_target() -> SocketAddr {
    let app = Router::new()
        .route(
            "/echo",
            any(|body: String| async move { format!("echo:{body}") }),
        )
        .route(
            "/status/{code}",
            any(|UrlPath(code): UrlPath<u16>| async move {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
                (status, format!("status {code}"))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn component(name: &str, type_name: &str, metadata: &[(&str, &str)]) -> String {
    let mut yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: {type_name}\n  version: v1\n  metadata:\n"
    );
    for (k, v) in metadata {
        yaml.push_str(&format!("  - name: {k}\n    value: \"{v}\"\n"));
    }
    yaml
}

fn cron(name: &str) -> String {
    component(name, "bindings.cron", &[("schedule", "@every 1s")])
}

/// `files` (localstorage under `root`) and `web` (http, calling `target`).
fn client_components(root: &Path, target: SocketAddr) -> [(&'static str, String); 2] {
    [
        (
            "files.yaml",
            component(
                "files",
                "bindings.localstorage",
                &[("rootPath", root.to_str().unwrap())],
            ),
        ),
        (
            "web.yaml",
            component(
                "web",
                "bindings.http",
                &[("url", &format!("http://{target}"))],
            ),
        ),
    ]
}

/// Run an SDK script against `sidecar` and return whether it passed and what it printed.
async fn run_script(sidecar: &Bindery, app_id: &str, mut cmd: Command) -> (bool, String) {
    // Bindery is ready (outbound health answered); its gRPC API must be listening too.
    if let Err(e) = tokio::net::TcpStream::connect(("127.0.0.1", sidecar.grpc_port)).await {
        panic!(
            "bindery does not serve the gRPC API on --dapr-grpc-port {} ({e}); the binary must \
             call bindery_grpc::serve. Log:\n{}",
            sidecar.grpc_port,
            sidecar.logs()
        );
    }
    let log_dir = tempfile::tempdir().unwrap();
    let out_path = log_dir.path().join("script.log");
    let out = std::fs::File::create(&out_path).unwrap();
    cmd.current_dir(repo_root())
        .env("DAPR_HTTP_PORT", sidecar.http_port.to_string())
        .env("DAPR_GRPC_PORT", sidecar.grpc_port.to_string())
        .env("BINDERY_APP_ID", app_id)
        .env("DAPR_HEALTH_TIMEOUT", "30")
        .env_remove("DAPR_GRPC_ENDPOINT")
        .env_remove("DAPR_HTTP_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("start the SDK script");
    let status = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait()).await;
    let _ = child.kill().await;
    let printed = std::fs::read_to_string(&out_path).unwrap_or_default();
    match status {
        Ok(Ok(status)) => (status.success(), printed),
        Ok(Err(e)) => (
            false,
            format!("{printed}\n(waiting for the script failed: {e})"),
        ),
        Err(_) => (
            false,
            format!("{printed}\n(the script did not finish within {SCRIPT_TIMEOUT:?})"),
        ),
    }
}

/// Print what the script said; on failure also bindery's log, then fail.
fn report(name: &str, passed: bool, output: &str, sidecar: &Bindery) {
    println!("===== {name}: script output =====\n{output}");
    if !passed {
        println!("===== {name}: bindery log =====\n{}", sidecar.logs());
    }
    assert!(passed, "{name} failed; see the output above");
}

/// Stop bindery as a person would (SIGTERM) and check it goes.
async fn stop(mut sidecar: Bindery) {
    sidecar.signal("TERM");
    sidecar.wait_exit(Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_client_over_grpc() {
    let py = python();
    let target = http_target().await;
    let files = tempfile::tempdir().unwrap();
    let mut builder = bindery("sdk-python").env("DAPR_API_TOKEN", "sdk-token");
    for (name, yaml) in client_components(files.path(), target) {
        builder = builder.file(name, &yaml);
    }
    let mut sidecar = builder.start().await;
    let mut cmd = Command::new(py);
    cmd.arg("tests/sdk/python/client.py")
        .env("DAPR_API_TOKEN", "sdk-token");
    let (passed, output) = run_script(&sidecar, "sdk-python", cmd).await;
    report("python client", passed, &output, &sidecar);
    // The script's last call was Shutdown: bindery stops by itself, cleanly.
    let status = sidecar.wait_exit(Duration::from_secs(15)).await;
    assert!(
        status.success(),
        "bindery exited with {status} after Shutdown"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_app_receives_cron_events_over_grpc() {
    let py = python();
    let app_port = free_port();
    let sidecar = bindery("sdk-python-app")
        .file("ticker.yaml", &cron("ticker"))
        .app_port(app_port)
        .args(["--app-protocol", "grpc"])
        .env("APP_API_TOKEN", "app-token")
        .start()
        .await;
    let mut cmd = Command::new(py);
    cmd.arg("tests/sdk/python/app.py")
        .env("APP_PORT", app_port.to_string())
        .env("BINDING", "ticker")
        .env("APP_API_TOKEN", "app-token");
    let (passed, output) = run_script(&sidecar, "sdk-python-app", cmd).await;
    report("python app", passed, &output, &sidecar);
    stop(sidecar).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn js_sdk_client_over_http_and_grpc() {
    let modules = node_modules();
    let target = http_target().await;
    let files = tempfile::tempdir().unwrap();
    let mut builder = bindery("sdk-js");
    for (name, yaml) in client_components(files.path(), target) {
        builder = builder.file(name, &yaml);
    }
    let sidecar = builder.start().await;
    let mut cmd = Command::new("node");
    cmd.arg("tests/sdk/js/client.js").env("NODE_PATH", &modules);
    let (passed, output) = run_script(&sidecar, "sdk-js", cmd).await;
    report("js client", passed, &output, &sidecar);
    stop(sidecar).await;
}

async fn js_app(protocol: &str, binding: &str) {
    let modules = node_modules();
    let app_port = free_port();
    let app_id = format!("sdk-js-{protocol}-app");
    let sidecar = bindery(&app_id)
        .file("ticker.yaml", &cron(binding))
        .app_port(app_port)
        .args(["--app-protocol", protocol])
        .start()
        .await;
    let mut cmd = Command::new("node");
    cmd.arg("tests/sdk/js/server.js")
        .arg(protocol)
        .env("NODE_PATH", &modules)
        .env("APP_PORT", app_port.to_string())
        .env("BINDING", binding);
    let (passed, output) = run_script(&sidecar, &app_id, cmd).await;
    report(&format!("js {protocol} app"), passed, &output, &sidecar);
    stop(sidecar).await;
}

/// The JS SDK lists gRPC bindings in lower case: a component named `Ticker` must still reach it.
#[tokio::test(flavor = "multi_thread")]
async fn js_sdk_app_receives_cron_events_over_grpc() {
    js_app("grpc", "Ticker").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn js_sdk_app_receives_cron_events_over_http() {
    js_app("http", "ticker").await;
}
