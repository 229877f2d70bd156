//! The output bindings API, `POST`/`PUT /v1.0/bindings/{name}`, against the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Answer, DEADLINE, TestApp, bindery, call, component, dapr_error, localstorage, raw};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localstorage_operations_answer_dapr_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let b = bindery("out")
        .file("store.yaml", &localstorage("store", &root))
        .start()
        .await;
    let root = std::fs::canonicalize(&root).unwrap();

    // create, by POST and by PUT
    let resp = call(
        &b,
        Method::POST,
        "store",
        json!({"operation": "create", "data": "hello world", "metadata": {"fileName": "notes/a.txt"}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.text().await.unwrap(), r#"{"fileName":"notes/a.txt"}"#);
    assert_eq!(
        std::fs::read_to_string(root.join("notes/a.txt")).unwrap(),
        "hello world"
    );
    let resp = call(
        &b,
        Method::PUT,
        "store",
        json!({"operation": "create", "data": {"k": "v"}, "metadata": {"fileName": "b.json"}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), r#"{"fileName":"b.json"}"#);

    // get
    for (method, file, want) in [
        (Method::POST, "notes/a.txt", "hello world"),
        (Method::PUT, "b.json", r#"{"k":"v"}"#),
    ] {
        let resp = call(
            &b,
            method,
            "store",
            json!({"operation": "get", "metadata": {"fileName": file}}),
        )
        .await;
        assert_eq!(resp.status(), 200, "get {file}");
        assert_eq!(resp.text().await.unwrap(), want, "get {file}");
    }

    // list: absolute paths, lexical order
    let resp = call(&b, Method::POST, "store", json!({"operation": "list"})).await;
    assert_eq!(resp.status(), 200);
    let listed: Value = resp.json().await.unwrap();
    assert_eq!(
        listed,
        json!([
            root.join("b.json").to_str().unwrap(),
            root.join("notes/a.txt").to_str().unwrap()
        ])
    );

    // delete: 204, empty
    let resp = call(
        &b,
        Method::PUT,
        "store",
        json!({"operation": "delete", "metadata": {"fileName": "notes/a.txt"}}),
    )
    .await;
    assert_eq!(resp.status(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());
    assert!(!root.join("notes/a.txt").exists());

    // get of a missing file
    let resp = call(
        &b,
        Method::POST,
        "store",
        json!({"operation": "get", "metadata": {"fileName": "notes/a.txt"}}),
    )
    .await;
    let msg = dapr_error(resp, 500, "ERR_INVOKE_OUTPUT_BINDING").await;
    assert_eq!(
        msg,
        format!(
            "error invoking output binding store: file not found: {}",
            root.join("notes/a.txt").display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_is_reencoded_as_compact_json_and_unquoted_only_by_localstorage() {
    let app = TestApp::start().await;
    app.answer(Method::POST, "/echo", vec![Answer::status(200).body("ok")]);
    let dir = tempfile::tempdir().unwrap();
    let b = bindery("out")
        .file(
            "web.yaml",
            &component(
                "web",
                "bindings.http",
                &[("url", &format!("http://127.0.0.1:{}", app.port))],
            ),
        )
        .file("store.yaml", &localstorage("store", dir.path()))
        .start()
        .await;

    let cases: [(Option<Value>, &str); 5] = [
        (Some(json!("hi")), r#""hi""#),
        (
            Some(json!({"b": 1, "a": "<tag> & co", "c": [true, null, 2.5]})),
            r#"{"a":"\u003ctag\u003e \u0026 co","b":1,"c":[true,null,2.5]}"#,
        ),
        (Some(json!(12345678901234567890u64)), "12345678901234567890"),
        (None, "null"),
        (Some(Value::Null), "null"),
    ];

    // bindings.http sends the re-encoded text as it is
    for (i, (data, _)) in cases.iter().enumerate() {
        let mut body = json!({"operation": "post", "metadata": {"path": "/echo"}});
        if let Some(d) = data {
            body["data"] = d.clone();
        }
        let resp = call(&b, Method::POST, "web", body).await;
        assert_eq!(resp.status(), 200, "case {i}");
        assert_eq!(resp.text().await.unwrap(), "ok");
    }
    let got = app
        .wait_for(Method::POST, "/echo", cases.len(), DEADLINE)
        .await;
    for (i, ((_, want), r)) in cases.iter().zip(&got).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            *want,
            "bytes the HTTP endpoint received, case {i}"
        );
    }

    // bindings.localstorage unquotes a JSON string and writes everything else as re-encoded
    let stored: [(Option<Value>, &[u8]); 3] = [
        (Some(json!("hi \"there\"")), b"hi \"there\""),
        (Some(json!({"b": 1, "a": "<"})), br#"{"a":"\u003c","b":1}"#),
        // `null` is also padded base64, which localstorage decodes, as Dapr does.
        (None, &[0x9e, 0xe9, 0x65]),
    ];
    for (i, (data, want)) in stored.iter().enumerate() {
        let name = format!("f{i}");
        let mut body = json!({"operation": "create", "metadata": {"fileName": name}});
        if let Some(d) = data {
            body["data"] = d.clone();
        }
        let resp = call(&b, Method::POST, "store", body).await;
        assert_eq!(resp.status(), 200, "case {i}");
        assert_eq!(
            std::fs::read(dir.path().join(&name)).unwrap(),
            *want,
            "file content, case {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_400() {
    let dir = tempfile::tempdir().unwrap();
    let b = bindery("out")
        .file("store.yaml", &localstorage("store", dir.path()))
        .args(["--max-body-size", "1Ki"])
        .start()
        .await;
    let post = |body: Vec<u8>| {
        b.client()
            .post(b.url("/v1.0/bindings/store"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let bodies: [(&str, Vec<u8>); 5] = [
        ("not JSON", b"{\"operation\": \"create\",".to_vec()),
        ("not an object", b"[1, 2]".to_vec()),
        (
            "a number as metadata value",
            br#"{"operation":"create","metadata":{"fileName":1}}"#.to_vec(),
        ),
        (
            "metadata not an object",
            br#"{"operation":"create","metadata":"x"}"#.to_vec(),
        ),
        (
            "not UTF-8",
            b"{\"operation\":\"create\",\"data\":\"\xff\xfe\"}".to_vec(),
        ),
    ];
    for (what, body) in bodies {
        let resp = post(body).await.unwrap();
        let msg = dapr_error(resp, 400, "ERR_MALFORMED_REQUEST").await;
        assert!(
            msg.starts_with("failed deserializing HTTP body"),
            "{what}: {msg}"
        );
    }

    // Over --max-body-size: 400 naming the limit; nothing is written.
    let big =
        json!({"operation": "create", "data": "x".repeat(2048), "metadata": {"fileName": "big"}});
    let resp = post(serde_json::to_vec(&big).unwrap()).await.unwrap();
    let msg = dapr_error(resp, 400, "ERR_MALFORMED_REQUEST").await;
    assert!(
        msg.contains("1024 bytes") && msg.contains("--max-body-size"),
        "{msg}"
    );
    assert!(!dir.path().join("big").exists());

    // Just under the limit still works.
    let fits =
        json!({"operation": "create", "data": "x".repeat(900), "metadata": {"fileName": "fits"}});
    let resp = post(serde_json::to_vec(&fits).unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_errors_are_500_with_dapr_messages() {
    let dir = tempfile::tempdir().unwrap();
    let b = bindery("out")
        .file("store.yaml", &localstorage("store", dir.path()))
        .file("tick.yaml", &common::cron("tick", &[]))
        .start()
        .await;

    for body in [json!({"data": "x"}), json!({"operation": "", "data": "x"})] {
        let resp = call(&b, Method::POST, "store", body).await;
        let msg = dapr_error(resp, 500, "ERR_INVOKE_OUTPUT_BINDING").await;
        assert_eq!(
            msg,
            "error invoking output binding store: operation field is missing from request"
        );
    }

    let resp = call(&b, Method::POST, "nope", json!({"operation": "create"})).await;
    let msg = dapr_error(resp, 500, "ERR_INVOKE_OUTPUT_BINDING").await;
    assert_eq!(
        msg,
        "error invoking output binding nope: couldn't find output binding nope"
    );

    // An input-only binding has no output side.
    let resp = call(&b, Method::POST, "tick", json!({"operation": "create"})).await;
    let msg = dapr_error(resp, 500, "ERR_INVOKE_OUTPUT_BINDING").await;
    assert_eq!(
        msg,
        "error invoking output binding tick: couldn't find output binding tick"
    );

    // Names are matched exactly.
    let resp = call(&b, Method::POST, "Store", json!({"operation": "get"})).await;
    let msg = dapr_error(resp, 500, "ERR_INVOKE_OUTPUT_BINDING").await;
    assert!(msg.ends_with("couldn't find output binding Store"), "{msg}");

    for op in ["exec", "CREATE"] {
        let resp = call(&b, Method::PUT, "store", json!({"operation": op})).await;
        let msg = dapr_error(resp, 500, "ERR_INVOKE_OUTPUT_BINDING").await;
        assert_eq!(
            msg,
            format!(
                "error invoking output binding store: binding store does not support operation {op}. supported operations:create get list delete"
            )
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_binding_answers_carry_metadata_headers() {
    let app = TestApp::start().await;
    app.answer(
        Method::GET,
        "/hello",
        vec![Answer::status(200).body("hi").header("X-Custom", "yes")],
    );
    app.answer(
        Method::GET,
        "/teapot",
        vec![Answer::status(418).body("short and stout")],
    );
    let b = bindery("out")
        .file(
            "web.yaml",
            &component(
                "web",
                "bindings.http",
                &[("url", &format!("http://127.0.0.1:{}", app.port))],
            ),
        )
        .start()
        .await;

    // success: body and every response metadata entry as a metadata.* header
    let resp = call(
        &b,
        Method::POST,
        "web",
        json!({"operation": "get", "metadata": {"path": "/hello"}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["metadata.statuscode"], "200");
    assert_eq!(h["metadata.status"], "200 OK");
    assert_eq!(h["metadata.x-custom"], "yes");
    assert_eq!(resp.text().await.unwrap(), "hi");

    // a 404 from the endpoint (the test app does not know /missing): 500, with the metadata
    let resp = call(
        &b,
        Method::POST,
        "web",
        json!({"operation": "get", "metadata": {"path": "/missing"}}),
    )
    .await;
    let h = resp.headers().clone();
    let msg = dapr_error(resp, 500, "ERR_INVOKE_OUTPUT_BINDING").await;
    assert_eq!(
        msg,
        "error invoking output binding web: received status code 404"
    );
    // Header names are case-insensitive; clients of Go's daprd see `Metadata.Statuscode`.
    let code = h
        .iter()
        .find(|(k, _)| k.as_str().eq_ignore_ascii_case("Metadata.StatusCode"))
        .map(|(_, v)| v.to_str().unwrap().to_owned());
    assert_eq!(code.as_deref(), Some("404"));
    assert_eq!(h["metadata.status"], "404 Not Found");

    let resp = call(
        &b,
        Method::POST,
        "web",
        json!({"operation": "get", "metadata": {"path": "/teapot"}}),
    )
    .await;
    let h = resp.headers().clone();
    dapr_error(resp, 500, "ERR_INVOKE_OUTPUT_BINDING").await;
    assert_eq!(h["metadata.statuscode"], "418");

    // errorIfNot2XX=false: the 404 is an answer, not an error
    let resp = call(
        &b,
        Method::POST,
        "web",
        json!({"operation": "get", "metadata": {"path": "/missing", "errorIfNot2XX": "false"}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["metadata.statuscode"], "404");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_binding_names_are_clean_not_found_errors() {
    let dir = tempfile::tempdir().unwrap();
    let b = bindery("out")
        .file("store.yaml", &localstorage("store", dir.path()))
        .start()
        .await;
    let body = br#"{"operation":"create","data":"x"}"#;
    let long = "n".repeat(4096);
    let cases: Vec<(String, String)> = vec![
        ("%2e%2e".into(), "..".into()),
        ("%2E".into(), ".".into()),
        ("a%2Fb".into(), "a/b".into()),
        ("..%2F..%2Fetc%2Fpasswd".into(), "../../etc/passwd".into()),
        ("%C3%A9t%C3%A9%F0%9F%93%A6".into(), "été📦".into()),
        ("st%6Fre%20".into(), "store ".into()),
        (long.clone(), long.clone()),
    ];
    for (segment, decoded) in &cases {
        let resp = raw(
            b.http_port,
            "POST",
            &format!("/v1.0/bindings/{segment}"),
            body,
        )
        .await;
        assert_eq!(resp.status, 500, "{segment}: {}", resp.head);
        let v = resp.json();
        assert_eq!(v["errorCode"], "ERR_INVOKE_OUTPUT_BINDING", "{segment}");
        assert_eq!(
            v["message"],
            format!(
                "error invoking output binding {decoded}: couldn't find output binding {decoded}"
            ),
            "{segment}"
        );
    }
    // Bytes that are not UTF-8 once decoded, and a NUL: names no binding can have.
    for (segment, decoded) in [("%FF%FE", "\u{FFFD}\u{FFFD}"), ("a%00b", "a\0b")] {
        let resp = raw(
            b.http_port,
            "POST",
            &format!("/v1.0/bindings/{segment}"),
            body,
        )
        .await;
        assert_eq!(resp.status, 500, "{segment}: {}", resp.head);
        let v = resp.json();
        assert_eq!(v["errorCode"], "ERR_INVOKE_OUTPUT_BINDING", "{segment}");
        assert_eq!(
            v["message"],
            format!(
                "error invoking output binding {decoded}: couldn't find output binding {decoded}"
            ),
            "{segment}"
        );
    }
    // Nothing was written by any of it, and bindery is still serving.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert_eq!(common::get_status(&b, "/v1.0/healthz/outbound").await, 204);
    assert_eq!(common::get_status(&b, "/v1.0/healthz").await, 204);
    let resp = call(
        &b,
        Method::POST,
        "store",
        json!({"operation": "create", "data": "still here", "metadata": {"fileName": "ok"}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let dir = tempfile::tempdir().unwrap();
    let b = bindery("out")
        .file("store.yaml", &localstorage("store", dir.path()))
        .start()
        .await;
    for (method, path) in [
        (Method::GET, "/v1.0/nope"),
        (Method::POST, "/v1.0/bindings"),
        (Method::POST, "/v1.0/bindings/store/extra"),
        (Method::POST, "/v1.0/invoke/app/method/x"),
        (Method::GET, "/"),
    ] {
        let resp = b
            .client()
            .request(method.clone(), b.url(path))
            .send()
            .await
            .unwrap();
        let msg = dapr_error(resp, 404, "ERR_NOT_FOUND").await;
        assert!(msg.contains(path), "{method} {path}: {msg}");
    }
    for method in [Method::GET, Method::DELETE, Method::PATCH] {
        let resp = b
            .client()
            .request(method.clone(), b.url("/v1.0/bindings/store"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method}");
        let allow = resp.headers()["allow"].to_str().unwrap().to_owned();
        assert!(
            allow.contains("POST") && allow.contains("PUT"),
            "{method}: allow {allow}"
        );
    }
}
