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

/// docs/MIGRATING.md.
fn migrating_page() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/MIGRATING.md"))
        .unwrap()
}

/// The lines of `page` under the heading `heading` (exactly), up to the next heading of the same
/// or a higher level.
fn section<'a>(page: &'a str, heading: &str) -> Vec<&'a str> {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let mut lines = page.lines().skip_while(|l| l.trim() != heading);
    assert!(
        lines.next().is_some(),
        "docs/MIGRATING.md has no {heading:?}"
    );
    lines
        .take_while(|l| {
            let hashes = l.chars().take_while(|c| *c == '#').count();
            hashes == 0 || hashes > level || !l[hashes..].starts_with(' ')
        })
        .collect()
}

/// The backticked `--flags` in the first cell of each table row of `lines`.
fn flags_in_first_cells(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.trim_start().starts_with('|'))
        .filter_map(|l| l.trim().trim_matches('|').split('|').next())
        .flat_map(backticked)
        .filter(|f| f.starts_with("--"))
        .collect()
}

/// Run the real binary with `args`; its exit status and stderr. A run that does not end within
/// 20 s (the sidecar started) is killed and reported as such.
fn run_bindery(args: &[&str]) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bindery"))
        .args(args)
        .env_remove("DAPR_API_TOKEN")
        .env_remove("APP_API_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bindery {args:?} did not exit: it accepted the command line and started");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

/// Every long flag of run mode, as `bindery --help` lists it (aliases included), without
/// `--help` and `--version`.
fn run_mode_flags() -> std::collections::BTreeSet<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bindery"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let mut flags = std::collections::BTreeSet::new();
    let mut in_options = false;
    for line in help.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            in_options = line.trim_end() == "Options:";
            continue;
        }
        let option = line.trim_start();
        let names_flags = option.starts_with('-')
            || option.starts_with("[alias: ")
            || option.starts_with("[aliases: ");
        if !in_options || !names_flags {
            continue;
        }
        // `--name <VALUE>` and `[aliases: --other]`.
        for word in line.split(|c: char| c.is_whitespace() || c == '[' || c == ']' || c == ',') {
            let name: String = word
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if name.len() > 2 && name.starts_with("--") && name != "--help" && name != "--version" {
                flags.insert(name);
            }
        }
    }
    assert!(flags.contains("--app-id"), "no run-mode flags in:\n{help}");
    flags
}

#[test]
fn the_migration_page_lists_exactly_the_flags_bindery_takes() {
    let page = migrating_page();
    let mut listed: Vec<String> =
        flags_in_first_cells(&section(&page, "### Flags bindery shares with daprd"));
    listed.extend(flags_in_first_cells(&section(
        &page,
        "### Flags only bindery has",
    )));
    let listed: std::collections::BTreeSet<String> = listed.into_iter().collect();
    let taken = run_mode_flags();
    let missing: Vec<&String> = taken.difference(&listed).collect();
    let unknown: Vec<&String> = listed.difference(&taken).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/MIGRATING.md: flags bindery takes but the page does not list: {missing:?}; \
         flags the page lists that bindery does not take: {unknown:?}"
    );
}

#[test]
fn the_daprd_flags_the_migration_page_says_bindery_lacks_are_refused() {
    let page = migrating_page();
    let lacking = flags_in_first_cells(&section(&page, "### daprd flags bindery does not take"));
    assert!(lacking.len() >= 10, "{lacking:?}");
    let taken = run_mode_flags();
    for flag in &lacking {
        assert!(!taken.contains(flag), "{flag} is in bindery --help");
        let (status, stderr) = run_bindery(&["--app-id", "a", flag, "1"]);
        assert_eq!(status.code(), Some(2), "{flag}: {stderr}");
        assert!(stderr.contains(flag.as_str()), "{flag}: {stderr}");
    }
    // Go's flag parser took one dash; bindery does not.
    let (status, stderr) = run_bindery(&["-app-id", "a"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
}

#[test]
fn the_migration_page_lists_every_binding_type_and_alias() {
    let page = migrating_page();
    let listed: std::collections::BTreeSet<String> = section(&page, "## Bindings available")
        .iter()
        .filter(|l| l.trim_start().starts_with('|'))
        .filter_map(|l| l.trim().trim_matches('|').split('|').next())
        .flat_map(backticked)
        .filter(|t| t.starts_with("bindings."))
        .collect();
    let registry = bindery::registry();
    let known: std::collections::BTreeSet<String> = registry
        .types()
        .flat_map(|s| std::iter::once(s.type_name).chain(s.aliases.iter().copied()))
        .map(str::to_owned)
        .collect();
    let missing: Vec<&String> = known.difference(&listed).collect();
    let unknown: Vec<&String> = listed.difference(&known).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/MIGRATING.md: types in the registry but not on the page: {missing:?}; \
         types on the page but not in the registry: {unknown:?}"
    );
}

#[test]
fn the_readme_links_the_migration_page() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    assert!(readme.contains("(docs/MIGRATING.md)"));
}
