//! Turning `spec.metadata` items into [`Metadata`]: secrets (`secretKeyRef`), environment
//! variables (`envRef`) and templates (`{uuid}`, `{appID}`, `{namespace}`, `{podName}`).

use bindery_core::Metadata;

use super::component::{ComponentManifest, ValueSource};
use super::issues::Problem;
use super::secrets::{self, Env, SecretError, SecretStores};

/// What the templates expand to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Templates<'a> {
    pub(super) app_id: &'a str,
    pub(super) namespace: Option<&'a str>,
}

/// A component's metadata, resolved.
#[derive(Debug, Clone, Default)]
pub(super) struct Resolved {
    /// The values the binding gets.
    pub(super) metadata: Metadata,
    /// The same with each `{uuid}` left as written, so a reload that changes nothing else
    /// keeps the same fingerprint.
    pub(super) stable: Metadata,
    /// Values read from secrets or the environment, kept out of messages.
    pub(super) secrets: Vec<String>,
}

/// Resolve every item of `c`. Items that cannot be resolved are left out and reported as
/// problems. `stores` is `None` for a secret store's own metadata, which cannot use
/// `secretKeyRef`.
pub(super) fn resolve_metadata(
    c: &ComponentManifest,
    stores: Option<&SecretStores>,
    env: &dyn Env,
    templates: Templates<'_>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Resolved {
    let mut out = Resolved::default();
    for item in &c.metadata {
        let field = format!("spec.metadata.{}", item.name);
        let value = match &item.value {
            ValueSource::Plain(v) => v.clone(),
            ValueSource::Env(var) => match read_env_ref(var, env) {
                Ok(v) => {
                    out.secrets.push(v.clone());
                    v
                }
                Err(e) => {
                    problems.push(Problem::new(field, e));
                    continue;
                }
            },
            ValueSource::Secret { name, key } => {
                let key = key.as_deref().unwrap_or(name);
                match read_secret(c, stores, name, key, env) {
                    Ok((v, notes)) => {
                        warnings.extend(notes.into_iter().map(|n| Problem::new(&field, n)));
                        out.secrets.push(v.clone());
                        v
                    }
                    Err(e) => {
                        problems.push(Problem::new(field, e));
                        continue;
                    }
                }
            }
        };
        match expand(&value, templates) {
            Ok((expanded, stable)) => {
                out.metadata.insert(&item.name, expanded);
                out.stable.insert(&item.name, stable);
            }
            Err(e) => problems.push(Problem::new(field, e)),
        }
    }
    out
}

fn read_env_ref(var: &str, env: &dyn Env) -> Result<String, String> {
    secrets::check_env_ref(var, env)?;
    env.var(var)
        .ok_or_else(|| format!("environment variable {var} (envRef) is not set"))
}

/// Read entry `key` of secret `name` from the component's secret store. Messages name the
/// secret, never its value.
fn read_secret(
    c: &ComponentManifest,
    stores: Option<&SecretStores>,
    name: &str,
    key: &str,
    env: &dyn Env,
) -> Result<(String, Vec<String>), String> {
    let Some(stores) = stores else {
        return Err(format!(
            "a secret store cannot read its own metadata from a secret store (secret {name:?})"
        ));
    };
    let Some(store_name) = &c.secret_store else {
        return Err(format!(
            "secretKeyRef to secret {name:?} needs auth.secretStore naming a secret store"
        ));
    };
    let store = stores
        .get(store_name)
        .map_err(|e| format!("cannot read secret {name:?}: {e}"))?;
    let mut notes = Vec::new();
    match store.get(name, key, env, &mut notes) {
        Ok(v) => Ok((v, notes)),
        Err(SecretError::NotFound) => Err(format!(
            "secret {name:?} not found in secret store {store_name:?}"
        )),
        Err(SecretError::NoKey) => Err(format!(
            "secret {name:?} in secret store {store_name:?} has no key {key:?}"
        )),
    }
}

/// Expand the templates of `value`. Returns the value and its stable form, where each `{uuid}`
/// is kept as written.
pub(super) fn expand(value: &str, t: Templates<'_>) -> Result<(String, String), String> {
    if value.contains("{podName}") {
        return Err("{podName} cannot be used: bindery does not run in a pod".to_owned());
    }
    if !value.contains('{') {
        return Ok((value.to_owned(), value.to_owned()));
    }
    let namespace = match t.namespace {
        Some(ns) => format!("{ns}.{}", t.app_id),
        None => t.app_id.to_owned(),
    };
    // Split on `{uuid}` first, as Dapr expands it first: an app id or namespace that happens to
    // contain `{uuid}` is not expanded again.
    let parts: Vec<String> = value
        .split("{uuid}")
        .map(|p| {
            p.replace("{namespace}", &namespace)
                .replace("{appID}", t.app_id)
        })
        .collect();
    let mut expanded = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            expanded.push_str(&uuid::Uuid::new_v4().to_string());
        }
        expanded.push_str(part);
    }
    Ok((expanded, parts.join("{uuid}")))
}

/// `message` with every secret value in it replaced, for messages a binding wrote about values
/// that came from secrets.
pub(super) fn redact(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_owned();
    for s in secrets {
        if s.len() >= 4 {
            // Bindings quote values with `{:?}`, which escapes some characters.
            let quoted = format!("{s:?}");
            let escaped = &quoted[1..quoted.len() - 1];
            out = out
                .replace(escaped, "<redacted>")
                .replace(s.as_str(), "<redacted>");
        } else if !s.is_empty() {
            out = out.replace(&format!("{s:?}"), "\"<redacted>\"");
        }
    }
    out
}
