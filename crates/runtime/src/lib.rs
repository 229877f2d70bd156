//! bindery's runtime: everything between the APIs and the bindings.
//!
//! * [`loader`]: component manifests from the resources paths, secrets, scopes, checks;
//! * dispatch: an output call from either API to its binding, under the outbound policy;
//! * delivery: an input event from its binding to the app channel, under the inbound policy,
//!   and its outcome back to the binding;
//! * lifecycle: build, ready, draining, closed.

pub mod app;
mod configuration;
mod delivery;
mod dispatch;
pub mod loader;
pub mod metrics;
mod options;
pub mod reload;
pub mod resiliency;
mod runtime;
pub mod trace;

pub use configuration::{Configuration, Feature, Otel, Tracing, Zipkin};
pub use dispatch::{OutputCaller, OutputError};
pub use options::{AppHealthCheck, AppProtocol, RuntimeOptions};
pub use runtime::{
    AppConnectionInfo, ComponentInfo, ComponentStatus, MetadataInfo, Runtime, Subscription,
    TapEvent, VERSION, listen_addrs,
};
