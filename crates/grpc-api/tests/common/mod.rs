//! A runtime with test bindings, served by `bindery_grpc::serve` on `127.0.0.1:0`.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bindery_core::{
    BindingError, BindingFactory, BindingSpec, ComponentContext, Direction, EventSink,
    InputBinding, InputEvent, InvokeRequest, InvokeResponse, Metadata, Outcome, OutputBinding,
    async_trait,
};
use bindery_runtime::app::AppChannel;
use bindery_runtime::loader::{ComponentDef, Loaded, Sides, Source};
use bindery_runtime::{Runtime, RuntimeOptions};
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// Events a test feeds to the input side, each with where to report its outcome.
pub type Events = Arc<Mutex<Option<mpsc::Receiver<(InputEvent, oneshot::Sender<Outcome>)>>>>;

/// `bindings.test`: `create` echoes data and request metadata, `get` returns nothing, `fail`
/// fails with response metadata.
pub struct TestFactory {
    /// Events the input side emits; their outcomes are reported on the sender in each tuple.
    pub events: Events,
}

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.test",
    aliases: &[],
    direction: Direction::Both,
    operations: &["create", "get", "fail"],
    metadata: &[],
    summary: "test binding",
};

#[async_trait]
impl BindingFactory for TestFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, _metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        Ok(())
    }

    async fn build_output(
        &self,
        _ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        Ok(Box::new(Echo))
    }

    async fn build_input(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn InputBinding>, BindingError> {
        Ok(Box::new(Feed {
            events: Arc::clone(&self.events),
            health: ctx.health.clone(),
        }))
    }
}

struct Echo;

#[async_trait]
impl OutputBinding for Echo {
    fn operations(&self) -> &[&'static str] {
        &["create", "get", "fail"]
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        match req.operation.as_str() {
            "create" => Ok(Some(InvokeResponse {
                data: req.data,
                metadata: req.metadata,
                content_type: None,
            })),
            "get" => Ok(None),
            _ => Err(
                BindingError::rejected("backend said no").with_metadata(HashMap::from([
                    ("statusCode".to_owned(), "503".to_owned()),
                    ("reason".to_owned(), "busy".to_owned()),
                ])),
            ),
        }
    }
}

struct Feed {
    events: Events,
    health: bindery_core::BindingHealth,
}

#[async_trait]
impl InputBinding for Feed {
    async fn read(&self, sink: EventSink, shutdown: CancellationToken) -> Result<(), BindingError> {
        self.health.connected();
        let rx = self.events.lock().unwrap().take();
        let Some(mut rx) = rx else {
            shutdown.cancelled().await;
            return Ok(());
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                next = rx.recv() => match next {
                    Some((event, done)) => { let _ = done.send(sink.deliver(event).await); }
                    None => { shutdown.cancelled().await; return Ok(()); }
                },
            }
        }
    }
}

/// One binding component named `name` of type `bindings.test`.
pub fn component(name: &str, factory: Arc<dyn BindingFactory>, sides: Sides) -> ComponentDef {
    ComponentDef {
        name: name.to_owned(),
        type_name: "bindings.test".to_owned(),
        version: "v1".to_owned(),
        metadata: Metadata::new(),
        sides,
        route: format!("/{name}"),
        ignore_errors: false,
        init_timeout: Duration::from_secs(5),
        source: Source {
            file: PathBuf::from("test.yaml"),
            document: 1,
        },
        factory,
        fingerprint: 0,
    }
}

pub fn output_only() -> Sides {
    Sides {
        input: false,
        output: true,
        explicit_input: false,
    }
}

/// A runtime with the output binding `echo`, serving the gRPC API.
pub struct Harness {
    pub runtime: Arc<Runtime>,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<Result<(), bindery_grpc::ServeError>>>,
}

impl Harness {
    pub async fn start(options: RuntimeOptions) -> Self {
        let factory = Arc::new(TestFactory {
            events: Arc::new(Mutex::new(None)),
        });
        let loaded = Loaded {
            bindings: vec![component("echo", factory, output_only())],
            ..Default::default()
        };
        Self::with(options, loaded, None).await
    }

    pub async fn with(
        options: RuntimeOptions,
        loaded: Loaded,
        app: Option<Arc<dyn AppChannel>>,
    ) -> Self {
        let runtime = Runtime::new(options, loaded, app);
        runtime.start().await.expect("components start");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(bindery_grpc::serve(
            Arc::clone(&runtime),
            vec![listener],
            async move {
                let _ = stopped.await;
            },
        ));
        Harness {
            runtime,
            addr,
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub async fn client(&self) -> DaprClient<Channel> {
        DaprClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024)
    }

    /// Stop serving and wait for the server to return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("server stops")
                .unwrap()
                .unwrap();
        }
    }
}
