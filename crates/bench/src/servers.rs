//! The HTTP servers of the benchmarks: an echo server (the endpoint `bindings.http` calls, and
//! the upstream nginx proxies to) and a no-op app that input events are delivered to, which
//! records each event's end-to-end latency from the publish timestamp in its payload.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::hist::{new_hist, record};

/// Serve `listener` forever, answering each request with `handler`.
async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let fut = handler(req);
                async move { Ok::<_, Infallible>(fut.await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Answer every request with 200 and the request's own body.
async fn echo(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let mut resp = Response::new(Full::new(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Run the echo server on 127.0.0.1:`port` with `threads` runtime threads, until killed.
pub(crate) fn run_echo(port: u16, threads: usize) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("echo: cannot listen on 127.0.0.1:{port}"))?;
        serve(listener, echo).await;
        Ok(())
    })
}

/// What the no-op app saw since the last [`Sink::take`].
pub(crate) struct Received {
    pub(crate) count: u64,
    pub(crate) first: Option<Instant>,
    pub(crate) last: Option<Instant>,
    pub(crate) latency: Histogram<u64>,
}

/// The no-op app's tallies.
pub(crate) struct Sink {
    count: AtomicU64,
    inner: Mutex<Received>,
}

impl Sink {
    fn new() -> Self {
        Sink {
            count: AtomicU64::new(0),
            inner: Mutex::new(Received {
                count: 0,
                first: None,
                last: None,
                latency: new_hist(),
            }),
        }
    }

    /// Events received since the last take.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Everything received so far; starts counting afresh.
    pub(crate) fn take(&self) -> Received {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        self.count.store(0, Ordering::Relaxed);
        std::mem::replace(
            &mut *inner,
            Received {
                count: 0,
                first: None,
                last: None,
                latency: new_hist(),
            },
        )
    }

    fn event(&self, body: &[u8]) {
        let now = Instant::now();
        let latency = publish_time(body).and_then(|ts| {
            let now_ns = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()?
                .as_nanos();
            Some(Duration::from_nanos(
                u64::try_from(now_ns.saturating_sub(u128::from(ts))).unwrap_or(u64::MAX),
            ))
        });
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.count += 1;
        inner.first.get_or_insert(now);
        inner.last = Some(now);
        if let Some(l) = latency {
            record(&mut inner.latency, l);
        }
        drop(inner);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// A benchmark message: the publish time (ns since the Unix epoch), a sequence number, padding.
pub(crate) fn payload(seq: u64, pad: usize) -> Vec<u8> {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{{\"ts\":{ts},\"seq\":{seq},\"pad\":\"{}\"}}",
        "x".repeat(pad)
    )
    .into_bytes()
}

/// The `ts` of a [`payload`].
fn publish_time(body: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"ts\":";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits: &[u8] = &body[at..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// Start the no-op app on its own thread and runtime; returns its port and its tallies.
/// `OPTIONS` answers 200 (subscribed), everything else 200 with an empty body.
pub(crate) fn start_sink() -> Result<(u16, Arc<Sink>)> {
    let sink = Arc::new(Sink::new());
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let port = std_listener.local_addr()?.port();
    let s = Arc::clone(&sink);
    std::thread::Builder::new()
        .name("bench-app".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(listener) = TcpListener::from_std(std_listener) else {
                    return;
                };
                serve(listener, move |req: Request<Incoming>| {
                    let s = Arc::clone(&s);
                    async move {
                        let method = req.method().clone();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        if method == Method::POST {
                            s.event(&body);
                        }
                        let mut resp = Response::new(Full::new(Bytes::new()));
                        *resp.status_mut() = StatusCode::OK;
                        resp
                    }
                })
                .await;
            });
        })?;
    Ok((port, sink))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_carries_its_publish_time() {
        let p = payload(7, 16);
        let ts = publish_time(&p).unwrap();
        assert!(ts > 1_600_000_000_000_000_000);
        assert!(String::from_utf8(p).unwrap().contains("\"seq\":7"));
    }
}
