//! daprd-compatible command-line flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// daprd's flags: run mode, when no tool is named (the command line is `crate::cli::Cli`).
#[derive(Debug, Parser)]
#[command(name = "bindery")]
pub(crate) struct Flags {
    /// The app's id (required).
    #[arg(long, value_name = "ID", value_parser = non_empty_app_id)]
    pub(crate) app_id: String,

    /// The port the app listens on. Without it no input event is delivered.
    #[arg(long, value_name = "PORT")]
    pub(crate) app_port: Option<u16>,

    /// How bindery calls the app.
    #[arg(long, value_enum, default_value_t = Protocol::Http, value_name = "PROTOCOL")]
    pub(crate) app_protocol: Protocol,

    /// The address the app listens on.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDRESS")]
    pub(crate) app_channel_address: String,

    /// The port of the Dapr HTTP API.
    #[arg(long, default_value_t = 3500, value_name = "PORT")]
    pub(crate) dapr_http_port: u16,

    /// The port of the Dapr gRPC API.
    #[arg(long, default_value_t = 50001, value_name = "PORT")]
    pub(crate) dapr_grpc_port: u16,

    /// The port of the Prometheus metrics endpoint (`/metrics`).
    #[arg(long, default_value_t = 9090, value_name = "PORT")]
    pub(crate) metrics_port: u16,

    /// Serve metrics.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value_t = true, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub(crate) enable_metrics: bool,

    /// A folder of component YAML files (repeatable).
    #[arg(
        long = "resources-path",
        visible_alias = "components-path",
        value_name = "DIR"
    )]
    pub(crate) resources_path: Vec<PathBuf>,

    /// A Dapr Configuration YAML file.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Log level: debug, info, warn (warning), error (fatal).
    #[arg(long, default_value = "info", value_parser = ["debug", "info", "warn", "warning", "error", "fatal"], value_name = "LEVEL")]
    pub(crate) log_level: String,

    /// Write logs as JSON lines.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value_t = false, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub(crate) log_as_json: bool,

    /// App calls in flight at once; -1 is unlimited.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true, value_name = "N", value_parser = concurrency)]
    pub(crate) app_max_concurrency: i64,

    /// Largest request or response body, both APIs, both directions (e.g. 4Mi, 512Ki).
    #[arg(long, default_value = "4Mi", value_parser = quantity, value_name = "SIZE")]
    pub(crate) max_body_size: u64,

    /// Addresses the APIs listen on, comma separated.
    #[arg(
        long,
        default_value = "127.0.0.1",
        value_delimiter = ',',
        value_name = "ADDRESSES"
    )]
    pub(crate) dapr_listen_addresses: Vec<String>,

    /// How long in-flight work may take to finish on shutdown.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub(crate) dapr_graceful_shutdown_seconds: u64,

    /// Probe the app's health; input bindings pause while it is unhealthy.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value_t = false, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub(crate) enable_app_health_check: bool,

    /// The path of the app's health check (HTTP apps).
    #[arg(long, default_value = "/healthz", value_name = "PATH")]
    pub(crate) app_health_check_path: String,

    /// Time between app health probes: seconds, or a duration like 500ms.
    #[arg(long, default_value = "5", value_parser = seconds, value_name = "DURATION")]
    pub(crate) app_health_probe_interval: Duration,

    /// How long one app health probe may take: milliseconds, or a duration like 1s.
    #[arg(long, default_value = "500", value_parser = millis, value_name = "DURATION")]
    pub(crate) app_health_probe_timeout: Duration,

    /// Failed probes in a row after which the app counts as unhealthy.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub(crate) app_health_threshold: u32,

    /// On a signal, stop input bindings and keep serving output calls this long (or until the
    /// app turns unhealthy) before shutting down.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub(crate) dapr_block_shutdown_duration: Option<Duration>,

    /// Restart an input binding that received nothing this long while its source reports a
    /// backlog (0 turns the watchdog off).
    #[arg(long, default_value = "60s", value_parser = duration, value_name = "DURATION")]
    pub(crate) input_stall_timeout: Duration,

    /// How long asking the app whether it subscribes to an input binding may take.
    #[arg(long, default_value = "3s", value_parser = duration, value_name = "DURATION")]
    pub(crate) app_binding_options_timeout: Duration,
}

/// How bindery calls the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Protocol {
    /// HTTP/1.1.
    Http,
    /// gRPC over HTTP/2 without TLS.
    Grpc,
}

fn non_empty_app_id(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("app-id parameter cannot be empty".into())
    } else {
        Ok(s.to_owned())
    }
}

fn quantity(s: &str) -> Result<u64, String> {
    let n = bindery_core::parse_quantity(s)?;
    if n == 0 {
        return Err("must be larger than 0".into());
    }
    Ok(n)
}

fn duration(s: &str) -> Result<Duration, String> {
    bindery_core::parse_duration(s, Duration::from_secs(1))
}

fn seconds(s: &str) -> Result<Duration, String> {
    bindery_core::parse_duration(s, Duration::from_secs(1))
}

fn millis(s: &str) -> Result<Duration, String> {
    bindery_core::parse_duration(s, Duration::from_millis(1))
}

fn concurrency(s: &str) -> Result<i64, String> {
    let n: i64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    if n == 0 || n < -1 {
        return Err("must be -1 (unlimited) or a positive number".into());
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Flags::try_parse_from(std::iter::once("bindery").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_daprd() {
        let f = parse(&["--app-id", "a"]).unwrap();
        assert_eq!(f.dapr_http_port, 3500);
        assert_eq!(f.dapr_grpc_port, 50001);
        assert_eq!(f.max_body_size, 4 * 1024 * 1024);
        assert_eq!(f.app_max_concurrency, -1);
        assert_eq!(f.dapr_listen_addresses, ["127.0.0.1"]);
        assert_eq!(f.app_binding_options_timeout, Duration::from_secs(3));
        assert!(!f.log_as_json);
    }

    #[test]
    fn aliases_and_repeats() {
        let f = parse(&[
            "--app-id",
            "a",
            "--components-path",
            "x",
            "--resources-path",
            "y",
            "--log-as-json",
            "--dapr-listen-addresses",
            "127.0.0.1,::1",
        ])
        .unwrap();
        assert_eq!(f.resources_path, [PathBuf::from("x"), PathBuf::from("y")]);
        assert!(f.log_as_json);
        assert_eq!(f.dapr_listen_addresses.len(), 2);
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--app-id", ""]).is_err());
        assert!(parse(&["--app-id", "a", "--unknown-flag"]).is_err());
        assert!(parse(&["--app-id", "a", "--max-body-size", "lots"]).is_err());
        assert!(parse(&["--app-id", "a", "--app-protocol", "smtp"]).is_err());
        assert!(parse(&["--app-id", "a", "--app-max-concurrency", "0"]).is_err());
        assert!(parse(&["--app-id", "a", "--app-port", "70000"]).is_err());
        assert!(parse(&["--app-id", "a", "--app-binding-options-timeout", "soon"]).is_err());
    }
}
