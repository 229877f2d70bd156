//! The gRPC app channel against a test `AppCallback` server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bindery_core::{InputEvent, Outcome};
use bindery_grpc::GrpcAppChannel;
use bindery_runtime::app::{AppChannel, AppReply, FanOut};
use bindery_runtime::loader::{Loaded, Sides};
use bindery_runtime::{AppProtocol, RuntimeOptions};
use common::{Harness, TestFactory, component, output_only};
use dapr::dapr::proto::common::v1 as common_pb;
use dapr::dapr::proto::runtime::v1 as pb;
use dapr::dapr::proto::runtime::v1::app_callback_server::{AppCallback, AppCallbackServer};
use pb::binding_event_response::BindingEventConcurrency;
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};

/// One `OnBindingEvent` call as the app saw it.
#[derive(Debug, Clone)]
struct Seen {
    name: String,
    data: Vec<u8>,
    metadata: HashMap<String, String>,
    token: Option<String>,
    traceparent: Option<String>,
    tracestate: Option<String>,
}

#[derive(Default)]
struct TestApp {
    /// What `ListInputBindings` answers; `None` answers UNIMPLEMENTED.
    bindings: Option<Vec<String>>,
    lists: AtomicUsize,
    list_tokens: Mutex<Vec<Option<String>>>,
    seen: Mutex<Vec<Seen>>,
    /// Answers by (lower-cased) binding name; OK with an empty response otherwise.
    answers: HashMap<String, Result<pb::BindingEventResponse, (tonic::Code, String)>>,
}

fn header(req: &tonic::metadata::MetadataMap, key: &str) -> Option<String> {
    req.get(key).map(|v| v.to_str().unwrap().to_owned())
}

#[tonic::async_trait]
impl AppCallback for TestApp {
    async fn on_invoke(
        &self,
        _: Request<common_pb::InvokeRequest>,
    ) -> Result<Response<common_pb::InvokeResponse>, Status> {
        Err(Status::unimplemented("on_invoke"))
    }
    async fn list_topic_subscriptions(
        &self,
        _: Request<()>,
    ) -> Result<Response<pb::ListTopicSubscriptionsResponse>, Status> {
        Err(Status::unimplemented("list_topic_subscriptions"))
    }
    async fn on_topic_event(
        &self,
        _: Request<pb::TopicEventRequest>,
    ) -> Result<Response<pb::TopicEventResponse>, Status> {
        Err(Status::unimplemented("on_topic_event"))
    }
    async fn list_input_bindings(
        &self,
        req: Request<()>,
    ) -> Result<Response<pb::ListInputBindingsResponse>, Status> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.list_tokens
            .lock()
            .unwrap()
            .push(header(req.metadata(), "dapr-api-token"));
        match &self.bindings {
            Some(b) => Ok(Response::new(pb::ListInputBindingsResponse {
                bindings: b.clone(),
            })),
            None => Err(Status::unimplemented("no bindings here")),
        }
    }
    async fn on_binding_event(
        &self,
        req: Request<pb::BindingEventRequest>,
    ) -> Result<Response<pb::BindingEventResponse>, Status> {
        let md = req.metadata().clone();
        let r = req.into_inner();
        self.seen.lock().unwrap().push(Seen {
            name: r.name.clone(),
            data: r.data,
            metadata: r.metadata,
            token: header(&md, "dapr-api-token"),
            traceparent: header(&md, "traceparent"),
            tracestate: header(&md, "tracestate"),
        });
        match self.answers.get(&r.name.to_lowercase()) {
            Some(Ok(resp)) => Ok(Response::new(resp.clone())),
            Some(Err((code, msg))) => Err(Status::new(*code, msg.clone())),
            None => Ok(Response::new(pb::BindingEventResponse::default())),
        }
    }
    async fn on_bulk_topic_event(
        &self,
        _: Request<pb::TopicEventBulkRequest>,
    ) -> Result<Response<pb::TopicEventBulkResponse>, Status> {
        Err(Status::unimplemented("on_bulk_topic_event"))
    }
    async fn on_job_event(
        &self,
        _: Request<pb::JobEventRequest>,
    ) -> Result<Response<pb::JobEventResponse>, Status> {
        Err(Status::unimplemented("on_job_event"))
    }
}

/// Serve `app` on `listener` until the returned sender is dropped.
fn serve_app(app: Arc<TestApp>, listener: tokio::net::TcpListener) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AppCallbackServer::from_arc(app))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async move {
                    let _ = stopped.await;
                },
            ),
    );
    stop
}

async fn start_app(app: Arc<TestApp>) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (addr, serve_app(app, listener))
}

fn channel(addr: SocketAddr, token: Option<&str>) -> GrpcAppChannel {
    GrpcAppChannel::new(
        format!("http://{addr}"),
        token.map(str::to_owned),
        4 * 1024 * 1024,
    )
}

#[tokio::test]
async fn list_is_asked_once_and_names_match_in_any_case() {
    let app = Arc::new(TestApp {
        bindings: Some(vec!["mycron".into(), "Other".into()]),
        ..Default::default()
    });
    let (addr, _stop) = start_app(Arc::clone(&app)).await;
    let ch = channel(addr, Some("app-token"));
    assert!(ch.subscribed("MyCron", "/MyCron").await.unwrap());
    assert!(ch.subscribed("other", "/other").await.unwrap());
    assert!(ch.subscribed("OTHER", "/OTHER").await.unwrap());
    assert!(!ch.subscribed("missing", "/missing").await.unwrap());
    assert_eq!(app.lists.load(Ordering::SeqCst), 1);
    assert_eq!(
        *app.list_tokens.lock().unwrap(),
        vec![Some("app-token".to_owned())]
    );

    // The event carries the name as the app listed it.
    let reply = ch
        .deliver("MyCron", "/MyCron", &InputEvent::new("tick"))
        .await;
    assert_eq!(reply, AppReply::Accepted { fan_out: None });
    let seen = app.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].name, "mycron");
    assert_eq!(seen[0].data, b"tick");
}

#[tokio::test]
async fn an_app_that_is_not_up_yet_is_an_error_and_is_asked_again() {
    // A free port nobody listens on yet.
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let ch = channel(addr, None);
    let err = ch.subscribed("b", "/b").await.unwrap_err();
    assert!(err.contains("ListInputBindings"), "{err}");
    let reply = ch.deliver("b", "/b", &InputEvent::new("x")).await;
    assert!(matches!(reply, AppReply::Failed { .. }), "{reply:?}");

    let app = Arc::new(TestApp {
        bindings: Some(vec!["b".into()]),
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let _stop = serve_app(Arc::clone(&app), listener);
    // The channel re-dials: the failure was not kept.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match ch.subscribed("b", "/b").await {
            Ok(yes) => {
                assert!(yes);
                break;
            }
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("app never reached: {e}"),
        }
    }
    assert_eq!(app.lists.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_app_without_list_input_bindings_subscribes_to_nothing() {
    let app = Arc::new(TestApp::default());
    let (addr, _stop) = start_app(Arc::clone(&app)).await;
    let ch = channel(addr, None);
    assert!(!ch.subscribed("b", "/b").await.unwrap());
    assert!(!ch.subscribed("c", "/c").await.unwrap());
    assert_eq!(app.lists.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn non_ok_status_is_a_failure_naming_code_and_message() {
    let app = Arc::new(TestApp {
        bindings: Some(vec!["b".into()]),
        answers: HashMap::from([(
            "b".to_owned(),
            Err((tonic::Code::Internal, "handler blew up".to_owned())),
        )]),
        ..Default::default()
    });
    let (addr, _stop) = start_app(app).await;
    let ch = channel(addr, None);
    match ch.deliver("b", "/b", &InputEvent::new("x")).await {
        AppReply::Failed { reason, .. } => {
            assert!(reason.contains("Internal"), "{reason}");
            assert!(reason.contains("handler blew up"), "{reason}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn legacy_response_fields_become_a_fan_out() {
    let app = Arc::new(TestApp {
        bindings: Some(vec!["par".into(), "seq".into(), "state".into()]),
        answers: HashMap::from([
            (
                "par".to_owned(),
                Ok(pb::BindingEventResponse {
                    to: vec!["a".into(), "b".into()],
                    data: b"{\"x\":1}".to_vec(),
                    concurrency: BindingEventConcurrency::Parallel as i32,
                    ..Default::default()
                }),
            ),
            (
                "seq".to_owned(),
                Ok(pb::BindingEventResponse {
                    to: vec!["a".into()],
                    data: b"plain".to_vec(),
                    ..Default::default()
                }),
            ),
            (
                "state".to_owned(),
                Ok(pb::BindingEventResponse {
                    store_name: "statestore".into(),
                    states: vec![common_pb::StateItem {
                        key: "k".into(),
                        value: b"v".to_vec(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            ),
        ]),
        ..Default::default()
    });
    let (addr, _stop) = start_app(app).await;
    let ch = channel(addr, None);
    assert_eq!(
        ch.deliver("par", "/par", &InputEvent::new("e")).await,
        AppReply::Accepted {
            fan_out: Some(FanOut {
                to: vec!["a".into(), "b".into()],
                data: "{\"x\":1}".into(),
                parallel: true,
            })
        }
    );
    assert_eq!(
        ch.deliver("seq", "/seq", &InputEvent::new("e")).await,
        AppReply::Accepted {
            fan_out: Some(FanOut {
                to: vec!["a".into()],
                data: "plain".into(),
                parallel: false,
            })
        }
    );
    // State saving is ignored (with a warning): the event is still accepted.
    assert_eq!(
        ch.deliver("state", "/state", &InputEvent::new("e")).await,
        AppReply::Accepted { fan_out: None }
    );
}

#[tokio::test]
async fn events_carry_metadata_token_and_trace_context() {
    let app = Arc::new(TestApp {
        bindings: Some(vec!["b".into()]),
        ..Default::default()
    });
    let (addr, _stop) = start_app(Arc::clone(&app)).await;
    let ch = channel(addr, Some("app-token"));
    let event = InputEvent::new(vec![0u8, 159, 146, 150])
        .with_metadata("readTimeUTC", "2026-01-01 00:00:00")
        .with_metadata(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .with_metadata("tracestate", "congo=t61rcWkgMzE");
    assert_eq!(
        ch.deliver("b", "/b", &event).await,
        AppReply::Accepted { fan_out: None }
    );
    // Without a token and without trace context.
    let plain = channel(addr, None);
    plain.deliver("b", "/b", &InputEvent::new("y")).await;

    let seen = app.seen.lock().unwrap().clone();
    assert_eq!(seen[0].data, vec![0u8, 159, 146, 150]);
    assert_eq!(seen[0].metadata["readTimeUTC"], "2026-01-01 00:00:00");
    assert_eq!(seen[0].token.as_deref(), Some("app-token"));
    assert_eq!(
        seen[0].traceparent.as_deref(),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
    assert_eq!(seen[0].tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
    assert_eq!(seen[1].token, None);
    assert_eq!(seen[1].traceparent, None);
}

#[tokio::test]
async fn oversize_events_fail_instead_of_hanging() {
    let app = Arc::new(TestApp {
        bindings: Some(vec!["b".into()]),
        ..Default::default()
    });
    let (addr, _stop) = start_app(app).await;
    let ch = GrpcAppChannel::new(format!("http://{addr}"), None, 1024);
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        ch.deliver("b", "/b", &InputEvent::new(vec![b'x'; 4096])),
    )
    .await
    .expect("answered");
    assert!(matches!(reply, AppReply::Failed { .. }), "{reply:?}");
}

/// Through the runtime: an input event reaches the app over gRPC, and the app's `to` fan-out
/// calls an output binding.
#[tokio::test]
async fn runtime_delivers_events_and_fan_out_through_the_channel() {
    let app = Arc::new(TestApp {
        bindings: Some(vec!["feed".into()]),
        answers: HashMap::from([(
            "feed".to_owned(),
            Ok(pb::BindingEventResponse {
                to: vec!["echo".into()],
                data: b"forwarded".to_vec(),
                ..Default::default()
            }),
        )]),
        ..Default::default()
    });
    let (app_addr, _stop) = start_app(Arc::clone(&app)).await;
    let (tx, rx) = mpsc::channel(4);
    let factory = Arc::new(TestFactory {
        events: Arc::new(Mutex::new(Some(rx))),
    });
    let loaded = Loaded {
        bindings: vec![
            component(
                "feed",
                factory.clone(),
                Sides {
                    input: true,
                    output: false,
                    explicit_input: false,
                },
            ),
            component("echo", factory, output_only()),
        ],
        ..Default::default()
    };
    let options = RuntimeOptions {
        app_port: Some(app_addr.port()),
        app_protocol: AppProtocol::Grpc,
        ..Default::default()
    };
    let channel: Arc<dyn AppChannel> = Arc::new(channel(app_addr, None));
    let h = Harness::with(options, loaded, Some(channel)).await;
    let rt = Arc::clone(&h.runtime);
    tokio::spawn(async move { rt.start_inputs().await });

    let (done, outcome) = oneshot::channel();
    tx.send((InputEvent::new("hello").with_metadata("k", "v"), done))
        .await
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), outcome)
        .await
        .expect("outcome in time")
        .unwrap();
    assert_eq!(outcome, Outcome::Accepted);
    let seen = app.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].name, "feed");
    assert_eq!(seen[0].data, b"hello");
    assert_eq!(seen[0].metadata["k"], "v");
    h.stop().await;
}

/// A binding with `direction: input` is never probed; its events still carry the name as the
/// app listed it.
#[tokio::test]
async fn delivery_without_a_probe_uses_the_listed_name() {
    let app = Arc::new(TestApp {
        bindings: Some(vec!["MyQueue".into()]),
        ..Default::default()
    });
    let (addr, _stop) = start_app(Arc::clone(&app)).await;
    let ch = channel(addr, None);
    let reply = ch
        .deliver("myqueue", "/myqueue", &InputEvent::new("m"))
        .await;
    assert_eq!(reply, AppReply::Accepted { fan_out: None });
    assert_eq!(app.seen.lock().unwrap()[0].name, "MyQueue");
}

/// The app's fan-out to a binding that does not exist fails the event, so the source keeps it.
#[tokio::test]
async fn a_failed_fan_out_fails_the_event() {
    let app = Arc::new(TestApp {
        bindings: Some(vec!["feed".into()]),
        answers: HashMap::from([(
            "feed".to_owned(),
            Ok(pb::BindingEventResponse {
                to: vec!["missing".into()],
                data: b"x".to_vec(),
                ..Default::default()
            }),
        )]),
        ..Default::default()
    });
    let (app_addr, _stop) = start_app(Arc::clone(&app)).await;
    let (tx, rx) = mpsc::channel(4);
    let factory = Arc::new(TestFactory {
        events: Arc::new(Mutex::new(Some(rx))),
    });
    let loaded = Loaded {
        bindings: vec![component(
            "feed",
            factory,
            Sides {
                input: true,
                output: false,
                explicit_input: false,
            },
        )],
        ..Default::default()
    };
    let options = RuntimeOptions {
        app_port: Some(app_addr.port()),
        app_protocol: AppProtocol::Grpc,
        ..Default::default()
    };
    let channel: Arc<dyn AppChannel> = Arc::new(channel(app_addr, None));
    let h = Harness::with(options, loaded, Some(channel)).await;
    let rt = Arc::clone(&h.runtime);
    tokio::spawn(async move { rt.start_inputs().await });
    let (done, outcome) = oneshot::channel();
    tx.send((InputEvent::new("hello"), done)).await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), outcome)
        .await
        .expect("outcome in time")
        .unwrap();
    match outcome {
        Outcome::Failed { reason, .. } => {
            assert!(
                reason.contains("couldn't find output binding missing"),
                "{reason}"
            )
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    h.stop().await;
}
