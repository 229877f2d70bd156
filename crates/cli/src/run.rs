//! `bindery` run mode: load, build, serve, deliver, drain.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bindery_runtime::app::AppChannel;
use bindery_runtime::loader::{LoadOptions, load};
use bindery_runtime::{
    AppHealthCheck, AppProtocol, Configuration, Runtime, RuntimeOptions, listen_addrs,
};
use tokio::net::TcpListener;

use crate::flags::{Flags, Protocol};

pub(crate) async fn run(flags: Flags) -> anyhow::Result<()> {
    let started = Instant::now();
    crate::logging::init(&flags.log_level, flags.log_as_json);
    // One TLS provider for every binding that speaks TLS.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let options = runtime_options(&flags)?;
    let config = match &flags.config {
        Some(path) => {
            let config = Configuration::load(path).map_err(anyhow::Error::msg)?;
            tracing::info!(config = %path.display(), features = config.features.len(), "configuration loaded");
            config
        }
        None => Configuration::default(),
    };
    let (tracer, telemetry) = crate::telemetry::setup(&config, &options.app_id)?;

    let registry = bindery::registry();
    let load_options = LoadOptions {
        paths: options.resources_paths.clone(),
        app_id: options.app_id.clone(),
        namespace: options.namespace.clone(),
    };
    let loaded = load(&load_options, &registry)
        .map_err(|issues| report_issues("the resources are invalid", &issues))?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    for b in &loaded.bindings {
        tracing::info!(binding = %b.name, r#type = %b.type_name, version = %b.version, "component loaded");
    }

    let addrs = listen_addrs(&flags.dapr_listen_addresses, options.http_port)
        .map_err(anyhow::Error::msg)?;
    let http_listeners = bind_all(&addrs, "HTTP API").await?;
    let grpc_addrs = listen_addrs(&flags.dapr_listen_addresses, options.grpc_port)
        .map_err(anyhow::Error::msg)?;
    let grpc_listeners = bind_all(&grpc_addrs, "gRPC API").await?;
    let metrics_listeners = if flags.enable_metrics {
        let addrs = listen_addrs(&flags.dapr_listen_addresses, flags.metrics_port)
            .map_err(anyhow::Error::msg)?;
        bind_all(
            &addrs,
            "metrics endpoint (--metrics-port, or --enable-metrics=false)",
        )
        .await?
    } else {
        Vec::new()
    };

    let app = app_channel(&options);
    let runtime = Runtime::new(options, loaded, app);
    let _ = runtime.set_tracer(tracer);
    runtime
        .start()
        .await
        .map_err(|issues| report_issues("components failed to initialise", &issues))?;

    let stop = bindery_core::CancellationToken::new();
    let http = tokio::spawn(bindery_http::serve(Arc::clone(&runtime), http_listeners, {
        let stop = stop.clone();
        async move { stop.cancelled().await }
    }));
    let grpc = tokio::spawn(bindery_grpc::serve(Arc::clone(&runtime), grpc_listeners, {
        let stop = stop.clone();
        async move { stop.cancelled().await }
    }));
    let metrics = tokio::spawn(bindery_http::serve_router(
        bindery_http::metrics_router(Arc::clone(&runtime)),
        metrics_listeners,
        {
            let stop = stop.clone();
            async move { stop.cancelled().await }
        },
    ));
    tracing::info!(
        app_id = %runtime.options().app_id,
        grpc_port = runtime.options().grpc_port,
        http_port = runtime.options().http_port,
        elapsed = ?started.elapsed(),
        "bindery is ready: HTTP API listening on {}",
        addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    );

    let watch_stop = bindery_core::CancellationToken::new();
    // Hot reload is on unless the configuration turns the HotReload feature off.
    if config.feature("HotReload", true) && !load_options.paths.is_empty() {
        let rt = Arc::clone(&runtime);
        let stop = watch_stop.clone();
        tokio::spawn(async move {
            if let Err(e) = bindery_runtime::reload::watch(rt, load_options, registry, stop).await {
                tracing::warn!(error = %e, "hot reload is off");
            }
        });
    }

    let inputs = {
        let rt = Arc::clone(&runtime);
        tokio::spawn(async move { rt.start_inputs().await })
    };
    if let Some(stall) = runtime.options().stall_timeout {
        let rt = Arc::clone(&runtime);
        let every = (stall / 4).clamp(Duration::from_millis(100), Duration::from_secs(15));
        tokio::spawn(async move { rt.watch_stalls(every, stall).await });
    }

    let signalled = tokio::select! {
        _ = shutdown_signal() => true,
        _ = runtime.shutdown_requested() => false,
    };
    if signalled {
        tracing::info!("signal received");
        if let Some(d) = runtime.options().block_shutdown {
            runtime.block_shutdown(d).await;
        }
    }
    inputs.abort();
    watch_stop.cancel();
    runtime.shutdown().await;
    stop.cancel();
    match tokio::time::timeout(Duration::from_secs(5), http).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP API stopped with an error"),
        Err(_) => tracing::warn!("HTTP API did not stop within 5s"),
        _ => {}
    }
    match tokio::time::timeout(Duration::from_secs(5), grpc).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "gRPC API stopped with an error"),
        Err(_) => tracing::warn!("gRPC API did not stop within 5s"),
        _ => {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), metrics).await;
    telemetry.shutdown(Duration::from_secs(5)).await;
    tracing::info!("bindery stopped");
    Ok(())
}

fn runtime_options(flags: &Flags) -> anyhow::Result<RuntimeOptions> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let max_body_size = usize::try_from(flags.max_body_size)
        .context("--max-body-size is larger than this machine can hold")?;
    Ok(RuntimeOptions {
        app_id: flags.app_id.clone(),
        app_port: flags.app_port,
        app_protocol: match flags.app_protocol {
            Protocol::Http => AppProtocol::Http,
            Protocol::Grpc => AppProtocol::Grpc,
        },
        app_channel_address: flags.app_channel_address.clone(),
        app_max_concurrency: usize::try_from(flags.app_max_concurrency).ok(),
        max_body_size,
        graceful_shutdown: Duration::from_secs(flags.dapr_graceful_shutdown_seconds),
        binding_options_timeout: flags.app_binding_options_timeout,
        resources_paths: flags.resources_path.clone(),
        namespace: env("NAMESPACE"),
        api_token: env("DAPR_API_TOKEN"),
        app_api_token: env("APP_API_TOKEN"),
        app_health: flags.enable_app_health_check.then(|| AppHealthCheck {
            path: if flags.app_health_check_path.starts_with('/') {
                flags.app_health_check_path.clone()
            } else {
                format!("/{}", flags.app_health_check_path)
            },
            interval: flags.app_health_probe_interval,
            timeout: flags.app_health_probe_timeout,
            threshold: flags.app_health_threshold,
        }),
        block_shutdown: flags.dapr_block_shutdown_duration,
        stall_timeout: (!flags.input_stall_timeout.is_zero()).then_some(flags.input_stall_timeout),
        http_port: flags.dapr_http_port,
        grpc_port: flags.dapr_grpc_port,
    })
}

fn app_channel(options: &RuntimeOptions) -> Option<Arc<dyn AppChannel>> {
    let port = options.app_port?;
    match options.app_protocol {
        AppProtocol::Http => Some(Arc::new(bindery_http::HttpAppChannel::new(
            &options.app_channel_address,
            port,
            options.app_api_token.as_deref(),
            options.max_body_size,
        ))),
        AppProtocol::Grpc => {
            let host = &options.app_channel_address;
            let host = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            Some(Arc::new(bindery_grpc::GrpcAppChannel::new(
                format!("http://{host}:{port}"),
                options.app_api_token.clone(),
                options.max_body_size,
            )))
        }
    }
}

async fn bind_all(addrs: &[std::net::SocketAddr], what: &str) -> anyhow::Result<Vec<TcpListener>> {
    let mut out = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let l = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for the {what}"))?;
        out.push(l);
    }
    Ok(out)
}

fn report_issues(what: &str, issues: &[bindery_runtime::loader::ConfigIssue]) -> anyhow::Error {
    for issue in issues {
        tracing::error!("{issue}");
    }
    let list: Vec<String> = issues.iter().map(|i| format!("  - {i}")).collect();
    anyhow::anyhow!("{what} ({} problem(s)):\n{}", issues.len(), list.join("\n"))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
