//! What the black-box tests share: starting bindery, component YAML, Dapr error bodies, logs,
//! a raw HTTP client for paths no URL library would send as written, and a tiny app that
//! records how many deliveries it holds at once.

#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// Each test file uses a different part of this.
#[allow(unused_imports)]
pub(crate) use bindery_test_support::{
    Answer, Bindery, BinderyBuilder, Received, TestApp, free_port, wait_until,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long any single condition may take before a test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// A builder for app id `app_id`. reqwest is built without a TLS provider of its own, so one
/// is installed before the harness builds its client.
pub(crate) fn bindery(app_id: &str) -> BinderyBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Bindery::builder(app_id)
}

/// A `Component` document of `type_name` with string metadata.
pub(crate) fn component(name: &str, type_name: &str, metadata: &[(&str, &str)]) -> String {
    let mut doc = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {}\nspec:\n  type: {type_name}\n  version: v1\n",
        q(name)
    );
    if metadata.is_empty() {
        doc.push_str("  metadata: []\n");
    } else {
        doc.push_str("  metadata:\n");
        for (k, v) in metadata {
            doc.push_str(&format!("  - name: {}\n    value: {}\n", q(k), q(v)));
        }
    }
    doc
}

/// A `bindings.cron` component firing every second.
pub(crate) fn cron(name: &str, extra: &[(&str, &str)]) -> String {
    let mut md = vec![("schedule", "@every 1s")];
    md.extend_from_slice(extra);
    component(name, "bindings.cron", &md)
}

/// A `bindings.localstorage` component rooted at `root`.
pub(crate) fn localstorage(name: &str, root: &Path) -> String {
    let root = root.to_str().expect("UTF-8 temp path");
    component(name, "bindings.localstorage", &[("rootPath", root)])
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
pub(crate) fn q(s: &str) -> String {
    Value::from(s).to_string()
}

/// `POST` or `PUT /v1.0/bindings/<name>` with a JSON body.
pub(crate) async fn call(
    b: &Bindery,
    method: reqwest::Method,
    name: &str,
    body: Value,
) -> reqwest::Response {
    b.client()
        .request(method, b.url(&format!("/v1.0/bindings/{name}")))
        .json(&body)
        .send()
        .await
        .expect("bindery answers")
}

/// A response's status and body parsed as JSON (panics with the text when it is not JSON).
pub(crate) async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer {status} is not JSON ({e}): {text:?}"));
    (status, v)
}

/// Assert a Dapr error answer: `status`, `errorCode`, and return its message.
pub(crate) async fn dapr_error(resp: reqwest::Response, status: u16, code: &str) -> String {
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (got, body) = json_of(resp).await;
    assert_eq!(got, status, "status of {body}");
    assert_eq!(body["errorCode"], code, "errorCode of {body}");
    assert!(ct.starts_with("application/json"), "content type {ct:?}");
    body["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {body}"))
        .to_owned()
}

/// The log without terminal colour codes.
pub(crate) fn logs(b: &Bindery) -> String {
    strip_ansi(&b.logs())
}

/// Wait until the log contains `needle`.
pub(crate) async fn wait_log(b: &Bindery, needle: &str) {
    wait_until(DEADLINE, &format!("log line {needle:?}"), || {
        let found = logs(b).contains(needle);
        async move { found.then_some(()) }
    })
    .await;
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `GET <path>` and the status code.
pub(crate) async fn get_status(b: &Bindery, path: &str) -> u16 {
    b.client()
        .get(b.url(path))
        .send()
        .await
        .expect("bindery answers")
        .status()
        .as_u16()
}

/// A W3C `traceparent`: `00-<32 hex>-<16 hex>-<2 hex>`, ids not all zero.
pub(crate) fn is_traceparent(t: &str) -> bool {
    let parts: Vec<&str> = t.split('-').collect();
    let hex = |p: &str, n: usize| {
        p.len() == n
            && p.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    parts.len() == 4
        && hex(parts[0], 2)
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1].bytes().any(|b| b != b'0')
        && parts[2].bytes().any(|b| b != b'0')
}

/// An answer read off the wire.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer {} is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// One HTTP/1.1 request with `target` sent byte for byte (no URL normalisation).
pub(crate) async fn raw(port: u16, method: &str, target: &str, body: &[u8]) -> RawResponse {
    let exchange = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    let out = tokio::time::timeout(DEADLINE, exchange)
        .await
        .expect("bindery answers in time")
        .expect("raw exchange");
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(&out)));
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    RawResponse {
        status,
        head,
        body: out[split + 4..].to_vec(),
    }
}

/// A tiny HTTP app that holds every `POST` for `delay` before answering 200, and records how
/// many it held at once, which it answered, and which the caller gave up on while waiting.
/// `OPTIONS` answers 200 at once. Every answer closes the connection.
#[derive(Clone)]
pub(crate) struct HoldingApp {
    pub(crate) port: u16,
    state: Arc<HoldState>,
}

#[derive(Default)]
struct HoldState {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    arrived: Mutex<Vec<String>>,
    answered: Mutex<Vec<String>>,
    abandoned: Mutex<Vec<String>>,
}

impl HoldingApp {
    pub(crate) async fn start(delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(HoldState::default());
        let st = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(hold(conn, Arc::clone(&st), delay));
            }
        });
        HoldingApp { port, state }
    }

    /// The most `POST`s held at the same time.
    pub(crate) fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// `POST`s being held now.
    pub(crate) fn in_flight(&self) -> usize {
        self.state.in_flight.load(Ordering::SeqCst)
    }

    /// Paths of the `POST`s that arrived.
    pub(crate) fn arrived(&self) -> Vec<String> {
        self.state
            .arrived
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Paths of the `POST`s answered after the full delay.
    pub(crate) fn answered(&self) -> Vec<String> {
        self.state
            .answered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Paths of the `POST`s whose caller closed the connection before the answer.
    pub(crate) fn abandoned(&self) -> Vec<String> {
        self.state
            .abandoned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

async fn hold(mut conn: TcpStream, st: Arc<HoldState>, delay: Duration) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut request_line = head.split_whitespace();
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    if method != "POST" {
        let _ = conn.write_all(OK).await;
        return;
    }
    st.arrived
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(path.clone());
    let now = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    st.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let mut probe = [0u8; 1];
    let gave_up = tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        r = conn.read(&mut probe) => matches!(r, Ok(0) | Err(_)),
    };
    // Counted out before answering, so the caller cannot start another call while this one
    // still counts as held.
    st.in_flight.fetch_sub(1, Ordering::SeqCst);
    if gave_up {
        st.abandoned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(path);
        return;
    }
    if conn.write_all(OK).await.is_ok() {
        st.answered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(path);
    }
}
