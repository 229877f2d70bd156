//! `docs/BENCHMARKS.md` from a [`Results`]: the targets first, then a table per scenario, the
//! plots, the analysis (kept by hand in `crates/bench/analysis.md`) and the method.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::load::Run;
use crate::plot::thousands;
use crate::suite::{
    CONNECTIONS, HIGH_RATE, INPUT_CONCURRENCY, INPUT_RATE, Output, RATE, RATE_WORKERS, Results,
};

/// The hand-written part (where the time goes, what closes each gap), kept beside the crate and
/// read when the report is written, so it can be edited without rebuilding.
const ANALYSIS: &str = "crates/bench/analysis.md";

/// The current UTC time, `2026-11-28 01:23 UTC`.
pub(crate) fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Write `<out>/BENCHMARKS.md` and the plots under `<out>/bench/`.
pub(crate) fn write(out: &Path, r: &Results) -> Result<()> {
    let dir = out.join("bench");
    std::fs::create_dir_all(&dir)?;
    let plots = crate::plot::write_all(&dir, r)?;
    std::fs::write(out.join("BENCHMARKS.md"), render(r, &plots))?;
    eprintln!("bench: wrote {}", out.join("BENCHMARKS.md").display());
    Ok(())
}

fn ms(us: f64) -> String {
    format!("{:.3} ms", us / 1000.0)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn find<'a>(runs: &'a [(String, Run)], label: &str) -> Option<&'a Run> {
    runs.iter().find(|(l, _)| l == label).map(|(_, r)| r)
}

/// One row of the targets table.
struct Target {
    what: String,
    goal: String,
    measured: String,
    met: Option<bool>,
    gap: String,
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "**met**",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

fn targets(r: &Results) -> Vec<Target> {
    let mut t = Vec::new();
    let pair = |pick: fn(&Run) -> f64| -> Option<(f64, f64)> {
        let h = r.http.as_ref()?;
        Some((
            pick(find(&h.rate, "bindery")?),
            pick(find(&h.rate, "direct")?),
        ))
    };
    for (name, pick, limit_us) in [
        (
            "p50",
            (|x: &Run| x.latency.p50_us) as fn(&Run) -> f64,
            100.0,
        ),
        ("p99", |x: &Run| x.latency.p99_us, 300.0),
    ] {
        let both = pair(pick);
        let v = both.map(|(b, d)| b - d);
        t.push(Target {
            what: format!("added latency, HTTP output at {RATE} req/s, {name}"),
            goal: format!("≤ {}", ms(limit_us)),
            // Both figures, so that a difference inside the noise reads as one.
            measured: both
                .map(|(b, d)| format!("{} (bindery {}, direct {})", ms(b - d), ms(b), ms(d)))
                .unwrap_or_default(),
            met: v.map(|v| v <= limit_us),
            gap: v
                .filter(|v| *v > limit_us)
                .map(|v| format!("{} over", ms(v - limit_us)))
                .unwrap_or_default(),
        });
    }
    let vs_nginx = r.http.as_ref().and_then(|h| {
        Some(find(&h.max, "bindery")?.throughput / find(&h.max, "nginx")?.throughput)
    });
    t.push(Target {
        what: format!("HTTP output throughput ({CONNECTIONS} connections) vs nginx"),
        goal: "≥ 0.80×".into(),
        measured: vs_nginx.map(|v| format!("{v:.2}×")).unwrap_or_default(),
        met: vs_nginx.map(|v| v >= 0.8),
        gap: vs_nginx
            .filter(|v| *v < 0.8)
            .map(|v| format!("{:.0} % short", (0.8 - v) / 0.8 * 100.0))
            .unwrap_or_default(),
    });
    for i in &r.inputs {
        let ratio = if i.direct_throughput > 0.0 {
            i.bindery_throughput / i.direct_throughput
        } else {
            0.0
        };
        t.push(Target {
            what: format!("{} input throughput vs a direct consumer", i.broker.label()),
            goal: "≥ 0.90×".into(),
            measured: format!("{ratio:.2}×"),
            met: Some(ratio >= 0.9),
            gap: if ratio < 0.9 {
                format!("{:.0} % short", (0.9 - ratio) / 0.9 * 100.0)
            } else {
                String::new()
            },
        });
    }
    let cpu = r.http.as_ref().and_then(|h| h.cpu_per_1k);
    t.push(Target {
        what: format!("CPU at {RATE} req/s (HTTP output; CPU seconds per 1,000 requests)"),
        goal: "≤ 0.050 core".into(),
        measured: cpu.map(|c| format!("{c:.3} core")).unwrap_or_default(),
        met: cpu.map(|c| c <= 0.05),
        gap: cpu
            .filter(|c| *c > 0.05)
            .map(|c| format!("{:.3} core over", c - 0.05))
            .unwrap_or_default(),
    });
    let fp = r.footprint.as_ref();
    let idle = fp.map(|f| f.idle_rss_bytes);
    t.push(Target {
        what: "resident memory, idle".into(),
        goal: "≤ 10 MB".into(),
        measured: idle.map(mb).unwrap_or_default(),
        met: idle.map(|b| b <= 10_000_000),
        gap: idle
            .filter(|b| *b > 10_000_000)
            .map(|b| format!("{} over", mb(b - 10_000_000)))
            .unwrap_or_default(),
    });
    let high = fp.map(|f| f.rss_at_high_rate_bytes);
    t.push(Target {
        what: format!("resident memory at {} req/s", thousands(HIGH_RATE as f64)),
        goal: "≤ 25 MB".into(),
        measured: high.map(mb).unwrap_or_default(),
        met: high.map(|b| b <= 25_000_000),
        gap: high
            .filter(|b| *b > 25_000_000)
            .map(|b| format!("{} over", mb(b - 25_000_000)))
            .unwrap_or_default(),
    });
    let ready = fp.and_then(|f| median(&f.ready_ms));
    t.push(Target {
        what: "start to `/v1.0/healthz/outbound` answering 204 (median)".into(),
        goal: "≤ 50 ms".into(),
        measured: ready.map(|v| format!("{v:.1} ms")).unwrap_or_default(),
        met: ready.map(|v| v <= 50.0),
        gap: ready
            .filter(|v| *v > 50.0)
            .map(|v| format!("{:.1} ms over", v - 50.0))
            .unwrap_or_default(),
    });
    let size = fp.map(|f| f.binary_bytes);
    t.push(Target {
        what: "release binary, every binding".into(),
        goal: "≤ 40 MB".into(),
        measured: size.map(mb).unwrap_or_default(),
        met: size.map(|b| b <= 40_000_000),
        gap: size
            .filter(|b| *b > 40_000_000)
            .map(|b| format!("{} over", mb(b - 40_000_000)))
            .unwrap_or_default(),
    });
    let slim = fp.and_then(|f| f.slim_binary_bytes);
    t.push(Target {
        what: "slim build (`binding-http,binding-cron`)".into(),
        goal: "builds, smaller".into(),
        measured: slim.map(mb).unwrap_or_default(),
        met: slim.map(|s| size.is_some_and(|b| s < b)),
        gap: String::new(),
    });
    t
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    Some(s[s.len() / 2])
}

fn output_tables(md: &mut String, o: &Output, what: &str) {
    let direct = find(&o.rate, "direct");
    let nginx = find(&o.rate, "nginx");
    let _ = writeln!(
        md,
        "At {RATE} req/s (fixed rate, {RATE_WORKERS} connections; latency from the intended send time):\n"
    );
    let _ = writeln!(
        md,
        "| path | p50 | p90 | p99 | p99.9 | max | added p50 | added p99 | added p99.9 | errors |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (label, run) in &o.rate {
        let l = &run.latency;
        let added = |pick: fn(&crate::hist::Summary) -> f64| match direct {
            Some(d) if label != "direct" => ms(pick(l) - pick(&d.latency)),
            _ => "—".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            path_label(label, what),
            ms(l.p50_us),
            ms(l.p90_us),
            ms(l.p99_us),
            ms(l.p999_us),
            ms(l.max_us),
            added(|s| s.p50_us),
            added(|s| s.p99_us),
            added(|s| s.p999_us),
            run.errors
        );
    }
    if let (Some(n), Some(b)) = (nginx, find(&o.rate, "bindery")) {
        let _ = writeln!(
            md,
            "\nbindery minus nginx: p50 {}, p99 {}, p99.9 {}.",
            ms(b.latency.p50_us - n.latency.p50_us),
            ms(b.latency.p99_us - n.latency.p99_us),
            ms(b.latency.p999_us - n.latency.p999_us)
        );
    }
    if let Some(c) = o.cpu_per_1k {
        let _ = writeln!(
            md,
            "\nbindery's CPU during its fixed-rate run: {c:.3} CPU seconds per 1,000 requests ({c:.3} core at {RATE} req/s)."
        );
    }
    let _ = writeln!(
        md,
        "\nMaximum throughput ({CONNECTIONS} connections, closed loop):\n"
    );
    let _ = writeln!(
        md,
        "| path | req/s | vs direct | vs nginx | p50 | p99 | errors |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
    let dmax = find(&o.max, "direct").map(|r| r.throughput);
    let nmax = find(&o.max, "nginx").map(|r| r.throughput);
    for (label, run) in &o.max {
        let ratio = |base: Option<f64>| {
            base.filter(|b| *b > 0.0)
                .map(|b| format!("{:.2}×", run.throughput / b))
                .unwrap_or_else(|| "—".into())
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            path_label(label, what),
            thousands(run.throughput),
            ratio(dmax),
            ratio(nmax),
            ms(run.latency.p50_us),
            ms(run.latency.p99_us),
            run.errors
        );
    }
}

fn path_label(label: &str, what: &str) -> String {
    match label {
        "direct" if what == "redis" => "Redis client (`redis` crate), direct".into(),
        "direct" => "client → echo server (direct)".into(),
        "nginx" => "client → nginx → echo server".into(),
        "bindery" if what == "grpc" => {
            "client → bindery gRPC `InvokeBinding` → `bindings.http` → echo server".into()
        }
        "bindery" if what == "redis" => {
            "client → bindery HTTP API → `bindings.redis` → Redis".into()
        }
        "bindery" => "client → bindery HTTP API → `bindings.http` → echo server".into(),
        other => other.into(),
    }
}

fn render(r: &Results, plots: &[String]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "bindery against the direct client and the loopback limit, side by side. Each scenario runs \
         bindery and its baseline in the same run, on the same machine, one after the other. \
         Regenerate this page with `scripts/bench.sh` (it installs nginx and a font, builds the \
         release binaries and `crates/bench`, runs every scenario and rewrites this file and \
         `docs/bench/`). The figures are from one run; the raw numbers are in \
         [`bench/results.json`](bench/results.json).\n"
    );
    let _ = writeln!(md, "## The run\n");
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| date | {} |", r.started);
    let _ = writeln!(md, "| machine | {} cores, {} |", r.cores, r.cpu);
    let _ = writeln!(
        md,
        "| load average (1, 5, 15 min) | before: {}; after: {} |",
        r.load_before, r.load_after
    );
    if !r.machine_note.is_empty() {
        let _ = writeln!(md, "| what else ran | {} |", r.machine_note);
    }
    let _ = writeln!(md, "| bindery | {} (release build) |", r.bindery_version);
    if let Some(n) = &r.nginx_version {
        let _ = writeln!(
            md,
            "| nginx | {} with `worker_processes {}` (= {} workers here, as many as bindery's runtime threads) |",
            n, r.nginx_workers, r.cores
        );
    }
    let _ = writeln!(md, "| run time | {:.0} s |\n", r.duration_s);
    let _ = writeln!(
        md,
        "Everything (load generator, bindery, the echo server, nginx, the brokers) shares the same \
         {} cores, so every figure includes the cost of the others; the comparisons are fair \
         because the baselines share them in the same way.\n",
        r.cores
    );

    let _ = writeln!(md, "## Targets\n");
    let _ = writeln!(md, "| target | goal | measured | verdict | gap |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for t in targets(r) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            t.what,
            t.goal,
            t.measured,
            verdict(t.met),
            t.gap
        );
    }
    let _ = writeln!(
        md,
        "\nWhere the time goes for each miss, and what would close it, is under [Analysis](#analysis).\n"
    );

    if plots.iter().any(|p| p == "latency.png") {
        let _ = writeln!(md, "![latency percentiles](bench/latency.png)\n");
    }
    if plots.iter().any(|p| p == "throughput.png") {
        let _ = writeln!(md, "![throughput](bench/throughput.png)\n");
    }

    if let Some(h) = &r.http {
        let _ = writeln!(
            md,
            "## Output over HTTP: `bindings.http` to an echo server\n"
        );
        let _ = writeln!(
            md,
            "The client posts `{{\"operation\":\"post\",\"data\":<{} bytes of JSON>,\"metadata\":{{\"path\":\"/orders\"}}}}` \
             to `/v1.0/bindings/echo`; bindery posts the data to the echo server (a hyper server in \
             `crates/bench`) and returns its answer. The baselines post the same data straight to the \
             echo server, and through nginx as a reverse proxy with upstream keep-alive.\n",
            crate::suite::DATA.len()
        );
        output_tables(&mut md, h, "http");
        let _ = writeln!(md);
    }
    if let Some(g) = &r.grpc {
        let _ = writeln!(
            md,
            "## Output over gRPC: `InvokeBinding` to the same echo server\n"
        );
        let _ = writeln!(
            md,
            "A tonic client generated from the `dapr` crate (`dapr_client::DaprClient`) calls \
             `InvokeBinding` on one HTTP/2 connection, as a Dapr SDK does; the baselines are the same \
             HTTP runs as above, taken in this run.\n"
        );
        output_tables(&mut md, g, "grpc");
        let _ = writeln!(md);
    }
    if let Some(rd) = &r.redis {
        let _ = writeln!(md, "## Output to Redis: `create`\n");
        let _ = writeln!(
            md,
            "bindery's `create` (`SET key data`) through the HTTP API against the `redis` crate sending \
             the same `SET` over one multiplexed connection shared by as many tasks as bindery's \
             clients use connections ({RATE_WORKERS} at the fixed rate, {CONNECTIONS} at the maximum).\n"
        );
        output_tables(&mut md, rd, "redis");
        let _ = writeln!(md);
    }

    let _ = writeln!(md, "## Input: broker → bindery → app\n");
    if r.inputs.is_empty() {
        let _ = writeln!(md, "No input scenario ran.\n");
    } else {
        let _ = writeln!(
            md,
            "A backlog of messages is published first; then bindery (or the direct consumer) starts \
             and delivers each to a no-op HTTP app (`POST /bench-in`, answered 200) and acknowledges \
             it. Throughput is the rate at which the app saw the backlog arrive. Then, with the \
             consumer caught up, messages are published at {INPUT_RATE} msg/s and the app records \
             each one's end-to-end latency from the publish timestamp in its payload. The direct \
             consumer (`bindery-bench consume`) does the same HTTP call and acknowledgement with \
             the same client library bindery uses, with {INPUT_CONCURRENCY} deliveries in flight \
             (RabbitMQ prefetch, NATS JetStream pull batch and concurrency) or one at a time in \
             offset order (Kafka, one partition), as bindery is configured here.\n"
        );
        let _ = writeln!(
            md,
            "| broker | bindery msg/s | direct msg/s | ratio | bindery e2e p50 / p99 / p99.9 | direct e2e p50 / p99 / p99.9 | CPU s per 1,000 msgs: bindery / direct |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
        for i in &r.inputs {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.2}× | {} / {} / {} | {} / {} / {} | {:.3} / {:.3} |",
                i.broker.label(),
                thousands(i.bindery_throughput),
                thousands(i.direct_throughput),
                if i.direct_throughput > 0.0 {
                    i.bindery_throughput / i.direct_throughput
                } else {
                    0.0
                },
                ms(i.bindery_latency.p50_us),
                ms(i.bindery_latency.p99_us),
                ms(i.bindery_latency.p999_us),
                ms(i.direct_latency.p50_us),
                ms(i.direct_latency.p99_us),
                ms(i.direct_latency.p999_us),
                i.bindery_cpu_per_1k,
                i.direct_cpu_per_1k
            );
        }
        let _ = writeln!(md);
    }
    if r.missing_inputs.is_empty() && !r.inputs.is_empty() {
        let _ = writeln!(
            md,
            "Every input binding of these scenarios ({}) was in `bindery::registry()` for this run.\n",
            r.inputs
                .iter()
                .map(|i| format!("`{}`", i.broker.binding_type()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !r.missing_inputs.is_empty() {
        let _ = writeln!(
            md,
            "Not run: {} (not in `bindery::registry()` when this ran, or the scenario failed as noted).\n",
            r.missing_inputs.join(", ")
        );
    }

    if let Some(fp) = &r.footprint {
        let _ = writeln!(md, "## Footprint\n");
        let _ = writeln!(
            md,
            "| | every binding | slim (`binding-http,binding-cron`) |"
        );
        let _ = writeln!(md, "|---|---:|---:|");
        let _ = writeln!(
            md,
            "| release binary | {} | {} |",
            mb(fp.binary_bytes),
            fp.slim_binary_bytes.map(mb).unwrap_or_else(|| "—".into())
        );
        let _ = writeln!(
            md,
            "| resident memory, idle (one `bindings.http` and one `bindings.redis`; slim: `bindings.http`) | {} | {} |",
            mb(fp.idle_rss_bytes),
            fp.slim_idle_rss_bytes.map(mb).unwrap_or_else(|| "—".into())
        );
        if fp.idle_rss_anon_bytes > 0 {
            let _ = writeln!(
                md,
                "| … of which anonymous (heap, stacks) / file-backed (the binary's pages) | {} / {} | |",
                mb(fp.idle_rss_anon_bytes),
                mb(fp.idle_rss_file_bytes)
            );
        }
        let _ = writeln!(
            md,
            "| start to outbound-ready, median of {} (min – max) | {} | {} |",
            fp.ready_ms.len(),
            range(&fp.ready_ms),
            range(&fp.slim_ready_ms)
        );
        let _ = writeln!(
            md,
            "| resident memory at {} req/s (HTTP output; peak of 100 ms samples) | {} | |",
            thousands(HIGH_RATE as f64),
            mb(fp.rss_at_high_rate_bytes)
        );
        let _ = writeln!(
            md,
            "| CPU seconds per 1,000 requests at {} req/s (reached {} req/s) | {:.3} | |\n",
            thousands(HIGH_RATE as f64),
            thousands(fp.high_rate_achieved),
            fp.cpu_per_1k_at_high_rate
        );
        if plots.iter().any(|p| p == "memory.png") {
            let _ = writeln!(md, "![memory](bench/memory.png)\n");
        }
    }

    let _ = writeln!(md, "## Analysis\n");
    let analysis = std::fs::read_to_string(ANALYSIS)
        .unwrap_or_else(|e| format!("({ANALYSIS} could not be read: {e})"));
    let _ = writeln!(md, "{}", analysis.trim());
    let _ = writeln!(md);
    let _ = writeln!(md, "## Method\n");
    let _ = writeln!(
        md,
        "* **Fixed rate (open loop).** A pacer thread schedules request *i* at `start + i / rate` \
         and hands it to connection *i mod {RATE_WORKERS}*; latency counts from that scheduled \
         time, not from when the request left, so a stall shows up in full instead of slowing \
         the generator down (no coordinated omission). The pacer's own lateness (sleep, then \
         yield until due) is in every fixed-rate figure alike; the runs record it as `pacer_lag` \
         in `results.json`.\n\
         * **Closed loop.** {CONNECTIONS} connections, each sending its next request when the \
         last one was answered, after a one-second warm-up.\n\
         * **Histograms.** HdrHistogram (`hdrhistogram` crate), 1 ns to 60 s, three significant \
         digits; every worker keeps its own and they are merged at the end.\n\
         * **Added latency** is bindery's percentile minus the direct path's percentile at the \
         same rate.\n\
         * **CPU** is `utime + stime` of the bindery process from `/proc/<pid>/stat` across a \
         run, divided by thousands of requests served in it; at {RATE} req/s that is also the \
         share of a core used.\n\
         * **Memory** is `VmRSS` from `/proc/<pid>/status`.\n\
         * **Start-up** is the time from spawning the process to the first `204` from \
         `GET /v1.0/healthz/outbound`, polled every 0.5 ms over fresh connections.\n\
         * Everything listens on and talks to 127.0.0.1 only, and every loop is bounded in time \
         and count.\n"
    );
    md
}

fn range(v: &[f64]) -> String {
    match median(v) {
        None => "—".into(),
        Some(m) => {
            let lo = v.iter().copied().fold(f64::MAX, f64::min);
            let hi = v.iter().copied().fold(0.0f64, f64::max);
            format!("{m:.1} ms ({lo:.1} – {hi:.1})")
        }
    }
}
