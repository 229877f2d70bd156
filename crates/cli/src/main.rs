//! `bindery`: a sidecar that implements the Dapr bindings building block.
//!
//! The binary parses daprd's flags, registers every binding compiled in, loads the components,
//! serves the Dapr HTTP and gRPC APIs, delivers input events to the app, and drains on shutdown.
//! Its tools (`bindery validate`, `invoke`, `tap`, `completions`) run as subcommands.

mod cli;
mod flags;
mod logging;
mod run;
mod telemetry;
mod tools;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

/// mimalloc rather than the system allocator: an output call allocates in hyper, reqwest and
/// serde, glibc's malloc and free were a fifth of the instructions of each call, and mimalloc
/// takes about a sixth off the whole call (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let flags = match (cli.command, cli.run) {
        (Some(tool), _) => return run_tool(tool),
        (None, Some(flags)) => flags,
        // clap asks for --app-id when there is no subcommand, so this is not reached.
        (None, None) => cli::Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "--app-id is required to run the sidecar",
            )
            .exit(),
    };
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

fn run_tool(tool: cli::Tool) -> ExitCode {
    // One TLS provider for the HTTP client and for bindings that `validate --connect` builds.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bindery: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let exit = runtime.block_on(tools::run(tool));
    // Bindings built by `validate --connect` may leave background tasks; they are not waited for.
    runtime.shutdown_background();
    exit.into()
}
