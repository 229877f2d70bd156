//! Dapr resiliency policies (`kind: Resiliency`): timeouts, retries and circuit breakers for
//! output calls (`outbound`) and input deliveries (`inbound`) of each binding component.
//!
//! A document is parsed and checked by the loader ([`parse_document`]); the runtime compiles the
//! documents that apply to this app into one [`Resiliency`] for the components it runs.

pub mod breaker;
pub mod policy;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

pub use breaker::{Breaker, Trip};
pub use policy::{Attempt, Backoff, Code, CodeSet, Failure, Matching, Policy, Retry};

use crate::loader::Source;

/// Which way a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// An input event delivered to the app.
    Inbound,
    /// An output call from the app to a binding.
    Outbound,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Inbound => "Inbound",
            Direction::Outbound => "Outbound",
        }
    }
}

/// A circuit breaker as declared (instantiated per component).
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSpec {
    max_requests: u64,
    interval: Duration,
    timeout: Duration,
    trip: Trip,
}

/// The policy names a target uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyNames {
    /// A key of `policies.timeouts`.
    #[serde(default)]
    pub timeout: Option<String>,
    /// A key of `policies.retries`.
    #[serde(default)]
    pub retry: Option<String>,
    /// A key of `policies.circuitBreakers`.
    #[serde(default)]
    pub circuit_breaker: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ComponentTarget {
    #[serde(default)]
    inbound: Option<PolicyNames>,
    #[serde(default)]
    outbound: Option<PolicyNames>,
}

/// One checked `kind: Resiliency` document.
#[derive(Debug, Clone)]
pub struct ResiliencyDoc {
    /// `metadata.name`.
    pub name: String,
    /// Where it was declared.
    pub source: Source,
    /// `scopes`: the app ids it applies to (empty: all).
    pub scopes: Vec<String>,
    timeouts: HashMap<String, Duration>,
    retries: HashMap<String, Retry>,
    breakers: HashMap<String, BreakerSpec>,
    components: BTreeMap<String, ComponentTarget>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDoc {
    metadata: RawMeta,
    #[serde(default)]
    scopes: Vec<String>,
    spec: RawSpec,
}

#[derive(Deserialize)]
struct RawMeta {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSpec {
    #[serde(default)]
    policies: RawPolicies,
    #[serde(default)]
    targets: RawTargets,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPolicies {
    #[serde(default)]
    timeouts: BTreeMap<String, Value>,
    #[serde(default)]
    retries: BTreeMap<String, RawRetry>,
    #[serde(default)]
    circuit_breakers: BTreeMap<String, RawBreaker>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRetry {
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    duration: Option<Value>,
    #[serde(default)]
    max_interval: Option<Value>,
    #[serde(default)]
    max_retries: Option<i64>,
    #[serde(default)]
    matching: Option<RawMatching>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatching {
    #[serde(default, rename = "httpStatusCodes")]
    http: Option<String>,
    #[serde(default, rename = "gRPCStatusCodes")]
    grpc: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawBreaker {
    #[serde(default)]
    max_requests: Option<u64>,
    #[serde(default)]
    interval: Option<Value>,
    #[serde(default)]
    timeout: Option<Value>,
    #[serde(default)]
    trip: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawTargets {
    #[serde(default)]
    apps: Option<Value>,
    #[serde(default)]
    actors: Option<Value>,
    #[serde(default)]
    components: BTreeMap<String, ComponentTarget>,
}

/// A problem in a resiliency document: the field (dotted path) and what is wrong.
pub type DocProblem = (String, String);

/// A duration: Go syntax (`5s`, `1m30s`) or a plain integer of milliseconds.
fn duration(v: &Value) -> Result<Duration, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(Duration::from_millis)
            .ok_or_else(|| format!("{n} is not a duration")),
        Value::String(s) => bindery_core::parse_duration(s, Duration::from_millis(1)),
        other => Err(format!("{other} is not a duration")),
    }
}

/// Parse and check one `kind: Resiliency` document.
pub fn parse_document(value: &Value, source: Source) -> Result<ResiliencyDoc, Vec<DocProblem>> {
    let raw: RawDoc = serde_json::from_value(value.clone())
        .map_err(|e| vec![("spec".to_owned(), e.to_string())])?;
    let _ = (&raw.spec.targets.apps, &raw.spec.targets.actors);
    let mut problems = Vec::new();
    let mut timeouts = HashMap::new();
    for (name, v) in &raw.spec.policies.timeouts {
        match duration(v) {
            Ok(d) => {
                timeouts.insert(name.clone(), d);
            }
            Err(e) => problems.push((format!("spec.policies.timeouts.{name}"), e)),
        }
    }
    let mut retries = HashMap::new();
    for (name, r) in &raw.spec.policies.retries {
        let at = |f: &str| format!("spec.policies.retries.{name}.{f}");
        let get =
            |f: &str, v: &Option<Value>, default: Duration, problems: &mut Vec<DocProblem>| {
                v.as_ref()
                    .map_or(Ok(default), duration)
                    .unwrap_or_else(|e| {
                        problems.push((at(f), e));
                        default
                    })
            };
        let backoff = match r.policy.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("constant") => Backoff::Constant(get(
                "duration",
                &r.duration,
                Duration::from_secs(5),
                &mut problems,
            )),
            Some("exponential") => Backoff::Exponential {
                max_interval: get(
                    "maxInterval",
                    &r.max_interval,
                    Duration::from_secs(60),
                    &mut problems,
                ),
            },
            Some(other) => {
                problems.push((
                    at("policy"),
                    format!("{other:?} is not constant or exponential"),
                ));
                Backoff::Constant(Duration::from_secs(5))
            }
        };
        let max_retries = match r.max_retries {
            None | Some(-1) => None,
            Some(n) if n >= 0 => Some(n as u64),
            Some(n) => {
                problems.push((
                    at("maxRetries"),
                    format!("{n} is not -1 (forever) or a count"),
                ));
                None
            }
        };
        let mut matching = Matching::default();
        if let Some(m) = &r.matching {
            if let Some(s) = &m.http {
                match CodeSet::parse(s, 100, 599) {
                    Ok(c) => matching.http = Some(c),
                    Err(e) => problems.push((at("matching.httpStatusCodes"), e)),
                }
            }
            if let Some(s) = &m.grpc {
                match CodeSet::parse(s, 0, 16) {
                    Ok(c) => matching.grpc = Some(c),
                    Err(e) => problems.push((at("matching.gRPCStatusCodes"), e)),
                }
            }
        }
        retries.insert(
            name.clone(),
            Retry {
                name: name.clone(),
                backoff,
                max_retries,
                matching,
            },
        );
    }
    let mut breakers = HashMap::new();
    for (name, b) in &raw.spec.policies.circuit_breakers {
        let at = |f: &str| format!("spec.policies.circuitBreakers.{name}.{f}");
        let dur = |f: &str, v: &Option<Value>, problems: &mut Vec<DocProblem>| {
            v.as_ref()
                .map_or(Ok(Duration::ZERO), duration)
                .unwrap_or_else(|e| {
                    problems.push((at(f), e));
                    Duration::ZERO
                })
        };
        let trip = match Trip::parse(b.trip.as_deref().unwrap_or("consecutiveFailures > 5")) {
            Ok(t) => t,
            Err(e) => {
                problems.push((at("trip"), e));
                Trip::Literal(false)
            }
        };
        breakers.insert(
            name.clone(),
            BreakerSpec {
                max_requests: b.max_requests.unwrap_or(1),
                interval: dur("interval", &b.interval, &mut problems),
                timeout: dur("timeout", &b.timeout, &mut problems),
                trip,
            },
        );
    }
    for (component, target) in &raw.spec.targets.components {
        for (dir, names) in [("inbound", &target.inbound), ("outbound", &target.outbound)] {
            let Some(names) = names else { continue };
            let at = |f: &str| format!("spec.targets.components.{component}.{dir}.{f}");
            if let Some(t) = &names.timeout
                && !timeouts.contains_key(t)
                && !raw.spec.policies.timeouts.contains_key(t)
            {
                problems.push((at("timeout"), format!("no timeout policy named {t:?}")));
            }
            if let Some(r) = &names.retry
                && !raw.spec.policies.retries.contains_key(r)
            {
                problems.push((at("retry"), format!("no retry policy named {r:?}")));
            }
            if let Some(c) = &names.circuit_breaker
                && !raw.spec.policies.circuit_breakers.contains_key(c)
            {
                problems.push((
                    at("circuitBreaker"),
                    format!("no circuit breaker named {c:?}"),
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ResiliencyDoc {
        name: raw.metadata.name,
        source,
        scopes: raw.scopes,
        timeouts,
        retries,
        breakers,
        components: raw.spec.targets.components,
    })
}

/// The policies in force, per component and direction.
#[derive(Debug, Default)]
pub struct Resiliency {
    policies: HashMap<(String, Direction), Arc<Policy>>,
}

impl Resiliency {
    /// Compile `docs` for `components`: each component gets its target's named policies, or the
    /// default policies (`DefaultBindingComponentInboundRetryPolicy`, then
    /// `DefaultComponentInboundRetryPolicy`, `DefaultComponentRetryPolicy`, `DefaultRetryPolicy`,
    /// and likewise for timeouts and circuit breakers). Breakers are per component.
    pub fn compile<'a>(
        docs: &[ResiliencyDoc],
        components: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut policies = HashMap::new();
        for component in components {
            for dir in [Direction::Inbound, Direction::Outbound] {
                let mut policy = Policy::default();
                for doc in docs {
                    let target = doc.components.get(component).and_then(|t| match dir {
                        Direction::Inbound => t.inbound.as_ref(),
                        Direction::Outbound => t.outbound.as_ref(),
                    });
                    let p = match target {
                        Some(names) => doc.named(names, component),
                        None => doc.defaults(dir, component),
                    };
                    merge(&mut policy, p);
                }
                if !policy.is_empty() {
                    policies.insert((component.to_owned(), dir), Arc::new(policy));
                }
            }
        }
        Resiliency { policies }
    }

    /// The policy for `component` in direction `dir`, if any applies.
    pub fn policy(&self, component: &str, dir: Direction) -> Option<Arc<Policy>> {
        // Without any policy (the usual case) every call would allocate a key for nothing.
        if self.policies.is_empty() {
            return None;
        }
        self.policies.get(&(component.to_owned(), dir)).cloned()
    }
}

fn merge(into: &mut Policy, from: Policy) {
    if from.timeout.is_some() {
        into.timeout = from.timeout;
    }
    if from.retry.is_some() {
        into.retry = from.retry;
    }
    if from.breaker.is_some() {
        into.breaker = from.breaker;
    }
}

impl ResiliencyDoc {
    fn breaker(&self, name: &str, component: &str) -> Option<Arc<Breaker>> {
        self.breakers.get(name).map(|b| {
            Arc::new(Breaker::new(
                format!("{name}-{component}"),
                b.max_requests,
                b.interval,
                b.timeout,
                b.trip.clone(),
            ))
        })
    }

    fn named(&self, names: &PolicyNames, component: &str) -> Policy {
        Policy {
            timeout: names
                .timeout
                .as_ref()
                .and_then(|n| self.timeouts.get(n).copied()),
            retry: names
                .retry
                .as_ref()
                .and_then(|n| self.retries.get(n).cloned()),
            breaker: names
                .circuit_breaker
                .as_ref()
                .and_then(|n| self.breaker(n, component)),
        }
    }

    fn defaults(&self, dir: Direction, component: &str) -> Policy {
        let candidates = |kind: &str| {
            [
                format!("DefaultBindingComponent{}{kind}Policy", dir.name()),
                format!("DefaultComponent{}{kind}Policy", dir.name()),
                format!("DefaultComponent{kind}Policy"),
                format!("Default{kind}Policy"),
            ]
        };
        Policy {
            timeout: candidates("Timeout")
                .iter()
                .find_map(|n| self.timeouts.get(n).copied()),
            retry: candidates("Retry")
                .iter()
                .find_map(|n| self.retries.get(n).cloned()),
            breaker: candidates("CircuitBreaker")
                .iter()
                .find_map(|n| self.breaker(n, component)),
        }
    }
}

#[cfg(test)]
mod tests;
