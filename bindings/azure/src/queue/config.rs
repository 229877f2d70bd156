//! Component metadata of `bindings.azure.storagequeues`, checked without I/O.

use std::collections::HashMap;
use std::time::Duration;

use bindery_core::{BindingError, Metadata, MetadataReader, parse_duration};
use reqwest::Url;

use crate::account::{
    ACCOUNT_NAME_KEYS, Service, SharedKey, endpoint_suffix, entity_url, shared_key,
};

/// Default `pollingInterval`.
pub(crate) const DEFAULT_POLLING_INTERVAL: Duration = Duration::from_secs(10);
/// The shortest `pollingInterval`.
pub(crate) const MIN_POLLING_INTERVAL: Duration = Duration::from_millis(100);
/// Default message time to live.
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Default `visibilityTimeout`.
pub(crate) const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest visibility timeout or delay the service accepts (7 days).
pub(crate) const MAX_VISIBILITY: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default `backOffInitialInterval`.
pub(crate) const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// Metadata names of the queue.
pub(crate) const QUEUE_KEYS: &[&str] = &["queueName", "queue", "storageAccountQueue"];

/// The checked configuration of one `bindings.azure.storagequeues` component.
#[derive(Debug, Clone)]
pub(crate) struct QueueConfig {
    pub(crate) key: SharedKey,
    pub(crate) queue: String,
    /// `…/<queue>`.
    pub(crate) queue_url: Url,
    pub(crate) polling_interval: Duration,
    pub(crate) ttl: Duration,
    pub(crate) decode_base64: bool,
    pub(crate) encode_base64: bool,
    pub(crate) visibility_timeout: Duration,
    pub(crate) initial_visibility_delay: Duration,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
}

impl QueueConfig {
    /// Parse and check `md`, reporting every problem.
    pub(crate) fn parse(md: &Metadata) -> Result<Self, Vec<BindingError>> {
        let r = md.reader();
        let suffix = endpoint_suffix(&r);
        let account = r.required_any(
            ACCOUNT_NAME_KEYS,
            "missing or empty accountName field from metadata",
        );
        let queue = r.required_any(QUEUE_KEYS, "missing or empty queueName field from metadata");
        if !queue.is_empty()
            && let Err(e) = check_queue_name(&queue)
        {
            r.error("queueName", e);
        }
        let key = if account.is_empty() {
            None
        } else {
            shared_key(&r, &account, None)
        };
        let endpoint = r.string_any(&["queueEndpoint", "endpoint"]);
        let queue_url = if account.is_empty() || queue.is_empty() {
            None
        } else {
            match entity_url(
                Service::Queue,
                &account,
                &queue,
                endpoint.as_deref(),
                &suffix,
            ) {
                Ok(u) => Some(u),
                Err(e) => {
                    r.error("queueEndpoint", e);
                    None
                }
            }
        };
        let polling_interval = r.duration("pollingInterval", DEFAULT_POLLING_INTERVAL);
        if polling_interval < MIN_POLLING_INTERVAL {
            r.error(
                "pollingInterval",
                format!("pollingInterval must be at least {MIN_POLLING_INTERVAL:?}"),
            );
        }
        let ttl = ttl(&r).unwrap_or(DEFAULT_TTL);
        let decode_base64 = r.bool("decodeBase64", false);
        let encode_base64 = r.bool("encodeBase64", false);
        let visibility_timeout = r.duration("visibilityTimeout", DEFAULT_VISIBILITY_TIMEOUT);
        if visibility_timeout < Duration::from_secs(1) || visibility_timeout > MAX_VISIBILITY {
            r.error(
                "visibilityTimeout",
                "visibilityTimeout must be between 1s and 7 days",
            );
        }
        let initial_visibility_delay = r.duration("initialVisibilityDelay", Duration::ZERO);
        if initial_visibility_delay > MAX_VISIBILITY {
            r.error(
                "initialVisibilityDelay",
                "initialVisibilityDelay must be at most 7 days",
            );
        }
        let backoff_initial = r.duration("backOffInitialInterval", DEFAULT_BACKOFF_INITIAL);
        let backoff_max = r.duration("backOffMaxInterval", visibility_timeout);
        r.finish()?;
        let (Some(key), Some(queue_url)) = (key, queue_url) else {
            return Err(vec![BindingError::config(
                "accountName",
                "missing or empty accountName field from metadata",
            )]);
        };
        Ok(QueueConfig {
            key,
            queue,
            queue_url,
            polling_interval,
            ttl,
            decode_base64,
            encode_base64,
            visibility_timeout,
            initial_visibility_delay,
            backoff_initial,
            backoff_max: backoff_max.max(backoff_initial),
        })
    }
}

/// `ttlInSeconds` or `ttl`: whole seconds or a Go duration, above zero (Dapr's `TryGetTTL`).
fn ttl(r: &MetadataReader<'_>) -> Option<Duration> {
    for key in ["ttlInSeconds", "ttl"] {
        if let Some(v) = r.string(key) {
            return match parse_ttl(key, &v) {
                Ok(d) => Some(d),
                Err(e) => {
                    r.error(key, e);
                    None
                }
            };
        }
    }
    None
}

/// One TTL value.
pub(crate) fn parse_ttl(key: &str, v: &str) -> Result<Duration, String> {
    if let Ok(n) = v.trim().parse::<i64>() {
        if n <= 0 {
            return Err(format!(
                "{key} value must be higher than zero: actual is {n}"
            ));
        }
        return Ok(Duration::from_secs(n.unsigned_abs()));
    }
    let d = parse_duration(v, Duration::from_secs(1))
        .map_err(|e| format!("{key} value must be a valid integer or duration: {e}"))?;
    if d.is_zero() {
        return Err(format!("{key} value must be higher than zero"));
    }
    Ok(d)
}

/// The TTL of one message: request metadata `ttlInSeconds`/`ttl` (any case), else `default`.
pub(crate) fn request_ttl(
    md: &HashMap<String, String>,
    default: Duration,
) -> Result<Duration, BindingError> {
    for key in ["ttlInSeconds", "ttl"] {
        if let Some((_, v)) = md
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(key) && !v.is_empty())
        {
            return parse_ttl(key, v).map_err(BindingError::invalid_request);
        }
    }
    Ok(default)
}

/// Queue names: 3–63 lower-case letters, digits and single hyphens, starting and ending with a
/// letter or digit.
fn check_queue_name(name: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid queueName {name:?}: use 3 to 63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::account::DEV_KEY;

    fn parse(pairs: &[(&str, &str)]) -> Result<QueueConfig, Vec<BindingError>> {
        QueueConfig::parse(&Metadata::from_pairs(pairs.iter().copied()))
    }

    fn base(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v = vec![
            ("accountName", "devstoreaccount1"),
            ("accountKey", DEV_KEY),
            ("queueName", "orders"),
        ];
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn defaults() {
        let c = parse(&base(&[])).unwrap();
        assert_eq!(
            c.queue_url.as_str(),
            "https://devstoreaccount1.queue.core.windows.net/orders"
        );
        assert_eq!(c.polling_interval, Duration::from_secs(10));
        assert_eq!(c.ttl, Duration::from_secs(600));
        assert!(!c.decode_base64);
        assert!(!c.encode_base64);
        assert_eq!(c.visibility_timeout, Duration::from_secs(30));
        assert_eq!(c.initial_visibility_delay, Duration::ZERO);
        assert_eq!(c.backoff_initial, Duration::from_secs(1));
        assert_eq!(c.backoff_max, Duration::from_secs(30));
    }

    #[test]
    fn every_field_and_alias() {
        for (a, k, q, e) in [
            ("accountName", "accountKey", "queueName", "queueEndpoint"),
            ("storageAccount", "storageAccessKey", "queue", "endpoint"),
            (
                "storageAccountName",
                "storageAccountKey",
                "storageAccountQueue",
                "queueEndpoint",
            ),
            ("accountName", "accessKey", "queue", "endpoint"),
        ] {
            let c = parse(&[
                (a, "devstoreaccount1"),
                (k, DEV_KEY),
                (q, "jobs-1"),
                (e, "http://127.0.0.1:10001"),
                ("pollingInterval", "250ms"),
                ("ttlInSeconds", "60"),
                ("decodeBase64", "true"),
                ("encodeBase64", "1"),
                ("visibilityTimeout", "2m"),
                ("initialVisibilityDelay", "5"),
                ("backOffInitialInterval", "2s"),
                ("backOffMaxInterval", "20s"),
            ])
            .unwrap();
            assert_eq!(
                c.queue_url.as_str(),
                "http://127.0.0.1:10001/devstoreaccount1/jobs-1"
            );
            assert_eq!(c.polling_interval, Duration::from_millis(250));
            assert_eq!(c.ttl, Duration::from_secs(60));
            assert!(c.decode_base64 && c.encode_base64);
            assert_eq!(c.visibility_timeout, Duration::from_secs(120));
            assert_eq!(c.initial_visibility_delay, Duration::from_secs(5));
            assert_eq!(c.backoff_initial, Duration::from_secs(2));
            assert_eq!(c.backoff_max, Duration::from_secs(20));
        }
        assert_eq!(
            parse(&base(&[("ttl", "1h")])).unwrap().ttl,
            Duration::from_secs(3600)
        );
        assert_eq!(
            parse(&base(&[("ttl", "90")])).unwrap().ttl,
            Duration::from_secs(90)
        );
    }

    #[test]
    fn problems_are_reported_together() {
        let errs = parse(&[
            ("pollingInterval", "10ms"),
            ("ttlInSeconds", "0"),
            ("visibilityTimeout", "0s"),
        ])
        .unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field().unwrap().to_owned()).collect();
        assert_eq!(
            fields,
            [
                "accountName",
                "queueName",
                "pollingInterval",
                "ttlInSeconds",
                "visibilityTimeout"
            ]
        );
        assert_eq!(
            errs[3].message(),
            "ttlInSeconds value must be higher than zero: actual is 0"
        );
        let errs = parse(&[("accountName", "a"), ("queueName", "Bad_Queue")]).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field().unwrap().to_owned()).collect();
        assert_eq!(fields, ["queueName", "accountKey"]);
    }

    #[test]
    fn request_ttls() {
        let d = Duration::from_secs(600);
        let md = |k: &str, v: &str| HashMap::from([(k.to_owned(), v.to_owned())]);
        assert_eq!(request_ttl(&HashMap::new(), d).unwrap(), d);
        assert_eq!(
            request_ttl(&md("ttlInSeconds", "30"), d).unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(
            request_ttl(&md("TTL", "2m"), d).unwrap(),
            Duration::from_secs(120)
        );
        assert!(request_ttl(&md("ttl", "-1"), d).is_err());
        assert!(request_ttl(&md("ttlInSeconds", "soon"), d).is_err());
    }
}
