//! The binding pages in docs/bindings/ cannot drift from the code: every metadata field a
//! binding reads is in its page's metadata table with the right default, and every name in that
//! table is one the binding reads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// Keys the runtime reads from any binding component.
const RUNTIME_KEYS: [&str; 3] = ["direction", "route", "deadLetterBinding"];

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/bindings")
}

/// One metadata table row: the backticked names of its first cell and its second cell.
struct Row {
    names: Vec<String>,
    default: String,
}

fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The rows of the component metadata tables of `page`: tables under a `## …metadata…`
/// heading (not request, response or event metadata) whose header reads `| name | default |`.
fn metadata_rows(page: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut in_section = false;
    let mut in_table = false;
    for line in page.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            let h = h.to_ascii_lowercase();
            in_section = h.contains("metadata")
                && !h.contains("request")
                && !h.contains("response")
                && !h.contains("event");
            in_table = false;
            continue;
        }
        if !line.trim_start().starts_with('|') {
            in_table = false;
            continue;
        }
        let cells: Vec<String> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        if !in_table {
            // A table starts: is it a component metadata table?
            in_table =
                in_section && cells.len() >= 2 && cells[0] == "name" && cells[1] == "default";
            continue;
        }
        if cells[0].starts_with("---") {
            continue;
        }
        let raw: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        rows.push(Row {
            names: backticked(raw[0]),
            default: raw.get(1).copied().unwrap_or_default().to_owned(),
        });
    }
    rows
}

#[test]
fn every_binding_page_matches_its_metadata() {
    let registry = bindery::registry();
    let mut problems = Vec::new();
    for spec in registry.types() {
        let short = spec.type_name.trim_start_matches("bindings.");
        let page_path = docs_dir().join(format!("{short}.md"));
        let Ok(page) = std::fs::read_to_string(&page_path) else {
            problems.push(format!(
                "{}: no page at {}",
                spec.type_name,
                page_path.display()
            ));
            continue;
        };
        // A family page (docs/bindings/aws.md) may hold the fields its members share.
        let family = short.split('.').next().unwrap_or(short);
        let shared = if family != short {
            std::fs::read_to_string(docs_dir().join(format!("{family}.md"))).unwrap_or_default()
        } else {
            String::new()
        };
        let rows: Vec<Row> = metadata_rows(&page)
            .into_iter()
            .chain(metadata_rows(&shared))
            .collect();
        for field in spec.metadata {
            let row = rows
                .iter()
                .find(|r| r.names.iter().any(|n| n == field.name));
            let Some(row) = row else {
                problems.push(format!(
                    "{}: metadata field `{}` is not in the page's metadata table",
                    spec.type_name, field.name
                ));
                continue;
            };
            if field.required && !row.default.to_ascii_lowercase().contains("required") {
                problems.push(format!(
                    "{}: `{}` is required but the page says {:?}",
                    spec.type_name,
                    field.name,
                    row.default.trim()
                ));
            }
            if let Some(d) = field.default
                && !row.default.replace('`', "").contains(d)
            {
                problems.push(format!(
                    "{}: `{}` defaults to {d:?} but the page says {:?}",
                    spec.type_name,
                    field.name,
                    row.default.trim()
                ));
            }
        }
        for row in &rows {
            for name in &row.names {
                let known = spec.field(name).is_some()
                    || RUNTIME_KEYS.iter().any(|k| k.eq_ignore_ascii_case(name));
                if !known {
                    problems.push(format!(
                        "{}: the page lists `{name}`, which the binding does not read",
                        spec.type_name
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "binding pages disagree with the code:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_readme_lists_every_binding() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let registry = bindery::registry();
    let missing: Vec<&str> = registry
        .types()
        .map(|s| s.type_name)
        .filter(|t| !readme.contains(&format!("`{t}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "README's bindings table lacks {missing:?}"
    );
}
