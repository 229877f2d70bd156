//! `bindery invoke`: one call to an output binding of a running sidecar, through its HTTP API
//! (`POST /v1.0/bindings/<binding>`), as an app would make it.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use super::{Exit, chain, client, describe_error, out, with_token};
use crate::cli::{Sidecar, duration};

/// Shown by `bindery invoke --help`.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bindery invoke files create --data 'hello' --metadata fileName=hello.txt
  bindery invoke files get --metadata fileName=hello.txt
  bindery invoke orders create --data '{\"id\": 42}'      # sent as a JSON object
  bindery invoke orders create --data 42 --raw           # sent as the string \"42\"
  bindery invoke files create --data-file ./report.csv --metadata fileName=report.csv

--data is sent as the JSON value it parses as (an object, a number, true ...), otherwise as
a JSON string; --raw always sends a string. The response body is printed as it is; -v also
prints the status and the metadata.* headers to standard error.

Exit codes: 0 the call succeeded (2xx); 1 the sidecar answered an error (its errorCode and
message are printed); 2 invalid command line or unreadable --data-file; 3 the sidecar cannot
be reached.";

/// `bindery invoke <binding> <operation>`.
#[derive(Debug, clap::Args)]
pub(crate) struct InvokeArgs {
    /// The output binding (component name).
    pub(crate) binding: String,

    /// The operation, e.g. create, get, list, delete.
    pub(crate) operation: String,

    /// The data: the JSON value it parses as, else a JSON string.
    #[arg(long, value_name = "TEXT", conflicts_with = "data_file")]
    pub(crate) data: Option<String>,

    /// Read the data from a UTF-8 file (`-` for standard input); same rule as --data.
    #[arg(long, value_name = "PATH")]
    pub(crate) data_file: Option<PathBuf>,

    /// Request metadata (repeatable).
    #[arg(long = "metadata", short = 'm', value_name = "KEY=VALUE", value_parser = key_value)]
    pub(crate) metadata: Vec<(String, String)>,

    /// Send the data as a JSON string exactly as given, even when it parses as JSON.
    #[arg(long)]
    pub(crate) raw: bool,

    /// Also print the status and the response's metadata.* headers (to standard error).
    #[arg(short, long)]
    pub(crate) verbose: bool,

    /// How long to wait for the answer.
    #[arg(long, default_value = "60s", value_parser = duration, value_name = "DURATION")]
    pub(crate) timeout: Duration,

    #[command(flatten)]
    pub(crate) sidecar: Sidecar,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// The `data` of the request: the JSON value `text` parses as, or `text` as a JSON string
/// (always a string when `raw`).
pub(crate) fn data_value(text: &str, raw: bool) -> Value {
    if raw {
        return Value::String(text.to_owned());
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn read_data_file(path: &PathBuf) -> Result<String, String> {
    let mut bytes = Vec::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes))
    };
    read.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| {
        format!(
            "{} is not UTF-8 text: the Dapr HTTP API carries data as JSON; send binary data base64-encoded",
            path.display()
        )
    })
}

/// Make the call and print the answer.
pub(crate) async fn run(args: InvokeArgs) -> Exit {
    let data = match (&args.data, &args.data_file) {
        (Some(text), _) => Some(data_value(text, args.raw)),
        (None, Some(path)) => match read_data_file(path) {
            Ok(text) => Some(data_value(&text, args.raw)),
            Err(e) => {
                eprintln!("bindery: {e}");
                return Exit::Usage;
            }
        },
        (None, None) => None,
    };
    let mut body = Map::new();
    body.insert("operation".into(), Value::String(args.operation.clone()));
    if let Some(data) = data {
        body.insert("data".into(), data);
    }
    if !args.metadata.is_empty() {
        let metadata: Map<String, Value> = args
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        body.insert("metadata".into(), Value::Object(metadata));
    }

    let client = match client() {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let base = args.sidecar.base_url();
    let url = format!("{base}/v1.0/bindings/{}", encode_segment(&args.binding));
    let request = with_token(client.post(&url))
        .header("content-type", "application/json")
        .body(Value::Object(body).to_string())
        .timeout(args.timeout);
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bindery: cannot reach the sidecar at {base}: {}", chain(&e));
            return Exit::Unreachable;
        }
    };
    let status = response.status();
    let mut metadata: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("metadata."))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    metadata.sort();
    let bytes = match response.bytes().await {
        Ok(b) => b,
        Err(e) => {
            eprintln!(
                "bindery: the sidecar at {base} stopped answering: {}",
                chain(&e)
            );
            return Exit::Unreachable;
        }
    };
    if args.verbose {
        eprintln!("HTTP {status}");
        for (name, value) in &metadata {
            eprintln!("{name}: {value}");
        }
    }
    if !status.is_success() {
        eprintln!(
            "bindery: error invoking {}: {}",
            args.binding,
            describe_error(status, &bytes)
        );
        return Exit::Failure;
    }
    let mut printed = bytes.to_vec();
    // A person at a terminal gets the prompt back on its own line; pipes get the bytes as sent.
    if !printed.is_empty() && !printed.ends_with(b"\n") && std::io::stdout().is_terminal() {
        printed.push(b'\n');
    }
    out(&printed)
}

/// `name` as one URL path segment: every byte outside the unreserved set percent-encoded.
pub(crate) fn encode_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_json_when_it_parses_else_a_string() {
        assert_eq!(data_value(r#"{"a":1}"#, false), serde_json::json!({"a": 1}));
        assert_eq!(data_value("42", false), serde_json::json!(42));
        assert_eq!(data_value("hello", false), serde_json::json!("hello"));
        assert_eq!(data_value("42", true), serde_json::json!("42"));
        assert_eq!(
            data_value(r#""quoted""#, false),
            serde_json::json!("quoted")
        );
    }

    #[test]
    fn metadata_is_key_equals_value() {
        assert_eq!(
            key_value("fileName=a=b.txt").unwrap(),
            ("fileName".to_owned(), "a=b.txt".to_owned())
        );
        assert_eq!(key_value("k=").unwrap(), ("k".to_owned(), String::new()));
        assert!(key_value("novalue").is_err());
        assert!(key_value("=v").is_err());
    }

    #[test]
    fn names_are_one_path_segment() {
        assert_eq!(encode_segment("files"), "files");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
