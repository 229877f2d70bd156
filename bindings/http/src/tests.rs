use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Response, StatusCode};
use bindery_core::{BindingHealth, ErrorKind};
use serde_json::{Value, json};

use super::*;

/// A local HTTP server:
/// * `/status/<code>`: answers `<code>` with body `status body` and `X-Multi: a`, `X-Multi: b`;
/// * `/reason`: answers `404 Nope`;
/// * `/slow`: answers after 3 s;
/// * `/big/<n>`: answers `n` bytes of `x`;
/// * `/redirect/<code>/<path>`: answers `<code>` with `Location: /<path>`, or the URL in
///   query `to=`;
/// * `/loop`: redirects to itself;
/// * anything else: echoes the request as JSON, and its method in `X-Echo-Method`.
async fn server() -> SocketAddr {
    async fn handle(req: Request) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let path = parts.uri.path().to_owned();
        if let Some(code) = path.strip_prefix("/status/") {
            let code: u16 = code.parse().unwrap();
            return Response::builder()
                .status(code)
                .header("x-multi", "a")
                .header("x-multi", "b")
                .header("content-type", "text/plain")
                .body(Body::from("status body"))
                .unwrap();
        }
        if path == "/reason" {
            let mut resp = Response::builder()
                .status(404)
                .body(Body::from("nope"))
                .unwrap();
            resp.extensions_mut()
                .insert(hyper::ext::ReasonPhrase::from_static(b"Nope"));
            return resp;
        }
        if path == "/slow" {
            tokio::time::sleep(Duration::from_secs(3)).await;
            return Response::new(Body::from("late"));
        }
        if let Some(rest) = path.strip_prefix("/redirect/") {
            let (code, to) = rest.split_once('/').unwrap();
            let location = match parts.uri.query().and_then(|q| q.strip_prefix("to=")) {
                Some(absolute) => absolute.to_owned(),
                None => format!("/{to}"),
            };
            return Response::builder()
                .status(code.parse::<u16>().unwrap())
                .header("location", location)
                .body(Body::empty())
                .unwrap();
        }
        if path == "/loop" {
            return Response::builder()
                .status(302)
                .header("location", "loop")
                .body(Body::empty())
                .unwrap();
        }
        if let Some(n) = path.strip_prefix("/big/") {
            let n: usize = n.parse().unwrap();
            return Response::new(Body::from(vec![b'x'; n]));
        }
        let mut headers: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in &parts.headers {
            headers
                .entry(k.as_str().to_owned())
                .or_default()
                .push(v.to_str().unwrap().to_owned());
        }
        let echo = json!({
            "method": parts.method.as_str(),
            "path": path,
            "query": parts.uri.query(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        });
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("x-echo-method", parts.method.as_str())
            .body(Body::from(echo.to_string()))
            .unwrap()
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(handle);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn ctx(pairs: &[(&str, &str)]) -> ComponentContext {
    ComponentContext {
        name: "web".into(),
        app_id: "app".into(),
        metadata: Metadata::from_pairs(pairs.iter().copied()),
        health: BindingHealth::default(),
    }
}

async fn binding(pairs: &[(&str, &str)]) -> Box<dyn OutputBinding> {
    install_provider();
    HttpFactory.build_output(&ctx(pairs)).await.unwrap()
}

fn request(op: &str, data: &str, md: &[(&str, &str)]) -> InvokeRequest {
    InvokeRequest {
        operation: op.into(),
        data: Bytes::copy_from_slice(data.as_bytes()),
        metadata: md
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

async fn echo(b: &dyn OutputBinding, req: InvokeRequest) -> Value {
    let resp = b.invoke(req).await.unwrap().unwrap();
    serde_json::from_slice(&resp.data).unwrap()
}

/// The values the server saw for header `name` (lower-case).
fn seen<'a>(echo: &'a Value, name: &str) -> Vec<&'a str> {
    echo["headers"][name]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap()).collect())
        .unwrap_or_default()
}

fn validate_errors(pairs: &[(&str, &str)]) -> Vec<BindingError> {
    HttpFactory
        .validate(&Metadata::from_pairs(pairs.iter().copied()))
        .unwrap_err()
}

#[test]
fn spec_lists_every_field_and_operation() {
    let spec = HttpFactory.spec();
    assert_eq!(spec.type_name, "bindings.http");
    assert_eq!(spec.direction, Direction::Output);
    assert_eq!(
        spec.operations,
        [
            "create", "get", "head", "post", "put", "patch", "delete", "options", "trace"
        ]
    );
    for f in [
        "url",
        "responseTimeout",
        "maxResponseBodySize",
        "MTLSRootCA",
        "MTLSClientCert",
        "MTLSClientKey",
        "MTLSRenegotiation",
        "securityToken",
        "securityTokenHeader",
        "errorIfNot2XX",
    ] {
        assert!(spec.field(f).is_some(), "{f}");
    }
    assert!(spec.field("url").unwrap().required);
    assert_eq!(
        spec.field("maxResponseBodySize").unwrap().default,
        Some("100Mi")
    );
    assert_eq!(spec.field("errorIfNot2XX").unwrap().default, Some("true"));
    assert!(spec.is_sensitive("securitytoken"));
    assert!(spec.is_sensitive("MTLSClientKey"));
    assert!(!spec.is_sensitive("securityTokenHeader"));
    let mut registry = Registry::new();
    register(&mut registry);
    assert!(registry.get("BINDINGS.HTTP").is_some());
}

#[test]
fn validate_reports_every_problem() {
    let errs = validate_errors(&[]);
    assert_eq!(errs[0].message(), "required metadata not set: url");
    assert_eq!(errs[0].field(), Some("url"));

    let errs = validate_errors(&[
        ("url", "ftp://example.com"),
        ("maxResponseBodySize", "lots"),
        ("responseTimeout", "soon"),
        ("MTLSClientCert", "/tmp/cert.pem"),
        ("MTLSRenegotiation", "Sometimes"),
        ("errorIfNot2XX", "perhaps"),
    ]);
    let fields: Vec<_> = errs.iter().map(|e| e.field().unwrap()).collect();
    assert_eq!(
        fields,
        [
            "url",
            "responseTimeout",
            "maxResponseBodySize",
            "MTLSClientKey",
            "MTLSRenegotiation",
            "errorIfNot2XX"
        ]
    );
    assert!(errs.iter().all(|e| e.kind() == ErrorKind::InvalidConfig));

    let errs = validate_errors(&[("url", "not a url")]);
    assert!(errs[0].message().starts_with("invalid url"));

    let errs = validate_errors(&[("url", "http://h"), ("securityToken", "tok")]);
    assert_eq!(errs[0].field(), Some("securityTokenHeader"));

    // Dapr's docs show this value; it is not a header name.
    let errs = validate_errors(&[
        ("url", "http://h"),
        ("securityToken", "tok"),
        ("securityTokenHeader", "Authorization: Bearer"),
    ]);
    assert_eq!(errs[0].field(), Some("securityTokenHeader"));

    let errs = validate_errors(&[
        ("url", "http://h"),
        ("securityToken", "very-secret\r\nX-Evil: 1"),
        ("securityTokenHeader", "X-Token"),
    ]);
    assert_eq!(errs[0].field(), Some("securityToken"));
    assert!(!errs[0].message().contains("very-secret"));

    for ok in [
        vec![("url", "https://example.com/api")],
        vec![
            ("url", "http://localhost:3000"),
            ("responseTimeout", "10s"),
            ("maxResponseBodySize", "-1"),
            ("MTLSRootCA", "/etc/ssl/ca.pem"),
            ("MTLSClientCert", "/c.pem"),
            ("MTLSClientKey", "/k.pem"),
            ("MTLSRenegotiation", "RenegotiateOnceAsClient"),
            ("securityToken", "t"),
            ("securityTokenHeader", "X-Token"),
            ("errorIfNot2XX", "false"),
        ],
    ] {
        assert!(
            HttpFactory
                .validate(&Metadata::from_pairs(ok.clone()))
                .is_ok(),
            "{ok:?}"
        );
    }
}

#[tokio::test]
async fn every_verb_is_sent_with_a_body_only_for_post_put_patch() {
    let addr = server().await;
    let url = format!("http://{addr}/things");
    let b = binding(&[("url", &url)]).await;
    assert!(b.operations().contains(&"trace"));
    for (op, method, body) in [
        ("create", "POST", true),
        ("post", "POST", true),
        ("put", "PUT", true),
        ("patch", "PATCH", true),
        ("get", "GET", false),
        ("delete", "DELETE", false),
        ("options", "OPTIONS", false),
        ("trace", "TRACE", false),
    ] {
        let e = echo(b.as_ref(), request(op, r#"{"a":1}"#, &[])).await;
        assert_eq!(e["method"], method, "{op}");
        assert_eq!(e["path"], "/things");
        assert_eq!(seen(&e, "accept"), [JSON_UTF8], "{op}");
        if body {
            assert_eq!(e["body"], r#"{"a":1}"#, "{op}");
            assert_eq!(seen(&e, "content-type"), [JSON_UTF8], "{op}");
        } else {
            assert_eq!(e["body"], "", "{op}");
            assert!(seen(&e, "content-type").is_empty(), "{op}");
        }
    }
    // HEAD has no response body; the method shows in the response headers.
    let resp = b
        .invoke(request("head", "ignored", &[]))
        .await
        .unwrap()
        .unwrap();
    assert!(resp.data.is_empty());
    assert_eq!(resp.metadata["X-Echo-Method"], "HEAD");
    assert_eq!(resp.metadata[STATUS_CODE_KEY], "200");
}

#[tokio::test]
async fn path_is_joined_with_exactly_one_slash() {
    let addr = server().await;
    for (base, path, expected) in [
        (format!("http://{addr}/base/"), Some("/x/y"), "/base/x/y"),
        (format!("http://{addr}/base"), Some("x"), "/base/x"),
        (format!("http://{addr}/base//"), Some("//x"), "/base/x"),
        (format!("http://{addr}/base"), None, "/base"),
        (format!("http://{addr}/base/"), Some(""), "/base/"),
        (format!("http://{addr}"), Some("x"), "/x"),
    ] {
        let b = binding(&[("url", &base)]).await;
        let md: Vec<(&str, &str)> = path.map(|p| ("path", p)).into_iter().collect();
        let e = echo(b.as_ref(), request("get", "", &md)).await;
        assert_eq!(e["path"], expected, "{base} + {path:?}");
    }
    let b = binding(&[("url", &format!("http://{addr}/base"))]).await;
    let e = echo(b.as_ref(), request("get", "", &[("path", "items?limit=5")])).await;
    assert_eq!(e["path"], "/base/items");
    assert_eq!(e["query"], "limit=5");
}

#[tokio::test]
async fn upper_case_metadata_keys_become_headers() {
    let addr = server().await;
    let b = binding(&[("url", &format!("http://{addr}/"))]).await;
    let e = echo(
        b.as_ref(),
        request(
            "post",
            "plain",
            &[
                ("X-Custom", "v1"),
                ("Authorization", "Bearer abc"),
                ("Content-Type", "text/plain"),
                ("Accept", "text/html"),
                ("lowercase", "not a header"),
                ("path", "p"),
                (
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                ),
                ("tracestate", "congo=t61rcWkgMzE"),
                ("baggage", "userId=alice"),
            ],
        ),
    )
    .await;
    assert_eq!(seen(&e, "x-custom"), ["v1"]);
    assert_eq!(seen(&e, "authorization"), ["Bearer abc"]);
    assert_eq!(seen(&e, "content-type"), ["text/plain"]);
    assert_eq!(seen(&e, "accept"), ["text/html"]);
    assert!(seen(&e, "lowercase").is_empty());
    assert!(seen(&e, "path").is_empty());
    assert_eq!(
        seen(&e, "traceparent"),
        ["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]
    );
    assert_eq!(seen(&e, "tracestate"), ["congo=t61rcWkgMzE"]);
    assert_eq!(seen(&e, "baggage"), ["userId=alice"]);
    assert_eq!(e["body"], "plain");
}

#[tokio::test]
async fn header_values_with_cr_or_lf_are_refused() {
    let addr = server().await;
    let b = binding(&[("url", &format!("http://{addr}/"))]).await;
    for value in ["a\r\nX-Injected: 1", "a\nb", "a\rb"] {
        let err = b
            .invoke(request("get", "", &[("X-Bad", value)]))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert!(err.message().contains("\"X-Bad\""), "{}", err.message());
        assert!(!err.message().contains("Injected"));
    }
    let err = b
        .invoke(request("get", "", &[("traceparent", "x\r\ny")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    let err = b
        .invoke(request("get", "", &[("Bad Name", "v")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().contains("Bad Name"));
}

#[tokio::test]
async fn response_metadata_has_status_and_canonical_headers() {
    let addr = server().await;
    let b = binding(&[
        ("url", &format!("http://{addr}/")),
        ("errorIfNot2XX", "false"),
    ])
    .await;
    let resp = b
        .invoke(request("get", "", &[("path", "status/201")]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&resp.data[..], b"status body");
    assert_eq!(resp.metadata[STATUS_CODE_KEY], "201");
    assert_eq!(resp.metadata[STATUS_KEY], "201 Created");
    assert_eq!(resp.metadata["X-Multi"], "a, b");
    assert_eq!(resp.metadata["Content-Type"], "text/plain");
    assert_eq!(resp.metadata["Content-Length"], "11");
    assert!(resp.metadata.contains_key("Date"));
    assert!(resp.metadata.keys().all(|k| !k.starts_with("x-")));
    assert_eq!(resp.content_type.as_deref(), Some("text/plain"));

    // The server's own reason phrase, as Go reports it.
    let resp = b
        .invoke(request("get", "", &[("path", "reason")]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.metadata[STATUS_KEY], "404 Nope");
}

#[tokio::test]
async fn non_2xx_is_an_error_carrying_the_response_metadata() {
    let addr = server().await;
    let b = binding(&[("url", &format!("http://{addr}/status"))]).await;
    let err = b
        .invoke(request("get", "", &[("path", "404")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert_eq!(err.message(), "received status code 404");
    assert_eq!(err.metadata()[STATUS_CODE_KEY], "404");
    assert_eq!(err.metadata()[STATUS_KEY], "404 Not Found");
    assert_eq!(err.metadata()["X-Multi"], "a, b");

    let err = b
        .invoke(request("post", "{}", &[("path", "500")]))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "received status code 500");
    assert_eq!(err.metadata()[STATUS_KEY], "500 Internal Server Error");

    // Per request, off.
    let resp = b
        .invoke(request(
            "get",
            "",
            &[("path", "503"), ("errorIfNot2XX", "false")],
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.metadata[STATUS_CODE_KEY], "503");
    assert_eq!(&resp.data[..], b"status body");

    // Not a boolean.
    let err = b
        .invoke(request(
            "get",
            "",
            &[("path", "503"), ("errorIfNot2XX", "maybe")],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);

    // Off for the component, on for one request.
    let b = binding(&[
        ("url", &format!("http://{addr}/status")),
        ("errorIfNot2XX", "false"),
    ])
    .await;
    let resp = b
        .invoke(request("get", "", &[("path", "404")]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.metadata[STATUS_CODE_KEY], "404");
    let err = b
        .invoke(request(
            "get",
            "",
            &[("path", "404"), ("errorIfNot2XX", "true")],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.metadata()[STATUS_CODE_KEY], "404");
}

#[tokio::test]
async fn a_slow_endpoint_times_out() {
    let addr = server().await;
    let b = binding(&[
        ("url", &format!("http://{addr}/slow")),
        ("responseTimeout", "200ms"),
    ])
    .await;
    let started = std::time::Instant::now();
    let err = b.invoke(request("get", "", &[])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn long_bodies_are_truncated_at_max_response_body_size() {
    let addr = server().await;
    let url = format!("http://{addr}/big");
    let b = binding(&[("url", &url), ("maxResponseBodySize", "10")]).await;
    let resp = b
        .invoke(request("get", "", &[("path", "1000")]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&resp.data[..], &[b'x'; 10][..]);
    let resp = b
        .invoke(request("get", "", &[("path", "7")]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.data.len(), 7);

    let b = binding(&[("url", &url), ("maxResponseBodySize", "1Ki")]).await;
    let resp = b
        .invoke(request("get", "", &[("path", "300000")]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.data.len(), 1024);

    // The default (100Mi) and "no limit" keep the whole body.
    for md in [
        vec![("url", url.as_str())],
        vec![("url", url.as_str()), ("maxResponseBodySize", "0")],
    ] {
        let b = binding(&md).await;
        let resp = b
            .invoke(request("get", "", &[("path", "300000")]))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(resp.data.len(), 300_000);
    }
}

#[tokio::test]
async fn the_security_token_is_sent_and_never_shown() {
    let addr = server().await;
    let pairs = [
        ("url", format!("http://{addr}/")),
        ("securityToken", "s3cret-token".to_owned()),
        ("securityTokenHeader", "X-Token".to_owned()),
    ];
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let b = binding(&pairs).await;
    let e = echo(b.as_ref(), request("get", "", &[])).await;
    assert_eq!(seen(&e, "x-token"), ["s3cret-token"]);

    let config = HttpConfig::parse(&Metadata::from_pairs(pairs.iter().copied())).unwrap();
    assert!(!format!("{config:?}").contains("s3cret"));

    // A failing call does not leak it either.
    let closed = closed_port().await;
    let b = binding(&[
        ("url", &format!("http://{closed}/")),
        ("securityToken", "s3cret-token"),
        ("securityTokenHeader", "X-Token"),
    ])
    .await;
    let err = b.invoke(request("get", "", &[])).await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("s3cret"));
}

/// An address nothing listens on.
async fn closed_port() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

#[tokio::test]
async fn connection_errors_are_unavailable_and_hide_url_passwords() {
    let closed = closed_port().await;
    let b = binding(&[("url", &format!("http://user:hunter2@{closed}/x"))]).await;
    let err = b.invoke(request("get", "", &[])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_retryable());
    let text = format!("{err}");
    assert!(
        text.starts_with("GET \"http://user:redacted@127.0.0.1:"),
        "{text}"
    );
    assert!(!text.contains("hunter2"));
    assert!(text.to_lowercase().contains("connect"), "{text}");
}

#[tokio::test]
async fn unreadable_certificates_fail_the_build() {
    install_provider();
    let err = HttpFactory
        .build_output(&ctx(&[
            ("url", "https://localhost"),
            ("MTLSRootCA", "/nonexistent/ca.pem"),
        ]))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert_eq!(err.field(), Some("MTLSRootCA"));
    assert!(err.message().contains("neither a valid file path"));

    let garbage = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
    let err = HttpFactory
        .build_output(&ctx(&[
            ("url", "https://localhost"),
            ("MTLSClientCert", garbage),
            ("MTLSClientKey", garbage),
        ]))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(
        err.message()
            .starts_with("failed to load client certificate")
    );

    let err = HttpFactory
        .build_output(&ctx(&[
            ("url", "https://localhost"),
            ("MTLSRootCA", "-----BEGIN X-----\n-----END X-----\n"),
        ]))
        .await
        .err()
        .unwrap();
    assert_eq!(err.message(), "failed to add root certificate to certpool");
}

#[tokio::test]
async fn build_reports_health_and_refuses_bad_metadata() {
    install_provider();
    let c = ctx(&[("url", "http://localhost:1")]);
    assert!(HttpFactory.build_output(&c).await.is_ok());
    assert!(c.health.snapshot().connected);
    assert!(HttpFactory.build_output(&ctx(&[])).await.is_err());
    assert!(HttpFactory.build_input(&c).await.is_err());
}

#[test]
fn header_keys_are_canonicalised_like_go() {
    assert_eq!(canonical_header_key("content-type"), "Content-Type");
    assert_eq!(canonical_header_key("x-multi"), "X-Multi");
    assert_eq!(canonical_header_key("WWW-AUTHENTICATE"), "Www-Authenticate");
    assert_eq!(canonical_header_key("etag"), "Etag");
    assert_eq!(canonical_header_key("x-a--b"), "X-A--B");
    assert_eq!(canonical_header_key("bad key"), "bad key");
}

#[test]
fn paths_join_with_one_slash() {
    assert_eq!(join_path("http://h/a/", Some("/b")), "http://h/a/b");
    assert_eq!(join_path("http://h/a", Some("b")), "http://h/a/b");
    assert_eq!(join_path("http://h/a", None), "http://h/a");
    assert_eq!(join_path("http://h/a", Some("")), "http://h/a");
}

#[test]
fn urls_lose_their_passwords_in_messages() {
    assert_eq!(redact_url("http://u:p@h/x"), "http://u:redacted@h/x");
    assert_eq!(redact_url("http://h/x"), "http://h/x");
    assert_eq!(redact_url("http://u:p@[bad/x"), "http://redacted@[bad/x");
}

#[tokio::test]
async fn calls_after_close_are_refused() {
    let addr = server().await;
    let b = binding(&[("url", &format!("http://{addr}/"))]).await;
    b.invoke(request("get", "", &[])).await.unwrap();
    b.close().await.unwrap();
    let err = b.invoke(request("get", "", &[])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
}

#[test]
fn a_plain_base_joins_paths_as_parsing_the_joined_text_does() {
    let bases = [
        "http://127.0.0.1:3000",
        "http://127.0.0.1:3000/",
        "http://Example.COM:80/api",
        "https://h/a/b/",
        "http://user:pw@h:8080/x",
        "http://[::1]:9/v1",
    ];
    let paths = [
        None,
        Some(""),
        Some("orders"),
        Some("/orders"),
        Some("//orders//"),
        Some("a/b.c/d-e_f~g"),
        Some("./x"),
        Some("a/../b"),
        Some("a b"),
        Some("a?q=1"),
        Some("a#f"),
        Some("%41"),
        Some("é"),
        Some("a\\b"),
    ];
    for base in bases {
        let plain = PlainBase::parse(base).expect("a plain base");
        for path in paths {
            let want = Target::from_url(&Url::parse(&join_path(base, path)).unwrap()).unwrap();
            if let Some(got) = plain.join(path) {
                assert_eq!(got.unwrap(), want, "{base} + {path:?}");
            }
        }
    }
    assert!(PlainBase::parse("http://h/a?x=1").is_none());
    assert!(PlainBase::parse("http://h/a#f").is_none());
    assert!(PlainBase::parse("not a url").is_none());
}

#[tokio::test]
async fn redirects_are_followed_as_go_follows_them() {
    let addr = server().await;
    let b = binding(&[("url", &format!("http://{addr}/"))]).await;

    // 301, 302 and 303 turn a call other than GET or HEAD into a GET without body.
    for code in [301, 302, 303] {
        let e = echo(
            b.as_ref(),
            request(
                "post",
                r#"{"a":1}"#,
                &[("path", &format!("redirect/{code}/landed"))],
            ),
        )
        .await;
        assert_eq!(e["method"], "GET", "{code}");
        assert_eq!(e["path"], "/landed", "{code}");
        assert_eq!(e["body"], "", "{code}");
        assert!(seen(&e, "content-type").is_empty(), "{code}");
    }
    // 307 and 308 repeat the call with its body.
    for code in [307, 308] {
        let e = echo(
            b.as_ref(),
            request(
                "put",
                r#"{"a":1}"#,
                &[("path", &format!("redirect/{code}/landed"))],
            ),
        )
        .await;
        assert_eq!(e["method"], "PUT", "{code}");
        assert_eq!(e["body"], r#"{"a":1}"#, "{code}");
        assert_eq!(seen(&e, "content-type"), [JSON_UTF8], "{code}");
    }

    // Credentials go on to the same origin only; other headers go everywhere.
    let md = [("Authorization", "Bearer abc"), ("X-Custom", "v")];
    let mut same = md.to_vec();
    same.push(("path", "redirect/302/here"));
    let e = echo(b.as_ref(), request("get", "", &same)).await;
    assert_eq!(seen(&e, "authorization"), ["Bearer abc"]);
    let other = server().await;
    let hop = format!("redirect/302/x?to=http://{other}/there");
    let mut elsewhere = md.to_vec();
    elsewhere.push(("path", &hop));
    // The path is not plain (it has a query), so it takes the full parse.
    let e = echo(b.as_ref(), request("get", "", &elsewhere)).await;
    assert_eq!(e["path"], "/there");
    assert!(seen(&e, "authorization").is_empty());
    assert_eq!(seen(&e, "x-custom"), ["v"]);

    // Ten redirects are followed, not an eleventh.
    let err = b
        .invoke(request("get", "", &[("path", "loop")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert!(
        err.message().ends_with("stopped after 10 redirects"),
        "{}",
        err.message()
    );

    // A redirect that is not followed is an answer like any other.
    let b = binding(&[
        ("url", &format!("http://{addr}/")),
        ("errorIfNot2XX", "false"),
    ])
    .await;
    let resp = b
        .invoke(request("get", "", &[("path", "status/302")]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.metadata[STATUS_CODE_KEY], "302");
}

#[tokio::test]
async fn user_info_in_the_url_is_sent_as_basic_auth() {
    let addr = server().await;
    let b = binding(&[("url", &format!("http://user:p%40ss@{addr}/"))]).await;
    let e = echo(b.as_ref(), request("get", "", &[])).await;
    // base64("user:p@ss")
    assert_eq!(seen(&e, "authorization"), ["Basic dXNlcjpwQHNz"]);
    let e = echo(b.as_ref(), request("get", "", &[("path", "a b")])).await;
    assert_eq!(seen(&e, "authorization"), ["Basic dXNlcjpwQHNz"]);
    // The request metadata wins.
    let e = echo(
        b.as_ref(),
        request("get", "", &[("Authorization", "Bearer t")]),
    )
    .await;
    assert_eq!(seen(&e, "authorization"), ["Bearer t"]);
}
