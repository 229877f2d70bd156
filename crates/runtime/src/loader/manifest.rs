//! Reading resource files: listing the resources paths (top level only), splitting each file
//! into YAML documents, parsing each document into a generic tree, and telling which kind of
//! resource a document is. What a kind means is left to that kind's module.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Source;
use super::issues::{At, Report};

/// The largest resource or secrets file read, so that a stray huge file cannot exhaust memory.
pub(super) const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The only `apiVersion` of the kinds bindery reads.
pub(super) const API_VERSION: &str = "dapr.io/v1alpha1";

/// One parsed, non-empty YAML document.
#[derive(Debug, Clone)]
pub(super) struct Document {
    /// File and document number (from 1, counting non-empty documents).
    pub(super) source: Source,
    /// The document's tree. Scalars keep YAML's typing (`5` is a number); mappings are objects.
    pub(super) value: Value,
    /// The line of the file the document starts on (from 1).
    pub(super) line: usize,
    /// The document's text, to find the line of a field that has a problem.
    pub(super) text: String,
}

/// The kinds of resource bindery reads from the resources paths.
///
/// Adding a kind (e.g. `Resiliency`) means a variant here, a match arm in [`kind`] and a module
/// that turns the [`Document`] into its typed form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `kind: Component`.
    Component,
    /// `kind: Resiliency`.
    Resiliency,
}

/// Which kind `doc` is, or `None` for a document another loader reads (`Configuration`,
/// `Resiliency`, `Subscription`, `HTTPEndpoint` ...) or that is no resource at all.
pub(super) fn kind(doc: &Document, report: &mut Report) -> Option<Kind> {
    let at = At::source(&doc.source);
    let Value::Object(map) = &doc.value else {
        report.warn(
            &at,
            None,
            "document skipped: it is not a mapping with apiVersion and kind",
        );
        return None;
    };
    let Some(kind) = map.get("kind").and_then(Value::as_str) else {
        report.warn(&at, Some("kind"), "document skipped: it has no kind");
        return None;
    };
    let api_version = map.get("apiVersion").and_then(Value::as_str);
    match kind {
        "Resiliency" => {
            if api_version == Some(API_VERSION) {
                Some(Kind::Resiliency)
            } else {
                report.error(
                    &at,
                    Some("apiVersion"),
                    format!("kind Resiliency needs apiVersion {API_VERSION}"),
                );
                None
            }
        }
        "Component" => {
            if api_version == Some(API_VERSION) {
                Some(Kind::Component)
            } else {
                let found = match api_version {
                    Some(v) => format!("{v:?}"),
                    None => "none".to_owned(),
                };
                report.error(
                    &at,
                    Some("apiVersion"),
                    format!("kind Component needs apiVersion {API_VERSION}, found {found}"),
                );
                None
            }
        }
        other if other.eq_ignore_ascii_case("Component") => {
            report.warn(
                &at,
                Some("kind"),
                format!("document skipped: kind {other:?} is not \"Component\" (kinds are case-sensitive)"),
            );
            None
        }
        _ => None,
    }
}

/// Every document of every YAML file in `paths`, in path order, then file name order, then
/// document order.
pub(super) fn read_paths(paths: &[PathBuf], report: &mut Report) -> Vec<Document> {
    let mut docs = Vec::new();
    for path in paths {
        for file in list_files(path, report) {
            if let Some(text) = read_text(&file, report) {
                parse_documents(&file, &text, report, &mut docs);
            }
        }
    }
    docs
}

/// Whether `path` names a YAML file (`.yaml` / `.yml`, any case).
fn is_yaml(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// The YAML files at the top level of `path` (or `path` itself when it is a file), sorted by
/// name. Sub-folders are not read.
fn list_files(path: &Path, report: &mut Report) -> Vec<PathBuf> {
    let at = At::path(path);
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            report.error(&at, None, format!("cannot read resources path: {e}"));
            return Vec::new();
        }
    };
    if !meta.is_dir() {
        if is_yaml(path) {
            return vec![path.to_owned()];
        }
        report.warn(&at, None, "not a YAML file (.yaml or .yml): skipped");
        return Vec::new();
    }
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) => {
            report.error(&at, None, format!("cannot read resources path: {e}"));
            return Vec::new();
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                report.error(&at, None, format!("cannot list resources path: {e}"));
                continue;
            }
        };
        let file = entry.path();
        // Follow symbolic links, as reading the file would.
        if fs::metadata(&file).is_ok_and(|m| m.is_dir()) {
            tracing::debug!(path = %file.display(), "sub-folder of a resources path not read");
            continue;
        }
        if is_yaml(&file) {
            files.push(file);
        } else {
            report.warn(
                &At::path(&file),
                None,
                "not a YAML file (.yaml or .yml): skipped",
            );
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    files
}

/// Read `path` as UTF-8 text of at most [`MAX_FILE_BYTES`].
pub(super) fn read_limited(path: &Path) -> Result<String, String> {
    let file = File::open(path).map_err(|e| format!("cannot read file: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read file: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "file is larger than {} MiB",
            MAX_FILE_BYTES / (1024 * 1024)
        ));
    }
    match String::from_utf8(bytes) {
        Ok(mut text) => {
            if text.starts_with('\u{feff}') {
                text.drain(..'\u{feff}'.len_utf8());
            }
            Ok(text)
        }
        Err(e) => {
            let bad = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let line = 1 + bytes[..bad].iter().filter(|b| **b == b'\n').count();
            Err(format!(
                "file is not UTF-8 text (invalid byte at line {line}, offset {bad})"
            ))
        }
    }
}

fn read_text(path: &Path, report: &mut Report) -> Option<String> {
    read_limited(path)
        .map_err(|e| report.error(&At::path(path), None, e))
        .ok()
}

/// Whether `line` starts a new document: `---` alone, or followed by a space and more
/// (`--- # comment`). The line stays in the new document, where the parser reads it as the
/// document start marker.
fn is_separator(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
}

/// The documents of `text` with the line (from 1) each starts on.
pub(super) fn split_documents(text: &str) -> Vec<(usize, &str)> {
    let mut chunks = Vec::new();
    let (mut start, mut start_line) = (0, 1);
    let mut pos = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if pos > 0 && is_separator(line) {
            chunks.push((start_line, &text[start..pos]));
            start = pos;
            start_line = i + 1;
        }
        pos += line.len();
    }
    chunks.push((start_line, &text[start..]));
    chunks
}

/// Whether a document holds nothing but blank lines, comments and markers.
fn is_blank(chunk: &str) -> bool {
    chunk.lines().enumerate().all(|(i, line)| {
        let line = if i == 0 {
            line.strip_prefix("---").unwrap_or(line)
        } else {
            line
        };
        let t = line.trim();
        t.is_empty() || t.starts_with('#') || t == "..."
    })
}

pub(super) fn parse_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        // YAML 1.2 booleans only: `on`, `yes`, `y`, `no` stay text (bindings read them as
        // truthy values anyway), so a value like `no` (Norway) is not turned into "false".
        strict_booleans: true,
        // `0755` stays "0755" rather than becoming 755.
        leading_zero_numbers_as_strings: true,
        // `.inf` and `.nan` stay text instead of failing or becoming null.
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::AsString,
        // Messages are rendered on one line by `render_error`.
        with_snippet: false,
    }
}

/// Parse `text` (the whole of `file`) into `docs`; empty documents are skipped and not counted.
pub(super) fn parse_documents(
    file: &Path,
    text: &str,
    report: &mut Report,
    docs: &mut Vec<Document>,
) {
    let mut number = 0;
    for (line, chunk) in split_documents(text) {
        if is_blank(chunk) {
            continue;
        }
        number += 1;
        let source = Source {
            file: file.to_owned(),
            document: number,
        };
        match serde_saphyr::from_str_with_options::<Value>(chunk, parse_options()) {
            Ok(Value::Null) => {}
            Ok(value) => docs.push(Document {
                source,
                value,
                line,
                text: chunk.to_owned(),
            }),
            Err(e) => {
                let options = serde_saphyr::render_options! {
                    snippets: serde_saphyr::SnippetMode::Off,
                    line_offset: (line - 1) as u64,
                };
                let at_line = e
                    .location()
                    .and_then(|l| usize::try_from(l.line()).ok())
                    .filter(|l| *l > 0)
                    .map_or(line, |l| line + l - 1);
                report.error(
                    &At::source(&source).line(at_line),
                    None,
                    format!("invalid YAML: {}", e.render_with_options(options)),
                );
            }
        }
    }
}
