//! Credentials never leave bindery: not in its log (text or JSON), not in an answer to the app,
//! not in `/v1.0/metadata`.
//!
//! A redaction test starts bindery once per [`LogFormat`] with a credential from
//! [`unique_secret`] in its components, drives a successful and a failing path through
//! [`Seen::invoke`] (which keeps every answer), waits with [`last_error`] until the failure
//! reached the binding's health, and ends with [`assert_hidden`].

use std::hash::{BuildHasher, Hasher};

use serde_json::Value;

use crate::{Bindery, BinderyBuilder, wait_until};

/// A credential nothing else would contain: `prefix`, a dash and 24 random hex digits.
pub fn unique_secret(prefix: &str) -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let a = h.finish();
    h.write_u32(std::process::id());
    let b = h.finish();
    format!("{prefix}-{a:016x}{:08x}", b as u32)
}

/// How bindery writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Text lines (the default).
    Text,
    /// `--log-as-json`: one JSON object per line.
    Json,
}

impl LogFormat {
    /// Both formats, for a test that runs once with each.
    pub const ALL: [LogFormat; 2] = [LogFormat::Text, LogFormat::Json];

    /// `builder` with this format's flags.
    pub fn apply(self, builder: BinderyBuilder) -> BinderyBuilder {
        match self {
            LogFormat::Text => builder,
            LogFormat::Json => builder.args(["--log-as-json"]),
        }
    }
}

/// A component file: `name` of type `type_name` with `metadata` as plain values.
pub fn component(name: &str, type_name: &str, metadata: &[(&str, &str)]) -> String {
    let mut yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: {type_name}\n  version: v1\n  metadata:\n"
    );
    for (k, v) in metadata {
        // A JSON string is a YAML double-quoted scalar.
        yaml.push_str(&format!("  - name: {k}\n    value: {}\n", Value::from(*v)));
    }
    yaml
}

/// Everything the app was told, to search for a credential.
#[derive(Debug, Default)]
pub struct Seen {
    places: Vec<(String, String)>,
}

impl Seen {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keep `text`, seen at `what`.
    pub fn add(&mut self, what: impl Into<String>, text: impl Into<String>) {
        self.places.push((what.into(), text.into()));
    }

    /// `POST /v1.0/bindings/<name>` with `body`; keeps the answer's status line, headers and
    /// body, and returns the status and the body.
    pub async fn invoke(&mut self, b: &Bindery, name: &str, body: Value) -> (u16, String) {
        let r = b.invoke(name, body.clone()).await;
        let status = r.status().as_u16();
        let headers = format!("{:?}", r.headers());
        let text = r.text().await.expect("the answer's body");
        self.add(
            format!("the answer to {body} on {name} ({status})"),
            format!("{headers}\n{text}"),
        );
        (status, text)
    }
}

/// Wait until `/v1.0/metadata` reports a last error for binding `name`, and return it (the
/// failing path reached the binding's health, and so its log lines).
pub async fn last_error(b: &Bindery, name: &str) -> String {
    wait_until(
        std::time::Duration::from_secs(30),
        &format!("a lastError for {name} in /v1.0/metadata"),
        || async {
            b.binding_status(name).await?["lastError"]
                .as_str()
                .map(str::to_owned)
        },
    )
    .await
}

/// Assert that `secret` (as written, percent-encoded, or JSON-escaped) is in none of: bindery's
/// log so far, the answers in `seen`, and `/v1.0/metadata` as it is now. With `format` JSON, also
/// assert that the log is JSON lines, so both formats are really looked at.
pub async fn assert_hidden(b: &Bindery, format: LogFormat, secret: &str, seen: &Seen) {
    let metadata = b
        .client()
        .get(b.url("/v1.0/metadata"))
        .send()
        .await
        .expect("bindery answers /v1.0/metadata")
        .text()
        .await
        .expect("the metadata body");
    assert_not_logged(b, format, secret);
    let mut places = vec![("/v1.0/metadata".to_owned(), metadata)];
    places.extend(seen.places.iter().cloned());
    for (what, text) in &places {
        assert_absent(secret, what, text);
    }
}

/// Assert that `secret` is not in bindery's log so far, which is in `format`. Also for a process
/// that has exited (a component that failed at start).
pub fn assert_not_logged(b: &Bindery, format: LogFormat, secret: &str) {
    let logs = b.logs();
    if format == LogFormat::Json {
        let first = logs.lines().find(|l| l.starts_with('{')).unwrap_or("");
        assert!(
            serde_json::from_str::<Value>(first).is_ok(),
            "--log-as-json did not write JSON lines:\n{logs}"
        );
    }
    assert_absent(secret, &format!("the {format:?} log"), &logs);
}

fn assert_absent(secret: &str, what: &str, text: &str) {
    for form in forms(secret) {
        assert!(
            !text.contains(form.as_str()),
            "the secret {form:?} is in {what}:\n{text}"
        );
    }
}

/// The ways a secret may be written out.
fn forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_owned()];
    let json = Value::from(secret).to_string();
    forms.push(json[1..json.len() - 1].to_owned());
    let encoded: String = secret
        .bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (c as char).to_string()
            }
            _ => format!("%{c:02X}"),
        })
        .collect();
    forms.push(encoded);
    forms.sort();
    forms.dedup();
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_distinct_and_plain() {
        let a = unique_secret("pw");
        let b = unique_secret("pw");
        assert_ne!(a, b);
        assert!(a.starts_with("pw-") && a.len() == 27, "{a}");
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
    }

    #[test]
    fn forms_cover_escapes() {
        assert_eq!(
            forms("a/b\"c"),
            vec![
                "a%2Fb%22c".to_owned(),
                "a/b\"c".to_owned(),
                "a/b\\\"c".to_owned()
            ]
        );
    }

    #[test]
    fn components_quote_values() {
        let y = component("x", "bindings.redis", &[("redisPassword", "p: \"q\"")]);
        assert!(y.contains("value: \"p: \\\"q\\\"\""), "{y}");
    }
}
