//! `bindery tap`: stream the events an input binding of a running sidecar delivers, with what
//! became of each, without taking them from the app (`GET /v1.0-alpha1/bindery/tap/<binding>`).

use serde_json::Value;

use super::invoke::encode_segment;
use super::{Exit, chain, client, describe_error, out, with_token};
use crate::cli::{Format, Sidecar};

/// Shown by `bindery tap --help`.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bindery tap tick                      # every event of `tick` until Ctrl-C
  bindery tap orders --count 1          # wait for one event, then exit
  bindery tap orders --format json | jq .metadata

Each event shows its binding, metadata, data (UTF-8 text, or base64 with \"dataBase64\": true)
and outcome (accepted, dropped, dead-lettered, failed, closed). The app still receives every
event: tapping copies events, it does not take them. With --format json each event is one
line of JSON, as the sidecar sends it; {\"lagged\": n} reports n events missed by a reader
that fell behind.

Exit codes: 0 the events were shown (or the sidecar ended the stream); 1 the sidecar answered
an error (no such input binding, a bad token); 2 invalid command line; 3 the sidecar cannot
be reached or the connection broke.";

/// `bindery tap <binding>`.
#[derive(Debug, clap::Args)]
pub(crate) struct TapArgs {
    /// The input binding (component name).
    pub(crate) binding: String,

    /// Exit after this many events.
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) count: Option<u64>,

    /// How to print events: human, or json (one line per event).
    #[arg(long, value_enum, default_value_t = Format::Human, value_name = "FORMAT")]
    pub(crate) format: Format,

    #[command(flatten)]
    pub(crate) sidecar: Sidecar,
}

/// Stream events until `--count` is reached, the sidecar ends the stream, or the user stops.
pub(crate) async fn run(args: TapArgs) -> Exit {
    let client = match client() {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let base = args.sidecar.base_url();
    let url = format!(
        "{base}/v1.0-alpha1/bindery/tap/{}",
        encode_segment(&args.binding)
    );
    let mut response = match with_token(client.get(&url)).send().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bindery: cannot reach the sidecar at {base}: {}", chain(&e));
            return Exit::Unreachable;
        }
    };
    let status = response.status();
    if !status.is_success() {
        let body = response.bytes().await.unwrap_or_default();
        eprintln!(
            "bindery: cannot tap {}: {}",
            args.binding,
            describe_error(status, &body)
        );
        return Exit::Failure;
    }
    if args.format == Format::Human {
        eprintln!("tapping input binding {} at {base}", args.binding);
    }

    let mut seen = 0u64;
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                eprintln!("bindery: the sidecar ended the stream");
                return Exit::Success;
            }
            Err(e) => {
                eprintln!(
                    "bindery: lost the connection to the sidecar at {base}: {}",
                    chain(&e)
                );
                return Exit::Unreachable;
            }
        };
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = &line[..line.len() - 1];
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let is_event = match show(line, args.format) {
                Ok(is_event) => is_event,
                Err(exit) => return exit,
            };
            if is_event {
                seen += 1;
                if args.count.is_some_and(|n| seen >= n) {
                    return Exit::Success;
                }
            }
        }
    }
}

/// Print one line of the stream. `Ok(true)` when it was an event (not a `lagged` notice).
fn show(line: &[u8], format: Format) -> Result<bool, Exit> {
    let parsed: Option<Value> = serde_json::from_slice(line).ok();
    let lagged = parsed
        .as_ref()
        .and_then(|v| v.get("lagged"))
        .and_then(Value::as_u64);
    if format == Format::Json {
        let mut bytes = line.to_vec();
        bytes.push(b'\n');
        return match out(&bytes) {
            Exit::Success => Ok(lagged.is_none()),
            other => Err(other),
        };
    }
    if let Some(n) = lagged {
        eprintln!("bindery: {n} event(s) missed: this terminal fell behind the sidecar");
        return Ok(false);
    }
    let Some(event) = parsed else {
        eprintln!(
            "bindery: unexpected line from the sidecar: {}",
            String::from_utf8_lossy(line)
        );
        return Ok(false);
    };
    match out(human(&event).as_bytes()) {
        Exit::Success => Ok(true),
        other => Err(other),
    }
}

/// An event for people:
///
/// ```text
/// tick: accepted
///   metadata.timeZone: Local
///   data: hello
/// ```
fn human(event: &Value) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let binding = event.get("binding").map(text).unwrap_or_default();
    let outcome = event.get("outcome").map(text).unwrap_or_default();
    let mut s = format!("{binding}: {outcome}\n");
    if let Some(Value::Object(metadata)) = event.get("metadata") {
        let mut entries: Vec<(&String, &Value)> = metadata.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in entries {
            s.push_str(&format!("  metadata.{k}: {}\n", text(v)));
        }
    }
    let data = event.get("data").map(text).unwrap_or_default();
    let base64 = event.get("dataBase64").and_then(Value::as_bool) == Some(true);
    if data.is_empty() {
        s.push_str("  data: (empty)\n");
    } else if base64 {
        s.push_str(&format!("  data (base64): {data}\n"));
    } else {
        let indented = data.trim_end_matches('\n').replace('\n', "\n        ");
        s.push_str(&format!("  data: {indented}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_well() {
        let event = serde_json::json!({
            "binding": "tick",
            "outcome": "accepted",
            "metadata": {"timeZone": "Local", "a": "1"},
            "data": "line one\nline two",
        });
        assert_eq!(
            human(&event),
            "tick: accepted\n  metadata.a: 1\n  metadata.timeZone: Local\n  data: line one\n        line two\n"
        );
        let binary = serde_json::json!({
            "binding": "b", "outcome": "failed", "metadata": {}, "data": "/wA=", "dataBase64": true,
        });
        assert_eq!(human(&binary), "b: failed\n  data (base64): /wA=\n");
        let empty =
            serde_json::json!({"binding": "b", "outcome": "accepted", "metadata": {}, "data": ""});
        assert_eq!(human(&empty), "b: accepted\n  data: (empty)\n");
    }
}
