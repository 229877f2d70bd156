//! The stall watchdog restarts an input binding that receives nothing while its source reports
//! a backlog, and leaves alone one whose source is empty.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bindery_core::{
    BindingError, BindingFactory, BindingSpec, CancellationToken, ComponentContext, Direction,
    EventSink, InputBinding, InputEvent, Metadata, async_trait,
};
use bindery_runtime::app::{AppChannel, AppReply};
use bindery_runtime::loader::{ComponentDef, Loaded, Sides, Source};
use bindery_runtime::{Runtime, RuntimeOptions};

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.stuck",
    aliases: &[],
    direction: Direction::Input,
    operations: &[],
    metadata: &[],
    summary: "reads nothing",
};

/// An input whose read loop hangs without delivering, with a fixed backlog.
struct Stuck {
    reads: Arc<AtomicUsize>,
    backlog: Arc<AtomicU64>,
}

#[async_trait]
impl InputBinding for Stuck {
    async fn read(
        &self,
        _sink: EventSink,
        shutdown: CancellationToken,
    ) -> Result<(), BindingError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        shutdown.cancelled().await;
        Ok(())
    }
    async fn backlog(&self) -> Option<u64> {
        Some(self.backlog.load(Ordering::SeqCst))
    }
}

struct Factory {
    reads: Arc<AtomicUsize>,
    backlog: Arc<AtomicU64>,
}

#[async_trait]
impl BindingFactory for Factory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }
    fn validate(&self, _: &Metadata) -> Result<(), Vec<BindingError>> {
        Ok(())
    }
    async fn build_input(
        &self,
        _: &ComponentContext,
    ) -> Result<Box<dyn InputBinding>, BindingError> {
        Ok(Box::new(Stuck {
            reads: Arc::clone(&self.reads),
            backlog: Arc::clone(&self.backlog),
        }))
    }
}

struct App;

#[async_trait]
impl AppChannel for App {
    async fn subscribed(&self, _: &str, _: &str) -> Result<bool, String> {
        Ok(true)
    }
    async fn deliver(&self, _: &str, _: &str, _: &InputEvent) -> AppReply {
        AppReply::Accepted { fan_out: None }
    }
}

async fn runtime(backlog: u64) -> (Arc<Runtime>, Arc<AtomicUsize>) {
    let reads = Arc::new(AtomicUsize::new(0));
    let factory = Arc::new(Factory {
        reads: Arc::clone(&reads),
        backlog: Arc::new(AtomicU64::new(backlog)),
    });
    let def = ComponentDef {
        name: "stuck".into(),
        type_name: "bindings.stuck".into(),
        version: "v1".into(),
        metadata: Metadata::new(),
        sides: Sides {
            input: true,
            output: false,
            explicit_input: true,
        },
        route: "/stuck".into(),
        ignore_errors: false,
        init_timeout: Duration::from_secs(5),
        source: Source {
            file: PathBuf::from("stuck.yaml"),
            document: 1,
        },
        factory,
        fingerprint: 0,
    };
    // The app "listens" on a port we hold open, so the runtime finds it reachable.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let _ = listener.accept().await;
        }
    });
    let options = RuntimeOptions {
        app_id: "watchdog".into(),
        app_port: Some(port),
        ..RuntimeOptions::default()
    };
    let loaded = Loaded {
        bindings: vec![def],
        ..Loaded::default()
    };
    let rt = Runtime::new(options, loaded, Some(Arc::new(App)));
    rt.start().await.unwrap();
    rt.start_inputs().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while reads.load(Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the read loop never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (rt, reads)
}

#[tokio::test]
async fn a_stalled_binding_with_a_backlog_is_restarted() {
    let (rt, reads) = runtime(5).await;
    let watch = {
        let rt = Arc::clone(&rt);
        tokio::spawn(async move {
            rt.watch_stalls(Duration::from_millis(20), Duration::from_millis(100))
                .await
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while reads.load(Ordering::SeqCst) < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watchdog never restarted the read loop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rt.shutdown().await;
    watch.await.unwrap();
}

#[tokio::test]
async fn a_quiet_binding_without_a_backlog_is_left_alone() {
    let (rt, reads) = runtime(0).await;
    let watch = {
        let rt = Arc::clone(&rt);
        tokio::spawn(async move {
            rt.watch_stalls(Duration::from_millis(20), Duration::from_millis(100))
                .await
        })
    };
    // Ten watchdog rounds past the stall timeout.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        reads.load(Ordering::SeqCst),
        1,
        "nothing waits at the source: no restart"
    );
    rt.shutdown().await;
    watch.await.unwrap();
}
