//! The gRPC app channel: `AppCallback/ListInputBindings` to learn what the app subscribes to,
//! `AppCallback/OnBindingEvent` per event.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use bindery_core::InputEvent;
use bindery_runtime::app::{AppChannel, AppReply, FanOut};
use dapr::dapr::proto::runtime::v1 as pb;
use dapr::dapr::proto::runtime::v1::app_callback_client::AppCallbackClient;
use dapr::dapr::proto::runtime::v1::app_callback_health_check_client::AppCallbackHealthCheckClient;
use pb::binding_event_response::BindingEventConcurrency;
use tokio::sync::OnceCell;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::server::API_TOKEN_KEY;

/// How long dialling the app may take, as daprd's gRPC app channel.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Trace context keys copied from the event metadata onto the call.
const TRACE_KEYS: [&str; 3] = ["traceparent", "tracestate", "baggage"];

/// Reaches an app that speaks gRPC (`--app-protocol grpc`).
///
/// The connection is made on first use and re-dialled after failures, so the app may start after
/// bindery. `ListInputBindings` is asked once, when first needed, and its answer is kept; a call
/// that fails is not kept, so the runtime can ask again. Binding names match case-insensitively
/// (the JS SDK lists them in lower case), and each event carries the name as the app listed it.
///
/// ```no_run
/// # fn wire(options: bindery_runtime::RuntimeOptions) {
/// use std::sync::Arc;
/// use bindery_runtime::app::AppChannel;
///
/// let app: Arc<dyn AppChannel> = Arc::new(bindery_grpc::GrpcAppChannel::new(
///     "http://127.0.0.1:50051".into(),
///     options.app_api_token.clone(),
///     options.max_body_size,
/// ));
/// # }
/// ```
pub struct GrpcAppChannel {
    endpoint: String,
    app_api_token: Option<String>,
    max_message_size: usize,
    channel: OnceLock<Result<Channel, String>>,
    /// Lower-cased name → the name as the app listed it.
    bindings: OnceCell<HashMap<String, String>>,
}

impl std::fmt::Debug for GrpcAppChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcAppChannel")
            .field("endpoint", &self.endpoint)
            .field(
                "app_api_token",
                &self.app_api_token.as_ref().map(|_| "<set>"),
            )
            .field("max_message_size", &self.max_message_size)
            .finish_non_exhaustive()
    }
}

impl GrpcAppChannel {
    /// A channel to the app at `endpoint` (`http://127.0.0.1:<app-port>`), sending
    /// `app_api_token` as `dapr-api-token` when set, and bounding messages to
    /// `max_message_size` bytes both ways. Nothing is dialled until the first call.
    pub fn new(endpoint: String, app_api_token: Option<String>, max_message_size: usize) -> Self {
        GrpcAppChannel {
            endpoint,
            app_api_token,
            max_message_size,
            channel: OnceLock::new(),
            bindings: OnceCell::new(),
        }
    }

    fn client(&self) -> Result<AppCallbackClient<Channel>, String> {
        Ok(AppCallbackClient::new(self.connection()?)
            .max_decoding_message_size(self.max_message_size)
            .max_encoding_message_size(self.max_message_size))
    }

    /// The lazily dialled connection to the app.
    fn connection(&self) -> Result<Channel, String> {
        let channel = self.channel.get_or_init(|| {
            Endpoint::from_shared(self.endpoint.clone())
                .map(|e| {
                    e.connect_timeout(CONNECT_TIMEOUT)
                        .tcp_nodelay(true)
                        .connect_lazy()
                })
                .map_err(|e| format!("invalid app endpoint {:?}: {e}", self.endpoint))
        });
        channel.clone()
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut req = Request::new(message);
        if let Some(token) = &self.app_api_token {
            match MetadataValue::try_from(token.as_str()) {
                Ok(v) => {
                    req.metadata_mut().insert(API_TOKEN_KEY, v);
                }
                Err(_) => {
                    tracing::warn!("APP_API_TOKEN is not a valid gRPC metadata value; not sent")
                }
            }
        }
        req
    }

    /// The app's input bindings, asked once. Only a successful answer is kept.
    async fn bindings(&self) -> Result<&HashMap<String, String>, String> {
        self.bindings
            .get_or_try_init(|| async {
                let mut client = self.client()?;
                let names = match client.list_input_bindings(self.request(())).await {
                    Ok(resp) => resp.into_inner().bindings,
                    // The app answered: it has no AppCallback service, so no input bindings.
                    Err(s) if s.code() == tonic::Code::Unimplemented => {
                        tracing::info!(app = %self.endpoint, "app does not implement ListInputBindings; it subscribes to no input binding");
                        Vec::new()
                    }
                    Err(s) => return Err(describe("ListInputBindings", &s)),
                };
                tracing::debug!(app = %self.endpoint, bindings = ?names, "app input bindings");
                Ok(names
                    .into_iter()
                    .map(|n| (n.to_lowercase(), n))
                    .collect())
            })
            .await
    }
}

fn describe(method: &str, s: &Status) -> String {
    if s.message().is_empty() {
        format!("{method}: gRPC status {:?}", s.code())
    } else {
        format!("{method}: gRPC status {:?}: {}", s.code(), s.message())
    }
}

#[async_trait::async_trait]
impl AppChannel for GrpcAppChannel {
    async fn subscribed(&self, binding: &str, _route: &str) -> Result<bool, String> {
        Ok(self.bindings().await?.contains_key(&binding.to_lowercase()))
    }

    async fn healthy(&self, _path: &str) -> Result<(), String> {
        let mut client = AppCallbackHealthCheckClient::new(self.connection()?);
        match client.health_check(self.request(())).await {
            Ok(_) => Ok(()),
            // An app that does not implement health checks (the Python SDK without a health
            // callback) answers UNIMPLEMENTED: it is up, so it counts as healthy.
            Err(s) if s.code() == tonic::Code::Unimplemented => Ok(()),
            Err(s) => Err(describe("HealthCheck", &s)),
        }
    }

    async fn deliver(&self, binding: &str, _route: &str, event: &InputEvent) -> AppReply {
        let mut client = match self.client() {
            Ok(c) => c,
            Err(reason) => return AppReply::Failed { reason, code: None },
        };
        // The name as the app listed it, so apps that look names up exactly still find it. A
        // binding with `direction: input` was never probed, so the list may be asked for here.
        let name = match self.bindings().await {
            Ok(listed) => listed
                .get(&binding.to_lowercase())
                .cloned()
                .unwrap_or_else(|| binding.to_owned()),
            Err(_) => binding.to_owned(),
        };
        let mut req = self.request(pb::BindingEventRequest {
            name,
            data: event.data.to_vec(),
            metadata: event.metadata.clone(),
        });
        add_trace_context(req.metadata_mut(), &event.metadata);
        match client.on_binding_event(req).await {
            Ok(resp) => reply(binding, resp.into_inner()),
            Err(s) => AppReply::Failed {
                reason: describe("OnBindingEvent", &s),
                code: Some(bindery_runtime::resiliency::Code::Grpc(s.code() as i32)),
            },
        }
    }
}

fn add_trace_context(into: &mut MetadataMap, event: &HashMap<String, String>) {
    for key in TRACE_KEYS {
        let value = event
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| MetadataValue::try_from(v.as_str()).ok());
        if let Some(v) = value {
            into.insert(key, v);
        }
    }
}

/// The app's OK answer: the legacy `to`/`data`/`concurrency` fields become output calls; state
/// saving is not available (bindery has no state stores).
fn reply(binding: &str, resp: pb::BindingEventResponse) -> AppReply {
    if !resp.store_name.is_empty() || !resp.states.is_empty() {
        tracing::warn!(
            binding = %binding,
            store = %resp.store_name,
            states = resp.states.len(),
            "the app asked to save state in its answer to a binding event; bindery has no state stores, ignoring it"
        );
    }
    let fan_out = (!resp.to.is_empty()).then(|| FanOut {
        parallel: resp.concurrency == BindingEventConcurrency::Parallel as i32,
        to: resp.to,
        data: resp.data.into(),
    });
    AppReply::Accepted { fan_out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_maps_legacy_fields() {
        assert_eq!(
            reply("b", pb::BindingEventResponse::default()),
            AppReply::Accepted { fan_out: None }
        );
        let r = reply(
            "b",
            pb::BindingEventResponse {
                to: vec!["out".into()],
                data: b"x".to_vec(),
                concurrency: BindingEventConcurrency::Parallel as i32,
                store_name: "ignored".into(),
                ..Default::default()
            },
        );
        assert_eq!(
            r,
            AppReply::Accepted {
                fan_out: Some(FanOut {
                    to: vec!["out".into()],
                    data: "x".into(),
                    parallel: true
                })
            }
        );
    }

    #[test]
    fn trace_context_is_copied_case_insensitively() {
        let mut md = MetadataMap::new();
        let event = HashMap::from([
            ("TraceParent".to_owned(), "00-abc-def-01".to_owned()),
            ("other".to_owned(), "x".to_owned()),
        ]);
        add_trace_context(&mut md, &event);
        assert_eq!(md.get("traceparent").unwrap(), "00-abc-def-01");
        assert!(md.get("tracestate").is_none());
        assert!(md.get("other").is_none());
    }
}
