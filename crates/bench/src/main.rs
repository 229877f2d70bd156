//! `bindery-bench`: the load generator behind `scripts/bench.sh` and `docs/BENCHMARKS.md`.
//!
//! It runs bindery and a baseline for each scenario in the same run (the echo server directly
//! and through nginx for output calls, a Redis client for Redis, a direct consumer for each
//! broker), records latencies in HDR histograms, and writes the report and its plots.
//!
//! ```text
//! bindery-bench suite --bindery target/release/bindery --nginx /usr/sbin/nginx --out docs
//! bindery-bench report --out docs            # rewrite the report from docs/bench/results.json
//! bindery-bench echo --port 9000             # the echo server alone
//! bindery-bench load --port 3500 --path /v1.0/bindings/echo --body '{"operation":"post"}' --rate 1000
//! ```
//!
//! Every load loop is bounded in time and count, and only ever targets 127.0.0.1.

mod hist;
mod input;
mod load;
mod plot;
mod procs;
mod report;
mod servers;
mod suite;
mod targets;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// Benchmarks of bindery against direct clients and the loopback limit.
#[derive(Debug, Parser)]
#[command(name = "bindery-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every scenario; write BENCHMARKS.md, bench/results.json and bench/*.png under --out.
    Suite(suite::SuiteArgs),
    /// Rewrite BENCHMARKS.md and the plots from <out>/bench/results.json.
    Report {
        #[arg(long, default_value = "docs")]
        out: PathBuf,
    },
    /// Serve the echo server on 127.0.0.1 until killed.
    Echo {
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Consume from a broker and deliver to an app, as bindery does, until killed.
    Consume {
        #[arg(long, value_enum)]
        broker: input::Broker,
        /// The queue, topic or subject (NATS: `<stream>.<subject>`).
        #[arg(long)]
        name: String,
        #[arg(long)]
        app_port: u16,
        #[arg(long)]
        route: String,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// One load run against `POST <path>` on 127.0.0.1:<port>.
    Load {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        path: String,
        #[arg(long, default_value = "{}")]
        body: String,
        /// Requests per second (fixed rate); without it, a closed loop.
        #[arg(long)]
        rate: Option<u64>,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bindery-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Suite(args) => {
            let results = runtime()?.block_on(suite::run(&args))?;
            let dir = args.out.join("bench");
            std::fs::create_dir_all(&dir)?;
            std::fs::write(
                dir.join("results.json"),
                serde_json::to_vec_pretty(&results)?,
            )?;
            report::write(&args.out, &results)
        }
        Command::Report { out } => {
            let path = out.join("bench").join("results.json");
            let text = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
            let results: suite::Results = serde_json::from_slice(&text)?;
            report::write(&out, &results)
        }
        Command::Echo { port, threads } => servers::run_echo(port, threads),
        Command::Consume {
            broker,
            name,
            app_port,
            route,
            concurrency,
        } => runtime()?.block_on(input::consume(broker, &name, app_port, &route, concurrency)),
        Command::Load {
            port,
            path,
            body,
            rate,
            connections,
            seconds,
        } => runtime()?.block_on(async move {
            let target = Arc::new(targets::HttpTarget::new(
                SocketAddr::from(([127, 0, 0, 1], port)),
                &path,
                body,
            )?);
            let duration = Duration::from_secs(seconds.min(600));
            let run = match rate {
                Some(r) => load::fixed_rate(target, r, duration, connections).await?,
                None => load::closed_loop(target, connections, duration, 50_000_000).await?,
            };
            eprintln!("{}", serde_json::to_string_pretty(&run)?);
            Ok(())
        }),
    }
}
