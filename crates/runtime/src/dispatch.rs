//! Output dispatch: one call from either API to its binding. The HTTP and gRPC APIs share
//! everything after decoding.

use std::collections::HashMap;

use bindery_core::{ErrorKind, InvokeRequest, InvokeResponse};

use crate::runtime::Runtime;

/// Why an output call failed, in Dapr's words, with any response metadata the binding returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputError {
    /// `error invoking output binding <name>: <reason>`.
    pub message: String,
    /// Response metadata returned together with the error (e.g. the http binding's
    /// `statusCode`).
    pub metadata: HashMap<String, String>,
    /// The binding's error kind, when the binding itself failed.
    pub kind: Option<ErrorKind>,
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OutputError {}

impl OutputError {
    fn new(name: &str, reason: impl std::fmt::Display) -> Self {
        OutputError {
            message: format!("error invoking output binding {name}: {reason}"),
            metadata: HashMap::new(),
            kind: None,
        }
    }
}

impl Runtime {
    /// Call output binding `name`: check the operation, then invoke the binding.
    ///
    /// `Ok(None)` is "done, nothing to return" (HTTP 204).
    pub async fn invoke_output(
        &self,
        name: &str,
        request: InvokeRequest,
    ) -> Result<Option<InvokeResponse>, OutputError> {
        if request.operation.is_empty() {
            return Err(OutputError::new(
                name,
                "operation field is missing from request",
            ));
        }
        let binding = self
            .binding(name)
            .filter(|b| b.def.sides.output)
            .ok_or_else(|| {
                OutputError::new(name, format_args!("couldn't find output binding {name}"))
            })?;
        let Some(output) = binding.output() else {
            let why = binding
                .health
                .snapshot()
                .last_error
                .unwrap_or_else(|| "not connected yet".into());
            return Err(OutputError::new(
                name,
                format_args!("output binding {name} is not ready: {why}"),
            ));
        };
        let ops = output.operations();
        if !ops.contains(&request.operation.as_str()) {
            return Err(OutputError::new(
                name,
                format_args!(
                    "binding {name} does not support operation {}. supported operations:{}",
                    request.operation,
                    ops.join(" ")
                ),
            ));
        }
        match output.invoke(request).await {
            Ok(resp) => Ok(resp),
            Err(mut e) => {
                let metadata = e.take_metadata();
                tracing::debug!(binding = %name, error = %e, "output binding call failed");
                Err(OutputError {
                    metadata,
                    kind: Some(e.kind()),
                    ..OutputError::new(name, &e)
                })
            }
        }
    }
}
