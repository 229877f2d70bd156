//! A real HTTP app that records what bindery sends it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};

/// One request the app received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `OPTIONS` or `POST`.
    pub method: Method,
    /// The path, e.g. `/orders`.
    pub path: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The status the app answered with.
    pub status: u16,
}

impl Received {
    /// A header's value as text (any case).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// How the app answers a request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Answer {
    /// A plain answer with `status`.
    pub fn status(status: u16) -> Self {
        Answer {
            status,
            body: String::new(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// The same answer with `body`.
    pub fn body(mut self, body: &str) -> Self {
        self.body = body.into();
        self
    }

    /// The same answer after `delay`.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The same answer with one more header.
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    // (method, path) -> answers in order; the last one repeats.
    answers: HashMap<(Method, String), Vec<Answer>>,
    // path -> share of POSTs answered 500 at random
    fail_ratio: HashMap<String, f64>,
    rng: u64,
}

/// A recording HTTP app on 127.0.0.1. Unknown routes answer 404, as a real app would.
#[derive(Clone)]
pub struct TestApp {
    /// The port it listens on.
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp").field("port", &self.port).finish()
    }
}

impl TestApp {
    /// Start on a free port.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Start on `port` (0 = any).
    pub async fn start_on(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind test app");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let router = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        TestApp { port, shared }
    }

    /// Answer `method path` with `answers` in turn (the last one repeats).
    pub fn answer(&self, method: Method, path: &str, answers: Vec<Answer>) {
        self.shared
            .lock()
            .unwrap()
            .answers
            .insert((method, path.to_owned()), answers);
    }

    /// Subscribe to `path`: OPTIONS and POST answer 200.
    pub fn subscribe(&self, path: &str) {
        self.answer(Method::OPTIONS, path, vec![Answer::status(200)]);
        self.answer(Method::POST, path, vec![Answer::status(200)]);
    }

    /// Subscribe to `path` and fail a random `ratio` (0.0 to 1.0) of its deliveries with 500.
    pub fn fail_randomly(&self, path: &str, ratio: f64) {
        self.subscribe(path);
        self.shared
            .lock()
            .unwrap()
            .fail_ratio
            .insert(path.to_owned(), ratio);
    }

    /// The bodies of the deliveries to `path` the app accepted (answered 2xx), in order.
    pub fn accepted(&self, path: &str) -> Vec<Bytes> {
        self.received_at(&Method::POST, path)
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .map(|r| r.body)
            .collect()
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }

    /// The requests received for `method path`.
    pub fn received_at(&self, method: &Method, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.method == *method && r.path == path)
            .collect()
    }

    /// Wait until at least `n` requests for `method path` arrived, and return them.
    pub async fn wait_for(
        &self,
        method: Method,
        path: &str,
        n: usize,
        deadline: Duration,
    ) -> Vec<Received> {
        crate::wait_until(
            deadline,
            &format!("{n} {method} {path} at the test app"),
            || {
                let got = self.received_at(&method, path);
                async move { (got.len() >= n).then_some(got) }
            },
        )
        .await
    }
}

async fn handle(State(shared): State<Arc<Mutex<Shared>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let key = (parts.method.clone(), parts.uri.path().to_owned());
    let answer = {
        let mut s = shared.lock().unwrap();
        let mut answer = match s.answers.get_mut(&key) {
            Some(list) if list.len() > 1 => Some(list.remove(0)),
            Some(list) => list.first().cloned(),
            None => None,
        };
        if parts.method == Method::POST
            && let Some(ratio) = s.fail_ratio.get(parts.uri.path()).copied()
        {
            // xorshift: deterministic enough for a test, no dependency.
            s.rng = if s.rng == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                s.rng
            };
            s.rng ^= s.rng << 13;
            s.rng ^= s.rng >> 7;
            s.rng ^= s.rng << 17;
            if (s.rng % 10_000) as f64 / 10_000.0 < ratio {
                answer = Some(Answer::status(500).body("random failure"));
            }
        }
        s.received.push(Received {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            headers: parts.headers.clone(),
            body,
            status: answer.as_ref().map_or(404, |a| a.status),
        });
        answer
    };
    let Some(answer) = answer else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    let mut resp = (
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        answer.body,
    )
        .into_response();
    for (k, v) in answer.headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::try_from(k.as_str()),
            http::HeaderValue::from_str(&v),
        ) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}
