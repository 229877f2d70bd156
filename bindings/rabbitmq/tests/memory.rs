//! A slow app in front of a 100,000-message queue: bindery holds no more than its window of
//! messages, so its memory stays bounded while the backlog waits at the broker; when the app
//! speeds up, every message arrives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use bindery_test_support::wait_until;
use common::*;
use tokio::sync::Semaphore;

const MESSAGES: usize = 100_000;
/// Each body is 1 KiB, so holding the backlog would take about 100 MB.
const BODY: usize = 1024;

struct AppState {
    seen: Mutex<HashMap<Bytes, u32>>,
    slow: AtomicBool,
    one_at_a_time: Semaphore,
}

/// Accepts every event; while `slow`, one at a time and 10 ms each (100 events/s).
async fn take(State(s): State<Arc<AppState>>, body: Bytes) -> StatusCode {
    if s.slow.load(Ordering::Acquire) {
        let _permit = s.one_at_a_time.acquire().await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    *s.seen.lock().unwrap().entry(body).or_default() += 1;
    StatusCode::OK
}

/// Resident and peak resident set of a process, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_app_with_a_100k_backlog_keeps_memory_bounded() {
    let q = queue();
    let publisher = Publisher::new(&q).await;
    let bodies: Vec<String> = (0..MESSAGES)
        .map(|i| format!("{i:08}-{}", "x".repeat(BODY - 9)))
        .collect();
    publisher.publish_all(bodies.iter().cloned()).await;
    assert_eq!(publisher.ready().await as usize, MESSAGES);

    let state = Arc::new(AppState {
        seen: Mutex::default(),
        slow: AtomicBool::new(true),
        one_at_a_time: Semaphore::new(1),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_port = listener.local_addr().unwrap().port();
    let router = Router::new()
        .route("/backlog", post(take).options(|| async { StatusCode::OK }))
        .with_state(Arc::clone(&state));
    tokio::spawn(async move { axum::serve(listener, router).await });

    let b = start_bindery("rabbit-memory", &component("backlog", &q, &[]), app_port).await;
    let pid = b.pid();
    let (idle_rss, _) = rss_kib(pid);
    let peak_seen = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn({
        let peak_seen = Arc::clone(&peak_seen);
        async move {
            loop {
                peak_seen.fetch_max(rss_kib(pid).0, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });

    // Slow phase: the backlog stays at the broker, bindery holds at most its window.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let accepted_slow = state.seen.lock().unwrap().len();
    let ready = publisher.ready().await as usize;
    let held = MESSAGES - accepted_slow - ready;
    let (slow_rss, _) = rss_kib(pid);
    assert!(accepted_slow > 0, "the slow app received nothing");
    assert!(
        held <= 100,
        "bindery took {held} messages off the queue beyond what the app accepted (window 100)"
    );

    // Fast phase: the app keeps up and the whole backlog arrives.
    state.slow.store(false, Ordering::Release);
    wait_until(
        Duration::from_secs(300),
        "all 100,000 messages at the app",
        || {
            let n = state.seen.lock().unwrap().len();
            async move { (n == MESSAGES).then_some(()) }
        },
    )
    .await;
    sampler.abort();
    let (_, hwm) = rss_kib(pid);
    let duplicates: u32 = state.seen.lock().unwrap().values().map(|n| n - 1).sum();
    let peak = peak_seen.load(Ordering::Relaxed).max(hwm);
    println!(
        "rabbitmq 100k slow app: RSS idle {:.1} MB, after 10 s slow ({accepted_slow} accepted, {held} held) {:.1} MB, peak {:.1} MB; {} distinct delivered, {duplicates} duplicates, 0 lost",
        idle_rss as f64 / 1024.0,
        slow_rss as f64 / 1024.0,
        peak as f64 / 1024.0,
        MESSAGES,
    );
    // Holding the backlog would take over 100 MB more than idle.
    assert!(
        peak < idle_rss + 32 * 1024,
        "peak RSS {peak} KiB grew more than 32 MiB over idle {idle_rss} KiB"
    );
    assert_eq!(duplicates, 0, "accepted messages came back");
    publisher.delete().await;
}
