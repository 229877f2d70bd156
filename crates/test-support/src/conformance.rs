//! The shared binding conformance suite, after Dapr's `tests/conformance/bindings`: the same
//! steps in the same order, run on a binding's traits against its real backend.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bindery_core::{
    BindingFactory, BindingHealth, CancellationToken, ComponentContext, EventHandler, EventSink,
    InputEvent, InvokeRequest, Metadata, Outcome, async_trait,
};
use bytes::Bytes;

/// Dapr's default `outputData`.
pub const DEFAULT_OUTPUT_DATA: &str = r#"[{"eventType":"test","eventTime": "2018-01-25T22:12:19.4556811Z","subject":"dapr-conf-tests","id":"A234-1234-1234","data":"root/>"}]"#;

/// One conformance run: which binding, its metadata, and which steps apply.
#[derive(Debug, Clone)]
pub struct Conformance {
    /// Component name.
    pub name: String,
    /// Component metadata.
    pub metadata: Metadata,
    /// Output operations to check and run (`create`, `get`, `list`, `delete`); empty when the
    /// binding has no output side under test.
    pub operations: Vec<&'static str>,
    /// Whether to run the input side (`read`).
    pub read: bool,
    /// Request metadata for output calls.
    pub output_metadata: HashMap<String, String>,
    /// Request data for `create` (and `list`).
    pub output_data: Bytes,
    /// How long to wait for the first event.
    pub read_timeout: Duration,
    /// Pause between starting `read` and the first `create`, as Dapr's suite does.
    pub read_wait: Duration,
    /// Whether `get` after `delete` answers an empty response (redis) rather than an error.
    pub get_after_delete_is_empty: bool,
}

impl Conformance {
    /// A run of component `name` with `metadata`, Dapr's defaults for the rest.
    pub fn new(name: &str, metadata: Metadata) -> Self {
        Conformance {
            name: name.into(),
            metadata,
            operations: Vec::new(),
            read: false,
            output_metadata: HashMap::new(),
            output_data: Bytes::from_static(DEFAULT_OUTPUT_DATA.as_bytes()),
            read_timeout: Duration::from_secs(60),
            read_wait: Duration::from_secs(1),
            get_after_delete_is_empty: false,
        }
    }
}

struct Counter {
    events: AtomicUsize,
    tx: tokio::sync::mpsc::UnboundedSender<InputEvent>,
}

#[async_trait]
impl EventHandler for Counter {
    async fn handle(&self, event: InputEvent) -> Outcome {
        self.events.fetch_add(1, Ordering::SeqCst);
        let _ = self.tx.send(event);
        Outcome::Accepted
    }
}

/// Validate `metadata` and build the input side of `factory` as component `name`, outside any
/// sidecar: for tests that call an [`InputBinding`](bindery_core::InputBinding) directly.
/// Panics with the binding's error when it refuses.
pub async fn build_input(
    factory: &dyn BindingFactory,
    name: &str,
    metadata: Metadata,
) -> Box<dyn bindery_core::InputBinding> {
    factory
        .validate(&metadata)
        .unwrap_or_else(|e| panic!("{name}: metadata refused: {e:?}"));
    factory
        .build_input(&ComponentContext {
            name: name.into(),
            app_id: "test".into(),
            metadata,
            health: BindingHealth::default(),
        })
        .await
        .unwrap_or_else(|e| panic!("{name}: input refused: {e}"))
}

/// Run every applicable step; panics with the step's name on the first failure, and returns the
/// events read.
pub async fn run(factory: &dyn BindingFactory, c: Conformance) -> Vec<InputEvent> {
    let ctx = ComponentContext {
        name: c.name.clone(),
        app_id: "conformance".into(),
        metadata: c.metadata.clone(),
        health: BindingHealth::default(),
    };
    // 1. init
    factory
        .validate(&c.metadata)
        .unwrap_or_else(|e| panic!("init: metadata refused: {e:?}"));
    let output = if c.operations.is_empty() {
        None
    } else {
        Some(
            factory
                .build_output(&ctx)
                .await
                .unwrap_or_else(|e| panic!("init: output: {e}")),
        )
    };
    let input = if c.read {
        Some(Arc::<dyn bindery_core::InputBinding>::from(
            factory
                .build_input(&ctx)
                .await
                .unwrap_or_else(|e| panic!("init: input: {e}")),
        ))
    } else {
        None
    };
    // 3. operations
    if let Some(out) = &output {
        let ops = out.operations();
        for op in &c.operations {
            assert!(
                ops.iter().any(|o| o.eq_ignore_ascii_case(op)),
                "operations: {op} is not in {ops:?}"
            );
        }
    }
    // 4. read
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let counter = Arc::new(Counter {
        events: AtomicUsize::new(0),
        tx,
    });
    let stop = CancellationToken::new();
    let reader = input.clone().map(|input| {
        let sink = EventSink::new(Arc::clone(&counter) as Arc<dyn EventHandler>);
        let stop = stop.clone();
        tokio::spawn(async move { input.read(sink, stop).await })
    });
    if reader.is_some() {
        tokio::time::sleep(c.read_wait).await;
    }
    let call = |op: &str| InvokeRequest {
        operation: op.into(),
        data: c.output_data.clone(),
        metadata: c.output_metadata.clone(),
    };
    if let Some(out) = &output {
        // 5. create
        if c.operations.contains(&"create") {
            out.invoke(call("create"))
                .await
                .unwrap_or_else(|e| panic!("create: {e}"));
        }
        // 6. get
        if c.operations.contains(&"get") {
            let got = out
                .invoke(call("get"))
                .await
                .unwrap_or_else(|e| panic!("get: {e}"));
            if c.operations.contains(&"create") {
                let got = got.unwrap_or_else(|| panic!("get: no response"));
                assert_eq!(
                    got.data, c.output_data,
                    "get: data differs from what create wrote"
                );
            }
        }
        // 7. list
        if c.operations.contains(&"list") {
            out.invoke(call("list"))
                .await
                .unwrap_or_else(|e| panic!("list: {e}"));
        }
    }
    // 8. verify read
    let mut events = Vec::new();
    if reader.is_some() {
        let first = tokio::time::timeout(c.read_timeout, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("verify read: no event within {:?}", c.read_timeout))
            .unwrap_or_else(|| panic!("verify read: the handler went away"));
        events.push(first);
        while let Ok(e) = rx.try_recv() {
            events.push(e);
        }
    }
    // 9. delete
    if let Some(out) = &output
        && c.operations.contains(&"delete")
    {
        out.invoke(call("delete"))
            .await
            .unwrap_or_else(|e| panic!("delete: {e}"));
        if c.operations.contains(&"create") && c.operations.contains(&"get") {
            let after = out.invoke(call("get")).await;
            if c.get_after_delete_is_empty {
                let resp = after
                    .unwrap_or_else(|e| panic!("get after delete: {e}"))
                    .unwrap_or_else(|| panic!("get after delete: no response"));
                assert!(
                    resp.data.is_empty(),
                    "get after delete: data is still there"
                );
            } else {
                assert!(after.is_err(), "get after delete: the item is still there");
            }
        }
    }
    // 10. close
    stop.cancel();
    if let Some(reader) = reader {
        let result = tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .unwrap_or_else(|_| panic!("close: read did not stop within 30s of cancellation"))
            .unwrap_or_else(|e| panic!("close: read panicked: {e}"));
        result.unwrap_or_else(|e| panic!("close: read returned an error: {e}"));
    }
    if let Some(input) = input {
        input
            .close()
            .await
            .unwrap_or_else(|e| panic!("close: input: {e}"));
    }
    if let Some(out) = output {
        out.close()
            .await
            .unwrap_or_else(|e| panic!("close: output: {e}"));
    }
    events
}
