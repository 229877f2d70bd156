//! Input scenarios: publishers for RabbitMQ, Kafka and NATS JetStream, and the direct consumers
//! bindery is compared with. A direct consumer does what bindery does for each message: read
//! it, `POST` it to the app, and acknowledge it once the app answered 2xx.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::Semaphore;

use crate::servers::payload;

/// The brokers, on loopback (scripts/backends.sh).
pub(crate) const RABBITMQ_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub(crate) const KAFKA_BROKERS: &str = "127.0.0.1:19092";
pub(crate) const NATS_URL: &str = "nats://127.0.0.1:4222";

/// The brokers input scenarios can run against.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
pub(crate) enum Broker {
    Rabbitmq,
    Kafka,
    Nats,
}

impl Broker {
    pub(crate) const ALL: [Broker; 3] = [Broker::Rabbitmq, Broker::Kafka, Broker::Nats];

    /// The component type bindery registers for this broker.
    pub(crate) fn binding_type(self) -> &'static str {
        match self {
            Broker::Rabbitmq => "bindings.rabbitmq",
            Broker::Kafka => "bindings.kafka",
            Broker::Nats => "bindings.nats",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Broker::Rabbitmq => "RabbitMQ",
            Broker::Kafka => "Kafka",
            Broker::Nats => "NATS JetStream",
        }
    }

    /// The component metadata (YAML lines) bindery reads `name` with.
    pub(crate) fn component_metadata(self, name: &str, concurrency: usize) -> String {
        match self {
            Broker::Rabbitmq => format!(
                "    - name: host\n      value: \"{RABBITMQ_URL}\"\n    - name: queueName\n      value: \"{name}.bindery\"\n    - name: prefetchCount\n      value: \"{concurrency}\"\n"
            ),
            Broker::Kafka => format!(
                "    - name: brokers\n      value: \"{KAFKA_BROKERS}\"\n    - name: topics\n      value: \"{name}.bindery\"\n    - name: consumerGroup\n      value: \"{name}-bindery\"\n    - name: authType\n      value: \"none\"\n    - name: initialOffset\n      value: \"oldest\"\n"
            ),
            Broker::Nats => format!(
                "    - name: natsURL\n      value: \"{NATS_URL}\"\n    - name: subject\n      value: \"{name}.bindery\"\n    - name: jetStream\n      value: \"true\"\n    - name: streamName\n      value: \"{name}\"\n    - name: durableName\n      value: \"{name}-bindery\"\n    - name: concurrency\n      value: \"{concurrency}\"\n"
            ),
        }
    }
}

/// Create what a run needs: a queue, a one-partition topic, or a memory stream.
pub(crate) async fn prepare(broker: Broker, name: &str) -> Result<()> {
    match broker {
        Broker::Rabbitmq => {
            let conn = Connection::connect(RABBITMQ_URL, ConnectionProperties::default()).await?;
            let ch = conn.create_channel().await?;
            for q in [format!("{name}.bindery"), format!("{name}.direct")] {
                ch.queue_declare(
                    ShortString::from(q.as_str()),
                    QueueDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            }
            let _ = conn.close(0, "done".into()).await;
        }
        Broker::Kafka => {
            let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
                .set("bootstrap.servers", KAFKA_BROKERS)
                .create()?;
            let topics = [format!("{name}.bindery"), format!("{name}.direct")];
            let new: Vec<NewTopic<'_>> = topics
                .iter()
                .map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1)))
                .collect();
            for r in admin.create_topics(&new, &AdminOptions::new()).await? {
                if let Err((t, e)) = r {
                    bail!("cannot create topic {t}: {e}");
                }
            }
        }
        Broker::Nats => {
            let client = async_nats::connect(NATS_URL).await?;
            let js = async_nats::jetstream::new(client);
            js.get_or_create_stream(async_nats::jetstream::stream::Config {
                name: name.to_owned(),
                subjects: vec![format!("{name}.>")],
                storage: async_nats::jetstream::stream::StorageType::Memory,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("cannot create stream {name}: {e}"))?;
        }
    }
    Ok(())
}

/// Remove what [`prepare`] created.
pub(crate) async fn cleanup(broker: Broker, name: &str) {
    match broker {
        Broker::Rabbitmq => {
            if let Ok(conn) =
                Connection::connect(RABBITMQ_URL, ConnectionProperties::default()).await
                && let Ok(ch) = conn.create_channel().await
            {
                for q in [format!("{name}.bindery"), format!("{name}.direct")] {
                    let _ = ch
                        .queue_delete(ShortString::from(q.as_str()), QueueDeleteOptions::default())
                        .await;
                }
                let _ = conn.close(0, "done".into()).await;
            }
        }
        Broker::Kafka => {
            if let Ok(admin) = ClientConfig::new()
                .set("bootstrap.servers", KAFKA_BROKERS)
                .create::<AdminClient<DefaultClientContext>>()
            {
                let topics = [format!("{name}.bindery"), format!("{name}.direct")];
                let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
                let _ = admin.delete_topics(&refs, &AdminOptions::new()).await;
            }
        }
        Broker::Nats => {
            if let Ok(client) = async_nats::connect(NATS_URL).await {
                let js = async_nats::jetstream::new(client);
                let _ = js.delete_stream(name).await;
            }
        }
    }
}

/// Publish `count` messages to `target` (queue, topic or subject), `rate` per second or as
/// fast as the broker confirms them, each carrying its publish time. Returns once every
/// message was confirmed by the broker.
pub(crate) async fn publish(
    broker: Broker,
    target: &str,
    count: u64,
    rate: Option<u64>,
    pad: usize,
) -> Result<()> {
    let mut ticker = rate.map(|r| {
        let mut t = tokio::time::interval(Duration::from_nanos(1_000_000_000 / r.max(1)));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    // Confirmations are awaited in windows, so publishing is pipelined but bounded.
    const WINDOW: usize = 500;
    match broker {
        Broker::Rabbitmq => {
            let conn = Connection::connect(RABBITMQ_URL, ConnectionProperties::default()).await?;
            let ch = conn.create_channel().await?;
            ch.confirm_select(ConfirmSelectOptions::default()).await?;
            let mut pending = Vec::with_capacity(WINDOW);
            for seq in 0..count {
                if let Some(t) = ticker.as_mut() {
                    t.tick().await;
                }
                let confirm = ch
                    .basic_publish(
                        ShortString::from(""),
                        ShortString::from(target),
                        BasicPublishOptions::default(),
                        &payload(seq, pad),
                        BasicProperties::default()
                            .with_content_type(ShortString::from("application/json")),
                    )
                    .await?;
                pending.push(confirm);
                if pending.len() >= WINDOW || rate.is_some() {
                    for c in pending.drain(..) {
                        c.await?;
                    }
                }
            }
            for c in pending.drain(..) {
                c.await?;
            }
            let _ = conn.close(0, "done".into()).await;
        }
        Broker::Kafka => {
            let producer: FutureProducer = ClientConfig::new()
                .set("bootstrap.servers", KAFKA_BROKERS)
                .set("linger.ms", if rate.is_some() { "0" } else { "5" })
                .create()?;
            let mut pending = Vec::with_capacity(WINDOW);
            for seq in 0..count {
                if let Some(t) = ticker.as_mut() {
                    t.tick().await;
                }
                let body = payload(seq, pad);
                let record: FutureRecord<'_, [u8], [u8]> =
                    FutureRecord::to(target).payload(&body[..]);
                let fut = producer
                    .send_result(record)
                    .map_err(|(e, _)| anyhow::anyhow!("kafka enqueue: {e}"))?;
                pending.push(fut);
                if pending.len() >= WINDOW {
                    for f in pending.drain(..) {
                        f.await
                            .context("kafka delivery future dropped")?
                            .map_err(|(e, _)| anyhow::anyhow!("kafka delivery: {e}"))?;
                    }
                }
            }
            for f in pending.drain(..) {
                f.await
                    .context("kafka delivery future dropped")?
                    .map_err(|(e, _)| anyhow::anyhow!("kafka delivery: {e}"))?;
            }
        }
        Broker::Nats => {
            let client = async_nats::connect(NATS_URL).await?;
            let js = async_nats::jetstream::new(client);
            let mut pending = Vec::with_capacity(WINDOW);
            for seq in 0..count {
                if let Some(t) = ticker.as_mut() {
                    t.tick().await;
                }
                let ack = js
                    .publish(target.to_owned(), Bytes::from(payload(seq, pad)))
                    .await
                    .map_err(|e| anyhow::anyhow!("nats publish: {e}"))?;
                pending.push(ack);
                if pending.len() >= WINDOW || rate.is_some() {
                    for a in pending.drain(..) {
                        a.await.map_err(|e| anyhow::anyhow!("nats ack: {e}"))?;
                    }
                }
            }
            for a in pending.drain(..) {
                a.await.map_err(|e| anyhow::anyhow!("nats ack: {e}"))?;
            }
        }
    }
    Ok(())
}

/// `POST http://127.0.0.1:<app_port>/<route>` with the message; `Ok(true)` on 2xx.
#[derive(Clone)]
struct App {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: Arc<str>,
}

impl App {
    fn new(port: u16, route: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        App {
            client: Client::builder(TokioExecutor::new()).build(connector),
            uri: format!("http://127.0.0.1:{port}/{route}").into(),
        }
    }

    async fn deliver(&self, data: Bytes) -> bool {
        let Ok(req) = Request::builder()
            .method(Method::POST)
            .uri(&*self.uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(data))
        else {
            return false;
        };
        match self.client.request(req).await {
            Ok(resp) => {
                let ok = resp.status().is_success();
                let _ = resp.into_body().collect().await;
                ok
            }
            Err(_) => false,
        }
    }
}

/// The direct consumer: read `name` from `broker`, deliver each message to the app, ack on
/// success, with `concurrency` deliveries in flight (Kafka: one partition, in order). Runs
/// until killed.
pub(crate) async fn consume(
    broker: Broker,
    name: &str,
    app_port: u16,
    route: &str,
    concurrency: usize,
) -> Result<()> {
    let app = App::new(app_port, route);
    match broker {
        Broker::Rabbitmq => {
            let conn = Connection::connect(RABBITMQ_URL, ConnectionProperties::default()).await?;
            let ch = conn.create_channel().await?;
            ch.basic_qos(
                u16::try_from(concurrency).unwrap_or(u16::MAX),
                BasicQosOptions { global: false },
            )
            .await?;
            let mut consumer = ch
                .basic_consume(
                    ShortString::from(name),
                    ShortString::from("bench-direct"),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            while let Some(delivery) = consumer.next().await {
                let delivery = delivery?;
                let app = app.clone();
                tokio::spawn(async move {
                    if app.deliver(Bytes::from(delivery.data)).await {
                        let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                    } else {
                        let _ = delivery
                            .acker
                            .nack(lapin::options::BasicNackOptions {
                                requeue: true,
                                multiple: false,
                            })
                            .await;
                    }
                });
            }
        }
        Broker::Kafka => {
            let consumer: StreamConsumer = ClientConfig::new()
                .set("bootstrap.servers", KAFKA_BROKERS)
                .set("group.id", format!("{name}-direct"))
                .set("enable.auto.commit", "true")
                .set("enable.auto.offset.store", "false")
                .set("auto.offset.reset", "earliest")
                .create()?;
            consumer.subscribe(&[name])?;
            loop {
                let msg = consumer.recv().await?;
                let data = Bytes::copy_from_slice(msg.payload().unwrap_or_default());
                // In order, one at a time, as bindery's per-partition worker; redeliver until
                // the app accepts.
                while !app.deliver(data.clone()).await {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                consumer.store_offset_from_message(&msg)?;
            }
        }
        Broker::Nats => {
            let client = async_nats::connect(NATS_URL).await?;
            let js = async_nats::jetstream::new(client);
            let stream_name = name.split('.').next().unwrap_or(name);
            let stream = js
                .get_stream(stream_name)
                .await
                .map_err(|e| anyhow::anyhow!("stream {stream_name}: {e}"))?;
            let consumer: async_nats::jetstream::consumer::PullConsumer = stream
                .create_consumer(async_nats::jetstream::consumer::pull::Config {
                    durable_name: Some(format!("{stream_name}-direct")),
                    filter_subject: name.to_owned(),
                    ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
                    ..Default::default()
                })
                .await
                .map_err(|e| anyhow::anyhow!("consumer: {e}"))?;
            let mut messages = consumer
                .stream()
                .max_messages_per_batch(concurrency.max(1))
                .messages()
                .await
                .map_err(|e| anyhow::anyhow!("pull: {e}"))?;
            let permits = Arc::new(Semaphore::new(concurrency.max(1)));
            while let Some(msg) = messages.next().await {
                let msg = msg.map_err(|e| anyhow::anyhow!("message: {e}"))?;
                let permit = Arc::clone(&permits).acquire_owned().await?;
                let app = app.clone();
                tokio::spawn(async move {
                    if app.deliver(msg.payload.clone()).await {
                        let _ = msg.ack().await;
                    } else {
                        let _ = msg
                            .ack_with(async_nats::jetstream::AckKind::Nak(None))
                            .await;
                    }
                    drop(permit);
                });
            }
        }
    }
    Ok(())
}
