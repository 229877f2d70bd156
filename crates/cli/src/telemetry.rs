//! Tracing set up from the `Configuration`: the sampling rate, and the OTLP exporter when
//! `spec.tracing.otel.endpointAddress` names a collector.

use std::sync::Arc;
use std::time::Duration;

use bindery_runtime::Configuration;
use bindery_runtime::trace::{Sampler, SpanExporter, Tracer};

/// The exporter that was set up, to flush on shutdown.
pub(crate) struct Telemetry {
    #[cfg(feature = "otlp")]
    exporter: Option<Arc<bindery_otlp::OtlpExporter>>,
}

impl Telemetry {
    /// Send the spans still queued, within `within`.
    pub(crate) async fn shutdown(&self, within: Duration) {
        #[cfg(feature = "otlp")]
        if let Some(e) = &self.exporter {
            if !e.shutdown(within).await {
                tracing::warn!(?within, "spans still queued were not sent in time");
            }
            tracing::debug!(
                exported = e.exported(),
                failed = e.failed(),
                dropped = e.dropped(),
                "span exporter stopped"
            );
        }
        #[cfg(not(feature = "otlp"))]
        let _ = within;
    }
}

/// The tracer `config` asks for. An invalid `samplingRate` or `otel` section is an error.
pub(crate) fn setup(config: &Configuration, app_id: &str) -> anyhow::Result<(Tracer, Telemetry)> {
    let tracing_spec = config.tracing.as_ref();
    let rate = Sampler::parse_rate(tracing_spec.and_then(|t| t.sampling_rate.as_deref()))
        .map_err(|e| anyhow::anyhow!("spec.tracing: {e}"))?;
    if let Some(z) = tracing_spec.and_then(|t| t.zipkin.as_ref())
        && z.endpoint_address.as_deref().is_some_and(|a| !a.is_empty())
    {
        tracing::warn!(
            "spec.tracing.zipkin is not supported by bindery; use spec.tracing.otel (OTLP)"
        );
    }
    let otel = tracing_spec.and_then(|t| t.otel.as_ref());
    let exporter: Option<Arc<dyn SpanExporter>>;
    #[cfg(feature = "otlp")]
    let otlp = match otel {
        Some(otel) => {
            match bindery_otlp::OtlpConfig::from_dapr(otel, app_id).map_err(anyhow::Error::msg)? {
                Some(c) if rate > 0.0 => {
                    tracing::info!(endpoint = %c.url(), protocol = ?c.protocol, sampling_rate = rate, "exporting spans over OTLP");
                    Some(bindery_otlp::OtlpExporter::start(&c).map_err(anyhow::Error::msg)?)
                }
                Some(_) => {
                    tracing::info!(
                        "samplingRate is 0: no spans are exported; trace context is still passed on"
                    );
                    None
                }
                None => None,
            }
        }
        None => None,
    };
    #[cfg(feature = "otlp")]
    {
        exporter = otlp.clone().map(|e| e as Arc<dyn SpanExporter>);
    }
    #[cfg(not(feature = "otlp"))]
    {
        let _ = app_id;
        if otel.is_some_and(|o| o.endpoint_address.as_deref().is_some_and(|a| !a.is_empty())) {
            tracing::warn!(
                "this bindery was built without the otlp feature: spans are not exported"
            );
        }
        exporter = None;
    }
    Ok((
        Tracer::new(rate, exporter),
        Telemetry {
            #[cfg(feature = "otlp")]
            exporter: otlp,
        },
    ))
}
