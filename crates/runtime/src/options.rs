use std::path::PathBuf;
use std::time::Duration;

/// How the app is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppProtocol {
    /// HTTP/1.1: `OPTIONS /<route>` probe and `POST /<route>` per event.
    #[default]
    Http,
    /// gRPC: `AppCallback/ListInputBindings` and `OnBindingEvent`.
    Grpc,
}

impl AppProtocol {
    /// The name Dapr uses.
    pub fn as_str(self) -> &'static str {
        match self {
            AppProtocol::Http => "http",
            AppProtocol::Grpc => "grpc",
        }
    }
}

/// Everything the runtime needs to know from the command line and the environment.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// `--app-id`.
    pub app_id: String,
    /// `--app-port`; without it no input event is delivered.
    pub app_port: Option<u16>,
    /// `--app-protocol`.
    pub app_protocol: AppProtocol,
    /// `--app-channel-address`.
    pub app_channel_address: String,
    /// `--app-max-concurrency`: app calls in flight at once (`None` = unlimited).
    pub app_max_concurrency: Option<usize>,
    /// `--max-body-size` in bytes, for both APIs and both directions.
    pub max_body_size: usize,
    /// `--dapr-graceful-shutdown-seconds`.
    pub graceful_shutdown: Duration,
    /// `--app-binding-options-timeout`: how long the subscription probe may take.
    pub binding_options_timeout: Duration,
    /// `--resources-path` / `--components-path`.
    pub resources_paths: Vec<PathBuf>,
    /// The `NAMESPACE` environment variable.
    pub namespace: Option<String>,
    /// `DAPR_API_TOKEN`: required on API calls when set.
    pub api_token: Option<String>,
    /// `APP_API_TOKEN`: sent to the app when set.
    pub app_api_token: Option<String>,
    /// `--enable-app-health-check` and its settings; `None` when off.
    pub app_health: Option<AppHealthCheck>,
    /// `--dapr-block-shutdown-duration`: on a signal, stop input bindings and keep serving
    /// output calls this long (or until the app turns unhealthy) before shutting down.
    pub block_shutdown: Option<Duration>,
    /// `--input-stall-timeout`: restart an input binding that received nothing this long while
    /// its source has a backlog; `None` turns the watchdog off.
    pub stall_timeout: Option<Duration>,
    /// `--dapr-http-port`, reported by `/v1.0/metadata`.
    pub http_port: u16,
    /// `--dapr-grpc-port`, reported by `/v1.0/metadata`.
    pub grpc_port: u16,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            app_id: String::new(),
            app_port: None,
            app_protocol: AppProtocol::Http,
            app_channel_address: "127.0.0.1".into(),
            app_max_concurrency: None,
            max_body_size: 4 * 1024 * 1024,
            graceful_shutdown: Duration::from_secs(5),
            binding_options_timeout: Duration::from_secs(3),
            resources_paths: Vec::new(),
            namespace: None,
            api_token: None,
            app_api_token: None,
            app_health: None,
            block_shutdown: None,
            stall_timeout: Some(Duration::from_secs(60)),
            http_port: 3500,
            grpc_port: 50001,
        }
    }
}

/// App health checks: probe the app every `interval`; after `threshold` failures in a row the
/// app is unhealthy and input bindings pause until it answers again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppHealthCheck {
    /// `--app-health-check-path` (HTTP apps).
    pub path: String,
    /// `--app-health-probe-interval`.
    pub interval: Duration,
    /// `--app-health-probe-timeout`.
    pub timeout: Duration,
    /// `--app-health-threshold`.
    pub threshold: u32,
}
