//! The tools of the `bindery` binary: `validate`, `invoke`, `tap` and `completions`.
//!
//! Each one prints its results to standard output, its diagnostics to standard error, and
//! answers with an [`Exit`] code.

pub(crate) mod invoke;
pub(crate) mod tap;
pub(crate) mod validate;

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, Tool};

/// How a tool ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It did what was asked: the resources are valid, the call succeeded.
    Success = 0,
    /// It ran, and the answer is no: invalid resources, an error from the sidecar.
    Failure = 1,
    /// The command line (or a file it names) is unusable.
    Usage = 2,
    /// The sidecar cannot be reached.
    Unreachable = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Run `tool` to completion.
pub(crate) async fn run(tool: Tool) -> Exit {
    match tool {
        Tool::Validate(args) => validate::run(args).await,
        Tool::Invoke(args) => invoke::run(args).await,
        Tool::Tap(args) => tap::run(args).await,
        Tool::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "bindery", &mut buf);
            out(&buf)
        }
    }
}

/// Write `bytes` to standard output. A closed pipe (`| head`) is not an error worth a message.
pub(crate) fn out(bytes: &[u8]) -> Exit {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Exit::Success,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Success,
        Err(e) => {
            eprintln!("bindery: cannot write to standard output: {e}");
            Exit::Failure
        }
    }
}

/// An HTTP client for the sidecar's API: no proxy (the sidecar is local to the app, as the
/// SDKs assume), plain HTTP.
pub(crate) fn client() -> Result<reqwest::Client, Exit> {
    reqwest::Client::builder().no_proxy().build().map_err(|e| {
        eprintln!("bindery: cannot create an HTTP client: {}", chain(&e));
        Exit::Failure
    })
}

/// A request to the sidecar with `DAPR_API_TOKEN`, when set, as `dapr-api-token`.
pub(crate) fn with_token(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match std::env::var("DAPR_API_TOKEN") {
        Ok(token) if !token.is_empty() => req.header("dapr-api-token", token),
        _ => req,
    }
}

/// An error and its causes on one line: `a: b: c`.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        // hyper and reqwest repeat their cause in their own message at times.
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// An error answer from the sidecar, for people: Dapr's `errorCode` and `message` when the
/// body has them, else the status and the body as text.
pub(crate) fn describe_error(status: reqwest::StatusCode, body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    match (field("errorCode"), field("message")) {
        (Some(code), Some(message)) => format!("{code}: {message} (HTTP {})", status.as_u16()),
        (Some(code), None) => format!("{code} (HTTP {})", status.as_u16()),
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {text}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_show_dapr_code_and_message() {
        let status = reqwest::StatusCode::INTERNAL_SERVER_ERROR;
        assert_eq!(
            describe_error(status, br#"{"errorCode":"ERR_X","message":"boom"}"#),
            "ERR_X: boom (HTTP 500)"
        );
        assert_eq!(
            describe_error(reqwest::StatusCode::UNAUTHORIZED, b"invalid api token"),
            "HTTP 401 Unauthorized: invalid api token"
        );
        assert_eq!(
            describe_error(status, b""),
            "HTTP 500 Internal Server Error"
        );
    }

    #[test]
    fn exit_codes_are_the_documented_ones() {
        assert_eq!(Exit::Success as u8, 0);
        assert_eq!(Exit::Failure as u8, 1);
        assert_eq!(Exit::Usage as u8, 2);
        assert_eq!(Exit::Unreachable as u8, 3);
    }
}
