//! The tools of the real binary: `bindery validate` (on the examples and on a corpus of broken
//! files), `bindery invoke` and `bindery tap` against a running bindery, completions and help.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{Answer, TestApp, bindery, component, cron, free_port, localstorage};
use http::Method;
use serde_json::Value;
use tokio::process::Command;

/// The crate folder: tool commands run there, so corpus paths print as `tests/corpus/...`.
fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `bindery args...` with `env`, run to completion in the crate folder.
async fn tool(args: &[&str], env: &[(&str, &str)]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_bindery"))
        .args(args)
        .current_dir(crate_dir())
        .env_remove("DAPR_API_TOKEN")
        .env_remove("DAPR_HTTP_PORT")
        .env_remove("NAMESPACE")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(30), child)
        .await
        .unwrap_or_else(|_| panic!("bindery {args:?} did not exit within 30s"))
        .unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            stdout(o),
            stderr(o)
        )
    })
}

// ---------------------------------------------------------------------------------------------
// validate

#[tokio::test]
async fn validate_passes_the_quickstart_components_clean() {
    let path = crate_dir().join("../../examples/quickstart/components");
    let path = path.to_str().unwrap();
    let out = tool(&["validate", path, "--strict"], &[]).await;
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.ends_with("valid: 0 errors, 0 warnings\n"), "{text}");
    for (name, kind) in [
        ("echo", "bindings.http"),
        ("files", "bindings.localstorage"),
        ("tick", "bindings.cron"),
    ] {
        assert!(
            text.lines().any(|l| l.contains(name)
                && l.contains(kind)
                && l.contains(&format!("{name}.yaml"))),
            "{name} is not listed:\n{text}"
        );
    }

    let out = tool(&["validate", path, "--format", "json"], &[]).await;
    assert_eq!(code(&out), 0);
    let report = json(&out);
    assert_eq!(report["valid"], true);
    assert_eq!(report["errors"], Value::Array(vec![]));
    assert_eq!(report["warnings"], Value::Array(vec![]));
    let names: Vec<&str> = report["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "files", "tick"]);
    assert_eq!(report["components"][2]["input"], true);
    assert_eq!(report["components"][2]["output"], false);
}

/// One expected problem of the corpus: file, line, component, field, and part of the message.
struct Expect {
    severity: &'static str,
    file: &'static str,
    line: u64,
    component: Option<&'static str>,
    field: Option<&'static str>,
    message: &'static str,
}

const fn e(
    file: &'static str,
    line: u64,
    component: Option<&'static str>,
    field: Option<&'static str>,
    message: &'static str,
) -> Expect {
    Expect {
        severity: "errors",
        file,
        line,
        component,
        field,
        message,
    }
}

const fn w(
    file: &'static str,
    line: u64,
    component: Option<&'static str>,
    field: Option<&'static str>,
    message: &'static str,
) -> Expect {
    Expect {
        severity: "warnings",
        ..e(file, line, component, field, message)
    }
}

/// Every problem in `tests/corpus/invalid`, each on the line a person would look at.
const CORPUS: &[Expect] = &[
    // Broken YAML: where the parser gave up.
    e(
        "broken-yaml.yaml",
        8,
        None,
        None,
        "invalid YAML: unclosed bracket '{' at line 8",
    ),
    // Wrong kinds and versions.
    w(
        "kinds.yaml",
        3,
        None,
        Some("kind"),
        "document skipped: kind \"component\" is not \"Component\" (kinds are case-sensitive)",
    ),
    e(
        "kinds.yaml",
        9,
        None,
        Some("apiVersion"),
        "kind Component needs apiVersion dapr.io/v1alpha1, found \"dapr.io/v1\"",
    ),
    e(
        "kinds.yaml",
        22,
        Some("state-store"),
        Some("spec.type"),
        "bindery supports bindings only: state.redis",
    ),
    e(
        "kinds.yaml",
        30,
        Some("no-such-binding"),
        Some("spec.type"),
        "couldn't find binding no-such-binding (bindings.nope/v1)",
    ),
    // Wrong types.
    e(
        "types.yaml",
        4,
        None,
        Some("metadata.name"),
        "metadata.name must be a string",
    ),
    e(
        "types.yaml",
        14,
        Some("metadata-not-a-list"),
        Some("spec.metadata"),
        "spec.metadata must be a list of {name, value} items",
    ),
    e(
        "types.yaml",
        23,
        Some("bad-timeout"),
        Some("spec.initTimeout"),
        "\"soon\" is not a duration",
    ),
    e(
        "types.yaml",
        24,
        Some("bad-timeout"),
        Some("spec.ignoreErrors"),
        "spec.ignoreErrors must be true or false",
    ),
    // Duplicates: the second definition, naming the first.
    e(
        "duplicates.yaml",
        14,
        Some("twin"),
        Some("metadata.name"),
        "duplicate definition of Component name twin (first defined in tests/corpus/invalid/duplicates.yaml, document 1)",
    ),
    // Missing fields: on the line of the part that lacks them.
    e(
        "missing.yaml",
        5,
        Some("no-type"),
        Some("spec.type"),
        "spec.type is required",
    ),
    e(
        "missing.yaml",
        10,
        None,
        Some("metadata.name"),
        "metadata.name is required",
    ),
    e(
        "missing.yaml",
        21,
        Some("no-schedule"),
        Some("spec.metadata.schedule"),
        "schedule not set",
    ),
    w(
        "missing.yaml",
        22,
        Some("no-schedule"),
        Some("spec.metadata.timeZone"),
        "unknown metadata \"timeZone\" for bindings.cron (ignored); known: schedule, plus direction, route, deadLetterBinding",
    ),
    // A bad resiliency file.
    e(
        "resiliency.yaml",
        9,
        None,
        Some("spec.policies.retries.sometimes.policy"),
        "\"sometimes\" is not constant or exponential",
    ),
    e(
        "resiliency.yaml",
        10,
        None,
        Some("spec.policies.retries.sometimes.maxRetries"),
        "-5 is not -1 (forever) or a count",
    ),
    e(
        "resiliency.yaml",
        15,
        None,
        Some("spec.targets.components.twin.inbound.retry"),
        "no retry policy named \"never-defined\"",
    ),
];

#[tokio::test]
async fn validate_reports_every_problem_of_the_corpus_with_file_and_line() {
    let out = tool(
        &["validate", "tests/corpus/invalid", "--format", "json"],
        &[],
    )
    .await;
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let report = json(&out);
    assert_eq!(report["valid"], false);
    for x in CORPUS {
        let file = format!("tests/corpus/invalid/{}", x.file);
        let found = report[x.severity].as_array().unwrap().iter().find(|i| {
            i["file"] == file.as_str()
                && i["line"] == x.line
                && i["component"].as_str() == x.component
                && i["field"].as_str() == x.field
                && i["message"].as_str().unwrap().contains(x.message)
        });
        assert!(
            found.is_some(),
            "no {} at {file}:{} {:?} {:?} {:?} in\n{:#}",
            x.severity,
            x.line,
            x.component,
            x.field,
            x.message,
            report[x.severity]
        );
    }
    let count = |s: &str| CORPUS.iter().filter(|x| x.severity == s).count();
    assert_eq!(
        report["errors"].as_array().unwrap().len(),
        count("errors"),
        "{:#}",
        report["errors"]
    );
    assert_eq!(
        report["warnings"].as_array().unwrap().len(),
        count("warnings"),
        "{:#}",
        report["warnings"]
    );

    // The same for people: `file:line: severity: ...`, one line each.
    let out = tool(&["validate", "tests/corpus/invalid"], &[]).await;
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    for x in CORPUS {
        let severity = x.severity.trim_end_matches('s');
        let start = format!("tests/corpus/invalid/{}:{}: {severity}: ", x.file, x.line);
        assert!(
            text.lines()
                .any(|l| l.starts_with(&start) && l.contains(x.message)),
            "no line starting {start:?} with {:?}:\n{text}",
            x.message
        );
    }
    assert!(
        text.ends_with(&format!(
            "invalid: {} errors, {} warnings\n",
            count("errors"),
            count("warnings")
        )),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_metadata_keys_are_warnings_listing_the_allowed_keys() {
    let file = "tests/corpus/warnings/unknown-key.yaml";
    let out = tool(&["validate", file], &[]).await;
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "{file}:12: warning: component \"files\": spec.metadata.rootPat: unknown metadata \"rootPat\" for bindings.localstorage (ignored); known: rootPath, plus direction, route, deadLetterBinding"
        )),
        "{text}"
    );
    assert!(text.ends_with("valid: 0 errors, 1 warning\n"), "{text}");

    // --strict: warnings fail.
    let out = tool(&["validate", file, "--strict", "--format", "json"], &[]).await;
    assert_eq!(code(&out), 1);
    let report = json(&out);
    assert_eq!(report["valid"], false);
    assert_eq!(report["strict"], true);
    assert_eq!(report["warnings"][0]["line"], 12);
    assert_eq!(report["warnings"][0]["field"], "spec.metadata.rootPat");
}

#[tokio::test]
async fn validate_applies_scopes_for_the_app_id() {
    let dir = tempfile::tempdir().unwrap();
    let doc = format!(
        "{}scopes:\n- orders\n",
        component("scoped", "bindings.nope", &[])
    );
    std::fs::write(dir.path().join("scoped.yaml"), doc).unwrap();
    let path = dir.path().to_str().unwrap();
    // Not for the default app id `validate`: skipped, so valid.
    let out = tool(&["validate", path], &[]).await;
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let out = tool(&["validate", path, "--app-id", "orders"], &[]).await;
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stdout(&out).contains("couldn't find binding scoped"));
}

#[tokio::test]
async fn validate_usage_errors_exit_2() {
    for args in [
        &["validate"][..],
        &["validate", "x", "--format", "yaml"],
        &["validate", "x", "--timeout", "1s"],
        &["--app-id", "a", "validate", "x"],
    ] {
        let out = tool(args, &[]).await;
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
    // A path that does not exist is a problem with the resources, reported as such.
    let out = tool(&["validate", "tests/corpus/nowhere"], &[]).await;
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("tests/corpus/nowhere: error: cannot read resources path"),
        "{}",
        stdout(&out)
    );
}

/// Fails, as the house rules ask, when the shared Redis is not running.
fn require_redis() {
    assert!(
        std::net::TcpStream::connect_timeout(
            &"127.0.0.1:6379".parse().unwrap(),
            Duration::from_secs(2)
        )
        .is_ok(),
        "Redis is not reachable on 127.0.0.1:6379: start it with scripts/backends.sh"
    );
}

#[tokio::test]
async fn validate_connect_reports_which_backends_answer() {
    require_redis();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, host: &str| {
        std::fs::write(
            dir.path().join(format!("{name}.yaml")),
            component(name, "bindings.redis", &[("redisHost", host)]),
        )
        .unwrap();
    };
    write("cache", "127.0.0.1:6379");
    write("down", "127.0.0.1:1");
    std::fs::write(dir.path().join("tick.yaml"), cron("tick", &[])).unwrap();
    let path = dir.path().to_str().unwrap();

    // Without --connect nothing is dialled: valid.
    let out = tool(&["validate", path], &[]).await;
    assert_eq!(code(&out), 0, "{}", stdout(&out));

    let out = tool(
        &[
            "validate",
            path,
            "--connect",
            "--timeout",
            "5s",
            "--format",
            "json",
        ],
        &[],
    )
    .await;
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let report = json(&out);
    assert_eq!(report["valid"], false);
    assert_eq!(report["errors"], Value::Array(vec![]));
    let connect = report["connect"].as_array().unwrap();
    let by_name = |n: &str| connect.iter().find(|c| c["name"] == n).unwrap().clone();
    assert_eq!(by_name("cache")["status"], "ok", "{connect:?}");
    let down = by_name("down");
    assert_eq!(down["status"], "failed", "{connect:?}");
    assert!(
        down["error"].as_str().unwrap().contains("127.0.0.1:1"),
        "{down}"
    );
    assert_eq!(by_name("tick")["status"], "skipped");

    let out = tool(&["validate", path, "--connect", "--timeout", "5s"], &[]).await;
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.contains("ok") && l.contains("cache") && l.contains("bindings.redis")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("FAILED") && l.contains("down") && l.contains("127.0.0.1:1")),
        "{text}"
    );
    assert!(
        text.ends_with("invalid: 0 errors, 0 warnings, 1 unreachable\n"),
        "{text}"
    );

    // Only the reachable one: valid.
    std::fs::remove_file(dir.path().join("down.yaml")).unwrap();
    let out = tool(&["validate", path, "--connect"], &[]).await;
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
}

// ---------------------------------------------------------------------------------------------
// invoke

fn port_args(port: u16) -> [String; 2] {
    ["--dapr-http-port".to_owned(), port.to_string()]
}

async fn invoke(port: u16, args: &[&str], env: &[(&str, &str)]) -> Output {
    let port = port_args(port);
    let mut all = vec!["invoke"];
    all.extend_from_slice(args);
    all.extend(port.iter().map(String::as_str));
    tool(&all, env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_calls_an_output_binding_of_a_running_bindery() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let app = TestApp::start().await;
    app.answer(
        Method::POST,
        "/echo",
        vec![Answer::status(200).body("pong")],
    );
    let url = format!("http://127.0.0.1:{}/echo", app.port);
    let b = bindery("tools")
        .file("store.yaml", &localstorage("store", &root))
        .file(
            "echo.yaml",
            &component("echo", "bindings.http", &[("url", &url)]),
        )
        .start()
        .await;
    let root = std::fs::canonicalize(&root).unwrap();
    let port = b.http_port;

    // create: text is sent as a JSON string, JSON as its value (re-encoded compactly).
    let out = invoke(
        port,
        &[
            "store",
            "create",
            "--data",
            "hello",
            "--metadata",
            "fileName=a.txt",
        ],
        &[],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), r#"{"fileName":"a.txt"}"#);
    assert_eq!(
        std::fs::read_to_string(root.join("a.txt")).unwrap(),
        "hello"
    );
    let out = invoke(
        port,
        &[
            "store",
            "create",
            "--data",
            r#"{"k": "v"}"#,
            "-m",
            "fileName=b.json",
        ],
        &[],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(root.join("b.json")).unwrap(),
        r#"{"k":"v"}"#
    );
    // --raw: the text as it is, even when it is JSON.
    let out = invoke(
        port,
        &[
            "store",
            "create",
            "--data",
            r#"{"k": "v"}"#,
            "--raw",
            "-m",
            "fileName=c.txt",
        ],
        &[],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(root.join("c.txt")).unwrap(),
        r#"{"k": "v"}"#
    );
    // --data-file
    let data_file = dir.path().join("data.txt");
    std::fs::write(&data_file, "from a file").unwrap();
    let out = invoke(
        port,
        &[
            "store",
            "create",
            "--data-file",
            data_file.to_str().unwrap(),
            "-m",
            "fileName=d.txt",
        ],
        &[],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(root.join("d.txt")).unwrap(),
        "from a file"
    );

    // get: the response body, as it is.
    let out = invoke(port, &["store", "get", "--metadata", "fileName=a.txt"], &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello");

    // -v: the status and the metadata.* headers, on standard error.
    let out = invoke(port, &["echo", "post", "--data", "ping", "-v"], &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "pong");
    let err = stderr(&out);
    assert!(err.contains("HTTP 200 OK"), "{err}");
    assert!(err.contains("metadata.statuscode: 200"), "{err}");
    // The data went as the JSON string "ping", which the http binding sends as JSON text.
    assert_eq!(app.received_at(&Method::POST, "/echo")[0].body, r#""ping""#);

    // An error answer: exit 1 with Dapr's errorCode and message.
    let out = invoke(
        port,
        &["store", "get", "--metadata", "fileName=missing.txt"],
        &[],
    )
    .await;
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("ERR_INVOKE_OUTPUT_BINDING: error invoking output binding store"),
        "{err}"
    );
    assert!(err.contains("(HTTP 500)"), "{err}");
    assert_eq!(stdout(&out), "");
    let out = invoke(port, &["ghost", "get"], &[]).await;
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("couldn't find output binding ghost"),
        "{}",
        stderr(&out)
    );

    // The port from DAPR_HTTP_PORT, as the SDKs find it.
    let out = tool(
        &["invoke", "store", "get", "-m", "fileName=a.txt"],
        &[("DAPR_HTTP_PORT", &port.to_string())],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello");
}

#[tokio::test]
async fn invoke_exits_3_when_no_sidecar_listens() {
    let port = free_port();
    let out = invoke(port, &["store", "get"], &[]).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "cannot reach the sidecar at http://127.0.0.1:{port}"
        )),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn invoke_usage_errors_exit_2() {
    let port = free_port();
    for args in [
        &["store"][..],
        &["store", "get", "--metadata", "novalue"],
        &["store", "get", "--data", "x", "--data-file", "y"],
        &["store", "get", "--data-file", "/nonexistent/data"],
    ] {
        let out = invoke(port, args, &[]).await;
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_sends_the_api_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "secret data").unwrap();
    let b = bindery("tools")
        .file("store.yaml", &localstorage("store", dir.path()))
        .env("DAPR_API_TOKEN", "s3cret")
        .start()
        .await;
    let args = ["store", "get", "-m", "fileName=a.txt"];
    let out = invoke(b.http_port, &args, &[]).await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("HTTP 401"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid api token"),
        "{}",
        stderr(&out)
    );
    let out = invoke(b.http_port, &args, &[("DAPR_API_TOKEN", "wrong")]).await;
    assert_eq!(code(&out), 1);
    let out = invoke(b.http_port, &args, &[("DAPR_API_TOKEN", "s3cret")]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "secret data");
}

// ---------------------------------------------------------------------------------------------
// tap

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_shows_events_while_the_app_still_gets_every_one() {
    let app = TestApp::start().await;
    app.subscribe("/tick");
    let b = bindery("tools")
        .file("tick.yaml", &cron("tick", &[]))
        .app_port(app.port)
        .start()
        .await;
    // Deliveries are under way.
    app.wait_for(Method::POST, "/tick", 1, common::DEADLINE)
        .await;

    let out = tool(
        &[
            "tap",
            "tick",
            "--count",
            "2",
            "--format",
            "json",
            "--dapr-http-port",
            &b.http_port.to_string(),
        ],
        &[],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", stdout(&out));
    let delivered = app.received_at(&Method::POST, "/tick");
    for event in &lines {
        assert_eq!(event["binding"], "tick", "{event}");
        assert_eq!(event["outcome"], "accepted", "{event}");
        assert_eq!(event["data"], "", "{event}");
        let read_time = event["metadata"]["readTimeUTC"].as_str().unwrap();
        assert!(event["metadata"]["timeZone"].is_string(), "{event}");
        // The app got this very event: tapping copies, it does not take.
        assert!(
            delivered
                .iter()
                .any(|r| r.header("readTimeUTC").as_deref() == Some(read_time)),
            "the app did not receive the tapped event {event}"
        );
    }
    assert_ne!(
        lines[0]["metadata"]["readTimeUTC"],
        lines[1]["metadata"]["readTimeUTC"]
    );
    // And it keeps getting them after the tap went away.
    let now = app.received_at(&Method::POST, "/tick").len();
    app.wait_for(Method::POST, "/tick", now + 1, common::DEADLINE)
        .await;
    assert!(
        app.received_at(&Method::POST, "/tick")
            .iter()
            .all(|r| r.status == 200)
    );

    // For people.
    let out = tool(
        &[
            "tap",
            "tick",
            "-n",
            "1",
            "--dapr-http-port",
            &b.http_port.to_string(),
        ],
        &[],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("tick: accepted\n"), "{text}");
    assert!(text.contains("\n  metadata.readTimeUTC: "), "{text}");
    assert!(text.contains("\n  metadata.timeZone: "), "{text}");
    assert!(text.ends_with("  data: (empty)\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_of_an_unknown_binding_exits_1_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let b = bindery("tools")
        .file("store.yaml", &localstorage("store", dir.path()))
        .start()
        .await;
    let port = b.http_port.to_string();
    for name in ["nope", "store"] {
        let out = tool(&["tap", name, "--dapr-http-port", &port], &[]).await;
        assert_eq!(code(&out), 1, "{}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!(
                "ERR_INPUT_BINDING_NOT_FOUND: couldn't find input binding {name} (HTTP 404)"
            )),
            "{}",
            stderr(&out)
        );
    }
    // The endpoint itself answers in Dapr's error shape.
    let resp = b
        .client()
        .get(b.url("/v1.0-alpha1/bindery/tap/nope"))
        .send()
        .await
        .unwrap();
    let message = common::dapr_error(resp, 404, "ERR_INPUT_BINDING_NOT_FOUND").await;
    assert_eq!(message, "couldn't find input binding nope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_needs_the_api_token_and_exits_3_without_a_sidecar() {
    let app = TestApp::start().await;
    app.subscribe("/tick");
    let b = bindery("tools")
        .file("tick.yaml", &cron("tick", &[]))
        .app_port(app.port)
        .env("DAPR_API_TOKEN", "s3cret")
        .start()
        .await;
    let port = b.http_port.to_string();
    let args = ["tap", "tick", "-n", "1", "--dapr-http-port", &port];
    let out = tool(&args, &[]).await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("HTTP 401"), "{}", stderr(&out));
    let out = tool(&args, &[("DAPR_API_TOKEN", "s3cret")]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("tick: accepted\n"));

    let free = free_port().to_string();
    let out = tool(&["tap", "tick", "--dapr-http-port", &free], &[]).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot reach the sidecar"),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// help and completions

#[tokio::test]
async fn every_tool_has_help_with_an_example() {
    for (tool_name, example) in [
        ("validate", "bindery validate ./components"),
        (
            "invoke",
            "bindery invoke files get --metadata fileName=hello.txt",
        ),
        ("tap", "bindery tap tick"),
        ("completions", "bindery completions bash"),
    ] {
        let out = tool(&[tool_name, "--help"], &[]).await;
        assert_eq!(code(&out), 0);
        let text = stdout(&out);
        assert!(text.contains("Examples:"), "{tool_name}: {text}");
        assert!(text.contains(example), "{tool_name}: {text}");
    }
    let out = tool(&["--help"], &[]).await;
    let text = stdout(&out);
    for tool_name in ["validate", "invoke", "tap", "completions"] {
        assert!(text.contains(&format!("  {tool_name} ")), "{text}");
    }
    assert!(text.contains("--app-id <ID>"), "{text}");
}

#[tokio::test]
async fn completions_cover_the_tools() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef bindery"),
        ("fish", "complete -c bindery"),
    ] {
        let out = tool(&["completions", shell], &[]).await;
        assert_eq!(code(&out), 0, "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}:\n{script}");
        assert!(script.contains("validate"), "{shell}");
        assert!(script.contains("resources-path"), "{shell}");
    }
    let out = tool(&["completions", "tcsh"], &[]).await;
    assert_eq!(code(&out), 2);
}
