use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{BindingError, BindingHealth, InputBinding, Metadata, OutputBinding};

/// Which sides a binding type offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Reads events from a source and delivers them to the app.
    Input,
    /// Is called by the app.
    Output,
    /// Both.
    Both,
}

impl Direction {
    /// Whether the input side exists.
    pub fn has_input(self) -> bool {
        matches!(self, Direction::Input | Direction::Both)
    }
    /// Whether the output side exists.
    pub fn has_output(self) -> bool {
        matches!(self, Direction::Output | Direction::Both)
    }
}

/// One metadata field a binding reads, for `validate`, docs and redaction.
#[derive(Debug, Clone, Copy)]
pub struct MetadataField {
    /// The name as documented.
    pub name: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    /// Whether the component is invalid without it.
    pub required: bool,
    /// The documented default, when there is one.
    pub default: Option<&'static str>,
    /// One line on what it does.
    pub description: &'static str,
    /// A credential: never logged, never shown by `/v1.0/metadata`.
    pub sensitive: bool,
}

impl MetadataField {
    /// An optional field with no default.
    pub const fn optional(name: &'static str, description: &'static str) -> Self {
        MetadataField {
            name,
            aliases: &[],
            required: false,
            default: None,
            description,
            sensitive: false,
        }
    }

    /// A required field.
    pub const fn required(name: &'static str, description: &'static str) -> Self {
        MetadataField {
            required: true,
            ..Self::optional(name, description)
        }
    }

    /// The same field with a documented default.
    pub const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }

    /// The same field with aliases.
    pub const fn aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }

    /// The same field, marked as a credential.
    pub const fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Whether `key` names this field (any case, aliases included).
    pub fn matches(&self, key: &str) -> bool {
        self.name.eq_ignore_ascii_case(key)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(key))
    }
}

/// The static description of a binding type.
#[derive(Debug, Clone, Copy)]
pub struct BindingSpec {
    /// The `spec.type`, e.g. `bindings.cron`.
    pub type_name: &'static str,
    /// Other accepted `spec.type` names, e.g. `bindings.mqtt` for `bindings.mqtt3`.
    pub aliases: &'static [&'static str],
    /// Which sides exist.
    pub direction: Direction,
    /// Output operations.
    pub operations: &'static [&'static str],
    /// Every component metadata field the binding reads.
    pub metadata: &'static [MetadataField],
    /// One line on what it does.
    pub summary: &'static str,
}

impl BindingSpec {
    /// The field `key` names, if any.
    pub fn field(&self, key: &str) -> Option<&'static MetadataField> {
        self.metadata.iter().find(|f| f.matches(key))
    }

    /// Whether `key` names a credential.
    pub fn is_sensitive(&self, key: &str) -> bool {
        self.field(key).is_some_and(|f| f.sensitive)
    }
}

/// What a binding gets to build an instance: its name, its resolved metadata and a health handle.
#[derive(Debug, Clone)]
pub struct ComponentContext {
    /// `metadata.name` of the component.
    pub name: String,
    /// The app id bindery runs for.
    pub app_id: String,
    /// `spec.metadata`, secrets resolved and templates expanded.
    pub metadata: Metadata,
    /// Where the instance reports its connection state.
    pub health: BindingHealth,
}

/// Builds instances of one binding type in two phases: [`BindingFactory::validate`] parses and
/// checks metadata with no I/O (so `bindery validate` can run it alone), then
/// [`BindingFactory::build_output`] / [`BindingFactory::build_input`] connect.
#[async_trait]
pub trait BindingFactory: Send + Sync + 'static {
    /// The static description.
    fn spec(&self) -> &'static BindingSpec;

    /// Check the metadata without I/O, reporting every problem.
    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>>;

    /// Build and connect the output side.
    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        Err(BindingError::unsupported(format!(
            "{} ({}) has no output side",
            ctx.name,
            self.spec().type_name
        )))
    }

    /// Build the input side. Connecting may also happen at the start of `read`, so that a source
    /// that is down is retried in the background.
    async fn build_input(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn InputBinding>, BindingError> {
        Err(BindingError::unsupported(format!(
            "{} ({}) has no input side",
            ctx.name,
            self.spec().type_name
        )))
    }
}

/// Every binding type bindery knows, by `spec.type` (case-insensitive, aliases included).
#[derive(Default, Clone)]
pub struct Registry {
    factories: HashMap<String, Arc<dyn BindingFactory>>,
    primary: Vec<Arc<dyn BindingFactory>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.primary.iter().map(|b| b.spec().type_name))
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a binding type under its name and aliases.
    pub fn register(&mut self, factory: impl BindingFactory) {
        let factory: Arc<dyn BindingFactory> = Arc::new(factory);
        let spec = factory.spec();
        for name in std::iter::once(&spec.type_name).chain(spec.aliases) {
            self.factories
                .insert(name.to_ascii_lowercase(), Arc::clone(&factory));
        }
        self.primary.push(factory);
    }

    /// The factory for `type_name` (e.g. `bindings.kafka`), any case.
    pub fn get(&self, type_name: &str) -> Option<Arc<dyn BindingFactory>> {
        self.factories.get(&type_name.to_ascii_lowercase()).cloned()
    }

    /// Every registered type once, in registration order.
    pub fn types(&self) -> impl Iterator<Item = &'static BindingSpec> + '_ {
        self.primary.iter().map(|f| f.spec())
    }
}
