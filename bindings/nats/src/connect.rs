//! Connecting to NATS: options from the metadata, health from connection events, errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::{Client, ConnectErrorKind, ConnectOptions, Event, ServerAddr};
use bindery_core::{BindingError, BindingHealth};
use tracing::{debug, info, warn};

use crate::config::{Auth, NatsConfig};

/// Connect with the component's settings. The client reconnects by itself for as long as it
/// lives; its connection events keep `health` truthful: a lost connection always reports
/// disconnected, a (re)connection reports connected once `ready` is set (the input side sets it
/// when its subscription or consumer is in place).
pub(crate) async fn connect(
    cfg: &NatsConfig,
    component: &str,
    health: &BindingHealth,
    ready: Arc<AtomicBool>,
) -> Result<Client, BindingError> {
    let shown = cfg.servers_display();
    let servers = cfg
        .servers
        .iter()
        .map(|s| s.parse::<ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BindingError::config("natsURL", format!("invalid value for natsURL: {e}")))?;
    let mut opts = match &cfg.auth {
        Auth::CredsFile(path) => {
            ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|e| {
                    BindingError::config(
                        "credsFile",
                        format!(
                            "nats binding: cannot read credsFile {}: {e}",
                            path.display()
                        ),
                    )
                })?
        }
        _ => ConnectOptions::new(),
    };
    opts = match &cfg.auth {
        Auth::UserPassword { user, password } => {
            opts.user_and_password(user.clone(), password.clone())
        }
        Auth::Token(t) => opts.token(t.clone()),
        Auth::Nkey(seed) => opts.nkey(seed.clone()),
        Auth::Jwt { jwt, seed } => opts.credentials(&creds_text(jwt, seed)).map_err(|_| {
            BindingError::config(
                "jwt",
                "nats binding: jwt and nkeySeed do not form valid credentials",
            )
        })?,
        Auth::None | Auth::CredsFile(_) => opts,
    };
    let wait = cfg.reconnect_wait;
    let events_health = health.clone();
    let events_ready = ready;
    let events_name = component.to_owned();
    let events_servers = shown.clone();
    opts = opts
        .name(
            cfg.name
                .clone()
                .unwrap_or_else(|| format!("bindery {component}")),
        )
        .connection_timeout(cfg.connect_timeout)
        .request_timeout(Some(cfg.request_timeout))
        .ping_interval(cfg.ping_interval)
        .reconnect_delay_callback(move |attempts| reconnect_delay(attempts, wait))
        .event_callback(move |event| {
            let health = events_health.clone();
            let name = events_name.clone();
            let servers = events_servers.clone();
            let ready = Arc::clone(&events_ready);
            async move {
                match event {
                    Event::Disconnected => {
                        warn!(binding = %name, servers = %servers, "disconnected from NATS; reconnecting");
                        health.disconnected(format!(
                            "nats binding: disconnected from NATS at {servers}"
                        ));
                    }
                    Event::Connected => {
                        info!(binding = %name, servers = %servers, "connected to NATS");
                        if ready.load(Ordering::Acquire) {
                            health.connected();
                        }
                    }
                    Event::ServerError(e) => {
                        warn!(binding = %name, error = %e, "NATS server reported an error");
                    }
                    Event::ClientError(e) => {
                        warn!(binding = %name, error = %e, "NATS client error");
                    }
                    other => debug!(binding = %name, event = %other, "NATS connection event"),
                }
            }
        });
    if cfg.tls.required {
        opts = opts.require_tls(true);
    }
    if cfg.tls.first {
        opts = opts.tls_first();
    }
    if let Some(ca) = &cfg.tls.ca_cert {
        opts = opts.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &cfg.tls.client {
        opts = opts.add_client_certificate(cert.clone(), key.clone());
    }
    let client = opts
        .connect(servers)
        .await
        .map_err(|e| connect_error(&shown, &e))?;
    Ok(client)
}

/// The `.creds` text for a JWT and its seed, as `nsc` writes it.
fn creds_text(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        jwt.trim(),
        seed.trim()
    )
}

/// Quick first retries, then at most `wait` between attempts.
pub(crate) fn reconnect_delay(attempts: usize, wait: Duration) -> Duration {
    let exp = u32::try_from(attempts.min(10)).unwrap_or(10);
    (Duration::from_millis(25) * 2u32.pow(exp)).min(wait)
}

/// The build or read error for a connection that could not be made.
pub(crate) fn connect_error(servers: &str, e: &async_nats::ConnectError) -> BindingError {
    let message = format!("nats binding: error connecting to NATS at {servers}: {e}");
    match e.kind() {
        ConnectErrorKind::ServerParse => BindingError::config("natsURL", message),
        ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => {
            BindingError::rejected(message)
        }
        ConnectErrorKind::Tls => BindingError::rejected(message),
        ConnectErrorKind::TimedOut => BindingError::timeout(message),
        _ => BindingError::unavailable(message),
    }
}
