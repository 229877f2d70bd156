//! One AMQP connection per component, shared by its input and output sides (as daprd does), so
//! that an `exclusive` queue can be both consumed and published to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bindery_core::{BindingError, Metadata};
use lapin::options::QueueDeclareOptions;
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties};
use tracing::{debug, info};

use crate::config::RabbitConfig;

/// How long one connection attempt (TCP, TLS, AMQP handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A component's connection, (re)opened on demand.
pub(crate) struct Link {
    pub(crate) name: String,
    pub(crate) config: Arc<RabbitConfig>,
    conn: tokio::sync::Mutex<Option<Arc<Connection>>>,
}

impl Link {
    fn new(name: &str, config: Arc<RabbitConfig>) -> Self {
        Link {
            name: name.to_owned(),
            config,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// The open connection, or a new one when there is none or it broke.
    pub(crate) async fn connection(&self) -> Result<Arc<Connection>, BindingError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref()
            && c.status().connected()
        {
            return Ok(Arc::clone(c));
        }
        // Dropping the broken connection closes whatever is left of it.
        *guard = None;
        let c = Arc::new(connect(&self.name, &self.config).await?);
        info!(binding = %self.name, endpoint = %self.config.endpoint(), "connected to RabbitMQ");
        *guard = Some(Arc::clone(&c));
        Ok(c)
    }

    /// Close the connection when `this` is the last side using it; otherwise the other side
    /// keeps it (it is closed anyway once the last side is dropped).
    pub(crate) async fn close(this: &Arc<Link>) {
        if Arc::strong_count(this) > 1 {
            return;
        }
        this.close_now().await;
    }

    async fn close_now(&self) {
        let conn = self.conn.lock().await.take();
        if let Some(c) = conn
            && c.status().connected()
            && let Err(e) = c.close(200, ShortString::from("bye")).await
        {
            debug!(binding = %self.name, error = %e, "closing the RabbitMQ connection failed");
        }
    }

    /// Open a channel and declare the queue on it, as each daprd instance does.
    pub(crate) async fn channel(&self) -> Result<Channel, BindingError> {
        let conn = self.connection().await?;
        let ch = conn.create_channel().await.map_err(unavailable)?;
        declare_queue(&ch, &self.config).await?;
        Ok(ch)
    }

    /// How many messages wait in the queue, ready for a consumer (unacknowledged ones not
    /// counted), asked with a passive declare on a short-lived channel.
    pub(crate) async fn depth(&self) -> Result<u64, BindingError> {
        let conn = self.connection().await?;
        let ch = conn.create_channel().await.map_err(unavailable)?;
        let queue = ShortString::try_new(self.config.queue_name.as_str())
            .map_err(|e| BindingError::config("queueName", e.to_string()))?;
        let options = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let declared = ch
            .queue_declare(queue, options, FieldTable::default())
            .await
            .map_err(unavailable);
        if let Err(e) = ch.close(200, ShortString::from("done")).await {
            debug!(binding = %self.name, error = %e, "closing the depth channel failed");
        }
        Ok(u64::from(declared?.message_count()))
    }
}

/// Links by component, so the input and output sides of one component share a connection.
/// Keyed by name and metadata, so a changed component (hot reload) gets a new connection.
#[derive(Default)]
pub(crate) struct Links {
    links: Mutex<HashMap<String, Weak<Link>>>,
}

impl Links {
    /// The link for the component `name` with `metadata`, shared while either side holds it.
    pub(crate) fn get(
        &self,
        name: &str,
        metadata: &Metadata,
        config: Arc<RabbitConfig>,
    ) -> Arc<Link> {
        let mut key = String::from(name);
        for (k, v) in metadata.iter() {
            key.push('\0');
            key.push_str(k);
            key.push('\0');
            key.push_str(v);
        }
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links.retain(|_, l| l.strong_count() > 0);
        if let Some(link) = links.get(&key).and_then(Weak::upgrade) {
            return link;
        }
        let link = Arc::new(Link::new(name, config));
        links.insert(key, Arc::downgrade(&link));
        link
    }
}

/// Map a lapin error to an `Unavailable` binding error (lapin errors never carry the URL).
pub(crate) fn unavailable(e: lapin::Error) -> BindingError {
    BindingError::unavailable(format!("RabbitMQ: {e}")).with_source(e)
}

async fn connect(name: &str, config: &RabbitConfig) -> Result<Connection, BindingError> {
    let props =
        ConnectionProperties::default().with_connection_name(format!("bindery {name}").into());
    let tls = OwnedTLSConfig {
        identity: match (&config.client_cert, &config.client_key) {
            (Some(cert), Some(key)) => Some(OwnedIdentity::PKCS8 {
                pem: cert.as_bytes().to_vec(),
                key: key.as_bytes().to_vec(),
            }),
            _ => None,
        },
        cert_chain: config.ca_cert.clone(),
    };
    let runtime = lapin::runtime::default_runtime().map_err(unavailable)?;
    let attempt = Connection::connect_uri_with_config(config.uri.clone(), props, tls, runtime);
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(BindingError::unavailable(format!(
            "cannot connect to RabbitMQ at {}: {e}",
            config.endpoint()
        ))
        .with_source(e)),
        Err(_) => Err(BindingError::timeout(format!(
            "cannot connect to RabbitMQ at {}: no answer within {CONNECT_TIMEOUT:?}",
            config.endpoint()
        ))),
    }
}

/// The queue arguments: `x-message-ttl` (ms) and `x-max-priority`.
pub(crate) fn queue_arguments(config: &RabbitConfig) -> FieldTable {
    let mut args = FieldTable::default();
    if let Some(ttl) = config.queue_ttl {
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ms));
    }
    if let Some(p) = config.max_priority {
        // RabbitMQ's field tables have no unsigned byte: send a signed 32-bit integer.
        args.insert("x-max-priority".into(), AMQPValue::LongInt(i32::from(p)));
    }
    args
}

async fn declare_queue(ch: &Channel, config: &RabbitConfig) -> Result<(), BindingError> {
    let queue = ShortString::try_new(config.queue_name.as_str())
        .map_err(|e| BindingError::config("queueName", e.to_string()))?;
    let options = QueueDeclareOptions {
        passive: false,
        durable: config.durable,
        exclusive: config.exclusive,
        auto_delete: config.delete_when_unused,
        nowait: false,
    };
    ch.queue_declare(queue, options, queue_arguments(config))
        .await
        .map_err(|e| {
            BindingError::unavailable(format!("cannot declare queue {:?}: {e}", config.queue_name))
                .with_source(e)
        })?;
    Ok(())
}
