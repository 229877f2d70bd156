//! A corpus of bad requests sent to the real `bindery` binary through both APIs: malformed and
//! huge bodies, deep nesting, invalid UTF-8, CR/LF in metadata, path tricks in binding names and
//! file names. Each gets a clear error; the process stays up, stays healthy, and its other
//! bindings (an input delivering to the app, an output writing files) keep working throughout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bindery_test_support::{Bindery, TestApp, wait_until};
use dapr::dapr::proto::runtime::v1 as pb;
use http::Method;
use tonic::Code;

const DEADLINE: Duration = Duration::from_secs(20);

fn component(name: &str, type_name: &str, metadata: &[(&str, &str)]) -> String {
    let mut doc = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: {type_name}\n  version: v1\n  metadata:\n"
    );
    for (k, v) in metadata {
        doc.push_str(&format!("  - name: {k}\n    value: \"{v}\"\n"));
    }
    doc
}

/// One bad HTTP request and what bindery must answer.
struct HttpCase {
    what: &'static str,
    path: String,
    body: Vec<u8>,
    status: u16,
    /// Text the answer must contain (the Dapr error code or the reason).
    says: &'static [&'static str],
}

fn case(
    what: &'static str,
    path: &str,
    body: impl Into<Vec<u8>>,
    status: u16,
    says: &'static [&'static str],
) -> HttpCase {
    HttpCase {
        what,
        path: path.to_owned(),
        body: body.into(),
        status,
        says,
    }
}

fn http_corpus() -> Vec<HttpCase> {
    let nested = format!(
        r#"{{"operation":"create","data":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let nested_object = format!(
        r#"{{"operation":"create","data":{}1{}}}"#,
        r#"{"a":"#.repeat(5_000),
        "}".repeat(5_000)
    );
    let huge = format!(
        r#"{{"operation":"create","data":"{}","metadata":{{"fileName":"huge"}}}}"#,
        "x".repeat(5 * 1024 * 1024)
    );
    let long_name = format!("/v1.0/bindings/{}", "n".repeat(10_000));
    let store = "/v1.0/bindings/store";
    let echo = "/v1.0/bindings/echo";
    vec![
        case("empty body", store, "", 400, &["ERR_MALFORMED_REQUEST"]),
        case(
            "truncated JSON",
            store,
            r#"{"operation":"cre"#,
            400,
            &["ERR_MALFORMED_REQUEST"],
        ),
        case(
            "a JSON array",
            store,
            "[1,2,3]",
            400,
            &["ERR_MALFORMED_REQUEST"],
        ),
        case(
            "deeply nested array data",
            store,
            nested,
            400,
            &["ERR_MALFORMED_REQUEST"],
        ),
        case(
            "deeply nested object data",
            store,
            nested_object,
            400,
            &["ERR_MALFORMED_REQUEST"],
        ),
        case(
            "a body over --max-body-size",
            store,
            huge,
            400,
            &["ERR_MALFORMED_REQUEST", "--max-body-size"],
        ),
        case(
            "invalid UTF-8 in data",
            store,
            b"{\"operation\":\"create\",\"data\":\"\xc3\x28\"}".to_vec(),
            400,
            &["ERR_MALFORMED_REQUEST"],
        ),
        case(
            "invalid UTF-8 in a metadata key",
            store,
            b"{\"operation\":\"create\",\"metadata\":{\"\xff\":\"v\"}}".to_vec(),
            400,
            &["ERR_MALFORMED_REQUEST"],
        ),
        case(
            "a number as a metadata value",
            store,
            r#"{"operation":"create","metadata":{"fileName":7}}"#,
            400,
            &["ERR_MALFORMED_REQUEST"],
        ),
        case(
            "no operation",
            store,
            r#"{"data":"x"}"#,
            500,
            &["ERR_INVOKE_OUTPUT_BINDING", "operation field is missing"],
        ),
        case(
            "an operation the binding does not have",
            store,
            r#"{"operation":"explode"}"#,
            500,
            &["ERR_INVOKE_OUTPUT_BINDING", "explode"],
        ),
        case(
            "CR/LF in a metadata value that becomes a header",
            echo,
            r#"{"operation":"post","data":"x","metadata":{"X-Note":"a\r\nInjected: yes"}}"#,
            500,
            &["ERR_INVOKE_OUTPUT_BINDING", "CR or LF"],
        ),
        case(
            "a file name climbing out of the root",
            store,
            r#"{"operation":"create","data":"x","metadata":{"fileName":"../../escaped"}}"#,
            500,
            &["ERR_INVOKE_OUTPUT_BINDING", "fileName"],
        ),
        case(
            "an absolute file name",
            store,
            r#"{"operation":"get","metadata":{"fileName":"/etc/passwd"}}"#,
            500,
            &["ERR_INVOKE_OUTPUT_BINDING", "fileName"],
        ),
        case(
            "a NUL in a file name",
            store,
            r#"{"operation":"create","data":"x","metadata":{"fileName":"a\u0000b"}}"#,
            500,
            &["ERR_INVOKE_OUTPUT_BINDING", "fileName"],
        ),
        case(
            "an encoded slash in the binding name",
            "/v1.0/bindings/..%2F..%2Fstore",
            r#"{"operation":"get"}"#,
            500,
            &["ERR_INVOKE_OUTPUT_BINDING", "couldn't find output binding"],
        ),
        case(
            "a NUL in the binding name",
            "/v1.0/bindings/st%00ore",
            r#"{"operation":"get"}"#,
            500,
            &["ERR_INVOKE_OUTPUT_BINDING", "couldn't find output binding"],
        ),
        case(
            "a 10,000-character binding name",
            &long_name,
            r#"{"operation":"get"}"#,
            500,
            &["ERR_INVOKE_OUTPUT_BINDING", "couldn't find output binding"],
        ),
        case(
            "an input-only binding",
            "/v1.0/bindings/tick",
            r#"{"operation":"create"}"#,
            500,
            &["ERR_INVOKE_OUTPUT_BINDING", "couldn't find output binding"],
        ),
    ]
}

/// One bad gRPC call and the code and text bindery must answer with.
struct GrpcCase {
    what: &'static str,
    request: pb::InvokeBindingRequest,
    code: Code,
    says: &'static str,
}

fn grpc_corpus() -> Vec<GrpcCase> {
    let req =
        |name: &str, operation: &str, data: &[u8], md: &[(&str, &str)]| pb::InvokeBindingRequest {
            name: name.into(),
            operation: operation.into(),
            data: data.to_vec(),
            metadata: md
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>(),
        };
    vec![
        GrpcCase {
            what: "no binding name",
            request: req("", "create", b"x", &[]),
            code: Code::Internal,
            says: "error invoking output binding",
        },
        GrpcCase {
            what: "an unknown binding",
            request: req("../store", "create", b"x", &[]),
            code: Code::Internal,
            says: "error invoking output binding",
        },
        GrpcCase {
            what: "no operation",
            request: req("store", "", b"x", &[]),
            code: Code::Internal,
            says: "operation field is missing",
        },
        GrpcCase {
            what: "CR/LF in a metadata value that becomes a header",
            request: req("echo", "post", b"x", &[("X-Note", "a\r\nInjected: yes")]),
            code: Code::Internal,
            says: "CR or LF",
        },
        GrpcCase {
            what: "a file name climbing out of the root",
            request: req("store", "create", b"x", &[("fileName", "../../escaped")]),
            code: Code::Internal,
            says: "fileName",
        },
        GrpcCase {
            what: "a message over the receive limit",
            request: req(
                "store",
                "create",
                &vec![b'x'; 5 * 1024 * 1024],
                &[("fileName", "huge")],
            ),
            code: Code::OutOfRange,
            says: "",
        },
    ]
}

async fn healthy(b: &Bindery) -> bool {
    match b.client().get(b.url("/v1.0/healthz")).send().await {
        Ok(r) => r.status().as_u16() == 204,
        Err(_) => false,
    }
}

fn alive(b: &Bindery) -> bool {
    Path::new(&format!("/proc/{}", b.pid())).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_hurt_nothing_else() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = tempfile::tempdir().unwrap();
    let app = TestApp::start().await;
    app.subscribe("/tick");
    app.answer(
        Method::POST,
        "/echo",
        vec![bindery_test_support::Answer::status(200)],
    );
    let root_str = root.path().to_str().unwrap();
    let echo_url = format!("http://127.0.0.1:{}/echo", app.port);
    let b = Bindery::builder("bad-input")
        .file(
            "store.yaml",
            &component("store", "bindings.localstorage", &[("rootPath", root_str)]),
        )
        .file(
            "echo.yaml",
            &component("echo", "bindings.http", &[("url", &echo_url)]),
        )
        .file(
            "tick.yaml",
            &component("tick", "bindings.cron", &[("schedule", "@every 1s")]),
        )
        .app_port(app.port)
        .start()
        .await;
    wait_until(DEADLINE, "a first tick at the app", || {
        let n = app.received_at(&Method::POST, "/tick").len();
        async move { (n > 0).then_some(()) }
    })
    .await;
    let ticks_before = app.received_at(&Method::POST, "/tick").len();

    let corpus = http_corpus();
    let mut wrong = Vec::new();
    for c in &corpus {
        let resp = b
            .client()
            .post(b.url(&c.path))
            .header("content-type", "application/json")
            .body(c.body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: no answer: {e}\n{}", c.what, b.logs()));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        if status != c.status || !c.says.iter().all(|s| text.contains(s)) {
            let text: String = text.chars().take(300).collect();
            wrong.push(format!(
                "{}: {status} {text:?}, expected {} saying {:?}",
                c.what, c.status, c.says
            ));
        }
        assert!(
            alive(&b) && healthy(&b).await,
            "{}: bindery is down\n{}",
            c.what,
            b.logs()
        );
    }

    let mut grpc =
        pb::dapr_client::DaprClient::connect(format!("http://127.0.0.1:{}", b.grpc_port))
            .await
            .unwrap();
    let grpc_corpus = grpc_corpus();
    for c in &grpc_corpus {
        let status = grpc
            .invoke_binding(c.request.clone())
            .await
            .expect_err(c.what);
        if status.code() != c.code || !status.message().contains(c.says) {
            wrong.push(format!(
                "gRPC {}: {:?} {:?}, expected {:?} saying {:?}",
                c.what,
                status.code(),
                status.message(),
                c.code,
                c.says
            ));
        }
        assert!(
            alive(&b) && healthy(&b).await,
            "{}: bindery is down\n{}",
            c.what,
            b.logs()
        );
    }

    assert!(
        wrong.is_empty(),
        "answers that differ:\n{}",
        wrong.join("\n")
    );

    // Nothing escaped the storage root, and no header was injected at the HTTP server.
    assert!(!root.path().parent().unwrap().join("escaped").exists());
    for r in app.received_at(&Method::POST, "/echo") {
        assert!(
            r.header("injected").is_none(),
            "a header was injected: {:?}",
            r.headers
        );
    }

    // The other bindings kept working: the schedule still fires and a good call still writes.
    wait_until(DEADLINE, "ticks after the corpus", || {
        let n = app.received_at(&Method::POST, "/tick").len();
        async move { (n > ticks_before).then_some(()) }
    })
    .await;
    let resp = b
        .client()
        .post(b.url("/v1.0/bindings/store"))
        .body(r#"{"operation":"create","data":"fine!","metadata":{"fileName":"ok.txt"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(std::fs::read(root.path().join("ok.txt")).unwrap(), b"fine!");
    let mut grpc_ok = pb::InvokeBindingRequest {
        name: "store".into(),
        operation: "create".into(),
        data: b"\xff\x00 raw".to_vec(),
        metadata: HashMap::new(),
    };
    grpc_ok.metadata.insert("fileName".into(), "raw.bin".into());
    grpc.invoke_binding(grpc_ok).await.unwrap();
    assert_eq!(
        std::fs::read(root.path().join("raw.bin")).unwrap(),
        b"\xff\x00 raw"
    );

    // The loader's corpus of broken files dropped into the running sidecar's resources folder:
    // the reload is refused with the reasons, and the running bindings stay.
    let corpus_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/tests/corpus/invalid");
    let mut broken = 0;
    for entry in std::fs::read_dir(&corpus_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = format!("broken-{}", path.file_name().unwrap().to_str().unwrap());
        std::fs::copy(&path, b.resources_dir().join(name)).unwrap();
        broken += 1;
    }
    assert!(
        broken >= 5,
        "the corpus is missing: {}",
        corpus_dir.display()
    );
    wait_until(DEADLINE, "the broken files to be refused", || {
        let logs = b.logs();
        async move {
            logs.contains("keeping the running components")
                .then_some(())
        }
    })
    .await;
    assert!(alive(&b) && healthy(&b).await, "{}", b.logs());
    let resp = b
        .client()
        .post(b.url("/v1.0/bindings/store"))
        .body(r#"{"operation":"get","metadata":{"fileName":"ok.txt"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"fine!");
    let ticks = app.received_at(&Method::POST, "/tick").len();
    wait_until(DEADLINE, "ticks after the broken files", || {
        let n = app.received_at(&Method::POST, "/tick").len();
        async move { (n > ticks).then_some(()) }
    })
    .await;

    let logs = b.logs();
    assert!(!logs.contains("panicked"), "{logs}");
    println!(
        "bad input: {} HTTP and {} gRPC requests refused with clear errors, {broken} broken component files refused at reload; bindery stayed up and healthy, {} ticks delivered meanwhile",
        corpus.len(),
        grpc_corpus.len(),
        app.received_at(&Method::POST, "/tick").len()
    );
}
