//! `bindery`: a sidecar that implements the Dapr bindings building block.
//!
//! The binary parses daprd's flags, registers every binding compiled in, loads the components,
//! serves the Dapr HTTP and gRPC APIs, delivers input events to the app, and drains on shutdown.

mod flags;
mod logging;
mod run;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let flags = flags::Flags::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bindery")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bindery: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run::run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Logging may not be up (bad flags), so the reason also goes to stderr.
            eprintln!("bindery: {e:#}");
            ExitCode::FAILURE
        }
    }
}
