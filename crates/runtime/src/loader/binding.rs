//! From a binding component to a [`ComponentDef`]: metadata resolution, the reserved `direction`
//! and `route` items, unknown keys, the binding's own checks and the fingerprint.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bindery_core::{BindingFactory, BindingSpec, Direction, Metadata};

use super::component::ComponentManifest;
use super::issues::Problem;
use super::resolve::{self, Templates};
use super::secrets::{Env, SecretStores};
use super::{ComponentDef, Sides};

/// Metadata the runtime reads itself; still passed to the binding.
const RESERVED: [&str; 3] = ["direction", "route", "deadLetterBinding"];

/// Everything a binding component needs besides its manifest.
pub(super) struct BindingInputs<'a> {
    pub(super) factory: Arc<dyn BindingFactory>,
    pub(super) version: String,
    pub(super) stores: &'a SecretStores,
    pub(super) env: &'a dyn Env,
    pub(super) templates: Templates<'a>,
}

/// Build the definition of binding component `c`, or every problem that prevents it.
pub(super) fn build(
    c: &ComponentManifest,
    inputs: BindingInputs<'_>,
    warnings: &mut Vec<Problem>,
) -> Result<ComponentDef, Vec<Problem>> {
    let spec = inputs.factory.spec();
    let mut problems = Vec::new();
    let resolved = resolve::resolve_metadata(
        c,
        Some(inputs.stores),
        inputs.env,
        inputs.templates,
        &mut problems,
        warnings,
    );
    let metadata = &resolved.metadata;
    let resolved_ok = problems.is_empty();

    let mut seen = std::collections::HashSet::new();
    for item in &c.metadata {
        let key = item.name.as_str();
        if seen.insert(key.to_ascii_lowercase())
            && spec.field(key).is_none()
            && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(key))
        {
            warnings.push(Problem::new(
                format!("spec.metadata.{key}"),
                format!(
                    "unknown metadata {key:?} for {} (ignored); known: {}",
                    spec.type_name,
                    known_keys(spec)
                ),
            ));
        }
    }

    let sides = sides(metadata, spec).map_err(|p| problems.push(p)).ok();
    let route = route(metadata, &c.name).map_err(|p| problems.push(p)).ok();

    // A value left out because its secret could not be read would show up here as "missing";
    // that is already reported.
    if resolved_ok && let Err(errors) = inputs.factory.validate(metadata) {
        let mut sensitive = resolved.secrets.clone();
        sensitive.extend(
            metadata
                .iter()
                .filter(|(k, _)| spec.is_sensitive(k))
                .map(|(_, v)| v.to_owned()),
        );
        for e in errors {
            let field = match e.field() {
                Some(f) if !f.is_empty() => format!("spec.metadata.{f}"),
                _ => "spec.metadata".to_owned(),
            };
            problems.push(Problem::new(
                field,
                resolve::redact(&e.to_string(), &sensitive),
            ));
        }
    }

    let (Some(sides), Some(route)) = (sides, route) else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut def = ComponentDef {
        name: c.name.clone(),
        type_name: c.type_name.clone(),
        version: inputs.version,
        metadata: resolved.metadata.clone(),
        sides,
        route,
        ignore_errors: c.ignore_errors,
        init_timeout: c.init_timeout,
        source: c.source.clone(),
        factory: inputs.factory,
        fingerprint: 0,
    };
    def.fingerprint = fingerprint(&def, &resolved.stable);
    Ok(def)
}

fn known_keys(spec: &BindingSpec) -> String {
    let names: Vec<&str> = spec.metadata.iter().map(|f| f.name).collect();
    if names.is_empty() {
        format!("none besides {}", RESERVED.join(", "))
    } else {
        format!("{}, plus {}", names.join(", "), RESERVED.join(", "))
    }
}

/// The sides to run: every side the type has, or those `direction` names.
fn sides(md: &Metadata, spec: &BindingSpec) -> Result<Sides, Problem> {
    let has = spec.direction;
    let Some(raw) = md.get("direction") else {
        return Ok(Sides {
            input: has.has_input(),
            output: has.has_output(),
            explicit_input: false,
        });
    };
    let field = "spec.metadata.direction";
    let (mut input, mut output) = (false, false);
    for part in raw.split(',') {
        match part.trim().to_ascii_lowercase().as_str() {
            "" => {}
            "input" => input = true,
            "output" => output = true,
            other => {
                return Err(Problem::new(
                    field,
                    format!("unknown direction {other:?}: use input, output or \"input, output\""),
                ));
            }
        }
    }
    if !input && !output {
        return Err(Problem::new(
            field,
            "direction is empty: use input, output or \"input, output\"",
        ));
    }
    let lacking = match (input && !has.has_input(), output && !has.has_output()) {
        (true, _) => Some("input"),
        (_, true) => Some("output"),
        _ => None,
    };
    if let Some(side) = lacking {
        let offers = match has {
            Direction::Input => "input",
            Direction::Output => "output",
            Direction::Both => "input and output",
        };
        return Err(Problem::new(
            field,
            format!(
                "direction asks for {side}, but {} has only {offers}",
                spec.type_name
            ),
        ));
    }
    Ok(Sides {
        input,
        output,
        explicit_input: input,
    })
}

/// The app route: `route` metadata (a leading `/` added when missing) or `/<name>`.
fn route(md: &Metadata, name: &str) -> Result<String, Problem> {
    match md.get("route") {
        None | Some("") => Ok(format!("/{name}")),
        Some(r) if r.chars().any(|c| c.is_whitespace() || c.is_control()) => Err(Problem::new(
            "spec.metadata.route",
            format!("invalid route {r:?}: it must not contain spaces or control characters"),
        )),
        Some(r) if r.starts_with('/') => Ok(r.to_owned()),
        Some(r) => Ok(format!("/{r}")),
    }
}

/// A digest of the definition (except its source), with `{uuid}` values as written.
fn fingerprint(def: &ComponentDef, stable: &Metadata) -> u64 {
    let mut h = DefaultHasher::new();
    def.name.hash(&mut h);
    def.type_name.hash(&mut h);
    def.version.hash(&mut h);
    stable.len().hash(&mut h);
    for (k, v) in stable.iter() {
        k.hash(&mut h);
        v.hash(&mut h);
    }
    (def.sides.input, def.sides.output, def.sides.explicit_input).hash(&mut h);
    def.route.hash(&mut h);
    def.ignore_errors.hash(&mut h);
    def.init_timeout.hash(&mut h);
    h.finish()
}
