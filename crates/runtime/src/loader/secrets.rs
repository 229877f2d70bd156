//! Secret stores (`secretstores.local.file`, `secretstores.local.env`), the environment
//! `envRef` and the env store read, and the rules on which variables may be read.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use bindery_core::Metadata;
use serde_json::Value;

use super::component::{ComponentManifest, value_text};
use super::issues::Problem;
use super::manifest;

/// `secretstores.local.file`: secrets from a JSON file.
pub(super) const LOCAL_FILE: &str = "secretstores.local.file";
/// `secretstores.local.env`: secrets from environment variables.
pub(super) const LOCAL_ENV: &str = "secretstores.local.env";

/// The process environment, behind a trait so that tests need not change the real one.
pub(super) trait Env {
    /// The variable `name`, when set to valid Unicode.
    fn var(&self, name: &str) -> Option<String>;
    /// The working directory, for relative `secretsFile` paths.
    fn current_dir(&self) -> Option<PathBuf>;
}

/// The environment of the bindery process.
#[derive(Debug, Clone, Copy)]
pub(super) struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        // `std::env::var` is only defined for names without `=` and NUL.
        if name.is_empty() || name.contains(['=', '\0']) {
            return None;
        }
        std::env::var(name).ok()
    }

    fn current_dir(&self) -> Option<PathBuf> {
        std::env::current_dir().ok()
    }
}

/// Variables no component may read: bindery's own credentials.
fn is_reserved_var(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper == "APP_API_TOKEN" || upper.starts_with("DAPR_")
}

/// Whether `envRef` may read `name` (Dapr's rules): not empty, not `APP_API_TOKEN` or `DAPR_*`,
/// no spaces, and listed in `DAPR_ENV_KEYS` when that allow-list is set.
pub(super) fn check_env_ref(name: &str, env: &dyn Env) -> Result<(), String> {
    if name.is_empty() {
        return Err("envRef names no environment variable".to_owned());
    }
    if is_reserved_var(name) {
        return Err(format!(
            "envRef may not read {name}: APP_API_TOKEN and DAPR_* variables are reserved"
        ));
    }
    if name.contains(|c: char| c.is_whitespace() || c == '=' || c == '\0') {
        return Err(format!(
            "envRef {name:?} is not an environment variable name"
        ));
    }
    if let Some(allowed) = env.var("DAPR_ENV_KEYS").filter(|l| !l.trim().is_empty())
        && !allowed
            .split_whitespace()
            .any(|k| k.eq_ignore_ascii_case(name))
    {
        return Err(format!(
            "envRef may not read {name}: it is not listed in DAPR_ENV_KEYS"
        ));
    }
    Ok(())
}

/// One secret of a file store.
#[derive(Debug, Clone)]
pub(super) enum Secret {
    /// `{name: value}`.
    Single(String),
    /// `multiValued`: every nested key of a top-level entry.
    Multi(BTreeMap<String, String>),
}

/// A loaded secret store.
#[derive(Debug, Clone)]
pub(super) enum SecretStore {
    File(HashMap<String, Secret>),
    Env { prefix: String },
}

/// Why a secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SecretError {
    /// The store has no secret of that name.
    NotFound,
    /// The secret exists but has no such key.
    NoKey,
}

impl SecretStore {
    /// The metadata each supported store type reads; `None` for a type bindery does not have.
    pub(super) fn known_metadata(type_name: &str) -> Option<&'static [&'static str]> {
        if type_name.eq_ignore_ascii_case(LOCAL_FILE) {
            Some(&["secretsFile", "nestedSeparator", "multiValued"])
        } else if type_name.eq_ignore_ascii_case(LOCAL_ENV) {
            Some(&["prefix"])
        } else {
            None
        }
    }

    /// Entry `key` of secret `name`. `warnings` gets a note when the env store refuses a
    /// reserved variable; the value is then empty, as in Dapr.
    pub(super) fn get(
        &self,
        name: &str,
        key: &str,
        env: &dyn Env,
        warnings: &mut Vec<String>,
    ) -> Result<String, SecretError> {
        match self {
            SecretStore::File(secrets) => match secrets.get(name) {
                None => Err(SecretError::NotFound),
                Some(Secret::Single(v)) if key == name => Ok(v.clone()),
                Some(Secret::Single(_)) => Err(SecretError::NoKey),
                Some(Secret::Multi(map)) => map.get(key).cloned().ok_or(SecretError::NoKey),
            },
            SecretStore::Env { prefix } => {
                let var = format!("{prefix}{name}");
                if is_reserved_var(&var) {
                    warnings.push(format!(
                        "access to environment variable {var} is refused (APP_API_TOKEN and DAPR_* are reserved); the value is empty"
                    ));
                    return Ok(String::new());
                }
                match env.var(&var) {
                    None => Err(SecretError::NotFound),
                    Some(v) if key == name => Ok(v),
                    Some(_) => Err(SecretError::NoKey),
                }
            }
        }
    }
}

/// The secret stores of a load, by component name.
#[derive(Debug, Default)]
pub(super) struct SecretStores {
    loaded: HashMap<String, SecretStore>,
    /// Stores declared (and in scope) that failed to load, for clearer messages.
    failed: HashSet<String>,
}

impl SecretStores {
    pub(super) fn insert(&mut self, name: &str, store: SecretStore) {
        self.loaded.entry(name.to_owned()).or_insert(store);
    }

    pub(super) fn mark_failed(&mut self, name: &str) {
        self.failed.insert(name.to_owned());
    }

    pub(super) fn get(&self, name: &str) -> Result<&SecretStore, String> {
        if let Some(store) = self.loaded.get(name) {
            return Ok(store);
        }
        if self.failed.contains(name) {
            Err(format!(
                "secret store {name:?} failed to load (see its own errors)"
            ))
        } else {
            Err(format!("secret store {name:?} is not loaded"))
        }
    }
}

/// Build the store that component `c` declares, from its resolved `metadata`.
pub(super) fn build_store(
    c: &ComponentManifest,
    metadata: &Metadata,
    env: &dyn Env,
) -> Result<SecretStore, Vec<Problem>> {
    if c.type_name.eq_ignore_ascii_case(LOCAL_ENV) {
        return Ok(SecretStore::Env {
            prefix: metadata.get("prefix").unwrap_or_default().to_owned(),
        });
    }
    if !c.type_name.eq_ignore_ascii_case(LOCAL_FILE) {
        return Err(vec![Problem::new(
            "spec.type",
            format!(
                "unsupported secret store type {}: bindery has {LOCAL_FILE} and {LOCAL_ENV}",
                c.type_name
            ),
        )]);
    }

    let mut problems = Vec::new();
    let separator = match metadata.get("nestedSeparator") {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => ":".to_owned(),
    };
    let multi_valued = match metadata.get("multiValued").map(str::trim) {
        None | Some("") => false,
        Some(v) => bindery_core::parse_truthy(v).unwrap_or_else(|| {
            problems.push(Problem::new(
                "spec.metadata.multiValued",
                format!("invalid value for multiValued: {v:?} is not a boolean"),
            ));
            false
        }),
    };
    let file = match metadata.get("secretsFile").map(str::trim) {
        None | Some("") => {
            problems.push(Problem::new(
                "spec.metadata.secretsFile",
                "required metadata not set: secretsFile",
            ));
            return Err(problems);
        }
        Some(f) => f.to_owned(),
    };
    let dir = c.source.file.parent().unwrap_or(Path::new(""));
    let path = match find_secrets_file(&file, dir, env) {
        Ok(p) => p,
        Err(e) => {
            problems.push(Problem::new("spec.metadata.secretsFile", e));
            return Err(problems);
        }
    };
    let json = manifest::read_limited(&path)
        .and_then(|text| {
            serde_json::from_str::<Value>(&text).map_err(|e| format!("invalid JSON: {e}"))
        })
        .map_err(|e| format!("secrets file {}: {e}", path.display()));
    let top = match json {
        Ok(Value::Object(top)) => top,
        Ok(_) => {
            problems.push(Problem::new(
                "spec.metadata.secretsFile",
                format!("secrets file {} must hold a JSON object", path.display()),
            ));
            return Err(problems);
        }
        Err(e) => {
            problems.push(Problem::new("spec.metadata.secretsFile", e));
            return Err(problems);
        }
    };

    let mut secrets = HashMap::new();
    let mut duplicates = Vec::new();
    if multi_valued {
        for (name, value) in &top {
            let secret = match value {
                Value::Object(_) | Value::Array(_) => {
                    let mut flat = BTreeMap::new();
                    flatten("", value, &separator, &mut flat, &mut duplicates);
                    Secret::Multi(flat)
                }
                scalar => Secret::Single(value_text(scalar)),
            };
            secrets.insert(name.clone(), secret);
        }
    } else {
        let mut flat = BTreeMap::new();
        flatten(
            "",
            &Value::Object(top),
            &separator,
            &mut flat,
            &mut duplicates,
        );
        secrets.extend(flat.into_iter().map(|(k, v)| (k, Secret::Single(v))));
    }
    for key in duplicates {
        problems.push(Problem::new(
            "spec.metadata.secretsFile",
            format!(
                "secrets file {} gives key {key:?} twice once nested keys are joined with {separator:?}",
                path.display()
            ),
        ));
    }
    if problems.is_empty() {
        Ok(SecretStore::File(secrets))
    } else {
        Err(problems)
    }
}

/// A relative `secretsFile` is looked for beside the component file first, then in the working
/// directory.
fn find_secrets_file(file: &str, component_dir: &Path, env: &dyn Env) -> Result<PathBuf, String> {
    let path = Path::new(file);
    if path.is_absolute() {
        return if path.is_file() {
            Ok(path.to_owned())
        } else {
            Err(format!("secrets file {file} not found"))
        };
    }
    let mut tried = Vec::new();
    for base in [Some(component_dir.to_owned()), env.current_dir()]
        .into_iter()
        .flatten()
    {
        let candidate = base.join(path);
        if candidate.is_file() {
            return Ok(candidate);
        }
        tried.push(candidate.display().to_string());
    }
    Err(format!(
        "secrets file {file} not found (looked for {})",
        tried.join(" and ")
    ))
}

/// Flatten nested objects and arrays into `a<sep>b<sep>0` keys. Scalars keep their JSON text
/// form (numbers and booleans included; null is empty).
fn flatten(
    prefix: &str,
    value: &Value,
    separator: &str,
    out: &mut BTreeMap<String, String>,
    duplicates: &mut Vec<String>,
) {
    let join = |key: &str| {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}{separator}{key}")
        }
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&join(k), v, separator, out, duplicates);
            }
        }
        Value::Array(list) => {
            for (i, v) in list.iter().enumerate() {
                flatten(&join(&i.to_string()), v, separator, out, duplicates);
            }
        }
        scalar => {
            if out.insert(prefix.to_owned(), value_text(scalar)).is_some() {
                duplicates.push(prefix.to_owned());
            }
        }
    }
}
