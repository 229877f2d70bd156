//! Loading resources from the resources paths: component manifests (YAML), secret stores,
//! `secretKeyRef` resolution, scopes, the `NAMESPACE` filter, metadata templating, and the
//! metadata checks each binding does without I/O.
//!
//! Every problem in every file is collected and reported together; a load either yields a
//! complete, consistent set of components or the full list of what is wrong.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bindery_core::{BindingFactory, Metadata};

/// Where and for whom resources are loaded.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The `--resources-path` folders, read at their top level only.
    pub paths: Vec<PathBuf>,
    /// The app id (`--app-id`), for `scopes` and templating.
    pub app_id: String,
    /// The `NAMESPACE` environment variable, when set.
    pub namespace: Option<String>,
}

/// Where a problem or a component came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    /// The file.
    pub file: PathBuf,
    /// The document in the file, counted from 1.
    pub document: usize,
}

/// One problem found while loading, with everything a person needs to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The file, when the problem is in one.
    pub file: Option<PathBuf>,
    /// The document in the file, counted from 1.
    pub document: Option<usize>,
    /// The line of the file (from 1): where the field is, or where the document starts when the
    /// field is not in it.
    pub line: Option<usize>,
    /// The component's `metadata.name`, when known.
    pub component: Option<String>,
    /// The field, e.g. `spec.type` or `spec.metadata.schedule`.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(doc) = self.document {
                write!(f, " (document {doc})")?;
            }
            f.write_str(": ")?;
        }
        if let Some(c) = &self.component {
            write!(f, "component {c:?}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Which sides of a binding the component asks for (`direction` metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sides {
    /// Run the input side.
    pub input: bool,
    /// Run the output side.
    pub output: bool,
    /// `direction` named `input` explicitly, so the subscription probe is skipped.
    pub explicit_input: bool,
}

/// A binding component ready to be built: metadata resolved, checked by its binding.
#[derive(Clone)]
pub struct ComponentDef {
    /// `metadata.name`.
    pub name: String,
    /// `spec.type` as written, e.g. `bindings.cron`.
    pub type_name: String,
    /// `spec.version` (`v1` when empty).
    pub version: String,
    /// `spec.metadata`, secrets resolved and `{uuid}`/`{appID}`/`{namespace}` expanded.
    pub metadata: Metadata,
    /// The sides to run, from the binding type and `direction`.
    pub sides: Sides,
    /// The app route for input delivery and the probe: `route` metadata or `/<name>`.
    pub route: String,
    /// `spec.ignoreErrors`.
    pub ignore_errors: bool,
    /// `spec.initTimeout` (5 s by default).
    pub init_timeout: Duration,
    /// Where it was declared.
    pub source: Source,
    /// The binding type.
    pub factory: Arc<dyn BindingFactory>,
    /// A digest of everything above except `source`, to tell whether a reload changed it.
    pub fingerprint: u64,
}

impl fmt::Debug for ComponentDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComponentDef")
            .field("name", &self.name)
            .field("type_name", &self.type_name)
            .field("version", &self.version)
            .field("sides", &self.sides)
            .field("route", &self.route)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// A component that is not a binding but is listed by `/v1.0/metadata` (secret stores).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherComponent {
    /// `metadata.name`.
    pub name: String,
    /// `spec.type`.
    pub type_name: String,
    /// `spec.version`.
    pub version: String,
}

/// The result of a successful load.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Binding components, in file and document order.
    pub bindings: Vec<ComponentDef>,
    /// Secret stores and other non-binding components that were loaded.
    pub others: Vec<OtherComponent>,
    /// `kind: Resiliency` documents that apply to this app.
    pub resiliency: Vec<crate::resiliency::ResiliencyDoc>,
    /// Problems that do not stop bindery: unknown fields and metadata keys, components skipped
    /// by `ignoreErrors`, non-YAML files, documents that are no resource (no `kind`).
    pub warnings: Vec<ConfigIssue>,
}

/// Everything a load found: the components when they are valid, and every problem.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// The result, when there is no error.
    pub loaded: Option<Loaded>,
    /// Problems that make the resources invalid.
    pub errors: Vec<ConfigIssue>,
    /// Problems that do not (also in [`Loaded::warnings`]).
    pub warnings: Vec<ConfigIssue>,
}

mod binding;
mod component;
mod issues;
mod load;
mod locate;
mod manifest;
mod resolve;
mod secrets;
#[cfg(test)]
mod tests;

pub use load::{check, load};
