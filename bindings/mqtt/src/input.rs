//! The input side: subscribe with QoS 1 and manual acknowledgements; acknowledge a message only
//! once the app accepted it, and redeliver failed ones in-process with backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bindery_core::util::Backoff;
use bindery_core::{
    BindingError, BindingHealth, CancellationToken, EventSink, InputBinding, InputEvent, Outcome,
    async_trait,
};
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Packet, Publish, QoS, SubscribeReasonCode,
};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::client::options;
use crate::config::MqttConfig;

/// Event metadata key holding the topic the message was published to.
pub const TOPIC_KEY: &str = "topic";

/// How many messages are delivered to the app at once. MQTT 3.1.1 has no flow control towards
/// the client (and Mosquitto sends its whole backlog), so further messages wait here, in
/// arrival order, unacknowledged.
pub(crate) const MAX_CONCURRENT_DELIVERIES: usize = 100;

/// How long to wait for the DISCONNECT to go out at shutdown.
const DISCONNECT_WAIT: Duration = Duration::from_secs(2);

/// A running `bindings.mqtt3` input: one consumer connection, `<consumerID>-consumer`.
pub(crate) struct MqttInput {
    pub(crate) name: String,
    pub(crate) config: Arc<MqttConfig>,
    pub(crate) health: BindingHealth,
    pub(crate) closed: CancellationToken,
}

#[async_trait]
impl InputBinding for MqttInput {
    async fn read(&self, sink: EventSink, shutdown: CancellationToken) -> Result<(), BindingError> {
        if self.closed.is_cancelled() {
            return Err(BindingError::closed());
        }
        // `stop` fires on shutdown, on `close`, or when the runtime answers `Closed`.
        let stop = shutdown.child_token();
        let _stop_guard = stop.clone().drop_guard();
        {
            let stop = stop.clone();
            let closed = self.closed.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = closed.cancelled() => stop.cancel(),
                    _ = stop.cancelled() => {}
                }
            });
        }
        let opts = options(&self.config, self.config.consumer_id(), true)?;
        // Acks are the only requests; the broker bounds how many messages are in flight.
        let (client, eventloop) = AsyncClient::new(opts, 1024);
        Consumer {
            name: self.name.clone(),
            config: Arc::clone(&self.config),
            health: self.health.clone(),
            client,
            sink,
            stop,
            generation: Arc::new(AtomicU64::new(0)),
            slots: Arc::new(Semaphore::new(MAX_CONCURRENT_DELIVERIES)),
        }
        .run(eventloop)
        .await;
        Ok(())
    }

    async fn close(&self) -> Result<(), BindingError> {
        self.closed.cancel();
        Ok(())
    }
}

struct Consumer {
    name: String,
    config: Arc<MqttConfig>,
    health: BindingHealth,
    client: AsyncClient,
    sink: EventSink,
    stop: CancellationToken,
    /// Bumped on every lost connection: acknowledgements belong to the connection that
    /// received the message, and are never sent on a later one.
    generation: Arc<AtomicU64>,
    /// Bounds the deliveries under way.
    slots: Arc<Semaphore>,
}

impl Consumer {
    async fn run(self, eventloop: EventLoop) {
        // The event loop runs in its own task and is never dropped mid-poll: a poll cancelled
        // between taking a request (an ack) and writing it would lose that ack.
        let (tx, mut events) = mpsc::channel(64);
        let halt = CancellationToken::new();
        let driver = tokio::spawn(drive(
            eventloop,
            tx,
            halt.clone(),
            self.name.clone(),
            self.config.broker.endpoint(),
        ));
        let mut in_flight: JoinSet<bool> = JoinSet::new();
        // Fired when the connection is lost, so messages waiting out a backoff stop: with a
        // persistent session the broker sends them again.
        let mut session = CancellationToken::new();
        let mut draining = false;
        let mut connected = false;
        loop {
            if draining && in_flight.is_empty() {
                break;
            }
            let event = tokio::select! {
                biased;
                _ = self.stop.cancelled(), if !draining => {
                    draining = true;
                    continue;
                }
                Some(joined) = in_flight.join_next() => {
                    if matches!(joined, Ok(true)) && !draining {
                        debug!(binding = %self.name, "runtime is draining; MQTT consumer stops");
                        self.stop.cancel();
                        draining = true;
                    }
                    continue;
                }
                e = events.recv() => match e {
                    Some(e) => e,
                    None => break,
                },
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    connected = true;
                    info!(binding = %self.name, endpoint = %self.config.broker.endpoint(), session_present = ack.session_present, "MQTT consumer connected");
                    // Subscribe on every connection (a resumed session keeps it; a new one needs it).
                    if let Err(e) = self
                        .client
                        .try_subscribe(self.config.topic.clone(), QoS::AtLeastOnce)
                    {
                        error!(binding = %self.name, error = %e, "cannot subscribe");
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, SubscribeReasonCode::Failure))
                    {
                        let e = format!(
                            "the broker refused the subscription to {:?}",
                            self.config.topic
                        );
                        error!(binding = %self.name, error = %e, "cannot subscribe");
                        self.health.disconnected(e);
                    } else {
                        self.health.connected();
                        info!(binding = %self.name, topic = %self.config.topic, "subscribed");
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    if draining {
                        // Not delivered and not acknowledged: the broker keeps it for the
                        // session (or drops it with a clean session, as any MQTT client would).
                        continue;
                    }
                    let handler = Handler {
                        name: self.name.clone(),
                        config: Arc::clone(&self.config),
                        client: self.client.clone(),
                        sink: self.sink.clone(),
                        stop: self.stop.clone(),
                        session: session.clone(),
                        generation: Arc::clone(&self.generation),
                        born: self.generation.load(Ordering::Acquire),
                        slots: Arc::clone(&self.slots),
                    };
                    in_flight.spawn(handler.handle(publish));
                }
                Ok(_) => {}
                Err(e) => {
                    connected = false;
                    self.generation.fetch_add(1, Ordering::AcqRel);
                    if !self.config.clean_session {
                        session.cancel();
                        session = CancellationToken::new();
                    }
                    if draining {
                        break;
                    }
                    self.health.disconnected(format!("MQTT consumer: {e}"));
                }
            }
        }
        // Everything accepted is acknowledged (the acks are queued before the DISCONNECT);
        // what was not stays with the broker's session.
        in_flight.detach_all();
        // Only when connected: a lost connection would be opened again just to close it.
        if connected && self.client.try_disconnect().is_ok() {
            // After the DISCONNECT, read on until the broker closes the connection: closing a
            // socket with unread data in it sends a TCP reset, and the broker may then drop
            // what it had not read yet, the last acknowledgements included.
            let wait = async {
                while let Some(e) = events.recv().await {
                    if e.is_err() {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DISCONNECT_WAIT, wait).await;
        }
        halt.cancel();
        let _ = driver.await;
        session.cancel();
        debug!(binding = %self.name, "MQTT consumer stopped");
    }
}

/// Poll the consumer's event loop and pass every event on; after an error, wait a backoff
/// before the next poll (which reconnects).
async fn drive(
    mut eventloop: EventLoop,
    tx: mpsc::Sender<Result<Event, ConnectionError>>,
    halt: CancellationToken,
    name: String,
    endpoint: String,
) {
    let mut reconnect = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        let event = tokio::select! {
            biased;
            _ = halt.cancelled() => return,
            e = eventloop.poll() => e,
        };
        let delay = match &event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                reconnect.reset();
                None
            }
            Ok(_) => None,
            Err(e) => {
                let delay = reconnect.next_delay();
                warn!(binding = %name, endpoint = %endpoint, error = %e, retry_in = ?delay, "MQTT consumer lost its connection; reconnecting");
                Some(delay)
            }
        };
        if tx.send(event).await.is_err() {
            return;
        }
        if let Some(delay) = delay {
            tokio::select! {
                _ = halt.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
}

/// Everything one message's task needs.
struct Handler {
    name: String,
    config: Arc<MqttConfig>,
    client: AsyncClient,
    sink: EventSink,
    stop: CancellationToken,
    session: CancellationToken,
    generation: Arc<AtomicU64>,
    born: u64,
    slots: Arc<Semaphore>,
}

impl Handler {
    /// Deliver until accepted, retrying in-process with backoff; acknowledge only what the app
    /// accepted. Returns `true` when the runtime is draining.
    async fn handle(self, publish: Publish) -> bool {
        let _slot = tokio::select! {
            slot = Arc::clone(&self.slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return false,
            },
            // Never delivered, never acknowledged: the broker keeps it for the session.
            _ = self.stop.cancelled() => return false,
            _ = self.session.cancelled() => return false,
        };
        let event = InputEvent::new(publish.payload.clone())
            .with_metadata(TOPIC_KEY, publish.topic.clone());
        let mut backoff = Backoff::new(self.config.backoff_initial, self.config.backoff_max);
        let mut retries: u64 = 0;
        loop {
            let outcome = self.sink.deliver(event.clone()).await;
            if outcome.should_ack() {
                if self.generation.load(Ordering::Acquire) == self.born {
                    if let Err(e) = self.client.try_ack(&publish) {
                        debug!(binding = %self.name, error = %e, "ack not sent; the broker will redeliver the message");
                    }
                } else {
                    debug!(binding = %self.name, "accepted after its connection was lost; the broker redelivers it on the new one");
                }
                return false;
            }
            let (reason, retry_after) = match outcome {
                Outcome::Failed {
                    reason,
                    retry_after,
                } => (reason, retry_after),
                // Closed (and anything else not to be acknowledged): leave it and stop.
                _ => return true,
            };
            if let Some(max) = self.config.max_retries
                && retries >= max
            {
                warn!(binding = %self.name, topic = %publish.topic, retries, reason = %reason, "giving up on the message after backOffMaxRetries; it stays unacknowledged until the session is resumed");
                return false;
            }
            retries += 1;
            let delay = backoff.delay_for(retry_after);
            debug!(binding = %self.name, topic = %publish.topic, reason = %reason, retry_in = ?delay, "message not accepted; retrying");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.stop.cancelled() => return false,
                _ = self.session.cancelled() => return false,
            }
        }
    }
}
