//! The load generator: closed loop (N connections, each sending its next request as soon as the
//! last one answered) and fixed rate (open loop: requests are due at fixed times, and a
//! request's latency counts from the time it was due, so a stalled server cannot hide its stall
//! by slowing the generator down: no coordinated omission).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::hist::{Summary, new_hist, record};

/// Something the generator sends requests to, over connections it opens itself.
pub(crate) trait Target: Send + Sync + 'static {
    /// One connection (or a handle onto a shared multiplexed one).
    type Conn: Send + 'static;
    /// Open a connection.
    fn connect(&self) -> impl Future<Output = Result<Self::Conn>> + Send;
    /// Send one request on `conn` and read the whole answer; an error when it did not succeed.
    fn call(&self, conn: &mut Self::Conn) -> impl Future<Output = Result<()>> + Send;
}

/// What one load run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Run {
    /// Requests that succeeded.
    pub(crate) ok: u64,
    /// Requests that failed (their latency is not recorded).
    pub(crate) errors: u64,
    pub(crate) elapsed_s: f64,
    /// Successful requests per second.
    pub(crate) throughput: f64,
    pub(crate) latency: Summary,
    /// For fixed-rate runs: how late the pacer itself sent requests (its own jitter, which is
    /// in every fixed-rate latency figure alike).
    pub(crate) pacer_lag: Option<Summary>,
    /// The first error seen, if any.
    pub(crate) first_error: Option<String>,
}

/// Per-worker tallies, merged at the end.
struct Tally {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            hist: new_hist(),
            ok: 0,
            errors: 0,
            first_error: None,
        }
    }

    fn error(&mut self, e: &anyhow::Error) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("{e:#}"));
        }
    }

    fn merge(&mut self, other: Tally) {
        // Both histograms have the same bounds; adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Connect, retrying briefly: a server that just started may not accept yet.
async fn connect<T: Target>(target: &T) -> Result<T::Conn> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match target.connect().await {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Stop after too many failures in a row: the target is down, the run is void.
const MAX_ERRORS: u64 = 1000;

/// Closed loop: `connections` workers, each sending back to back, until `duration` has passed
/// or `max_requests` were sent.
pub(crate) async fn closed_loop<T: Target>(
    target: Arc<T>,
    connections: usize,
    duration: Duration,
    max_requests: u64,
) -> Result<Run> {
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let target = Arc::clone(&target);
        let sent = Arc::clone(&sent);
        let stop = Arc::clone(&stop);
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            let mut conn = match connect(&*target).await {
                Ok(c) => c,
                Err(e) => {
                    tally.error(&e);
                    return tally;
                }
            };
            while !stop.load(Ordering::Relaxed)
                && Instant::now() < deadline
                && sent.fetch_add(1, Ordering::Relaxed) < max_requests
            {
                let t0 = Instant::now();
                match target.call(&mut conn).await {
                    Ok(()) => {
                        record(&mut tally.hist, t0.elapsed());
                        tally.ok += 1;
                    }
                    Err(e) => {
                        tally.error(&e);
                        if tally.errors > MAX_ERRORS {
                            stop.store(true, Ordering::Relaxed);
                        }
                        match connect(&*target).await {
                            Ok(c) => conn = c,
                            Err(e) => {
                                tally.error(&e);
                                return tally;
                            }
                        }
                    }
                }
            }
            tally
        }));
    }
    let mut total = Tally::new();
    for w in workers {
        total.merge(w.await.context("a load worker panicked")?);
    }
    Ok(finish(total, start.elapsed(), None))
}

/// Fixed rate: `rate` requests per second for `duration`, spread over `workers` connections
/// (request i goes to worker i mod workers). A dedicated thread paces the requests, so the
/// schedule does not depend on the async runtime's 1 ms timer.
pub(crate) async fn fixed_rate<T: Target>(
    target: Arc<T>,
    rate: u64,
    duration: Duration,
    workers: usize,
) -> Result<Run> {
    if rate == 0 || workers == 0 {
        bail!("fixed rate needs a rate and workers");
    }
    let total = rate.saturating_mul(duration.as_secs().max(1));
    let mut senders = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
        senders.push(tx);
        let target = Arc::clone(&target);
        handles.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            let mut conn = match connect(&*target).await {
                Ok(c) => Some(c),
                Err(e) => {
                    tally.error(&e);
                    None
                }
            };
            while let Some(due) = rx.recv().await {
                let Some(c) = conn.as_mut() else {
                    tally.errors += 1;
                    continue;
                };
                match target.call(c).await {
                    Ok(()) => {
                        // From the time the request was due, not from when it was sent.
                        record(&mut tally.hist, due.elapsed());
                        tally.ok += 1;
                    }
                    Err(e) => {
                        tally.error(&e);
                        conn = connect(&*target).await.ok();
                    }
                }
            }
            tally
        }));
    }
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let start = Instant::now() + Duration::from_millis(5);
    let pacer = std::thread::Builder::new()
        .name("bench-pacer".into())
        .spawn(move || {
            let mut lag = new_hist();
            // Below this gap the pacer only sleeps; above it, it sleeps to just before the due
            // time and then yields until it (the kernel's timer slack is ~50 µs).
            let spin = interval >= Duration::from_micros(400);
            for i in 0..total {
                let due = start + interval * u32::try_from(i).unwrap_or(u32::MAX);
                let now = Instant::now();
                if due > now {
                    let gap = due - now;
                    if spin && gap > Duration::from_micros(120) {
                        std::thread::sleep(gap - Duration::from_micros(100));
                    } else if !spin {
                        std::thread::sleep(gap);
                    }
                    while spin && Instant::now() < due {
                        std::thread::yield_now();
                    }
                }
                record(&mut lag, due.elapsed());
                let w = usize::try_from(i).unwrap_or(0) % senders.len();
                if senders[w].send(due).is_err() {
                    break;
                }
            }
            lag
        })
        .context("cannot start the pacer thread")?;
    let mut tally = Tally::new();
    for h in handles {
        tally.merge(h.await.context("a load worker panicked")?);
    }
    let lag = pacer
        .join()
        .map_err(|_| anyhow::anyhow!("the pacer thread panicked"))?;
    let elapsed = start.elapsed();
    Ok(finish(tally, elapsed, Some(Summary::of(&lag))))
}

fn finish(t: Tally, elapsed: Duration, pacer_lag: Option<Summary>) -> Run {
    let secs = elapsed.as_secs_f64();
    Run {
        ok: t.ok,
        errors: t.errors,
        elapsed_s: secs,
        throughput: if secs > 0.0 { t.ok as f64 / secs } else { 0.0 },
        latency: Summary::of(&t.hist),
        pacer_lag,
        first_error: t.first_error,
    }
}
