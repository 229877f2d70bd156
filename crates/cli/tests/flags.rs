//! Command-line flags of the real binary: `--version` and refused values.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;
use std::time::Duration;

use tokio::process::Command;

/// Run `bindery args...` to completion (killed after the deadline, should it start serving).
async fn run(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_bindery"))
        .args(args)
        .env_remove("DAPR_API_TOKEN")
        .env_remove("APP_API_TOKEN")
        .env_remove("NAMESPACE")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(20), child)
        .await
        .unwrap_or_else(|_| panic!("bindery {args:?} did not exit"))
        .unwrap()
}

#[tokio::test]
async fn version_prints_the_version() {
    let out = run(&["--version"]).await;
    assert!(out.status.success(), "{:?}", out.status);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.trim(),
        format!("bindery {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn bad_flags_exit_non_zero_naming_the_flag() {
    let port = common::free_port().to_string();
    let base = ["--dapr-http-port", port.as_str(), "--log-level", "error"];
    let cases: [(&[&str], &str); 9] = [
        (&["--app-id", "a", "--unknown-flag"], "--unknown-flag"),
        (&["--app-id", "a", "--app-port", "99999"], "--app-port"),
        (&["--app-id", "a", "--app-port", "http"], "--app-port"),
        (
            &["--app-id", "a", "--max-body-size", "lots"],
            "--max-body-size",
        ),
        (
            &["--app-id", "a", "--max-body-size", "0"],
            "--max-body-size",
        ),
        (
            &["--app-id", "a", "--app-max-concurrency", "0"],
            "--app-max-concurrency",
        ),
        (
            &["--app-id", "a", "--app-protocol", "smtp"],
            "--app-protocol",
        ),
        (&["--app-id", ""], "--app-id"),
        (&[], "--app-id"),
    ];
    for (args, flag) in cases {
        let mut all = base.to_vec();
        all.extend_from_slice(args);
        let out = run(&all).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            stderr.contains(flag),
            "{args:?}: stderr does not name {flag}:\n{stderr}"
        );
    }
}
