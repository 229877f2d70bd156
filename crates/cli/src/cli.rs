//! The command line: daprd's flags for run mode, or one of the tools as a subcommand.
//!
//! `bindery --app-id orders ...` runs the sidecar exactly as daprd would; `bindery validate`,
//! `bindery invoke`, `bindery tap` and `bindery completions` are tools that run and exit.
//! The two cannot be mixed: run-mode flags before a subcommand are a usage error.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::flags::Flags;
use crate::tools::{invoke, tap, validate};

/// A fast, small sidecar for the Dapr bindings building block.
///
/// Takes daprd's flags: an app written against Dapr runs against bindery unchanged.
#[derive(Debug, Parser)]
#[command(name = "bindery", version, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
#[command(after_help = "\
Examples:
  bindery --app-id orders --app-port 3000 --resources-path ./components
  bindery validate ./components
  bindery invoke files get --metadata fileName=hello.txt
  bindery tap tick --count 5

Exit codes: 0 success; 1 failure (invalid resources, an error answer, a failed start);
2 invalid command line; 3 the sidecar cannot be reached (invoke, tap).")]
pub(crate) struct Cli {
    /// A tool to run instead of the sidecar.
    #[command(subcommand)]
    pub(crate) command: Option<Tool>,

    /// Run mode: daprd's flags.
    #[command(flatten)]
    pub(crate) run: Option<Flags>,
}

/// The tools.
#[derive(Debug, Subcommand)]
pub(crate) enum Tool {
    /// Check component and resiliency files without starting anything.
    #[command(after_help = validate::EXAMPLES)]
    Validate(validate::ValidateArgs),

    /// Call an output binding of a running sidecar.
    #[command(after_help = invoke::EXAMPLES)]
    Invoke(invoke::InvokeArgs),

    /// Watch the events an input binding of a running sidecar delivers, with their outcome,
    /// without taking them from the app.
    #[command(after_help = tap::EXAMPLES)]
    Tap(tap::TapArgs),

    /// Print a shell completion script.
    #[command(after_help = "\
Examples:
  bindery completions bash > /etc/bash_completion.d/bindery
  bindery completions zsh > \"${fpath[1]}/_bindery\"
  bindery completions fish > ~/.config/fish/completions/bindery.fish")]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// How a tool prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Text for people.
    Human,
    /// JSON for programs.
    Json,
}

/// Where a running sidecar's HTTP API is, found as the Dapr SDKs find it.
#[derive(Debug, Clone, Args)]
pub(crate) struct Sidecar {
    /// The sidecar's HTTP API port.
    #[arg(
        long,
        env = "DAPR_HTTP_PORT",
        default_value_t = 3500,
        value_name = "PORT"
    )]
    pub(crate) dapr_http_port: u16,

    /// The sidecar's address.
    #[arg(long, default_value = "127.0.0.1", value_name = "HOST")]
    pub(crate) dapr_host: String,
}

impl Sidecar {
    /// `http://<host>:<port>`, IPv6 addresses in brackets.
    pub(crate) fn base_url(&self) -> String {
        let host = self.dapr_host.trim();
        if host.contains(':') && !host.starts_with('[') {
            format!("http://[{host}]:{}", self.dapr_http_port)
        } else {
            format!("http://{host}:{}", self.dapr_http_port)
        }
    }
}

/// A duration: `500ms`, `5s`, `1m`, or plain seconds.
pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    bindery_core::parse_duration(s, Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("bindery").chain(args.iter().copied()))
    }

    #[test]
    fn run_mode_without_a_subcommand() {
        let cli = parse(&["--app-id", "a", "--dapr-http-port", "4000"]).unwrap();
        assert!(cli.command.is_none());
        let flags = cli.run.unwrap();
        assert_eq!(flags.app_id, "a");
        assert_eq!(flags.dapr_http_port, 4000);
    }

    #[test]
    fn run_mode_still_needs_an_app_id() {
        let e = parse(&[]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(e.to_string().contains("--app-id"), "{e}");
    }

    #[test]
    fn tools_need_no_app_id() {
        let cli = parse(&["validate", "components"]).unwrap();
        assert!(cli.run.is_none());
        assert!(matches!(cli.command, Some(Tool::Validate(_))));
    }

    #[test]
    fn run_flags_and_a_tool_do_not_mix() {
        assert!(parse(&["--app-id", "a", "validate", "x"]).is_err());
    }

    #[test]
    fn the_sidecar_url_brackets_ipv6() {
        let s = |host: &str| Sidecar {
            dapr_http_port: 3500,
            dapr_host: host.into(),
        };
        assert_eq!(s("127.0.0.1").base_url(), "http://127.0.0.1:3500");
        assert_eq!(s("::1").base_url(), "http://[::1]:3500");
        assert_eq!(s("[::1]").base_url(), "http://[::1]:3500");
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
