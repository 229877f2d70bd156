//! Every scenario, each run against its baseline in the same run, into one [`Results`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::input::{self, Broker};
use crate::load::{self, Run, Target};
use crate::procs::{self, Child};
use crate::servers::{self, Sink};
use crate::targets::{GrpcTarget, HttpTarget, RedisTarget};

/// How the suite is run.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SuiteArgs {
    /// The release `bindery` built with every binding.
    #[arg(long)]
    pub(crate) bindery: PathBuf,
    /// The slim release build (`--no-default-features --features binding-http,binding-cron`).
    #[arg(long)]
    pub(crate) slim: Option<PathBuf>,
    /// nginx, for the reverse-proxy baseline.
    #[arg(long)]
    pub(crate) nginx: Option<PathBuf>,
    /// Where `BENCHMARKS.md` and `bench/` go.
    #[arg(long, default_value = "docs")]
    pub(crate) out: PathBuf,
    /// Seconds of each fixed-rate run.
    #[arg(long, default_value_t = 15)]
    pub(crate) rate_seconds: u64,
    /// Seconds of each maximum-throughput run.
    #[arg(long, default_value_t = 10)]
    pub(crate) max_seconds: u64,
    /// Messages in each input backlog.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) backlog: u64,
    /// Only these scenarios (http, grpc, redis, input, footprint); all when empty.
    #[arg(long, value_delimiter = ',')]
    pub(crate) only: Vec<String>,
    /// A sentence on what else the machine was doing, for the report.
    #[arg(long, default_value = "")]
    pub(crate) machine_note: String,
}

/// Requests per second of the fixed-rate runs.
pub(crate) const RATE: u64 = 1_000;
/// Connections of the maximum-throughput runs.
pub(crate) const CONNECTIONS: usize = 64;
/// Connections the fixed-rate runs spread their requests over.
pub(crate) const RATE_WORKERS: usize = 16;
/// Requests per second of the memory-under-load run.
pub(crate) const HIGH_RATE: u64 = 10_000;
/// Concurrent deliveries of the input scenarios (RabbitMQ prefetch, NATS concurrency; Kafka
/// delivers one partition in order).
pub(crate) const INPUT_CONCURRENCY: usize = 16;
/// Input messages per second of the end-to-end latency runs.
pub(crate) const INPUT_RATE: u64 = 1_000;

/// The request body of the output scenarios: the data `bindings.http` posts to the echo server.
pub(crate) const DATA: &str = r#"{"order":42,"customer":"c-1001","items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}],"note":"benchmark payload"}"#;

/// One output scenario: the same load against bindery and its baselines.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Output {
    /// `(label, fixed-rate run)`, the baselines first.
    pub(crate) rate: Vec<(String, Run)>,
    /// `(label, maximum-throughput run)`.
    pub(crate) max: Vec<(String, Run)>,
    /// bindery's CPU seconds per 1,000 requests during its fixed-rate run.
    pub(crate) cpu_per_1k: Option<f64>,
}

/// One input scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Input {
    pub(crate) broker: Broker,
    /// Messages per second draining a backlog: bindery, direct.
    pub(crate) bindery_throughput: f64,
    pub(crate) direct_throughput: f64,
    /// End-to-end latency at [`INPUT_RATE`]: bindery, direct.
    pub(crate) bindery_latency: crate::hist::Summary,
    pub(crate) direct_latency: crate::hist::Summary,
    pub(crate) bindery_cpu_per_1k: f64,
    pub(crate) direct_cpu_per_1k: f64,
}

/// Size, memory, CPU and start-up time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Footprint {
    pub(crate) binary_bytes: u64,
    pub(crate) slim_binary_bytes: Option<u64>,
    pub(crate) idle_rss_bytes: u64,
    /// The idle RSS split: anonymous (heap, stacks) and file-backed (the binary's own pages).
    #[serde(default)]
    pub(crate) idle_rss_anon_bytes: u64,
    #[serde(default)]
    pub(crate) idle_rss_file_bytes: u64,
    pub(crate) slim_idle_rss_bytes: Option<u64>,
    pub(crate) rss_at_high_rate_bytes: u64,
    /// Throughput actually reached in the high-rate run.
    pub(crate) high_rate_achieved: f64,
    pub(crate) cpu_per_1k_at_high_rate: f64,
    /// Milliseconds from spawn to `/v1.0/healthz/outbound` answering 204, every try.
    pub(crate) ready_ms: Vec<f64>,
    pub(crate) slim_ready_ms: Vec<f64>,
    /// `(seconds since start, RSS bytes, phase)` through idle, 1k and 10k req/s.
    pub(crate) rss_timeline: Vec<(f64, u64, String)>,
}

/// Everything one run of the suite measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Results {
    pub(crate) started: String,
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    pub(crate) load_before: String,
    pub(crate) load_after: String,
    pub(crate) machine_note: String,
    pub(crate) bindery_version: String,
    pub(crate) nginx_version: Option<String>,
    pub(crate) nginx_workers: String,
    pub(crate) duration_s: f64,
    pub(crate) http: Option<Output>,
    pub(crate) grpc: Option<Output>,
    pub(crate) redis: Option<Output>,
    pub(crate) inputs: Vec<Input>,
    /// Input bindings this build's registry does not have.
    pub(crate) missing_inputs: Vec<String>,
    pub(crate) footprint: Option<Footprint>,
}

/// What nginx is told about its workers; the report says the same.
pub(crate) const NGINX_WORKERS: &str = "auto";

/// A bindery process on free ports with a resources folder of its own.
struct Bindery {
    child: Child,
    http: u16,
    grpc: u16,
    _dir: tempfile::TempDir,
}

impl Bindery {
    /// Start `binary` with `components` (YAML), wait until outbound-ready; the time it took.
    async fn start(
        binary: &Path,
        components: &str,
        app_port: Option<u16>,
        logs: &Path,
        name: &str,
    ) -> Result<(Self, Duration)> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("components.yaml"), components)?;
        let http = procs::free_port()?;
        let grpc = procs::free_port()?;
        let mut args = vec![
            "--app-id".to_owned(),
            "bench".to_owned(),
            "--dapr-http-port".to_owned(),
            http.to_string(),
            "--dapr-grpc-port".to_owned(),
            grpc.to_string(),
            "--resources-path".to_owned(),
            dir.path().display().to_string(),
            "--log-level".to_owned(),
            "warn".to_owned(),
        ];
        if let Some(p) = app_port {
            args.push("--app-port".to_owned());
            args.push(p.to_string());
        }
        let started = Instant::now();
        let mut child = Child::spawn(name, binary, &args, &[], logs)?;
        let ready =
            procs::wait_status(http, "/v1.0/healthz/outbound", 204, Duration::from_secs(20))
                .await
                .map(|_| started.elapsed());
        child.check_alive()?;
        let ready = ready?;
        Ok((
            Bindery {
                child,
                http,
                grpc,
                _dir: dir,
            },
            ready,
        ))
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http))
    }
}

fn component(name: &str, kind: &str, metadata: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: {kind}\n  version: v1\n  metadata:\n{metadata}---\n"
    )
}

fn log(msg: impl std::fmt::Display) {
    eprintln!("bench: {msg}");
}

/// A fixed-rate run then note it.
async fn rate_run<T: Target>(label: &str, target: Arc<T>, secs: u64) -> Result<Run> {
    log(format_args!("{label}: {RATE} req/s for {secs}s"));
    let run = load::fixed_rate(target, RATE, Duration::from_secs(secs), RATE_WORKERS).await?;
    log(format_args!(
        "  p50 {:.1} µs  p99 {:.1} µs  p99.9 {:.1} µs  ({} ok, {} errors{})",
        run.latency.p50_us,
        run.latency.p99_us,
        run.latency.p999_us,
        run.ok,
        run.errors,
        run.first_error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    ));
    Ok(run)
}

async fn max_run<T: Target>(label: &str, target: Arc<T>, secs: u64) -> Result<Run> {
    log(format_args!(
        "{label}: {CONNECTIONS} connections for {secs}s"
    ));
    // A short warm-up: connections, pools and caches on both sides.
    load::closed_loop(
        Arc::clone(&target),
        CONNECTIONS,
        Duration::from_secs(1),
        1_000_000,
    )
    .await?;
    let run = load::closed_loop(
        target,
        CONNECTIONS,
        Duration::from_secs(secs),
        secs * 200_000,
    )
    .await?;
    log(format_args!(
        "  {:.0} req/s  p50 {:.1} µs  p99 {:.1} µs  ({} errors{})",
        run.throughput,
        run.latency.p50_us,
        run.latency.p99_us,
        run.errors,
        run.first_error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    ));
    Ok(run)
}

/// nginx as a reverse proxy in front of the echo server, on loopback, in the foreground.
fn start_nginx(nginx: &Path, upstream: u16, dir: &Path) -> Result<(Child, u16)> {
    let port = procs::free_port()?;
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes {NGINX_WORKERS};\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log warn;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  upstream echo {{ server 127.0.0.1:{upstream}; keepalive 128; keepalive_requests 1000000; }}\n  server {{\n    listen 127.0.0.1:{port};\n    keepalive_requests 1000000;\n    location / {{\n      proxy_pass http://echo;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf)?;
    let child = Child::spawn(
        "nginx",
        nginx,
        &[
            "-p".to_owned(),
            d.to_string(),
            "-c".to_owned(),
            path.display().to_string(),
        ],
        &[],
        dir,
    )?;
    Ok((child, port))
}

fn version_of(program: &Path, flag: &str) -> Option<String> {
    let out = std::process::Command::new(program)
        .arg(flag)
        .output()
        .ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    Some(String::from_utf8_lossy(&text).trim().to_owned())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_default()
}

/// Run the scenarios `args` asks for.
pub(crate) async fn run(args: &SuiteArgs) -> Result<Results> {
    let wants = |s: &str| args.only.is_empty() || args.only.iter().any(|o| o == s);
    let started = Instant::now();
    let work = tempfile::tempdir()?;
    let logs = work.path();
    log(format_args!("logs in {}", logs.display()));
    let exe = std::env::current_exe()?;
    let mut results = Results {
        started: crate::report::utc_now(),
        cpu: cpu_model(),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before: procs::loadavg(),
        machine_note: args.machine_note.clone(),
        bindery_version: version_of(&args.bindery, "--version").unwrap_or_default(),
        nginx_version: args.nginx.as_deref().and_then(|n| version_of(n, "-v")),
        nginx_workers: NGINX_WORKERS.to_owned(),
        ..Results::default()
    };

    // The echo server every HTTP scenario ends at.
    let echo_port = procs::free_port()?;
    let _echo = Child::spawn(
        "echo",
        &exe,
        &[
            "echo".to_owned(),
            "--port".to_owned(),
            echo_port.to_string(),
        ],
        &[],
        logs,
    )?;
    procs::wait_port(echo_port, Duration::from_secs(10)).await?;
    let echo_addr = SocketAddr::from(([127, 0, 0, 1], echo_port));

    let nginx = match &args.nginx {
        Some(n) if wants("http") || wants("grpc") => {
            let (child, port) = start_nginx(n, echo_port, logs)?;
            procs::wait_port(port, Duration::from_secs(10)).await?;
            Some((child, port))
        }
        _ => None,
    };

    let components = format!(
        "{}{}",
        component(
            "echo",
            "bindings.http",
            &format!("    - name: url\n      value: \"http://127.0.0.1:{echo_port}\"\n")
        ),
        component(
            "cache",
            "bindings.redis",
            "    - name: redisHost\n      value: \"127.0.0.1:6379\"\n"
        )
    );

    if wants("http") || wants("grpc") || wants("redis") {
        let (mut bindery, _) =
            Bindery::start(&args.bindery, &components, None, logs, "bindery-output").await?;
        let direct = Arc::new(HttpTarget::new(echo_addr, "/orders", DATA)?);
        let via_nginx = match &nginx {
            Some((_, port)) => Some(Arc::new(HttpTarget::new(
                SocketAddr::from(([127, 0, 0, 1], *port)),
                "/orders",
                DATA,
            )?)),
            None => None,
        };
        let envelope =
            format!(r#"{{"operation":"post","data":{DATA},"metadata":{{"path":"/orders"}}}}"#);
        let through_http = Arc::new(HttpTarget::new(
            bindery.addr(),
            "/v1.0/bindings/echo",
            envelope,
        )?);
        let through_grpc = Arc::new(
            GrpcTarget::new(
                bindery.grpc,
                "echo",
                "post",
                DATA.as_bytes(),
                HashMap::from([("path".to_owned(), "/orders".to_owned())]),
            )
            .await?,
        );
        // Warm every path up once before anything is measured.
        for _ in 0..2 {
            load::closed_loop(Arc::clone(&direct), 8, Duration::from_millis(500), 2_000).await?;
            load::closed_loop(
                Arc::clone(&through_http),
                8,
                Duration::from_millis(500),
                2_000,
            )
            .await?;
            load::closed_loop(
                Arc::clone(&through_grpc),
                8,
                Duration::from_millis(500),
                2_000,
            )
            .await?;
        }

        let secs = args.rate_seconds;
        let mut http = Output::default();
        let mut grpc = Output::default();
        if wants("http") || wants("grpc") {
            // Fixed rate: baselines and bindery back to back.
            let d = rate_run("direct to echo", Arc::clone(&direct), secs).await?;
            http.rate.push(("direct".into(), d.clone()));
            grpc.rate.push(("direct".into(), d));
            if let Some(t) = &via_nginx {
                let n = rate_run("nginx → echo", Arc::clone(t), secs).await?;
                http.rate.push(("nginx".into(), n.clone()));
                grpc.rate.push(("nginx".into(), n));
            }
            if wants("http") {
                let cpu0 = bindery.child.cpu_seconds()?;
                let b = rate_run("bindery HTTP → echo", Arc::clone(&through_http), secs).await?;
                let cpu = bindery.child.cpu_seconds()? - cpu0;
                http.cpu_per_1k = Some(cpu / (b.ok.max(1) as f64 / 1000.0));
                http.rate.push(("bindery".into(), b));
            }
            if wants("grpc") {
                let cpu0 = bindery.child.cpu_seconds()?;
                let b = rate_run("bindery gRPC → echo", Arc::clone(&through_grpc), secs).await?;
                let cpu = bindery.child.cpu_seconds()? - cpu0;
                grpc.cpu_per_1k = Some(cpu / (b.ok.max(1) as f64 / 1000.0));
                grpc.rate.push(("bindery".into(), b));
            }
            // Maximum throughput.
            let ms = args.max_seconds;
            let d = max_run("direct to echo", Arc::clone(&direct), ms).await?;
            http.max.push(("direct".into(), d.clone()));
            grpc.max.push(("direct".into(), d));
            if let Some(t) = &via_nginx {
                let n = max_run("nginx → echo", Arc::clone(t), ms).await?;
                http.max.push(("nginx".into(), n.clone()));
                grpc.max.push(("nginx".into(), n));
            }
            if wants("http") {
                let b = max_run("bindery HTTP → echo", Arc::clone(&through_http), ms).await?;
                http.max.push(("bindery".into(), b));
            }
            if wants("grpc") {
                let b = max_run("bindery gRPC → echo", Arc::clone(&through_grpc), ms).await?;
                grpc.max.push(("bindery".into(), b));
            }
            if wants("http") {
                results.http = Some(http);
            }
            if wants("grpc") {
                results.grpc = Some(grpc);
            }
        }
        if wants("redis") {
            let mut redis = Output::default();
            let direct = Arc::new(
                RedisTarget::new("redis://127.0.0.1:6379", "bindery-bench:key", DATA).await?,
            );
            let envelope = format!(
                r#"{{"operation":"create","data":{DATA},"metadata":{{"key":"bindery-bench:key"}}}}"#
            );
            let through = Arc::new(HttpTarget::new(
                bindery.addr(),
                "/v1.0/bindings/cache",
                envelope,
            )?);
            load::closed_loop(Arc::clone(&through), 8, Duration::from_millis(500), 2_000).await?;
            let d = rate_run("direct to Redis", Arc::clone(&direct), secs).await?;
            redis.rate.push(("direct".into(), d));
            let cpu0 = bindery.child.cpu_seconds()?;
            let b = rate_run("bindery HTTP → Redis", Arc::clone(&through), secs).await?;
            let cpu = bindery.child.cpu_seconds()? - cpu0;
            redis.cpu_per_1k = Some(cpu / (b.ok.max(1) as f64 / 1000.0));
            redis.rate.push(("bindery".into(), b));
            let d = max_run("direct to Redis", direct, args.max_seconds).await?;
            redis.max.push(("direct".into(), d));
            let b = max_run("bindery HTTP → Redis", through, args.max_seconds).await?;
            redis.max.push(("bindery".into(), b));
            results.redis = Some(redis);
        }
        bindery.child.check_alive()?;
        bindery.child.stop(Duration::from_secs(5));
    }
    drop(nginx);

    if wants("footprint") {
        results.footprint = Some(footprint(args, &components, echo_addr, logs).await?);
    }

    if wants("input") {
        let registry = bindery::registry();
        let (app_port, sink) = servers::start_sink()?;
        for broker in Broker::ALL {
            if registry.get(broker.binding_type()).is_none() {
                results
                    .missing_inputs
                    .push(broker.binding_type().to_owned());
                continue;
            }
            match input_scenario(args, broker, &exe, app_port, &sink, logs).await {
                Ok(r) => results.inputs.push(r),
                Err(e) => {
                    log(format_args!("{}: {e:#}", broker.label()));
                    results
                        .missing_inputs
                        .push(format!("{} (failed: {e:#})", broker.binding_type()));
                }
            }
        }
    }

    results.load_after = procs::loadavg();
    results.duration_s = started.elapsed().as_secs_f64();
    Ok(results)
}

/// Binary sizes, start-up time, idle memory, memory and CPU under load.
async fn footprint(
    args: &SuiteArgs,
    components: &str,
    echo: SocketAddr,
    logs: &Path,
) -> Result<Footprint> {
    let mut fp = Footprint {
        binary_bytes: std::fs::metadata(&args.bindery)?.len(),
        slim_binary_bytes: args
            .slim
            .as_ref()
            .and_then(|s| std::fs::metadata(s).ok())
            .map(|m| m.len()),
        ..Footprint::default()
    };
    // Start-up: only the echo binding (the Redis one would add a connection to Redis).
    let http_only = component(
        "echo",
        "bindings.http",
        &format!("    - name: url\n      value: \"http://{echo}\"\n"),
    );
    for i in 0..7 {
        let (mut b, ready) = Bindery::start(
            &args.bindery,
            &http_only,
            None,
            logs,
            &format!("bindery-start-{i}"),
        )
        .await?;
        fp.ready_ms.push(ready.as_secs_f64() * 1000.0);
        b.child.stop(Duration::from_secs(5));
        if let Some(slim) = &args.slim {
            let (mut b, ready) =
                Bindery::start(slim, &http_only, None, logs, &format!("slim-start-{i}")).await?;
            fp.slim_ready_ms.push(ready.as_secs_f64() * 1000.0);
            if i == 0 {
                tokio::time::sleep(Duration::from_secs(2)).await;
                fp.slim_idle_rss_bytes = Some(b.child.rss_bytes()?);
            }
            b.child.stop(Duration::from_secs(5));
        }
    }
    log(format_args!("outbound-ready in {:?} ms", fp.ready_ms));

    let (mut b, _) =
        Bindery::start(&args.bindery, components, None, logs, "bindery-footprint").await?;
    let pid = b.child.pid();
    let timeline = Arc::new(std::sync::Mutex::new(Vec::new()));
    let phase = Arc::new(std::sync::Mutex::new("idle".to_owned()));
    let t0 = Instant::now();
    let sampler = {
        let timeline = Arc::clone(&timeline);
        let phase = Arc::clone(&phase);
        tokio::spawn(async move {
            loop {
                let Ok(rss) = procs::rss_bytes(pid) else {
                    break;
                };
                let p = phase.lock().map(|p| p.clone()).unwrap_or_default();
                if let Ok(mut t) = timeline.lock() {
                    t.push((t0.elapsed().as_secs_f64(), rss, p));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    fp.idle_rss_bytes = b.child.rss_bytes()?;
    fp.idle_rss_anon_bytes = procs::status_bytes(pid, "RssAnon:").unwrap_or(0);
    fp.idle_rss_file_bytes = procs::status_bytes(pid, "RssFile:").unwrap_or(0);
    let envelope =
        format!(r#"{{"operation":"post","data":{DATA},"metadata":{{"path":"/orders"}}}}"#);
    let target = Arc::new(HttpTarget::new(b.addr(), "/v1.0/bindings/echo", envelope)?);
    if let Ok(mut p) = phase.lock() {
        *p = format!("{RATE} req/s");
    }
    load::fixed_rate(
        Arc::clone(&target),
        RATE,
        Duration::from_secs(5),
        RATE_WORKERS,
    )
    .await?;
    if let Ok(mut p) = phase.lock() {
        *p = format!("{HIGH_RATE} req/s");
    }
    let cpu0 = b.child.cpu_seconds()?;
    let high = load::fixed_rate(
        Arc::clone(&target),
        HIGH_RATE,
        Duration::from_secs(args.max_seconds.max(5)),
        CONNECTIONS,
    )
    .await?;
    let cpu = b.child.cpu_seconds()? - cpu0;
    fp.cpu_per_1k_at_high_rate = cpu / (high.ok.max(1) as f64 / 1000.0);
    fp.high_rate_achieved = high.throughput;
    if let Ok(mut p) = phase.lock() {
        *p = "idle".to_owned();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.child.check_alive()?;
    b.child.stop(Duration::from_secs(5));
    sampler.abort();
    fp.rss_timeline = timeline.lock().map(|t| t.clone()).unwrap_or_default();
    fp.rss_at_high_rate_bytes = fp
        .rss_timeline
        .iter()
        .filter(|(_, _, p)| p.starts_with(&HIGH_RATE.to_string()))
        .map(|(_, r, _)| *r)
        .max()
        .unwrap_or(0);
    log(format_args!(
        "idle RSS {} KiB, at {HIGH_RATE} req/s {} KiB (reached {:.0} req/s)",
        fp.idle_rss_bytes / 1024,
        fp.rss_at_high_rate_bytes / 1024,
        fp.high_rate_achieved
    ));
    Ok(fp)
}

/// The consumer of an input scenario: bindery (with its resources folder) or a direct one.
enum Proc {
    Bindery(Bindery),
    Direct(Child),
}

impl Proc {
    fn child(&mut self) -> &mut Child {
        match self {
            Proc::Bindery(b) => &mut b.child,
            Proc::Direct(c) => c,
        }
    }
}

/// Wait until the app has seen `count` events (or `timeout`).
async fn wait_for(sink: &Sink, count: u64, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while sink.count() < count {
        if start.elapsed() > timeout {
            bail!(
                "the app received {} of {count} events within {timeout:?}",
                sink.count()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Backlog throughput and end-to-end latency, through bindery then a direct consumer.
async fn input_scenario(
    args: &SuiteArgs,
    broker: Broker,
    exe: &Path,
    app_port: u16,
    sink: &Arc<Sink>,
    logs: &Path,
) -> Result<Input> {
    let name = format!(
        "bench{}{}",
        match broker {
            Broker::Rabbitmq => "rmq",
            Broker::Kafka => "kafka",
            Broker::Nats => "nats",
        },
        std::process::id()
    );
    input::prepare(broker, &name).await?;
    let result = async {
        let n = args.backlog;
        let latency_count = INPUT_RATE * args.rate_seconds.min(10);
        let mut out = Vec::new();
        for side in ["bindery", "direct"] {
            let target = format!("{name}.{side}");
            log(format_args!(
                "{}: {n} messages backlog for {side}",
                broker.label()
            ));
            input::publish(broker, &target, n, None, 64).await?;
            sink.take();
            let mut proc = if side == "bindery" {
                let components = component(
                    "bench-in",
                    broker.binding_type(),
                    &format!(
                        "{}    - name: direction\n      value: \"input\"\n",
                        broker.component_metadata(&name, INPUT_CONCURRENCY)
                    ),
                );
                let (b, _) = Bindery::start(
                    &args.bindery,
                    &components,
                    Some(app_port),
                    logs,
                    &format!("bindery-{name}"),
                )
                .await?;
                Proc::Bindery(b)
            } else {
                Proc::Direct(Child::spawn(
                    &format!("direct-{name}"),
                    exe,
                    &[
                        "consume".to_owned(),
                        "--broker".to_owned(),
                        format!("{broker:?}").to_lowercase(),
                        "--name".to_owned(),
                        target.clone(),
                        "--app-port".to_owned(),
                        app_port.to_string(),
                        "--route".to_owned(),
                        "bench-in".to_owned(),
                        "--concurrency".to_owned(),
                        INPUT_CONCURRENCY.to_string(),
                    ],
                    &[],
                    logs,
                )?)
            };
            let child = proc.child();
            let cpu0 = child.cpu_seconds().unwrap_or(0.0);
            wait_for(sink, n, Duration::from_secs(180)).await?;
            child.check_alive()?;
            let got = sink.take();
            let cpu = child.cpu_seconds()? - cpu0;
            let span = match (got.first, got.last) {
                (Some(f), Some(l)) => (l - f).as_secs_f64(),
                _ => 0.0,
            };
            let throughput = if span > 0.0 {
                (got.count.saturating_sub(1)) as f64 / span
            } else {
                0.0
            };
            log(format_args!("  {throughput:.0} msg/s"));
            // End-to-end latency at a steady rate, the consumer caught up.
            input::publish(broker, &target, latency_count, Some(INPUT_RATE), 64).await?;
            wait_for(sink, latency_count, Duration::from_secs(60)).await?;
            let lat = sink.take();
            let summary = crate::hist::Summary::of(&lat.latency);
            log(format_args!(
                "  e2e p50 {:.0} µs p99 {:.0} µs",
                summary.p50_us, summary.p99_us
            ));
            child.stop(Duration::from_secs(5));
            out.push((throughput, summary, cpu / (n as f64 / 1000.0)));
        }
        let direct = out.pop().context("no direct result")?;
        let bindery = out.pop().context("no bindery result")?;
        Ok::<_, anyhow::Error>(Input {
            broker,
            bindery_throughput: bindery.0,
            direct_throughput: direct.0,
            bindery_latency: bindery.1,
            direct_latency: direct.1,
            bindery_cpu_per_1k: bindery.2,
            direct_cpu_per_1k: direct.2,
        })
    }
    .await;
    input::cleanup(broker, &name).await;
    result
}
