//! The output side: `create` publishes with QoS 1 and returns once the broker's PUBACK came.
//!
//! rumqttc assigns packet ids inside its event loop, so each publish's waiter is queued in the
//! order the requests are sent, and the event loop matches `Outgoing::Publish(pkid)` events (in
//! the same order) to waiters, then `PubAck(pkid)` to the waiter of that id.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bindery_core::util::Backoff;
use bindery_core::{
    BindingError, BindingHealth, CancellationToken, InvokeRequest, InvokeResponse, OutputBinding,
    async_trait,
};
use rumqttc::{AsyncClient, ClientError, Event, EventLoop, Outgoing, Packet, QoS};
use tokio::sync::{Semaphore, oneshot};
use tracing::{debug, info, warn};

use crate::client::options;
use crate::config::MqttConfig;
use crate::input::TOPIC_KEY;

/// How many publishes may wait for their PUBACK at once (also the request channel's size).
const MAX_OUTSTANDING: usize = 1000;
/// How long a publish may wait for its PUBACK.
const PUBACK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `build` waits for the first connection.
const FIRST_CONNECT: Duration = Duration::from_secs(10);

type Waiter = oneshot::Sender<Result<(), String>>;

/// Waiters of publishes in flight.
#[derive(Default)]
struct Tracker {
    /// Sent to the event loop, packet id not assigned yet, in send order.
    queued: VecDeque<Waiter>,
    /// Sent to the broker, waiting for the PUBACK of this packet id.
    inflight: HashMap<u16, Waiter>,
    /// A publish whose packet id was still in use (rumqttc holds it back).
    collided: Option<(u16, Waiter)>,
    /// How many of `queued` were handed to the event loop before the connection was lost;
    /// they are gone if the broker does not resume the session.
    at_risk: usize,
}

impl Tracker {
    fn on_outgoing_publish(&mut self, pkid: u16) {
        if self.collided.as_ref().is_some_and(|(p, _)| *p == pkid) {
            if let Some((p, w)) = self.collided.take() {
                self.inflight.insert(p, w);
            }
            return;
        }
        if self.inflight.contains_key(&pkid) {
            // A retransmission after a reconnect.
            return;
        }
        if let Some(w) = self.queued.pop_front() {
            self.at_risk = self.at_risk.saturating_sub(1);
            self.inflight.insert(pkid, w);
        }
    }

    fn on_await_ack(&mut self, pkid: u16) {
        if let Some(w) = self.queued.pop_front() {
            self.at_risk = self.at_risk.saturating_sub(1);
            self.collided = Some((pkid, w));
        }
    }

    fn on_puback(&mut self, pkid: u16) {
        if let Some(w) = self.inflight.remove(&pkid) {
            let _ = w.send(Ok(()));
        }
    }

    fn on_connection_lost(&mut self) {
        self.at_risk = self.queued.len();
    }

    /// The broker started a new session: what was in flight or handed over is gone.
    fn on_session_lost(&mut self) {
        let reason = "the broker did not resume the session; the message was not confirmed";
        for (_, w) in self.inflight.drain() {
            let _ = w.send(Err(reason.into()));
        }
        if let Some((_, w)) = self.collided.take() {
            let _ = w.send(Err(reason.into()));
        }
        for _ in 0..self.at_risk.min(self.queued.len()) {
            if let Some(w) = self.queued.pop_front() {
                let _ = w.send(Err(reason.into()));
            }
        }
        self.at_risk = 0;
    }

    fn fail_all(&mut self, reason: &str) {
        for (_, w) in self.inflight.drain() {
            let _ = w.send(Err(reason.into()));
        }
        if let Some((_, w)) = self.collided.take() {
            let _ = w.send(Err(reason.into()));
        }
        for w in self.queued.drain(..) {
            let _ = w.send(Err(reason.into()));
        }
        self.at_risk = 0;
    }
}

/// A running `bindings.mqtt3` output: one producer connection, `<consumerID>-producer`.
pub(crate) struct MqttOutput {
    name: String,
    config: Arc<MqttConfig>,
    client: AsyncClient,
    tracker: Arc<Mutex<Tracker>>,
    outstanding: Semaphore,
    connected: Arc<AtomicBool>,
    stop: CancellationToken,
    /// Set by `close`: the connection's end is expected.
    closing: Arc<AtomicBool>,
    /// Fired when the event loop task ended.
    finished: CancellationToken,
    closed: AtomicBool,
}

impl MqttOutput {
    /// Connect the producer and wait (a while) for the broker's CONNACK.
    pub(crate) async fn connect(
        name: &str,
        config: Arc<MqttConfig>,
        health: BindingHealth,
    ) -> Result<Self, BindingError> {
        let opts = options(&config, config.producer_id(), false)?;
        let (client, eventloop) = AsyncClient::new(opts, MAX_OUTSTANDING + 16);
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let connected = Arc::new(AtomicBool::new(false));
        let stop = CancellationToken::new();
        let closing = Arc::new(AtomicBool::new(false));
        let finished = CancellationToken::new();
        let (first_tx, first_rx) = oneshot::channel();
        tokio::spawn(drive(
            name.to_owned(),
            Arc::clone(&config),
            eventloop,
            Shared {
                tracker: Arc::clone(&tracker),
                connected: Arc::clone(&connected),
                closing: Arc::clone(&closing),
                finished: finished.clone(),
                health,
            },
            stop.clone(),
            first_tx,
        ));
        let first = tokio::time::timeout(FIRST_CONNECT, first_rx).await;
        match first {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                stop.cancel();
                return Err(BindingError::unavailable(format!(
                    "failed to create producer connection: {e}"
                )));
            }
            _ => {
                stop.cancel();
                return Err(BindingError::unavailable(format!(
                    "failed to create producer connection: no CONNACK from {} within {FIRST_CONNECT:?}",
                    config.broker.endpoint()
                )));
            }
        }
        Ok(MqttOutput {
            name: name.to_owned(),
            config,
            client,
            tracker,
            outstanding: Semaphore::new(MAX_OUTSTANDING),
            connected,
            stop,
            closing,
            finished,
            closed: AtomicBool::new(false),
        })
    }
}

/// What the event loop task shares with the binding.
struct Shared {
    tracker: Arc<Mutex<Tracker>>,
    connected: Arc<AtomicBool>,
    closing: Arc<AtomicBool>,
    finished: CancellationToken,
    health: BindingHealth,
}

/// Poll the producer's event loop: match acknowledgements to waiters, reconnect with backoff.
async fn drive(
    name: String,
    config: Arc<MqttConfig>,
    mut eventloop: EventLoop,
    shared: Shared,
    stop: CancellationToken,
    first: oneshot::Sender<Result<(), String>>,
) {
    let Shared {
        tracker,
        connected,
        closing,
        finished,
        health,
    } = shared;
    let _finished = finished.drop_guard();
    let mut first = Some(first);
    let mut reconnect = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let mut was_connected = false;
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => break,
            e = eventloop.poll() => e,
        };
        let lock = || tracker.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                reconnect.reset();
                if !ack.session_present {
                    lock().on_session_lost();
                }
                connected.store(true, Ordering::Release);
                if was_connected {
                    health.connected();
                    info!(binding = %name, "MQTT producer reconnected");
                }
                was_connected = true;
                if let Some(f) = first.take() {
                    let _ = f.send(Ok(()));
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => lock().on_puback(ack.pkid),
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => lock().on_outgoing_publish(pkid),
            Ok(Event::Outgoing(Outgoing::AwaitAck(pkid))) => lock().on_await_ack(pkid),
            Ok(_) => {}
            Err(e) => {
                connected.store(false, Ordering::Release);
                lock().on_connection_lost();
                if closing.load(Ordering::Acquire) {
                    // The broker closed the connection after our DISCONNECT.
                    break;
                }
                if let Some(f) = first.take() {
                    let _ = f.send(Err(e.to_string()));
                    // `build` gives up on this connection; the runtime retries the build.
                    break;
                }
                health.disconnected(format!("MQTT producer: {e}"));
                let delay = reconnect.next_delay();
                warn!(binding = %name, endpoint = %config.broker.endpoint(), error = %e, retry_in = ?delay, "MQTT producer lost its connection");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    tracker
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .fail_all("mqtt client closed");
    debug!(binding = %name, "MQTT producer stopped");
}

#[async_trait]
impl OutputBinding for MqttOutput {
    fn operations(&self) -> &[&'static str] {
        &["create"]
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BindingError::closed());
        }
        if request.operation != "create" {
            return Err(BindingError::unsupported(format!(
                "operation {:?} is not supported; supported: create",
                request.operation
            )));
        }
        let topic = request
            .metadata
            .get(TOPIC_KEY)
            .filter(|t| !t.is_empty())
            .cloned()
            .unwrap_or_else(|| self.config.topic.clone());
        if topic.contains(['+', '#']) {
            return Err(BindingError::invalid_request(format!(
                "failed to publish: topic {topic:?} holds a wildcard"
            )));
        }
        if !self.connected.load(Ordering::Acquire) {
            return Err(BindingError::unavailable(format!(
                "failed to publish: not connected to {}",
                self.config.broker.endpoint()
            )));
        }
        let _permit = self
            .outstanding
            .acquire()
            .await
            .map_err(|_| BindingError::closed())?;
        let (tx, rx) = oneshot::channel();
        {
            let mut t = self.tracker.lock().unwrap_or_else(|p| p.into_inner());
            // Under the lock, so the waiter's place in `queued` is its request's place in the
            // channel. The semaphore keeps the channel from ever being full.
            self.client
                .try_publish(
                    topic.clone(),
                    QoS::AtLeastOnce,
                    self.config.retain,
                    request.data.to_vec(),
                )
                .map_err(|e| match e {
                    ClientError::Request(_) | ClientError::TryRequest(_) => {
                        BindingError::unavailable("failed to publish: mqtt client closed")
                    }
                })?;
            t.queued.push_back(tx);
        }
        match tokio::time::timeout(PUBACK_TIMEOUT, rx).await {
            Ok(Ok(Ok(()))) => {
                debug!(binding = %self.name, topic = %topic, bytes = request.data.len(), "published");
                Ok(None)
            }
            Ok(Ok(Err(e))) => Err(BindingError::unavailable(format!("failed to publish: {e}"))),
            Ok(Err(_)) => Err(BindingError::unavailable(
                "failed to publish: mqtt client closed",
            )),
            Err(_) => Err(BindingError::timeout(format!(
                "failed to publish: no PUBACK within {PUBACK_TIMEOUT:?}"
            ))),
        }
    }

    async fn close(&self) -> Result<(), BindingError> {
        self.closed.store(true, Ordering::Release);
        self.closing.store(true, Ordering::Release);
        // DISCONNECT, then let the event loop read on until the broker closes the connection
        // (closing with unread data would send a TCP reset).
        if self.connected.load(Ordering::Acquire) && self.client.try_disconnect().is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.finished.cancelled()).await;
        }
        self.stop.cancel();
        self.outstanding.close();
        Ok(())
    }
}

impl Drop for MqttOutput {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(t: &mut Tracker) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        t.queued.push_back(tx);
        rx
    }

    #[test]
    fn pubacks_resolve_the_publish_of_their_packet_id() {
        let mut t = Tracker::default();
        let mut a = waiter(&mut t);
        let mut b = waiter(&mut t);
        t.on_outgoing_publish(1);
        t.on_outgoing_publish(2);
        t.on_puback(2);
        assert_eq!(b.try_recv().unwrap(), Ok(()));
        assert!(a.try_recv().is_err(), "not acknowledged yet");
        t.on_puback(1);
        assert_eq!(a.try_recv().unwrap(), Ok(()));
    }

    #[test]
    fn retransmissions_and_collisions_keep_the_match() {
        let mut t = Tracker::default();
        let mut a = waiter(&mut t);
        t.on_outgoing_publish(1);
        // Reconnected with the session: 1 is sent again.
        t.on_connection_lost();
        t.on_outgoing_publish(1);
        let mut b = waiter(&mut t);
        // 1 is still in use: rumqttc holds the new publish back.
        t.on_await_ack(1);
        t.on_puback(1);
        assert_eq!(a.try_recv().unwrap(), Ok(()));
        t.on_outgoing_publish(1);
        assert!(b.try_recv().is_err());
        t.on_puback(1);
        assert_eq!(b.try_recv().unwrap(), Ok(()));
    }

    #[test]
    fn a_lost_session_fails_what_it_held() {
        let mut t = Tracker::default();
        let mut a = waiter(&mut t);
        t.on_outgoing_publish(1);
        let mut b = waiter(&mut t);
        t.on_connection_lost();
        // Sent after the loss: still in the channel, survives.
        let mut c = waiter(&mut t);
        t.on_session_lost();
        assert!(a.try_recv().unwrap().is_err());
        assert!(b.try_recv().unwrap().is_err());
        assert!(c.try_recv().is_err(), "c is still pending");
        t.on_outgoing_publish(1);
        t.on_puback(1);
        assert_eq!(c.try_recv().unwrap(), Ok(()));
    }
}
