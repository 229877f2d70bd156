use std::sync::Arc;
use std::time::{Duration, Instant};

use bindery_core::{
    BindingFactory, ComponentContext, EventHandler, EventSink, InputEvent, Metadata, Outcome,
    async_trait,
};
use tokio::sync::mpsc;

use super::*;

/// Records every event with the instant it arrived, answers with a fixed outcome after an
/// optional pause on the first call.
struct Recorder {
    tx: mpsc::UnboundedSender<(Instant, InputEvent)>,
    outcome: Outcome,
    first_call_pause: Duration,
    calls: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: InputEvent) -> Outcome {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = self.tx.send((Instant::now(), event));
        if n == 0 && !self.first_call_pause.is_zero() {
            tokio::time::sleep(self.first_call_pause).await;
        }
        self.outcome.clone()
    }
}

fn recorder(
    outcome: Outcome,
    first_call_pause: Duration,
) -> (EventSink, mpsc::UnboundedReceiver<(Instant, InputEvent)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sink = EventSink::new(Arc::new(Recorder {
        tx,
        outcome,
        first_call_pause,
        calls: Default::default(),
    }));
    (sink, rx)
}

fn ctx(schedule: &str) -> ComponentContext {
    ComponentContext {
        name: "tick".into(),
        app_id: "app".into(),
        metadata: Metadata::from_pairs([("schedule", schedule)]),
        health: BindingHealth::default(),
    }
}

async fn recv_within(
    rx: &mut mpsc::UnboundedReceiver<(Instant, InputEvent)>,
    deadline: Duration,
) -> (Instant, InputEvent) {
    tokio::time::timeout(deadline, rx.recv())
        .await
        .expect("no cron event before the deadline")
        .expect("the sink went away")
}

#[test]
fn spec_describes_an_input_binding() {
    let spec = CronFactory.spec();
    assert_eq!(spec.type_name, "bindings.cron");
    assert_eq!(spec.direction, Direction::Input);
    assert!(spec.operations.is_empty());
    let f = spec.field("SCHEDULE").unwrap();
    assert!(f.required);
    assert!(!f.sensitive);
    let mut registry = Registry::new();
    register(&mut registry);
    assert!(registry.get("bindings.cron").is_some());
}

#[test]
fn validate_reports_missing_and_invalid_schedules() {
    let errs = CronFactory.validate(&Metadata::new()).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].message(), "schedule not set");
    assert_eq!(errs[0].field(), Some("schedule"));
    assert_eq!(errs[0].kind(), bindery_core::ErrorKind::InvalidConfig);

    let errs = CronFactory
        .validate(&Metadata::from_pairs([("schedule", "  ")]))
        .unwrap_err();
    assert_eq!(errs[0].message(), "schedule not set");

    let errs = CronFactory
        .validate(&Metadata::from_pairs([("schedule", "* * * 13 *")]))
        .unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0]
            .message()
            .starts_with("invalid schedule format '* * * 13 *': "),
        "{}",
        errs[0].message()
    );
    assert_eq!(errs[0].kind(), bindery_core::ErrorKind::InvalidConfig);

    for ok in ["*/5 * * * *", "*/15 * * * * *", "@every 1h30m", "@midnight"] {
        assert!(
            CronFactory
                .validate(&Metadata::from_pairs([("Schedule", ok)]))
                .is_ok(),
            "{ok}"
        );
    }
}

#[tokio::test]
async fn build_refuses_bad_metadata_and_has_no_output_side() {
    let err = CronFactory.build_input(&ctx("@weird")).await.err().unwrap();
    assert!(
        err.message()
            .starts_with("invalid schedule format '@weird'")
    );
    assert!(CronFactory.build_output(&ctx("@every 1s")).await.is_err());
}

#[tokio::test]
async fn every_second_delivers_empty_events_with_time_metadata() {
    let c = ctx("@every 1s");
    let binding = CronFactory.build_input(&c).await.unwrap();
    let (sink, mut rx) = recorder(Outcome::Accepted, Duration::ZERO);
    let shutdown = CancellationToken::new();
    let reader = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { binding.read(sink, shutdown).await })
    };

    let (first_at, first) = recv_within(&mut rx, Duration::from_secs(5)).await;
    let (second_at, second) = recv_within(&mut rx, Duration::from_secs(5)).await;
    for event in [&first, &second] {
        assert!(event.data.is_empty());
        assert_eq!(event.metadata.len(), 2);
        let zone = &event.metadata[TIME_ZONE_KEY];
        let expected_zone = local_zone_name(std::env::var("TZ").ok().as_deref());
        assert_eq!(zone, &expected_zone);
        let read_time = &event.metadata[READ_TIME_UTC_KEY];
        assert!(read_time.ends_with(" +0000 UTC"), "{read_time}");
        let stamp = read_time.trim_end_matches(" +0000 UTC");
        let whole = stamp.split('.').next().unwrap();
        chrono::NaiveDateTime::parse_from_str(whole, "%Y-%m-%d %H:%M:%S")
            .unwrap_or_else(|e| panic!("{read_time}: {e}"));
    }
    assert_ne!(
        first.metadata[READ_TIME_UTC_KEY],
        second.metadata[READ_TIME_UTC_KEY]
    );
    // One second apart, give or take the scheduler.
    let gap = second_at - first_at;
    assert!(gap >= Duration::from_millis(500), "{gap:?}");

    let snap = c.health.snapshot();
    assert!(snap.connected);
    assert!(snap.last_event.is_some());

    shutdown.cancel();
    let res = tokio::time::timeout(Duration::from_secs(2), reader)
        .await
        .expect("read did not return after cancellation")
        .unwrap();
    assert!(res.is_ok());
}

#[tokio::test]
async fn read_returns_promptly_on_cancellation_while_waiting() {
    // The next tick is hours away.
    let binding = CronFactory.build_input(&ctx("@yearly")).await.unwrap();
    let (sink, _rx) = recorder(Outcome::Accepted, Duration::ZERO);
    let shutdown = CancellationToken::new();
    let reader = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { binding.read(sink, shutdown).await })
    };
    tokio::task::yield_now().await;
    shutdown.cancel();
    let res = tokio::time::timeout(Duration::from_secs(2), reader)
        .await
        .expect("read did not return after cancellation")
        .unwrap();
    assert!(res.is_ok());
}

#[tokio::test]
async fn failed_deliveries_do_not_stop_the_schedule() {
    let binding = CronFactory.build_input(&ctx("@every 1s")).await.unwrap();
    let (sink, mut rx) = recorder(Outcome::failed("app said 500"), Duration::ZERO);
    let shutdown = CancellationToken::new();
    let reader = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { binding.read(sink, shutdown).await })
    };
    for _ in 0..3 {
        recv_within(&mut rx, Duration::from_secs(5)).await;
    }
    shutdown.cancel();
    assert!(reader.await.unwrap().is_ok());
}

#[tokio::test]
async fn ticks_missed_during_a_slow_delivery_are_not_queued() {
    let binding = CronFactory.build_input(&ctx("@every 1s")).await.unwrap();
    let pause = Duration::from_millis(2300);
    let (sink, mut rx) = recorder(Outcome::Accepted, pause);
    let shutdown = CancellationToken::new();
    let reader = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { binding.read(sink, shutdown).await })
    };
    let (first_at, _) = recv_within(&mut rx, Duration::from_secs(5)).await;
    let (second_at, _) = recv_within(&mut rx, Duration::from_secs(5)).await;
    let (third_at, _) = recv_within(&mut rx, Duration::from_secs(5)).await;
    let first_done = first_at + pause;
    // Two ticks fell due during the pause; had they been queued, the second event would follow
    // the end of the first delivery at once and the third right after it.
    assert!(
        second_at >= first_done,
        "delivered while the first was in flight"
    );
    let after_pause = second_at - first_done;
    assert!(
        after_pause >= Duration::from_millis(400),
        "missed ticks were replayed: {after_pause:?} after the slow delivery"
    );
    assert!(
        third_at - second_at >= Duration::from_millis(500),
        "{:?}",
        third_at - second_at
    );
    shutdown.cancel();
    assert!(reader.await.unwrap().is_ok());
}

#[tokio::test]
async fn a_draining_runtime_stops_the_schedule() {
    let binding = CronFactory.build_input(&ctx("@every 1s")).await.unwrap();
    let (sink, mut rx) = recorder(Outcome::Closed, Duration::ZERO);
    let reader = tokio::spawn(async move { binding.read(sink, CancellationToken::new()).await });
    recv_within(&mut rx, Duration::from_secs(5)).await;
    let res = tokio::time::timeout(Duration::from_secs(2), reader)
        .await
        .expect("read went on after Outcome::Closed")
        .unwrap();
    assert!(res.is_ok());
}

#[tokio::test]
async fn read_after_close_is_refused() {
    let binding = CronFactory.build_input(&ctx("@every 1s")).await.unwrap();
    binding.close().await.unwrap();
    let (sink, _rx) = recorder(Outcome::Accepted, Duration::ZERO);
    let err = binding
        .read(sink, CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), bindery_core::ErrorKind::Closed);
}
