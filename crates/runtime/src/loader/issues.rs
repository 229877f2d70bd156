//! Collecting problems: every check appends to one [`Report`] so that a load reports everything
//! that is wrong at once.

use std::path::{Path, PathBuf};

use super::{ConfigIssue, Source};

/// A problem found inside one component, before it is known whether the component's
/// `ignoreErrors` turns it into a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    /// The field, e.g. `spec.metadata.url`.
    pub(super) field: Option<String>,
    /// What is wrong.
    pub(super) message: String,
}

impl Problem {
    pub(super) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

/// Where a problem is: file, document and component, each when known.
#[derive(Debug, Clone, Default)]
pub(super) struct At {
    file: Option<PathBuf>,
    document: Option<usize>,
    line: Option<usize>,
    component: Option<String>,
}

impl At {
    /// A resources path or a file, as a whole.
    pub(super) fn path(path: &Path) -> Self {
        At {
            file: Some(path.to_owned()),
            ..At::default()
        }
    }

    /// A document of a file.
    pub(super) fn source(source: &Source) -> Self {
        At {
            file: Some(source.file.clone()),
            document: Some(source.document),
            line: None,
            component: None,
        }
    }

    /// The same place, on line `line` of the file.
    pub(super) fn line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    /// The same place, inside component `name`.
    pub(super) fn component(mut self, name: &str) -> Self {
        self.component = Some(name.to_owned());
        self
    }

    /// An issue here.
    pub(super) fn issue(&self, field: Option<&str>, message: impl Into<String>) -> ConfigIssue {
        ConfigIssue {
            file: self.file.clone(),
            document: self.document,
            line: self.line,
            component: self.component.clone(),
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// Errors (which fail the load) and warnings (which do not).
#[derive(Debug, Default)]
pub(super) struct Report {
    pub(super) errors: Vec<ConfigIssue>,
    pub(super) warnings: Vec<ConfigIssue>,
}

impl Report {
    pub(super) fn error(&mut self, at: &At, field: Option<&str>, message: impl Into<String>) {
        self.errors.push(at.issue(field, message));
    }

    pub(super) fn warn(&mut self, at: &At, field: Option<&str>, message: impl Into<String>) {
        self.warnings.push(at.issue(field, message));
    }

    /// Record the problems of a component that cannot be used. With `ignoreErrors: true` they
    /// become warnings, plus one saying the component is skipped; otherwise they are errors.
    pub(super) fn component_failed(
        &mut self,
        at: &At,
        ignore_errors: bool,
        problems: Vec<Problem>,
    ) {
        for p in problems {
            let issue = at.issue(p.field.as_deref(), p.message);
            if ignore_errors {
                self.warnings.push(issue);
            } else {
                self.errors.push(issue);
            }
        }
        if ignore_errors {
            self.warn(
                at,
                Some("spec.ignoreErrors"),
                "component skipped because of the problems above (ignoreErrors is true)",
            );
        }
    }

    /// Record warnings found inside a component.
    pub(super) fn component_warnings(&mut self, at: &At, warnings: Vec<Problem>) {
        for w in warnings {
            self.warn(at, w.field.as_deref(), w.message);
        }
    }
}
