//! The component model of bindery.
//!
//! This crate is to bindery what `tower-service` is to tower: small and stable. Every binding
//! family depends on it alone. It defines
//!
//! * [`OutputBinding`]: one call to an external system ([`InvokeRequest`] → [`InvokeResponse`]);
//! * [`InputBinding`]: a read loop that hands each [`InputEvent`] to an [`EventSink`] and maps the
//!   [`Outcome`] it gets back to its source's acknowledgement;
//! * [`Metadata`] and [`MetadataReader`]: case-insensitive component metadata with Dapr's decoding
//!   rules (truthy booleans, Go durations, byte quantities), collecting every problem at once;
//! * [`BindingError`]: the one error type at the trait boundary, which knows its kind and whether
//!   a retry can help;
//! * [`Registry`] and [`BindingFactory`]: how the runtime finds a binding by its `spec.type` and
//!   builds it in two phases (check metadata without I/O, then connect).
//!
//! Bindings never see HTTP, gRPC, retries or metrics; the runtime adds those around them.

mod binding;
mod error;
mod health;
mod metadata;
mod registry;
pub mod time;
pub mod util;

pub use binding::{
    EventHandler, EventSink, InputBinding, InputEvent, InvokeRequest, InvokeResponse, Outcome,
    OutputBinding,
};
pub use error::{BindingError, ErrorKind};
pub use health::{BindingHealth, HealthSnapshot};
pub use metadata::{Metadata, MetadataReader, parse_duration, parse_quantity, parse_truthy};
pub use registry::{
    BindingFactory, BindingSpec, ComponentContext, Direction, MetadataField, Registry,
};

/// Re-exported so bindings implement the traits with the same macro the runtime uses.
pub use async_trait::async_trait;
/// Re-exported so bindings and the runtime agree on one cancellation type.
pub use tokio_util::sync::CancellationToken;
