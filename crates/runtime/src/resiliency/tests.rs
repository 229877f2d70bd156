use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use tokio_util::sync::CancellationToken;

fn source() -> Source {
    Source {
        file: PathBuf::from("r.yaml"),
        document: 1,
    }
}

fn doc(yaml: &str) -> Result<ResiliencyDoc, Vec<DocProblem>> {
    let v: Value = serde_saphyr::from_str(yaml).unwrap();
    parse_document(&v, source())
}

const FULL: &str = r#"
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: r
scopes: [app1]
spec:
  policies:
    timeouts:
      general: 5s
      quick: 50
    retries:
      three:
        policy: constant
        duration: 10ms
        maxRetries: 3
      only5xx:
        policy: constant
        duration: 1ms
        maxRetries: 5
        matching:
          httpStatusCodes: "500-599"
          gRPCStatusCodes: "14"
      exp:
        policy: exponential
        maxInterval: 2s
        maxRetries: -1
      DefaultRetryPolicy:
        duration: 1ms
        maxRetries: 1
    circuitBreakers:
      cb:
        maxRequests: 1
        timeout: 30s
        trip: consecutiveFailures > 2
  targets:
    components:
      orders:
        outbound: { timeout: quick, retry: three, circuitBreaker: cb }
        inbound: { retry: only5xx }
"#;

#[test]
fn parses_every_policy_kind() {
    let d = doc(FULL).unwrap();
    assert_eq!(d.name, "r");
    assert_eq!(d.scopes, ["app1"]);
    assert_eq!(d.timeouts["quick"], Duration::from_millis(50));
    assert_eq!(d.timeouts["general"], Duration::from_secs(5));
    assert_eq!(d.retries["three"].max_retries, Some(3));
    assert_eq!(d.retries["exp"].max_retries, None);
    assert!(
        matches!(d.retries["exp"].backoff, Backoff::Exponential { max_interval } if max_interval == Duration::from_secs(2))
    );
}

#[test]
fn named_targets_and_defaults_apply() {
    let d = doc(FULL).unwrap();
    let r = Resiliency::compile(&[d], ["orders", "other"]);
    let out = r.policy("orders", Direction::Outbound).unwrap();
    assert_eq!(out.timeout, Some(Duration::from_millis(50)));
    assert_eq!(out.retry.as_ref().unwrap().name, "three");
    assert!(out.breaker.is_some());
    let inbound = r.policy("orders", Direction::Inbound).unwrap();
    assert_eq!(inbound.retry.as_ref().unwrap().name, "only5xx");
    // A component without a target gets DefaultRetryPolicy both ways.
    let other = r.policy("other", Direction::Inbound).unwrap();
    assert_eq!(other.retry.as_ref().unwrap().name, "DefaultRetryPolicy");
    assert!(r.policy("missing", Direction::Outbound).is_none());
}

#[test]
fn more_specific_defaults_win() {
    let d = doc(
        "metadata: {name: d}\nspec:\n  policies:\n    retries:\n      DefaultRetryPolicy: {maxRetries: 1}\n      DefaultComponentOutboundRetryPolicy: {maxRetries: 2}\n      DefaultBindingComponentOutboundRetryPolicy: {maxRetries: 3}\n",
    )
    .unwrap();
    let r = Resiliency::compile(&[d], ["b"]);
    assert_eq!(
        r.policy("b", Direction::Outbound)
            .unwrap()
            .retry
            .as_ref()
            .unwrap()
            .max_retries,
        Some(3)
    );
    assert_eq!(
        r.policy("b", Direction::Inbound)
            .unwrap()
            .retry
            .as_ref()
            .unwrap()
            .max_retries,
        Some(1)
    );
}

#[test]
fn problems_name_their_field() {
    let errs = doc(
        "metadata: {name: bad}\nspec:\n  policies:\n    timeouts: {t: soon}\n    retries:\n      r: {policy: linear, maxRetries: -5, matching: {httpStatusCodes: \"700\"}}\n    circuitBreakers:\n      c: {trip: \"failures > 1\"}\n  targets:\n    components:\n      x: {outbound: {retry: nope, timeout: t2}}\n",
    )
    .unwrap_err();
    let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
    for want in [
        "spec.policies.timeouts.t",
        "spec.policies.retries.r.policy",
        "spec.policies.retries.r.maxRetries",
        "spec.policies.retries.r.matching.httpStatusCodes",
        "spec.policies.circuitBreakers.c.trip",
        "spec.targets.components.x.outbound.retry",
        "spec.targets.components.x.outbound.timeout",
    ] {
        assert!(fields.contains(&want), "{want} missing from {fields:?}");
    }
    assert!(doc("metadata: {name: x}\nspec:\n  unknownField: 1\n").is_err());
}

#[derive(Debug)]
struct E(Option<Code>, bool);

impl Attempt for E {
    fn code(&self) -> Option<Code> {
        self.0
    }
    fn permanent(&self) -> bool {
        self.1
    }
}

impl std::fmt::Display for E {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "E({:?})", self.0)
    }
}

fn policy(retries: u64, matching: Matching) -> Policy {
    Policy {
        timeout: None,
        retry: Some(Retry {
            name: "r".into(),
            backoff: Backoff::Constant(Duration::from_millis(1)),
            max_retries: Some(retries),
            matching,
        }),
        breaker: None,
    }
}

#[tokio::test]
async fn retries_until_exhausted_then_reports_the_last_error() {
    let calls = AtomicU64::new(0);
    let p = policy(3, Matching::default());
    let r: Result<(), _> = p
        .run(&CancellationToken::new(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(E(Some(Code::Http(500)), false))
        })
        .await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "one attempt plus three retries"
    );
    assert_eq!(r.unwrap_err().attempts(), 4);
}

#[tokio::test]
async fn succeeds_after_failures() {
    let calls = AtomicU64::new(0);
    let p = policy(5, Matching::default());
    let r = p
        .run(&CancellationToken::new(), || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(E(None, false))
            } else {
                Ok(7)
            }
        })
        .await;
    assert_eq!(r.unwrap(), 7);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn matching_and_permanent_errors_stop_retries() {
    let m = Matching {
        http: Some(CodeSet::parse("500-599", 100, 599).unwrap()),
        grpc: None,
    };
    for (err, want_calls) in [
        (E(Some(Code::Http(404)), false), 1),
        (E(Some(Code::Http(503)), false), 3),
        (E(Some(Code::Grpc(5)), false), 3),
        (E(None, true), 1),
    ] {
        let calls = AtomicU64::new(0);
        let p = policy(2, m.clone());
        let code = err.0;
        let permanent = err.1;
        let _: Result<(), _> = p
            .run(&CancellationToken::new(), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(E(code, permanent))
            })
            .await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            want_calls,
            "{code:?} permanent={permanent}"
        );
    }
}

#[tokio::test]
async fn each_attempt_has_its_own_timeout() {
    let p = Policy {
        timeout: Some(Duration::from_millis(20)),
        ..policy(1, Matching::default())
    };
    let calls = AtomicU64::new(0);
    let r: Result<(), Failure<E>> = p
        .run(&CancellationToken::new(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .await;
    assert!(matches!(r, Err(Failure::TimedOut { attempts: 2, .. })));
}

#[tokio::test]
async fn an_open_breaker_stops_retrying() {
    let p = Policy {
        breaker: Some(Arc::new(Breaker::new(
            "cb-x".into(),
            1,
            Duration::ZERO,
            Duration::from_secs(60),
            Trip::parse("consecutiveFailures > 1").unwrap(),
        ))),
        ..policy(10, Matching::default())
    };
    let calls = AtomicU64::new(0);
    let r: Result<(), _> = p
        .run(&CancellationToken::new(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(E(None, false))
        })
        .await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(matches!(r, Err(Failure::BreakerOpen { .. })));
}

#[tokio::test]
async fn cancellation_interrupts_the_wait() {
    let mut p = policy(100, Matching::default());
    if let Some(r) = &mut p.retry {
        r.backoff = Backoff::Constant(Duration::from_secs(3600));
    }
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        c2.cancel();
    });
    let r: Result<(), _> = p.run(&cancel, || async { Err(E(None, false)) }).await;
    assert!(matches!(r, Err(Failure::Cancelled)));
}
