//! Test tools for bindery's black-box tests.
//!
//! * [`Bindery`]: the real `bindery` binary started with a temporary resources folder on free
//!   ports, its log captured, stopped with SIGTERM or killed;
//! * [`TestApp`]: a real HTTP app on `127.0.0.1:0` that records every probe and delivery and
//!   answers as each test tells it to;
//! * [`AppProcess`]: a real app in its own process, to kill mid-stream or to make hang;
//! * [`conformance`]: Dapr's binding conformance steps, run on a binding's traits;
//! * [`redaction`]: a credential in a component never shows in the log, an answer or
//!   `/v1.0/metadata`;
//! * [`otlp::OtlpReceiver`]: a real OTLP trace receiver (gRPC and HTTP);
//! * [`wait_until`]: deadline-based waiting, never sleep-and-hope.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod app_process;
pub mod conformance;
pub mod otlp;
mod process;
pub mod redaction;

pub use app::{Answer, Received, TestApp};
pub use app_process::{AppProcess, Faults};
pub use process::{Bindery, BinderyBuilder, free_port};

use std::future::Future;
use std::time::{Duration, Instant};

/// Wait until `check` returns `Some`, polling every 20 ms, or fail after `deadline` with `what`.
pub async fn wait_until<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() >= end {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
