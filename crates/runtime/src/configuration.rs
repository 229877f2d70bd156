//! The Dapr `Configuration` file given with `--config`: the parts bindery uses.

use std::path::Path;

use serde::Deserialize;

/// What bindery reads from a `kind: Configuration` document.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Configuration {
    /// `spec.tracing`.
    #[serde(default)]
    pub tracing: Option<Tracing>,
    /// `spec.features`.
    #[serde(default)]
    pub features: Vec<Feature>,
}

/// `spec.tracing`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tracing {
    /// `samplingRate`, a number from 0 to 1 written as a string.
    #[serde(default)]
    pub sampling_rate: Option<String>,
    /// `otel.endpointAddress`, `otel.protocol`, `otel.isSecure`.
    #[serde(default)]
    pub otel: Option<Otel>,
    /// `zipkin.endpointAddress`: read only to say that bindery does not export to Zipkin.
    #[serde(default)]
    pub zipkin: Option<Zipkin>,
}

/// `spec.tracing.zipkin`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Zipkin {
    /// The Zipkin collector's URL.
    #[serde(default)]
    pub endpoint_address: Option<String>,
}

/// `spec.tracing.otel`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Otel {
    /// Where spans go.
    #[serde(default)]
    pub endpoint_address: Option<String>,
    /// `grpc` or `http`.
    #[serde(default)]
    pub protocol: Option<String>,
    /// TLS to the collector.
    #[serde(default)]
    pub is_secure: Option<bool>,
}

/// One entry of `spec.features`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Feature {
    /// The feature's name, e.g. `HotReload`.
    pub name: String,
    /// Whether it is on.
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    spec: Option<Configuration>,
}

impl Configuration {
    /// Read `path`, which must hold one `kind: Configuration` document.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read configuration {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("configuration {}: {e}", path.display()))
    }

    /// Parse the text of a configuration file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc: Document = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        if doc.kind.as_deref() != Some("Configuration") {
            return Err(format!(
                "kind must be Configuration, found {}",
                doc.kind.as_deref().unwrap_or("nothing")
            ));
        }
        if doc.api_version.as_deref() != Some("dapr.io/v1alpha1") {
            return Err("apiVersion must be dapr.io/v1alpha1".into());
        }
        Ok(doc.spec.unwrap_or_default())
    }

    /// Whether feature `name` is enabled, or `default` when the file does not say.
    pub fn feature(&self, name: &str, default: bool) -> bool {
        self.features
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map_or(default, |f| f.enabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tracing_and_features() {
        let c = Configuration::parse(
            "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\nspec:\n  tracing:\n    samplingRate: \"1\"\n  features:\n    - name: HotReload\n      enabled: false\n",
        )
        .unwrap();
        assert_eq!(
            c.tracing.as_ref().unwrap().sampling_rate.as_deref(),
            Some("1")
        );
        assert!(!c.feature("hotreload", true));
        assert!(c.feature("Other", true));
    }

    #[test]
    fn refuses_other_kinds_and_junk() {
        assert!(Configuration::parse("apiVersion: dapr.io/v1alpha1\nkind: Component\n").is_err());
        assert!(Configuration::parse(": : :\n\t- [").is_err());
        assert!(Configuration::parse("").is_err());
    }
}
