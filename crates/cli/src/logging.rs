//! Structured logs: text for people, `--log-as-json` for machines.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Install the global subscriber. `level` is one of daprd's levels.
pub(crate) fn init(level: &str, json: bool) {
    let level = match level {
        "warning" => "warn",
        "fatal" => "error",
        other => other,
    };
    // RUST_LOG, when set, refines the level per module.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},h2=warn,hyper=warn,tower=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        // Colours only for a person at a terminal, never in files or pipes.
        .with_ansi(std::io::stdout().is_terminal())
        .with_target(false);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}
