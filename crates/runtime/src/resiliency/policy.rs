//! Running one call under a policy, composed in Dapr's order: retry wraps the circuit breaker,
//! which wraps each attempt under its own timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::breaker::Breaker;

/// A status code a failed attempt carried, for `matching`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// An HTTP status code.
    Http(u16),
    /// A gRPC status code.
    Grpc(i32),
}

/// What the policy needs to know about a failed attempt.
pub trait Attempt {
    /// The status code the failure carried, if any.
    fn code(&self) -> Option<Code>;
    /// Whether retrying can never help (a malformed request, an unsupported operation).
    fn permanent(&self) -> bool {
        false
    }
    /// How long the other side asked to wait before the next attempt.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// A set of status codes: `"500-599,429"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeSet(Vec<(i64, i64)>);

impl CodeSet {
    /// Parse `"500-599,429"`; `low` and `high` bound the valid codes.
    pub fn parse(s: &str, low: i64, high: i64) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let parse = |x: &str| {
                x.parse::<i64>()
                    .map_err(|_| format!("{part:?} is not a code or a range of codes"))
            };
            let (a, b) = (parse(a)?, parse(b)?);
            if a > b || a < low || b > high {
                return Err(format!("{part:?} is outside {low}-{high} or reversed"));
            }
            ranges.push((a, b));
        }
        Ok(CodeSet(ranges))
    }

    fn contains(&self, code: i64) -> bool {
        self.0.iter().any(|(a, b)| (*a..=*b).contains(&code))
    }
}

/// Which failures a retry policy retries; absent lists mean every failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matching {
    /// `httpStatusCodes`.
    pub http: Option<CodeSet>,
    /// `gRPCStatusCodes`.
    pub grpc: Option<CodeSet>,
}

impl Matching {
    fn retries(&self, code: Option<Code>) -> bool {
        match code {
            Some(Code::Http(c)) => self.http.as_ref().is_none_or(|s| s.contains(c.into())),
            Some(Code::Grpc(c)) => self.grpc.as_ref().is_none_or(|s| s.contains(c.into())),
            None => true,
        }
    }
}

/// How long to wait between attempts.
#[derive(Debug, Clone, PartialEq)]
pub enum Backoff {
    /// The same `duration` every time.
    Constant(Duration),
    /// Starting at 500 ms, × 1.5 with ±50 % randomisation, up to `max_interval`, for at most
    /// 15 minutes in all (Dapr's kit defaults).
    Exponential {
        /// `maxInterval`.
        max_interval: Duration,
    },
}

/// A retry policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// Its name in the resiliency file.
    pub name: String,
    /// The waits.
    pub backoff: Backoff,
    /// `maxRetries`: `None` is retry forever (-1).
    pub max_retries: Option<u64>,
    /// `matching`.
    pub matching: Matching,
}

const EXP_INITIAL: Duration = Duration::from_millis(500);
const EXP_MULTIPLIER: f64 = 1.5;
const EXP_RANDOMIZATION: f64 = 0.5;
const EXP_MAX_ELAPSED: Duration = Duration::from_secs(15 * 60);
/// The longest wait bindery honours from a `Retry-After`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The timeout, retry and circuit breaker that apply to one component in one direction.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Each attempt's time limit.
    pub timeout: Option<Duration>,
    /// The retry policy.
    pub retry: Option<Retry>,
    /// The circuit breaker (one instance per component).
    pub breaker: Option<Arc<Breaker>>,
}

/// Why a call under a policy failed.
#[derive(Debug)]
pub enum Failure<E> {
    /// The last attempt failed with this error.
    Failed {
        /// The error.
        error: E,
        /// How many attempts were made.
        attempts: u64,
    },
    /// The last attempt took longer than the timeout.
    TimedOut {
        /// The timeout.
        after: Duration,
        /// How many attempts were made.
        attempts: u64,
    },
    /// The circuit breaker refused the call.
    BreakerOpen {
        /// Its message.
        message: String,
        /// How many attempts were made.
        attempts: u64,
    },
    /// Cancelled (shutdown) while waiting to retry.
    Cancelled,
}

impl<E: std::fmt::Display> std::fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Failed { error, .. } => write!(f, "{error}"),
            Failure::TimedOut { after, .. } => write!(f, "timed out after {after:?}"),
            Failure::BreakerOpen { message, .. } => f.write_str(message),
            Failure::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl<E> Failure<E> {
    /// How many attempts were made.
    pub fn attempts(&self) -> u64 {
        match self {
            Failure::Failed { attempts, .. }
            | Failure::TimedOut { attempts, .. }
            | Failure::BreakerOpen { attempts, .. } => *attempts,
            Failure::Cancelled => 0,
        }
    }
}

impl Policy {
    /// Whether this policy changes anything.
    pub fn is_empty(&self) -> bool {
        self.timeout.is_none() && self.retry.is_none() && self.breaker.is_none()
    }

    /// Run `op` under the policy until it succeeds, the retries are exhausted, the breaker
    /// refuses, or `cancel` fires.
    pub async fn run<T, E, F, Fut>(
        &self,
        cancel: &CancellationToken,
        mut op: F,
    ) -> Result<T, Failure<E>>
    where
        E: Attempt,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = Instant::now();
        let mut attempts: u64 = 0;
        let mut interval = EXP_INITIAL;
        loop {
            if let Some(b) = &self.breaker
                && let Err(refused) = b.before()
            {
                return Err(Failure::BreakerOpen {
                    message: refused.0,
                    attempts,
                });
            }
            attempts += 1;
            let result = match self.timeout {
                Some(t) => match tokio::time::timeout(t, op()).await {
                    Ok(r) => r.map_err(Some),
                    Err(_) => Err(None),
                },
                None => op().await.map_err(Some),
            };
            let err = match result {
                Ok(v) => {
                    if let Some(b) = &self.breaker {
                        b.after(true);
                    }
                    return Ok(v);
                }
                Err(e) => e,
            };
            if let Some(b) = &self.breaker {
                b.after(false);
            }
            let failure = |err: Option<E>| match err {
                Some(error) => Failure::Failed { error, attempts },
                None => Failure::TimedOut {
                    after: self.timeout.unwrap_or_default(),
                    attempts,
                },
            };
            let Some(retry) = &self.retry else {
                return Err(failure(err));
            };
            let (code, permanent, retry_after) = match &err {
                Some(e) => (e.code(), e.permanent(), e.retry_after()),
                None => (None, false, None),
            };
            let exhausted = retry.max_retries.is_some_and(|m| attempts > m);
            if permanent || exhausted || !retry.matching.retries(code) {
                return Err(failure(err));
            }
            let wait = match &retry.backoff {
                Backoff::Constant(d) => *d,
                Backoff::Exponential { max_interval } => {
                    if started.elapsed() >= EXP_MAX_ELAPSED {
                        return Err(failure(err));
                    }
                    let jitter = 1.0 + EXP_RANDOMIZATION * (2.0 * rand_unit() - 1.0);
                    let wait = interval.mul_f64(jitter).min(*max_interval);
                    interval = interval.mul_f64(EXP_MULTIPLIER).min(*max_interval);
                    wait
                }
            };
            let wait = retry_after.map_or(wait, |d| d.min(MAX_RETRY_AFTER));
            tracing::debug!(retry = %retry.name, attempt = attempts, wait = ?wait, "retrying");
            tokio::select! {
                _ = cancel.cancelled() => return Err(Failure::Cancelled),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// A number in [0, 1) from the clock; jitter needs no better randomness.
fn rand_unit() -> f64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(n % 1000) / 1000.0
}
