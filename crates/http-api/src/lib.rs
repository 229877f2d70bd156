//! bindery's Dapr HTTP API (`/v1.0/bindings`, health, metadata, shutdown) and the HTTP app
//! channel that delivers input events to an HTTP app.
//!
//! The API decodes a request, checks the token and the size limit, and hands the call to
//! [`bindery_runtime::Runtime`]; every status code and Dapr error body is produced by
//! [`error::ApiError`], the one place that maps failures to responses.

mod api;
mod app_channel;
mod error;
mod json;

pub use api::{decode_output_request, metrics_router, router, serve, serve_router};
pub use app_channel::HttpAppChannel;
pub use json::reencode_json;
