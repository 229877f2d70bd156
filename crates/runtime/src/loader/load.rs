//! The load itself: read every document, keep the components meant for this app, load the
//! secret stores, then check and resolve every binding.

use std::collections::HashMap;

use bindery_core::Registry;

use super::binding::{self, BindingInputs};
use super::component::{self, ComponentManifest};
use super::issues::{At, Problem, Report};
use super::locate;
use super::manifest::{self, Kind};
use super::resolve::{self, Templates};
use super::secrets::{self, Env, ProcessEnv, SecretStores};
use super::{Checked, ConfigIssue, LoadOptions, Loaded, OtherComponent};

/// Load every resource from `options.paths` with the binding types of `registry`.
///
/// Returns every problem at once when anything is invalid.
pub fn load(options: &LoadOptions, registry: &Registry) -> Result<Loaded, Vec<ConfigIssue>> {
    load_with_env(options, registry, &ProcessEnv)
}

/// Load as [`load`] does and report everything found: the warnings as well as the errors when
/// there are errors (what `bindery validate` shows).
pub fn check(options: &LoadOptions, registry: &Registry) -> Checked {
    check_with_env(options, registry, &ProcessEnv)
}

/// [`load`] with the environment given, so tests need not touch the process environment.
pub(super) fn load_with_env(
    options: &LoadOptions,
    registry: &Registry,
    env: &dyn Env,
) -> Result<Loaded, Vec<ConfigIssue>> {
    let checked = check_with_env(options, registry, env);
    checked.loaded.ok_or(checked.errors)
}

fn check_with_env(options: &LoadOptions, registry: &Registry, env: &dyn Env) -> Checked {
    let mut report = Report::default();

    let mut components = Vec::new();
    let mut resiliency = Vec::new();
    let docs = manifest::read_paths(&options.paths, &mut report);
    for doc in &docs {
        match manifest::kind(doc, &mut report) {
            Some(Kind::Component) => components.extend(component::parse(doc, &mut report)),
            Some(Kind::Resiliency) => {
                match crate::resiliency::parse_document(&doc.value, doc.source.clone()) {
                    Ok(r) => {
                        if r.scopes.is_empty() || r.scopes.iter().any(|s| s == &options.app_id) {
                            resiliency.push(r);
                        }
                    }
                    Err(problems) => {
                        let at = At::source(&doc.source);
                        for (field, message) in problems {
                            report.error(&at, Some(&field), message);
                        }
                    }
                }
            }
            // Another kind: read by its own loader, or not at all.
            None => {}
        }
    }

    let namespace = options.namespace.as_deref().filter(|n| !n.is_empty());
    components.retain(|c| applies(c, &options.app_id, namespace));
    for c in &mut components {
        let at = c.at();
        report.component_warnings(&at, std::mem::take(&mut c.warnings));
    }
    check_duplicates(&components, &mut report);

    let templates = Templates {
        app_id: &options.app_id,
        namespace,
    };
    let mut loaded = Loaded::default();

    // Secret stores first, whatever the file order, so any binding can use any store.
    let mut stores = SecretStores::default();
    for c in components
        .iter()
        .filter(|c| registry.get(&c.type_name).is_none() && is_secret_store(c))
    {
        load_store(c, env, templates, &mut stores, &mut loaded, &mut report);
    }

    for c in &components {
        let at = c.at();
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let def = match registry.get(&c.type_name) {
            Some(factory) => match version(&c.version) {
                Some(v) => {
                    let inputs = BindingInputs {
                        factory,
                        version: v,
                        stores: &stores,
                        env,
                        templates,
                    };
                    binding::build(c, inputs, &mut warnings)
                        .map_err(|p| problems.extend(p))
                        .ok()
                }
                None => {
                    problems.push(Problem::new(
                        "spec.version",
                        format!(
                            "couldn't find binding {} ({}/{}): versions are v1 (or empty) and v0",
                            c.name, c.type_name, c.version
                        ),
                    ));
                    None
                }
            },
            None if is_secret_store(c) => continue,
            None if starts_with_ignore_case(&c.type_name, "bindings.") => {
                problems.push(Problem::new(
                    "spec.type",
                    format!(
                        "couldn't find binding {} ({}/{})",
                        c.name,
                        c.type_name,
                        version(&c.version).unwrap_or_else(|| c.version.clone())
                    ),
                ));
                None
            }
            None => {
                let mut message = format!("bindery supports bindings only: {}", c.type_name);
                if registry.get(&format!("bindings.{}", c.type_name)).is_some() {
                    message.push_str(&format!(" (did you mean bindings.{}?)", c.type_name));
                }
                problems.push(Problem::new("spec.type", message));
                None
            }
        };
        report.component_warnings(&at, warnings);
        match def {
            Some(def) => loaded.bindings.push(def),
            None => report.component_failed(&at, c.ignore_errors, problems),
        }
    }

    check_dead_letters(&loaded, &mut report);
    locate::assign_lines(&mut report.errors, &docs);
    locate::assign_lines(&mut report.warnings, &docs);
    loaded.resiliency = resiliency;
    loaded.warnings = report.warnings.clone();
    Checked {
        loaded: report.errors.is_empty().then_some(loaded),
        errors: report.errors,
        warnings: report.warnings,
    }
}

/// A `deadLetterBinding` must name another binding of this app that has an output side.
fn check_dead_letters(loaded: &Loaded, report: &mut Report) {
    for def in &loaded.bindings {
        let Some(target) = def
            .metadata
            .get("deadLetterBinding")
            .filter(|t| !t.is_empty())
        else {
            continue;
        };
        let ok = loaded
            .bindings
            .iter()
            .any(|b| b.name == target && b.sides.output && b.name != def.name);
        if !ok {
            let at = At::source(&def.source).component(&def.name);
            report.error(
                &at,
                Some("spec.metadata.deadLetterBinding"),
                format!("{target:?} is not another output binding of this app"),
            );
        }
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

fn is_secret_store(c: &ComponentManifest) -> bool {
    starts_with_ignore_case(&c.type_name, "secretstores.")
}

/// `spec.version` as reported: `v1` when empty. `None` for a version no binding has.
fn version(v: &str) -> Option<String> {
    match v.to_ascii_lowercase().as_str() {
        "" | "v1" => Some("v1".to_owned()),
        "v0" => Some("v0".to_owned()),
        _ => None,
    }
}

/// Whether a component is meant for this app: `scopes` (when not empty) names the app id, and
/// its namespace is empty or `NAMESPACE`.
fn applies(c: &ComponentManifest, app_id: &str, namespace: Option<&str>) -> bool {
    if !c.scopes.is_empty() && !c.scopes.iter().any(|s| s == app_id) {
        tracing::debug!(component = %c.name, app_id, "component not scoped to this app: skipped");
        return false;
    }
    if let (Some(ns), Some(own)) = (namespace, c.namespace.as_deref())
        && ns != own
    {
        tracing::debug!(component = %c.name, namespace = own, "component of another namespace: skipped");
        return false;
    }
    true
}

/// Component names are unique across every kept component, whatever its type.
fn check_duplicates(components: &[ComponentManifest], report: &mut Report) {
    let mut first: HashMap<&str, &ComponentManifest> = HashMap::new();
    for c in components {
        match first.get(c.name.as_str()) {
            Some(earlier) => report.error(
                &c.at(),
                Some("metadata.name"),
                format!(
                    "duplicate definition of Component name {} (first defined in {}, document {})",
                    c.name,
                    earlier.source.file.display(),
                    earlier.source.document
                ),
            ),
            None => {
                first.insert(&c.name, c);
            }
        }
    }
}

fn load_store(
    c: &ComponentManifest,
    env: &dyn Env,
    templates: Templates<'_>,
    stores: &mut SecretStores,
    loaded: &mut Loaded,
    report: &mut Report,
) {
    let at = c.at();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let Some(version) = version(&c.version) else {
        stores.mark_failed(&c.name);
        report.component_failed(
            &at,
            c.ignore_errors,
            vec![Problem::new(
                "spec.version",
                format!(
                    "unsupported secret store version {}/{}: versions are v1 (or empty) and v0",
                    c.type_name, c.version
                ),
            )],
        );
        return;
    };
    let Some(known) = secrets::SecretStore::known_metadata(&c.type_name) else {
        stores.mark_failed(&c.name);
        report.component_failed(
            &at,
            c.ignore_errors,
            vec![Problem::new(
                "spec.type",
                format!(
                    "unsupported secret store type {}: bindery has {} and {}",
                    c.type_name,
                    secrets::LOCAL_FILE,
                    secrets::LOCAL_ENV
                ),
            )],
        );
        return;
    };
    let resolved = resolve::resolve_metadata(c, None, env, templates, &mut problems, &mut warnings);
    for item in &c.metadata {
        if !known.iter().any(|k| k.eq_ignore_ascii_case(&item.name)) {
            warnings.push(Problem::new(
                format!("spec.metadata.{}", item.name),
                format!(
                    "unknown metadata {:?} for {} (ignored); known: {}",
                    item.name,
                    c.type_name,
                    known.join(", ")
                ),
            ));
        }
    }
    report.component_warnings(&at, warnings);
    if problems.is_empty() {
        match secrets::build_store(c, &resolved.metadata, env) {
            Ok(store) => {
                stores.insert(&c.name, store);
                loaded.others.push(OtherComponent {
                    name: c.name.clone(),
                    type_name: c.type_name.clone(),
                    version,
                });
                return;
            }
            Err(p) => problems.extend(p),
        }
    }
    stores.mark_failed(&c.name);
    report.component_failed(&at, c.ignore_errors, problems);
}
