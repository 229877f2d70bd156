//! `kind: Component` documents: from the generic YAML tree to a [`ComponentManifest`].
//!
//! Field names are matched case-insensitively, as Go's JSON decoding does for Dapr (so both
//! `auth.secretStore` and the documented `auth.secretstore` work). Unknown fields are warnings.
//! Everything found wrong here is an error whatever `ignoreErrors` says: the document itself is
//! malformed.

use std::time::Duration;

use serde_json::{Map, Number, Value};

use super::Source;
use super::issues::{At, Problem, Report};
use super::manifest::Document;

/// `spec.initTimeout` when absent.
pub(super) const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(5);

/// A component as written, checked for shape but not yet resolved.
#[derive(Debug, Clone)]
pub(super) struct ComponentManifest {
    pub(super) source: Source,
    /// `metadata.name`, a valid path segment.
    pub(super) name: String,
    /// `metadata.namespace`, when set and not empty.
    pub(super) namespace: Option<String>,
    /// `spec.type`, as written.
    pub(super) type_name: String,
    /// `spec.version`, as written (may be empty).
    pub(super) version: String,
    /// `spec.metadata`, in order.
    pub(super) metadata: Vec<MetadataItem>,
    pub(super) init_timeout: Duration,
    pub(super) ignore_errors: bool,
    /// `auth.secretStore`, when set and not empty.
    pub(super) secret_store: Option<String>,
    pub(super) scopes: Vec<String>,
    /// Unknown fields and the like, reported only if the component is in scope.
    pub(super) warnings: Vec<Problem>,
}

impl ComponentManifest {
    /// Where issues about this component are reported.
    pub(super) fn at(&self) -> At {
        At::source(&self.source).component(&self.name)
    }
}

/// One `spec.metadata` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MetadataItem {
    pub(super) name: String,
    pub(super) value: ValueSource,
}

/// Where a metadata item's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ValueSource {
    /// `value`, in its string form.
    Plain(String),
    /// `secretKeyRef`: secret `name` of the component's secret store, entry `key` (default
    /// `name`).
    Secret { name: String, key: Option<String> },
    /// `envRef`: an environment variable of the bindery process.
    Env(String),
}

/// Kubernetes object metadata fields that exported manifests carry; accepted without a warning.
const OBJECT_META_FIELDS: &[&str] = &[
    "labels",
    "annotations",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "ownerReferences",
    "finalizers",
    "generateName",
    "selfLink",
];

/// Parse a `kind: Component` document. Problems with its shape are reported as errors and give
/// `None`.
pub(super) fn parse(doc: &Document, report: &mut Report) -> Option<ComponentManifest> {
    let Value::Object(root) = &doc.value else {
        report.error(
            &At::source(&doc.source),
            None,
            "a component must be a mapping",
        );
        return None;
    };
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let [_, _, metadata, spec, auth, scopes] = fields(
        root,
        ["apiVersion", "kind", "metadata", "spec", "auth", "scopes"],
        &[],
        "",
        &mut errors,
        &mut warnings,
    );

    let (name, namespace) = parse_object_meta(metadata, &mut errors, &mut warnings);
    let at = match &name {
        Some(n) => At::source(&doc.source).component(n),
        None => At::source(&doc.source),
    };
    let spec = parse_spec(spec, &mut errors, &mut warnings);
    let secret_store = parse_auth(auth, &mut errors, &mut warnings);
    let scopes = parse_scopes(scopes, &mut errors);

    if let Some(name) = &name
        && let Err(e) = check_name(name)
    {
        errors.push(Problem::new("metadata.name", e));
    }
    if !errors.is_empty() {
        for p in errors {
            report.error(&at, p.field.as_deref(), p.message);
        }
        report.component_warnings(&at, warnings);
        return None;
    }
    let (Some(name), Some(spec)) = (name, spec) else {
        // Both report an error when absent, so this is not reached.
        return None;
    };
    Some(ComponentManifest {
        source: doc.source.clone(),
        name,
        namespace,
        type_name: spec.type_name,
        version: spec.version,
        metadata: spec.metadata,
        init_timeout: spec.init_timeout,
        ignore_errors: spec.ignore_errors,
        secret_store,
        scopes,
        warnings,
    })
}

/// A component name must be usable as one URL path segment (`/v1.0/bindings/<name>`) and as a
/// route (`/<name>`).
pub(super) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the component name is empty".to_owned());
    }
    if name == "." || name == ".." {
        return Err(format!("invalid component name {name:?}"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '/' | '%') || c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "invalid component name {name:?}: it must not contain {c:?} (names are used as URL path segments)"
        ));
    }
    Ok(())
}

struct Spec {
    type_name: String,
    version: String,
    metadata: Vec<MetadataItem>,
    init_timeout: Duration,
    ignore_errors: bool,
}

fn parse_object_meta(
    value: Option<&Value>,
    errors: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> (Option<String>, Option<String>) {
    let map = match value {
        Some(Value::Object(map)) => map,
        None | Some(Value::Null) => {
            errors.push(Problem::new("metadata.name", "metadata.name is required"));
            return (None, None);
        }
        Some(_) => {
            errors.push(Problem::new("metadata", "metadata must be a mapping"));
            return (None, None);
        }
    };
    let [name, namespace] = fields(
        map,
        ["name", "namespace"],
        OBJECT_META_FIELDS,
        "metadata",
        errors,
        warnings,
    );
    let name = match name.map(|v| (v, scalar_text(v))) {
        None | Some((Value::Null, _)) => {
            errors.push(Problem::new("metadata.name", "metadata.name is required"));
            None
        }
        Some((_, Some(n))) => Some(n),
        Some((_, None)) => {
            errors.push(Problem::new(
                "metadata.name",
                "metadata.name must be a string",
            ));
            None
        }
    };
    let namespace = optional_string(namespace, "metadata.namespace", errors);
    (name, namespace.filter(|n| !n.is_empty()))
}

fn parse_spec(
    value: Option<&Value>,
    errors: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Option<Spec> {
    let map = match value {
        Some(Value::Object(map)) => map,
        None | Some(Value::Null) => {
            errors.push(Problem::new("spec.type", "spec.type is required"));
            return None;
        }
        Some(_) => {
            errors.push(Problem::new("spec", "spec must be a mapping"));
            return None;
        }
    };
    let [type_name, version, metadata, init_timeout, ignore_errors] = fields(
        map,
        ["type", "version", "metadata", "initTimeout", "ignoreErrors"],
        &[],
        "spec",
        errors,
        warnings,
    );
    let type_name = optional_string(type_name, "spec.type", errors)
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    if type_name.is_none()
        && !errors
            .iter()
            .any(|e| e.field.as_deref() == Some("spec.type"))
    {
        errors.push(Problem::new("spec.type", "spec.type is required"));
    }
    let version = optional_string(version, "spec.version", errors)
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    let metadata = parse_metadata_items(metadata, errors, warnings);

    let init_timeout = match init_timeout.map(|v| (v, scalar_text(v))) {
        None | Some((Value::Null, _)) => DEFAULT_INIT_TIMEOUT,
        Some((_, Some(text))) => {
            match bindery_core::parse_duration(&text, Duration::from_secs(1)) {
                Ok(d) if d.is_zero() => {
                    errors.push(Problem::new(
                        "spec.initTimeout",
                        "spec.initTimeout must be greater than zero",
                    ));
                    DEFAULT_INIT_TIMEOUT
                }
                Ok(d) => d,
                Err(e) => {
                    errors.push(Problem::new(
                        "spec.initTimeout",
                        format!("spec.initTimeout: {e}"),
                    ));
                    DEFAULT_INIT_TIMEOUT
                }
            }
        }
        Some((_, None)) => {
            errors.push(Problem::new(
                "spec.initTimeout",
                "spec.initTimeout must be a duration such as 5s",
            ));
            DEFAULT_INIT_TIMEOUT
        }
    };

    let ignore_errors = match ignore_errors {
        None | Some(Value::Null) => Some(false),
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) => bindery_core::parse_truthy(s),
        Some(_) => None,
    }
    .unwrap_or_else(|| {
        errors.push(Problem::new(
            "spec.ignoreErrors",
            "spec.ignoreErrors must be true or false",
        ));
        false
    });

    Some(Spec {
        type_name: type_name.unwrap_or_default(),
        version,
        metadata,
        init_timeout,
        ignore_errors,
    })
}

fn parse_metadata_items(
    value: Option<&Value>,
    errors: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Vec<MetadataItem> {
    let list = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(list)) => list,
        Some(_) => {
            errors.push(Problem::new(
                "spec.metadata",
                "spec.metadata must be a list of {name, value} items",
            ));
            return Vec::new();
        }
    };
    let mut items = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let at_index = format!("spec.metadata[{i}]");
        let Value::Object(map) = item else {
            errors.push(Problem::new(
                at_index,
                "a metadata item must be a mapping with name and value, secretKeyRef or envRef",
            ));
            continue;
        };
        let mut item_warnings = Vec::new();
        let [name, value, secret, env] = fields(
            map,
            ["name", "value", "secretKeyRef", "envRef"],
            &[],
            &at_index,
            errors,
            &mut item_warnings,
        );
        let name = match name.and_then(scalar_text).filter(|n| !n.trim().is_empty()) {
            Some(n) => n,
            None => {
                errors.push(Problem::new(
                    format!("{at_index}.name"),
                    "a metadata item needs a name",
                ));
                warnings.extend(item_warnings);
                continue;
            }
        };
        let field = format!("spec.metadata.{name}");
        // Warnings about the item's fields name the item rather than its index.
        warnings.extend(item_warnings.into_iter().map(|mut w| {
            if let Some(f) = &w.field {
                w.field = Some(f.replacen(&at_index, &field, 1));
            }
            w
        }));
        let secret = secret.filter(|v| !v.is_null());
        let env = env.filter(|v| !v.is_null());
        let source = match (secret, env) {
            (Some(_), Some(_)) => {
                errors.push(Problem::new(
                    &field,
                    "set only one of secretKeyRef and envRef",
                ));
                continue;
            }
            (Some(secret), None) => match parse_secret_ref(secret) {
                Ok(s) => s,
                Err(e) => {
                    errors.push(Problem::new(format!("{field}.secretKeyRef"), e));
                    continue;
                }
            },
            (None, Some(env)) => match scalar_text(env) {
                Some(var) => ValueSource::Env(var),
                None => {
                    errors.push(Problem::new(
                        format!("{field}.envRef"),
                        "envRef must name an environment variable",
                    ));
                    continue;
                }
            },
            (None, None) => ValueSource::Plain(value.map(value_text).unwrap_or_default()),
        };
        if !matches!(source, ValueSource::Plain(_)) && value.is_some_and(|v| !v.is_null()) {
            warnings.push(Problem::new(
                &field,
                "value is ignored because secretKeyRef or envRef is set",
            ));
        }
        if items
            .iter()
            .any(|i: &MetadataItem| i.name.eq_ignore_ascii_case(&name))
        {
            warnings.push(Problem::new(
                &field,
                format!("metadata {name:?} is given more than once; the last one is used"),
            ));
        }
        items.push(MetadataItem {
            name,
            value: source,
        });
    }
    items
}

fn parse_secret_ref(value: &Value) -> Result<ValueSource, String> {
    let Value::Object(map) = value else {
        return Err("secretKeyRef must be a mapping with name and key".to_owned());
    };
    let mut name = None;
    let mut key = None;
    for (k, v) in map {
        if k.eq_ignore_ascii_case("name") {
            name = scalar_text(v);
        } else if k.eq_ignore_ascii_case("key") {
            key = scalar_text(v);
        } else {
            return Err(format!(
                "unknown field {k:?} in secretKeyRef (expected name and key)"
            ));
        }
    }
    match name.filter(|n| !n.is_empty()) {
        Some(name) => Ok(ValueSource::Secret {
            name,
            key: key.filter(|k| !k.is_empty()),
        }),
        None => Err("secretKeyRef needs the name of a secret".to_owned()),
    }
}

fn parse_auth(
    value: Option<&Value>,
    errors: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Option<String> {
    let map = match value {
        None | Some(Value::Null) => return None,
        Some(Value::Object(map)) => map,
        Some(_) => {
            errors.push(Problem::new("auth", "auth must be a mapping"));
            return None;
        }
    };
    let [store] = fields(map, ["secretStore"], &[], "auth", errors, warnings);
    optional_string(store, "auth.secretStore", errors).filter(|s| !s.is_empty())
}

fn parse_scopes(value: Option<&Value>, errors: &mut Vec<Problem>) -> Vec<String> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => {
            let mut scopes = Vec::new();
            for (i, v) in list.iter().enumerate() {
                match scalar_text(v) {
                    Some(s) => scopes.push(s),
                    None => errors.push(Problem::new(
                        format!("scopes[{i}]"),
                        "a scope must be an app id",
                    )),
                }
            }
            scopes
        }
        Some(_) => {
            errors.push(Problem::new("scopes", "scopes must be a list of app ids"));
            Vec::new()
        }
    }
}

/// Pick the `known` fields out of `map` (names matched in any case). Unknown fields not in
/// `ignored` are warnings; one field given twice with different values (e.g. `secretStore` and
/// `secretstore`) is an error.
fn fields<'a, const N: usize>(
    map: &'a Map<String, Value>,
    known: [&'static str; N],
    ignored: &[&str],
    path: &str,
    errors: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> [Option<&'a Value>; N] {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    let mut out: [Option<&'a Value>; N] = [None; N];
    for (key, value) in map {
        if let Some(i) = known.iter().position(|k| k.eq_ignore_ascii_case(key)) {
            match out[i] {
                Some(previous) if previous != value => errors.push(Problem::new(
                    join(known[i]),
                    format!(
                        "{} is given twice, with different spellings and values",
                        join(known[i])
                    ),
                )),
                _ => out[i] = Some(value),
            }
        } else if !ignored.iter().any(|k| k.eq_ignore_ascii_case(key)) {
            warnings.push(Problem::new(
                join(key),
                format!("unknown field {key:?} ignored"),
            ));
        }
    }
    out
}

/// A string field that may be absent; a number or boolean is taken in its text form.
fn optional_string(
    value: Option<&Value>,
    field: &str,
    errors: &mut Vec<Problem>,
) -> Option<String> {
    match value {
        None | Some(Value::Null) => None,
        Some(v) => match scalar_text(v) {
            Some(s) => Some(s),
            None => {
                errors.push(Problem::new(field, format!("{field} must be a string")));
                None
            }
        },
    }
}

/// The text of a scalar: strings as they are, numbers and booleans as YAML wrote their value;
/// `None` for null, lists and mappings.
pub(super) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(number_text(n)),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// The string form of a metadata `value`, as Dapr ≥1.0 gives it: a string as is, a number or
/// boolean as its JSON text, null as "", a list or mapping as compact JSON.
pub(super) fn value_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Array(_) | Value::Object(_) => value.to_string(),
        other => scalar_text(other).unwrap_or_default(),
    }
}

/// Numbers as Go's JSON encoder writes them: integral floats have no `.0` (`1e3` is "1000").
fn number_text(n: &Number) -> String {
    match n.as_f64() {
        Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 1e21 => {
            format!("{f:.0}")
        }
        _ => n.to_string(),
    }
}
