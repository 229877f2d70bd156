//! Tests of the loader, against real files in temporary folders.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bindery_core::{
    BindingError, BindingFactory, BindingSpec, Direction, Metadata, MetadataField, Registry,
};
use tempfile::TempDir;

use super::issues::Report;
use super::load::load_with_env;
use super::manifest::{self, split_documents};
use super::secrets::Env;
use super::*;

// ---------------------------------------------------------------------------------------------
// Fixtures

static TEST_SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.test",
    aliases: &["bindings.testalias"],
    direction: Direction::Both,
    operations: &["create"],
    metadata: &[
        MetadataField::required("url", "where to connect"),
        MetadataField::optional("timeout", "how long to wait").default("5s"),
        MetadataField::optional("password", "a credential").sensitive(),
    ],
    summary: "a binding for tests",
};

static OUT_SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.out",
    aliases: &[],
    direction: Direction::Output,
    operations: &["create"],
    metadata: &[],
    summary: "output only",
};

static IN_SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.in",
    aliases: &[],
    direction: Direction::Input,
    operations: &[],
    metadata: &[],
    summary: "input only",
};

/// `bindings.test`: `url` required, `timeout` a duration.
struct TestBinding;

#[bindery_core::async_trait]
impl BindingFactory for TestBinding {
    fn spec(&self) -> &'static BindingSpec {
        &TEST_SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        let r = metadata.reader();
        r.required("url", "required metadata not set: url");
        r.duration("timeout", Duration::from_secs(5));
        r.finish()
    }
}

struct Fixed(&'static BindingSpec);

#[bindery_core::async_trait]
impl BindingFactory for Fixed {
    fn spec(&self) -> &'static BindingSpec {
        self.0
    }

    fn validate(&self, _: &Metadata) -> Result<(), Vec<BindingError>> {
        Ok(())
    }
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(TestBinding);
    r.register(Fixed(&OUT_SPEC));
    r.register(Fixed(&IN_SPEC));
    r
}

#[derive(Default)]
struct FakeEnv {
    vars: HashMap<String, String>,
    cwd: Option<PathBuf>,
}

impl FakeEnv {
    fn with(vars: &[(&str, &str)]) -> Self {
        FakeEnv {
            vars: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            cwd: None,
        }
    }
}

impl Env for FakeEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn current_dir(&self) -> Option<PathBuf> {
        self.cwd.clone()
    }
}

struct Dir {
    dir: TempDir,
}

impl Dir {
    fn new() -> Self {
        Dir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, content).unwrap();
        path
    }

    fn options(&self) -> LoadOptions {
        LoadOptions {
            paths: vec![self.path().to_owned()],
            app_id: "myapp".to_owned(),
            namespace: None,
        }
    }

    fn load(&self) -> Result<Loaded, Vec<ConfigIssue>> {
        self.load_with(&self.options(), &FakeEnv::default())
    }

    fn load_with(&self, options: &LoadOptions, env: &FakeEnv) -> Result<Loaded, Vec<ConfigIssue>> {
        load_with_env(options, &registry(), env)
    }

    fn ok(&self) -> Loaded {
        match self.load() {
            Ok(l) => l,
            Err(e) => panic!("load failed: {}", show(&e)),
        }
    }

    fn errors(&self) -> Vec<ConfigIssue> {
        match self.load() {
            Ok(l) => panic!("load succeeded: {:?}", l.bindings),
            Err(e) => e,
        }
    }
}

fn show(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(|i| format!("\n  {i}"))
        .collect::<String>()
}

/// A `bindings.test` component with `url` set and `extra` lines appended to `spec.metadata`.
fn test_binding(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: {name}
spec:
  type: bindings.test
  version: v1
  metadata:
  - name: url
    value: http://localhost
{extra}"
    )
}

/// A component of any type with the given `spec.metadata` lines.
fn component(name: &str, type_name: &str, metadata: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: {name}
spec:
  type: {type_name}
  metadata:
{metadata}"
    )
}

fn binding<'a>(loaded: &'a Loaded, name: &str) -> &'a ComponentDef {
    loaded
        .bindings
        .iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("no binding {name} in {:?}", loaded.bindings))
}

fn names(loaded: &Loaded) -> Vec<&str> {
    loaded.bindings.iter().map(|b| b.name.as_str()).collect()
}

fn find<'a>(issues: &'a [ConfigIssue], needle: &str) -> &'a ConfigIssue {
    issues
        .iter()
        .find(|i| i.message.contains(needle))
        .unwrap_or_else(|| panic!("no issue containing {needle:?} in {}", show(issues)))
}

// ---------------------------------------------------------------------------------------------
// Basics

#[test]
fn a_minimal_binding_loads_with_defaults() {
    let d = Dir::new();
    let file = d.write("a.yaml", test_binding("orders", ""));
    let loaded = d.ok();
    assert!(loaded.warnings.is_empty(), "{}", show(&loaded.warnings));
    let b = binding(&loaded, "orders");
    assert_eq!(b.type_name, "bindings.test");
    assert_eq!(b.version, "v1");
    assert_eq!(b.metadata.get("url"), Some("http://localhost"));
    assert_eq!(
        b.sides,
        Sides {
            input: true,
            output: true,
            explicit_input: false
        }
    );
    assert_eq!(b.route, "/orders");
    assert!(!b.ignore_errors);
    assert_eq!(b.init_timeout, Duration::from_secs(5));
    assert_eq!(b.source, Source { file, document: 1 });
    assert_eq!(b.factory.spec().type_name, "bindings.test");
}

#[test]
fn type_aliases_and_case_find_the_binding() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        test_binding("a", "").replace("bindings.test", "Bindings.TestAlias"),
    );
    let loaded = d.ok();
    let b = binding(&loaded, "a");
    assert_eq!(b.type_name, "Bindings.TestAlias");
    assert_eq!(b.factory.spec().type_name, "bindings.test");
}

#[test]
fn init_timeout_and_ignore_errors_are_read() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        test_binding("a", "").replace(
            "  version: v1\n",
            "  version: v1\n  initTimeout: 1m30s\n  ignoreErrors: true\n",
        ),
    );
    let loaded = d.ok();
    let b = binding(&loaded, "a");
    assert_eq!(b.init_timeout, Duration::from_secs(90));
    assert!(b.ignore_errors);
}

#[test]
fn a_bad_init_timeout_is_an_error() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        test_binding("a", "").replace("  version: v1\n", "  initTimeout: soon\n"),
    );
    d.write(
        "b.yaml",
        test_binding("b", "").replace("  version: v1\n", "  initTimeout: 0s\n"),
    );
    let errors = d.errors();
    assert_eq!(errors.len(), 2, "{}", show(&errors));
    assert!(
        errors
            .iter()
            .all(|e| e.field.as_deref() == Some("spec.initTimeout"))
    );
    assert_eq!(errors[0].component.as_deref(), Some("a"));
    assert!(errors[1].message.contains("greater than zero"));
}

// ---------------------------------------------------------------------------------------------
// Files and documents

#[test]
fn documents_are_split_on_separator_lines() {
    let text = "---\na: 1\n---\n# nothing\n--- # third\nb: 2\n  ---\nc: |\n  ---\n";
    let chunks = split_documents(text);
    let starts: Vec<usize> = chunks.iter().map(|(l, _)| *l).collect();
    assert_eq!(starts, [1, 3, 5]);
    assert_eq!(chunks[2].1, "--- # third\nb: 2\n  ---\nc: |\n  ---\n");
    let joined: String = chunks.iter().map(|(_, c)| *c).collect();
    assert_eq!(joined, text);
}

#[test]
fn multi_document_files_load_every_document_in_order() {
    let d = Dir::new();
    let file = d.write(
        "all.yaml",
        format!(
            "---\n{}---\n# only a comment\n---\n\n--- # the second\n{}\r\n---\r\n{}",
            test_binding("one", ""),
            test_binding("two", ""),
            test_binding("three", "").replace('\n', "\r\n"),
        ),
    );
    let loaded = d.ok();
    assert_eq!(names(&loaded), ["one", "two", "three"]);
    let docs: Vec<usize> = loaded.bindings.iter().map(|b| b.source.document).collect();
    assert_eq!(docs, [1, 2, 3]);
    assert!(loaded.bindings.iter().all(|b| b.source.file == file));
    assert_eq!(
        binding(&loaded, "three").metadata.get("url"),
        Some("http://localhost")
    );
}

#[test]
fn yaml_extensions_in_any_case_are_read_and_others_warned_about() {
    let d = Dir::new();
    d.write("b.yml", test_binding("b", ""));
    d.write("c.YAML", test_binding("c", ""));
    d.write("a.Yml", test_binding("a", ""));
    d.write("notes.txt", "hello");
    d.write("d.json", "{}");
    d.write("sub/deeper.yaml", test_binding("deeper", ""));
    let loaded = d.ok();
    assert_eq!(
        names(&loaded),
        ["a", "b", "c"],
        "sorted by file name, top level only"
    );
    let warned: Vec<String> = loaded
        .warnings
        .iter()
        .map(|w| {
            let file = w.file.as_ref().unwrap();
            file.file_name().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    assert_eq!(warned, ["d.json", "notes.txt"]);
    assert!(loaded.warnings[0].message.contains("not a YAML file"));
}

#[test]
fn several_paths_and_a_single_file_path_are_read() {
    let d1 = Dir::new();
    let d2 = Dir::new();
    d1.write("x.yaml", test_binding("x", ""));
    let single = d2.write("y.yaml", test_binding("y", ""));
    let options = LoadOptions {
        paths: vec![d1.path().to_owned(), single],
        ..d1.options()
    };
    let loaded = d1.load_with(&options, &FakeEnv::default()).unwrap();
    assert_eq!(names(&loaded), ["x", "y"]);
}

#[test]
fn a_missing_path_is_an_error() {
    let d = Dir::new();
    let missing = d.path().join("nope");
    let options = LoadOptions {
        paths: vec![missing.clone()],
        ..d.options()
    };
    let errors = d.load_with(&options, &FakeEnv::default()).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].file.as_deref(), Some(missing.as_path()));
    assert!(errors[0].message.contains("cannot read resources path"));
}

#[test]
fn an_empty_folder_loads_nothing() {
    let d = Dir::new();
    d.write("empty.yaml", "");
    d.write("comments.yaml", "# nothing here\n---\n---\n");
    let loaded = d.ok();
    assert!(loaded.bindings.is_empty());
    assert!(loaded.warnings.is_empty(), "{}", show(&loaded.warnings));
}

#[test]
fn other_kinds_are_skipped_silently() {
    let d = Dir::new();
    d.write(
        "other.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: r\nspec: {}\n---\n\
         apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\n---\n\
         apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata:\n  name: s\n",
    );
    d.write("b.yaml", test_binding("b", ""));
    let loaded = d.ok();
    assert_eq!(names(&loaded), ["b"]);
    assert!(loaded.warnings.is_empty(), "{}", show(&loaded.warnings));
}

#[test]
fn a_component_with_another_api_version_is_an_error() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        test_binding("a", "").replace("dapr.io/v1alpha1", "dapr.io/v2"),
    );
    let errors = d.errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field.as_deref(), Some("apiVersion"));
    assert!(errors[0].message.contains("dapr.io/v2"));
}

#[test]
fn documents_without_kind_are_warned_about() {
    let d = Dir::new();
    d.write("a.yaml", "foo: bar\n---\n- 1\n- 2\n");
    let loaded = d.ok();
    assert_eq!(loaded.warnings.len(), 2, "{}", show(&loaded.warnings));
    assert_eq!(loaded.warnings[0].document, Some(1));
    assert_eq!(loaded.warnings[1].document, Some(2));
}

// ---------------------------------------------------------------------------------------------
// Bad input never panics

#[test]
fn malformed_yaml_reports_file_document_and_line() {
    let d = Dir::new();
    let good = test_binding("good", "");
    let lines_before = good.lines().count() + 1; // + the `---` line
    let file = d.write(
        "bad.yaml",
        format!("{good}---\napiVersion: dapr.io/v1alpha1\nkind: [Component\n"),
    );
    let errors = d.errors();
    assert_eq!(errors.len(), 1, "{}", show(&errors));
    let e = &errors[0];
    assert_eq!(e.file.as_deref(), Some(file.as_path()));
    assert_eq!(e.document, Some(2));
    assert!(e.message.starts_with("invalid YAML"), "{e}");
    // The line is counted in the file, not in the document.
    let line = lines_before + 2;
    assert!(e.message.contains(&format!("line {line}")), "{e}");
}

#[test]
fn duplicate_yaml_keys_are_an_error() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        test_binding("a", "").replace("  version: v1\n", "  version: v1\n  version: v0\n"),
    );
    let errors = d.errors();
    assert!(errors[0].message.contains("duplicate"), "{}", show(&errors));
}

#[test]
fn binary_junk_and_invalid_utf8_are_errors() {
    let d = Dir::new();
    d.write("a.yaml", [0u8, 1, 2, 3, 0xff, 0xfe, b'\n', 0x80]);
    d.write("b.yaml", b"key: \x00\x01\x02\x7f: [{{{\n".as_slice());
    let mut junk = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..20_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        junk.push((x >> 16) as u8 & 0x7f);
    }
    d.write("c.yaml", &junk);
    let errors = d.errors();
    let a = errors
        .iter()
        .find(|e| e.file.as_ref().unwrap().ends_with("a.yaml"))
        .unwrap();
    assert!(a.message.contains("not UTF-8"), "{a}");
    assert!(
        errors
            .iter()
            .any(|e| e.file.as_ref().unwrap().ends_with("b.yaml"))
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let d = Dir::new();
    d.write("a.yaml", "[".repeat(200_000));
    d.write("b.yaml", "{a: ".repeat(50_000));
    let block: String = (0..500).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
    d.write("c.yaml", block);
    let errors = d.errors();
    assert_eq!(errors.len(), 3, "{}", show(&errors));
}

#[test]
fn alias_bombs_are_refused() {
    let d = Dir::new();
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        yaml.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    d.write("bomb.yaml", yaml);
    let errors = d.errors();
    assert_eq!(errors.len(), 1, "{}", show(&errors));
}

#[test]
fn huge_files_are_refused() {
    let d = Dir::new();
    let mut big = test_binding("big", "");
    big.push_str(&format!("# {}\n", "x".repeat(17 * 1024 * 1024)));
    d.write("big.yaml", big);
    let errors = d.errors();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].message.contains("larger than 16 MiB"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let d = Dir::new();
    d.write("a.yaml", format!("\u{feff}{}", test_binding("a", "")));
    assert_eq!(names(&d.ok()), ["a"]);
}

// ---------------------------------------------------------------------------------------------
// Fields

#[test]
fn required_fields_and_wrong_shapes_are_errors() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  namespace: x\nspec:\n  type: bindings.test\n",
    );
    d.write(
        "b.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: b\nspec:\n  version: v1\n",
    );
    d.write(
        "c.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: c\nspec:\n  type: bindings.test\n  metadata: {url: x}\n",
    );
    d.write(
        "d.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: d\nspec:\n  type: bindings.test\n  metadata:\n  - value: x\n  - name: url\n    secretKeyRef: {name: s}\n    envRef: E\n",
    );
    d.write(
        "e.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: e\nspec:\n  type: bindings.test\nscopes: myapp\n",
    );
    let errors = d.errors();
    let fields: Vec<(Option<&str>, Option<&str>)> = errors
        .iter()
        .map(|e| (e.component.as_deref(), e.field.as_deref()))
        .collect();
    assert_eq!(
        fields,
        [
            (None, Some("metadata.name")),
            (Some("b"), Some("spec.type")),
            (Some("c"), Some("spec.metadata")),
            (Some("d"), Some("spec.metadata[0].name")),
            (Some("d"), Some("spec.metadata.url")),
            (Some("e"), Some("scopes")),
        ],
        "{}",
        show(&errors)
    );
}

#[test]
fn invalid_names_are_errors() {
    let bad = [
        "a/b",
        "..",
        ".",
        "a b",
        "50%",
        "tab\there",
        "\"\"",
        "\"new\\nline\"",
    ];
    let d = Dir::new();
    for (i, name) in bad.iter().enumerate() {
        d.write(&format!("{i}.yaml"), test_binding(name, ""));
    }
    d.write("ok.yaml", test_binding("fine.name-1_x", ""));
    let errors = d.errors();
    assert_eq!(errors.len(), bad.len(), "{}", show(&errors));
    assert!(
        errors
            .iter()
            .all(|e| e.field.as_deref() == Some("metadata.name"))
    );
}

#[test]
fn unknown_fields_are_warnings() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        "apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: a
  labels: {x: y}
  annotations: {x: y}
  colour: blue
spec:
  type: bindings.test
  typo: 1
  metadata:
  - name: url
    value: x
    secret: nope
status: {}
",
    );
    let loaded = d.ok();
    let fields: Vec<&str> = loaded
        .warnings
        .iter()
        .map(|w| w.field.as_deref().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "status",
            "metadata.colour",
            "spec.typo",
            "spec.metadata.url.secret"
        ],
        "{}",
        show(&loaded.warnings)
    );
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| w.component.as_deref() == Some("a"))
    );
}

#[test]
fn field_names_match_in_any_case() {
    let d = Dir::new();
    d.write("store.yaml", file_store("store", "data/secrets.json", ""));
    d.write("data/secrets.json", r#"{"pw": "hunter22"}"#);
    d.write(
        "a.yaml",
        "apiVersion: dapr.io/v1alpha1
kind: Component
Metadata:
  Name: a
Spec:
  Type: bindings.test
  Metadata:
  - Name: url
    SecretKeyRef: {Name: pw}
auth:
  secretstore: store
",
    );
    let loaded = d.ok();
    assert_eq!(binding(&loaded, "a").metadata.get("url"), Some("hunter22"));
    assert!(loaded.warnings.is_empty(), "{}", show(&loaded.warnings));
}

// ---------------------------------------------------------------------------------------------
// Values

#[test]
fn scalar_values_take_their_string_form() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        test_binding(
            "a",
            "  - name: int
    value: 5
  - name: bool
    value: true
  - name: yes
    value: yes
  - name: 'null'
    value: null
  - name: tilde
    value: ~
  - name: empty
  - name: float
    value: 1.5
  - name: exp
    value: 1e3
  - name: octal
    value: 0755
  - name: quoted
    value: \"5\"
  - name: negative
    value: -12
  - name: inf
    value: .inf
  - name: multi
    value: |
      line one
      line two
",
        ),
    );
    let loaded = d.ok();
    let md = &binding(&loaded, "a").metadata;
    let expect = [
        ("int", "5"),
        ("bool", "true"),
        ("yes", "yes"),
        ("null", ""),
        ("tilde", ""),
        ("empty", ""),
        ("float", "1.5"),
        ("exp", "1000"),
        ("octal", "0755"),
        ("quoted", "5"),
        ("negative", "-12"),
        ("inf", ".inf"),
        ("multi", "line one\nline two\n"),
    ];
    for (k, v) in expect {
        assert_eq!(md.get(k), Some(v), "{k}");
    }
}

#[test]
fn map_and_list_values_become_compact_json() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        test_binding(
            "a",
            "  - name: map
    value:
      b: 1
      a: [x, true, null]
  - name: list
    value: [1, 'two', {three: 3}]
",
        ),
    );
    let loaded = d.ok();
    let md = &binding(&loaded, "a").metadata;
    assert_eq!(md.get("map"), Some(r#"{"a":["x",true,null],"b":1}"#));
    assert_eq!(md.get("list"), Some(r#"[1,"two",{"three":3}]"#));
}

#[test]
fn a_repeated_metadata_name_keeps_the_last_and_warns() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        test_binding("a", "  - name: URL\n    value: http://second\n"),
    );
    let loaded = d.ok();
    assert_eq!(
        binding(&loaded, "a").metadata.get("url"),
        Some("http://second")
    );
    find(&loaded.warnings, "more than once");
}

// ---------------------------------------------------------------------------------------------
// Secrets

fn file_store(name: &str, file: &str, extra: &str) -> String {
    component(
        name,
        "secretstores.local.file",
        &format!("  - name: secretsFile\n    value: {file}\n{extra}"),
    )
}

fn with_store(yaml: &str, store: &str) -> String {
    format!("{yaml}auth:\n  secretStore: {store}\n")
}

fn secret_ref(item: &str, name: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => {
            format!("  - name: {item}\n    secretKeyRef:\n      name: {name}\n      key: {key}\n")
        }
        None => format!("  - name: {item}\n    secretKeyRef:\n      name: {name}\n"),
    }
}

const SECRETS_JSON: &str = r#"{
  "db": {"user": "admin", "password": "s3cret-pw", "port": 5432, "ratio": 1.5, "tls": true, "none": null},
  "hosts": ["a", "b"],
  "plain": "plain-value"
}"#;

#[test]
fn the_file_store_flattens_nested_keys() {
    let d = Dir::new();
    d.write("data/secrets.json", SECRETS_JSON);
    d.write("store.yaml", file_store("files", "data/secrets.json", ""));
    let refs = [
        secret_ref("password", "db:password", None),
        secret_ref("port", "db:port", None),
        secret_ref("ratio", "db:ratio", None),
        secret_ref("tls", "db:tls", None),
        secret_ref("none", "db:none", None),
        secret_ref("host1", "hosts:1", None),
        secret_ref("plain", "plain", Some("plain")),
    ]
    .concat();
    d.write("a.yaml", with_store(&test_binding("a", &refs), "files"));
    let loaded = d.ok();
    // bindings.test reads none of these but `password`.
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| w.message.starts_with("unknown metadata")),
        "{}",
        show(&loaded.warnings)
    );
    let md = &binding(&loaded, "a").metadata;
    assert_eq!(md.get("password"), Some("s3cret-pw"));
    assert_eq!(md.get("port"), Some("5432"));
    assert_eq!(md.get("ratio"), Some("1.5"));
    assert_eq!(md.get("tls"), Some("true"));
    assert_eq!(md.get("none"), Some(""));
    assert_eq!(md.get("host1"), Some("b"));
    assert_eq!(md.get("plain"), Some("plain-value"));
    assert_eq!(
        loaded.others,
        [OtherComponent {
            name: "files".into(),
            type_name: "secretstores.local.file".into(),
            version: "v1".into()
        }]
    );
}

#[test]
fn the_file_store_honours_a_nested_separator() {
    let d = Dir::new();
    d.write("data/secrets.json", SECRETS_JSON);
    d.write(
        "store.yaml",
        file_store(
            "files",
            "data/secrets.json",
            "  - name: nestedSeparator\n    value: .\n",
        ),
    );
    d.write(
        "a.yaml",
        with_store(
            &test_binding("a", &secret_ref("u", "db.user", None)),
            "files",
        ),
    );
    assert_eq!(binding(&d.ok(), "a").metadata.get("u"), Some("admin"));
}

#[test]
fn the_multi_valued_file_store_reads_keys_of_a_secret() {
    let d = Dir::new();
    d.write("data/secrets.json", SECRETS_JSON);
    d.write(
        "store.yaml",
        file_store(
            "files",
            "data/secrets.json",
            "  - name: multiValued\n    value: \"true\"\n",
        ),
    );
    let refs = [
        secret_ref("user", "db", Some("user")),
        secret_ref("port", "db", Some("port")),
        secret_ref("host0", "hosts", Some("0")),
        secret_ref("plain", "plain", None),
    ]
    .concat();
    d.write("a.yaml", with_store(&test_binding("a", &refs), "files"));
    let loaded = d.ok();
    let md = &binding(&loaded, "a").metadata;
    assert_eq!(md.get("user"), Some("admin"));
    assert_eq!(md.get("port"), Some("5432"));
    assert_eq!(md.get("host0"), Some("a"));
    assert_eq!(md.get("plain"), Some("plain-value"));
}

#[test]
fn a_relative_secrets_file_falls_back_to_the_working_directory() {
    let d = Dir::new();
    let cwd = Dir::new();
    cwd.write("elsewhere.json", r#"{"k": "from-cwd"}"#);
    d.write("store.yaml", file_store("files", "elsewhere.json", ""));
    d.write(
        "a.yaml",
        with_store(&test_binding("a", &secret_ref("k", "k", None)), "files"),
    );
    let env = FakeEnv {
        cwd: Some(cwd.path().to_owned()),
        ..FakeEnv::default()
    };
    let loaded = d.load_with(&d.options(), &env).unwrap();
    assert_eq!(binding(&loaded, "a").metadata.get("k"), Some("from-cwd"));

    // Without it, the error names both places looked at.
    let errors = d.errors();
    let e = find(&errors, "not found (looked for");
    assert_eq!(e.component.as_deref(), Some("files"));
    assert_eq!(e.field.as_deref(), Some("spec.metadata.secretsFile"));
}

#[test]
fn bad_secrets_files_are_errors() {
    let d = Dir::new();
    d.write("data/broken.json", "{ not json");
    d.write("data/list.json", "[1, 2]");
    d.write("data/dup.json", r#"{"a:b": "1", "a": {"b": "2"}}"#);
    d.write("s1.yaml", file_store("s1", "data/broken.json", ""));
    d.write("s2.yaml", file_store("s2", "data/list.json", ""));
    d.write("s3.yaml", file_store("s3", "data/dup.json", ""));
    d.write(
        "s4.yaml",
        component(
            "s4",
            "secretstores.local.file",
            "  - name: other\n    value: x\n",
        ),
    );
    let errors = d.errors();
    let by: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.component.as_deref().unwrap(), e.field.as_deref().unwrap()))
        .collect();
    assert_eq!(
        by,
        [
            ("s1", "spec.metadata.secretsFile"),
            ("s2", "spec.metadata.secretsFile"),
            ("s3", "spec.metadata.secretsFile"),
            ("s4", "spec.metadata.secretsFile"),
        ],
        "{}",
        show(&errors)
    );
    assert!(errors[0].message.contains("invalid JSON"));
}

#[test]
fn the_env_store_reads_variables_with_its_prefix() {
    let d = Dir::new();
    d.write(
        "store.yaml",
        component(
            "envs",
            "secretstores.local.env",
            "  - name: prefix\n    value: MYAPP_\n",
        ),
    );
    d.write(
        "a.yaml",
        with_store(
            &test_binding(
                "a",
                &[
                    secret_ref("token", "TOKEN", None),
                    secret_ref("bad", "_API", None),
                ]
                .concat(),
            ),
            "envs",
        ),
    );
    let env = FakeEnv::with(&[("MYAPP_TOKEN", "tok-123")]);
    let errors = d.load_with(&d.options(), &env).unwrap_err();
    let e = find(&errors, "\"_API\" not found in secret store \"envs\"");
    assert_eq!(e.field.as_deref(), Some("spec.metadata.bad"));

    d.write(
        "a.yaml",
        with_store(
            &test_binding("a", &secret_ref("token", "TOKEN", None)),
            "envs",
        ),
    );
    let loaded = d.load_with(&d.options(), &env).unwrap();
    assert_eq!(binding(&loaded, "a").metadata.get("token"), Some("tok-123"));
}

#[test]
fn the_env_store_refuses_reserved_variables() {
    let d = Dir::new();
    d.write(
        "store.yaml",
        component("envs", "secretstores.local.env", "    []\n"),
    );
    d.write(
        "a.yaml",
        with_store(
            &test_binding(
                "a",
                &[
                    secret_ref("t1", "APP_API_TOKEN", None),
                    secret_ref("t2", "dapr_api_token", None),
                ]
                .concat(),
            ),
            "envs",
        ),
    );
    let env = FakeEnv::with(&[("APP_API_TOKEN", "nope"), ("dapr_api_token", "nope")]);
    let loaded = d.load_with(&d.options(), &env).unwrap();
    let md = &binding(&loaded, "a").metadata;
    assert_eq!(md.get("t1"), Some(""));
    assert_eq!(md.get("t2"), Some(""));
    let refused: Vec<&str> = loaded
        .warnings
        .iter()
        .filter(|w| w.message.contains("is refused"))
        .map(|w| w.field.as_deref().unwrap())
        .collect();
    assert_eq!(refused, ["spec.metadata.t1", "spec.metadata.t2"]);
}

#[test]
fn secret_problems_name_component_field_and_secret_but_not_the_value() {
    let d = Dir::new();
    d.write("data/secrets.json", r#"{"known": "topsecret-value"}"#);
    d.write("store.yaml", file_store("files", "data/secrets.json", ""));
    // No store named.
    d.write("a.yaml", test_binding("a", &secret_ref("x", "known", None)));
    // A store that is not declared.
    d.write(
        "b.yaml",
        with_store(&test_binding("b", &secret_ref("x", "known", None)), "ghost"),
    );
    // A secret that does not exist, and a key that does not exist.
    d.write(
        "c.yaml",
        with_store(
            &test_binding(
                "c",
                &[
                    secret_ref("x", "unknown", None),
                    secret_ref("y", "known", Some("other")),
                ]
                .concat(),
            ),
            "files",
        ),
    );
    let errors = d.errors();
    let got: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.component.as_deref().unwrap(), e.field.as_deref().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("a", "spec.metadata.x"),
            ("b", "spec.metadata.x"),
            ("c", "spec.metadata.x"),
            ("c", "spec.metadata.y"),
        ],
        "{}",
        show(&errors)
    );
    assert!(errors[0].message.contains("needs auth.secretStore"));
    assert!(errors[1].message.contains("\"ghost\" is not loaded"));
    assert!(errors[2].message.contains("secret \"unknown\" not found"));
    assert!(errors[3].message.contains("has no key \"other\""));
    assert!(errors.iter().all(|e| !e.to_string().contains("topsecret")));
}

#[test]
fn a_store_declared_in_a_later_file_is_available() {
    let d = Dir::new();
    d.write("data/secrets.json", r#"{"pw": "late-store"}"#);
    d.write(
        "a-binding.yaml",
        with_store(
            &test_binding("a", &secret_ref("password", "pw", None)),
            "zstore",
        ),
    );
    d.write(
        "z-store.yaml",
        file_store("zstore", "data/secrets.json", ""),
    );
    let loaded = d.ok();
    assert_eq!(
        binding(&loaded, "a").metadata.get("password"),
        Some("late-store")
    );
}

#[test]
fn a_store_that_failed_is_named_as_such() {
    let d = Dir::new();
    d.write("store.yaml", file_store("files", "missing.json", ""));
    d.write(
        "a.yaml",
        with_store(&test_binding("a", &secret_ref("x", "y", None)), "files"),
    );
    let errors = d.errors();
    assert_eq!(errors.len(), 2, "{}", show(&errors));
    assert!(errors[1].message.contains("\"files\" failed to load"));
}

#[test]
fn unsupported_secret_stores_are_errors() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        component("vault", "secretstores.hashicorp.vault", "    []\n"),
    );
    let errors = d.errors();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("unsupported secret store type"));
    assert_eq!(errors[0].field.as_deref(), Some("spec.type"));
}

#[test]
fn a_secret_store_cannot_use_secret_key_ref() {
    let d = Dir::new();
    d.write("data/secrets.json", "{}");
    d.write(
        "a.yaml",
        component(
            "s",
            "secretstores.local.file",
            &secret_ref("secretsFile", "x", None),
        ),
    );
    let errors = d.errors();
    assert!(
        errors[0].message.contains("cannot read its own metadata"),
        "{}",
        show(&errors)
    );
}

#[test]
fn secret_values_are_kept_out_of_validation_messages() {
    let d = Dir::new();
    d.write("data/secrets.json", r#"{"t": "no-such-duration"}"#);
    d.write("store.yaml", file_store("files", "data/secrets.json", ""));
    d.write(
        "a.yaml",
        with_store(
            &test_binding("a", &secret_ref("timeout", "t", None)),
            "files",
        ),
    );
    let errors = d.errors();
    assert_eq!(errors.len(), 1, "{}", show(&errors));
    assert_eq!(errors[0].field.as_deref(), Some("spec.metadata.timeout"));
    assert!(
        !errors[0].message.contains("no-such-duration"),
        "{}",
        errors[0]
    );
    assert!(errors[0].message.contains("<redacted>"), "{}", errors[0]);
}

// ---------------------------------------------------------------------------------------------
// envRef

#[test]
fn env_ref_reads_allowed_variables() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        test_binding("a", "  - name: password\n    envRef: DB_PASSWORD\n"),
    );
    let env = FakeEnv::with(&[("DB_PASSWORD", "from-env")]);
    let loaded = d.load_with(&d.options(), &env).unwrap();
    assert_eq!(
        binding(&loaded, "a").metadata.get("password"),
        Some("from-env")
    );

    let errors = d.load_with(&d.options(), &FakeEnv::default()).unwrap_err();
    assert!(
        errors[0]
            .message
            .contains("DB_PASSWORD (envRef) is not set")
    );
}

#[test]
fn env_ref_refuses_reserved_and_unlisted_variables() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        test_binding(
            "a",
            "  - name: a
    envRef: APP_API_TOKEN
  - name: b
    envRef: Dapr_Api_Token
  - name: c
    envRef: 'HAS SPACE'
  - name: d
    envRef: ''
  - name: e
    envRef: NOT_LISTED
  - name: f
    envRef: listed
",
        ),
    );
    let env = FakeEnv::with(&[
        ("APP_API_TOKEN", "x"),
        ("Dapr_Api_Token", "x"),
        ("NOT_LISTED", "x"),
        ("listed", "fine"),
        ("DAPR_ENV_KEYS", "OTHER LISTED"),
    ]);
    let errors = d.load_with(&d.options(), &env).unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_deref().unwrap()).collect();
    assert_eq!(
        fields,
        [
            "spec.metadata.a",
            "spec.metadata.b",
            "spec.metadata.c",
            "spec.metadata.d",
            "spec.metadata.e"
        ],
        "{}",
        show(&errors)
    );
    assert!(errors[4].message.contains("DAPR_ENV_KEYS"));
}

// ---------------------------------------------------------------------------------------------
// Scopes, namespaces, duplicates

#[test]
fn scopes_select_the_app() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        format!("{}scopes: [myapp, other]\n", test_binding("mine", "")),
    );
    d.write(
        "b.yaml",
        format!("{}scopes:\n- other\n", test_binding("theirs", "")),
    );
    d.write(
        "c.yaml",
        format!("{}scopes: []\n", test_binding("everyone", "")),
    );
    // Out of scope: even an unknown type is not this app's business.
    d.write(
        "d.yaml",
        format!(
            "{}scopes: [other]\n",
            component("x", "bindings.nope", "    []\n")
        ),
    );
    let loaded = d.ok();
    assert_eq!(names(&loaded), ["mine", "everyone"]);
    assert!(loaded.warnings.is_empty(), "{}", show(&loaded.warnings));
}

fn namespaced(name: &str, namespace: &str) -> String {
    test_binding(name, "").replace(
        &format!("  name: {name}\n"),
        &format!("  name: {name}\n  namespace: {namespace}\n"),
    )
}

#[test]
fn the_namespace_filter_skips_only_other_namespaces() {
    let d = Dir::new();
    d.write("a.yaml", namespaced("prod", "production"));
    d.write("b.yaml", namespaced("dev", "development"));
    d.write("c.yaml", test_binding("none", ""));
    d.write("d.yaml", namespaced("empty", "''"));

    let options = LoadOptions {
        namespace: Some("production".into()),
        ..d.options()
    };
    let loaded = d.load_with(&options, &FakeEnv::default()).unwrap();
    assert_eq!(names(&loaded), ["prod", "none", "empty"]);

    let loaded = d.ok();
    assert_eq!(names(&loaded), ["prod", "dev", "none", "empty"]);
}

#[test]
fn duplicate_names_are_an_error_naming_both_sources() {
    let d = Dir::new();
    let first = d.write("a.yaml", test_binding("same", ""));
    let second = d.write(
        "b.yaml",
        format!(
            "{}---\n{}",
            test_binding("other", ""),
            test_binding("same", "")
        ),
    );
    let errors = d.errors();
    assert_eq!(errors.len(), 1, "{}", show(&errors));
    let e = &errors[0];
    assert_eq!(e.file.as_deref(), Some(second.as_path()));
    assert_eq!(e.document, Some(2));
    assert_eq!(e.component.as_deref(), Some("same"));
    assert!(
        e.message
            .starts_with("duplicate definition of Component name same")
    );
    assert!(e.message.contains(&first.display().to_string()));
}

#[test]
fn duplicates_count_across_types_but_not_across_scopes() {
    let d = Dir::new();
    d.write("data/secrets.json", "{}");
    d.write("a.yaml", test_binding("same", ""));
    d.write("b.yaml", file_store("same", "data/secrets.json", ""));
    assert_eq!(d.errors().len(), 1);

    let d = Dir::new();
    d.write(
        "a.yaml",
        format!("{}scopes: [myapp]\n", test_binding("same", "")),
    );
    d.write(
        "b.yaml",
        format!("{}scopes: [other]\n", test_binding("same", "")),
    );
    assert_eq!(names(&d.ok()), ["same"]);
}

// ---------------------------------------------------------------------------------------------
// Types, versions, ignoreErrors

#[test]
fn versions_empty_v0_and_v1_are_accepted() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        test_binding("a", "").replace("  version: v1\n", ""),
    );
    d.write(
        "b.yaml",
        test_binding("b", "").replace("version: v1", "version: v0"),
    );
    d.write(
        "c.yaml",
        test_binding("c", "").replace("version: v1", "version: V1"),
    );
    d.write(
        "d.yaml",
        test_binding("d", "").replace("version: v1", "version: ''"),
    );
    let loaded = d.ok();
    let versions: Vec<&str> = loaded.bindings.iter().map(|b| b.version.as_str()).collect();
    assert_eq!(versions, ["v1", "v0", "v1", "v1"]);
}

#[test]
fn other_versions_are_errors_naming_type_and_version() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        test_binding("a", "").replace("version: v1", "version: v2"),
    );
    let errors = d.errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field.as_deref(), Some("spec.version"));
    assert!(
        errors[0].message.contains("bindings.test/v2"),
        "{}",
        errors[0]
    );
}

#[test]
fn an_unknown_binding_type_is_an_error() {
    let d = Dir::new();
    d.write("a.yaml", component("k", "bindings.nope", "    []\n"));
    let errors = d.errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].message,
        "couldn't find binding k (bindings.nope/v1)"
    );
    assert_eq!(errors[0].field.as_deref(), Some("spec.type"));
}

#[test]
fn non_binding_types_are_errors() {
    let d = Dir::new();
    d.write("a.yaml", component("state", "state.redis", "    []\n"));
    d.write("b.yaml", component("short", "test", "    []\n"));
    let errors = d.errors();
    assert_eq!(
        errors[0].message,
        "bindery supports bindings only: state.redis"
    );
    assert_eq!(
        errors[1].message,
        "bindery supports bindings only: test (did you mean bindings.test?)"
    );
}

#[test]
fn ignore_errors_turns_component_errors_into_warnings() {
    let d = Dir::new();
    let ignore = |yaml: String| yaml.replacen("spec:\n", "spec:\n  ignoreErrors: true\n", 1);
    d.write(
        "a.yaml",
        ignore(component("unknown", "bindings.nope", "    []\n")),
    );
    d.write(
        "b.yaml",
        ignore(component("invalid", "bindings.test", "    []\n")),
    );
    d.write(
        "c.yaml",
        ignore(component("state", "pubsub.redis", "    []\n")),
    );
    d.write(
        "d.yaml",
        ignore(test_binding("v9", "").replace("version: v1", "version: v9")),
    );
    d.write(
        "e.yaml",
        ignore(component("vault", "secretstores.vault", "    []\n")),
    );
    d.write("f.yaml", test_binding("good", ""));
    let loaded = d.ok();
    assert_eq!(names(&loaded), ["good"]);
    let skipped: Vec<&str> = loaded
        .warnings
        .iter()
        .filter(|w| w.message.contains("ignoreErrors is true"))
        .map(|w| w.component.as_deref().unwrap())
        .collect();
    assert_eq!(skipped, ["vault", "unknown", "invalid", "state", "v9"]);
    let invalid = find(&loaded.warnings, "required metadata not set: url");
    assert_eq!(invalid.field.as_deref(), Some("spec.metadata.url"));
}

#[test]
fn validation_errors_name_the_metadata_field() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        component(
            "a",
            "bindings.test",
            "  - name: timeout\n    value: forever\n",
        ),
    );
    let errors = d.errors();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_deref().unwrap()).collect();
    assert_eq!(fields, ["spec.metadata.url", "spec.metadata.timeout"]);
    assert!(
        errors[1].message.contains("forever"),
        "plain values may be shown"
    );
}

#[test]
fn unknown_metadata_keys_are_warnings_listing_the_known_ones() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        test_binding(
            "a",
            "  - name: urll\n    value: x\n  - name: Route\n    value: /r\n  - name: TIMEOUT\n    value: 1s\n",
        ),
    );
    let loaded = d.ok();
    assert_eq!(loaded.warnings.len(), 1, "{}", show(&loaded.warnings));
    let w = &loaded.warnings[0];
    assert_eq!(w.field.as_deref(), Some("spec.metadata.urll"));
    assert!(
        w.message
            .contains("known: url, timeout, password, plus direction, route"),
        "{w}"
    );
    // Unknown keys are still passed to the binding.
    assert_eq!(binding(&loaded, "a").metadata.get("urll"), Some("x"));
}

// ---------------------------------------------------------------------------------------------
// direction and route

fn with_direction(name: &str, type_name: &str, direction: &str) -> String {
    component(
        name,
        type_name,
        &format!("  - name: url\n    value: x\n  - name: direction\n    value: \"{direction}\"\n"),
    )
}

#[test]
fn direction_selects_sides() {
    let d = Dir::new();
    d.write("a.yaml", with_direction("in", "bindings.test", "input"));
    d.write("b.yaml", with_direction("out", "bindings.test", " OUTPUT "));
    d.write(
        "c.yaml",
        with_direction("both", "bindings.test", "output, Input"),
    );
    d.write("d.yaml", component("onlyout", "bindings.out", "    []\n"));
    d.write("e.yaml", component("onlyin", "bindings.in", "    []\n"));
    let loaded = d.ok();
    let sides = |n| binding(&loaded, n).sides;
    let s = |input, output, explicit_input| Sides {
        input,
        output,
        explicit_input,
    };
    assert_eq!(sides("in"), s(true, false, true));
    assert_eq!(sides("out"), s(false, true, false));
    assert_eq!(sides("both"), s(true, true, true));
    assert_eq!(sides("onlyout"), s(false, true, false));
    assert_eq!(sides("onlyin"), s(true, false, false));
    // `direction` is still passed to the binding.
    assert_eq!(
        binding(&loaded, "in").metadata.get("direction"),
        Some("input")
    );
}

#[test]
fn a_direction_the_type_lacks_or_does_not_know_is_an_error() {
    let d = Dir::new();
    d.write("a.yaml", with_direction("a", "bindings.out", "input"));
    d.write(
        "b.yaml",
        with_direction("b", "bindings.in", "input, output"),
    );
    d.write("c.yaml", with_direction("c", "bindings.test", "sideways"));
    d.write("d.yaml", with_direction("d", "bindings.test", " , "));
    let errors = d.errors();
    assert_eq!(errors.len(), 4, "{}", show(&errors));
    assert!(
        errors
            .iter()
            .all(|e| e.field.as_deref() == Some("spec.metadata.direction"))
    );
    assert!(errors[0].message.contains("bindings.out has only output"));
    assert!(errors[1].message.contains("bindings.in has only input"));
    assert!(errors[2].message.contains("\"sideways\""));
}

#[test]
fn route_gets_a_leading_slash_and_refuses_whitespace() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        test_binding("a", "  - name: route\n    value: hook\n"),
    );
    d.write(
        "b.yaml",
        test_binding("b", "  - name: route\n    value: /v1/hook\n"),
    );
    d.write(
        "c.yaml",
        test_binding("c", "  - name: route\n    value: ''\n"),
    );
    let loaded = d.ok();
    assert_eq!(binding(&loaded, "a").route, "/hook");
    assert_eq!(binding(&loaded, "b").route, "/v1/hook");
    assert_eq!(binding(&loaded, "c").route, "/c");

    d.write(
        "d.yaml",
        test_binding("d", "  - name: route\n    value: \"/a b\"\n"),
    );
    d.write(
        "e.yaml",
        test_binding("e", "  - name: route\n    value: \"/a\\r\\nX: y\"\n"),
    );
    let errors = d.errors();
    assert_eq!(errors.len(), 2, "{}", show(&errors));
    assert!(
        errors
            .iter()
            .all(|e| e.field.as_deref() == Some("spec.metadata.route"))
    );
}

// ---------------------------------------------------------------------------------------------
// Templates and fingerprints

#[test]
fn templates_expand_in_every_value() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        test_binding(
            "a",
            "  - name: id
    value: 'consumer-{uuid}'
  - name: two
    value: '{uuid}/{uuid}'
  - name: app
    value: 'group-{appID}'
  - name: ns
    value: '{namespace}'
",
        ),
    );
    let loaded = d.ok();
    let md = &binding(&loaded, "a").metadata;
    let id = md.get("id").unwrap();
    assert!(id.starts_with("consumer-"));
    assert!(
        uuid::Uuid::parse_str(&id["consumer-".len()..]).is_ok(),
        "{id}"
    );
    let (u1, u2) = md.get("two").unwrap().split_once('/').unwrap();
    assert_ne!(u1, u2, "each {{uuid}} is fresh");
    assert_eq!(md.get("app"), Some("group-myapp"));
    assert_eq!(md.get("ns"), Some("myapp"));

    let options = LoadOptions {
        namespace: Some("prod".into()),
        ..d.options()
    };
    let loaded = d.load_with(&options, &FakeEnv::default()).unwrap();
    assert_eq!(binding(&loaded, "a").metadata.get("ns"), Some("prod.myapp"));
}

#[test]
fn pod_name_is_an_error() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        test_binding("a", "  - name: id\n    value: '{podName}'\n"),
    );
    let errors = d.errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field.as_deref(), Some("spec.metadata.id"));
    assert!(errors[0].message.contains("{podName}"));
}

#[test]
fn fingerprints_follow_content_not_location_or_uuids() {
    let d = Dir::new();
    d.write(
        "a.yaml",
        test_binding("a", "  - name: id\n    value: '{uuid}'\n"),
    );
    let first = binding(&d.ok(), "a").fingerprint;
    let again = binding(&d.ok(), "a").fingerprint;
    assert_eq!(first, again, "a fresh {{uuid}} is not a change");

    let d2 = Dir::new();
    d2.write(
        "moved.yaml",
        format!(
            "---\n# moved\n{}",
            test_binding("a", "  - name: id\n    value: '{uuid}'\n")
        ),
    );
    assert_eq!(
        binding(&d2.ok(), "a").fingerprint,
        first,
        "the source is not part of it"
    );

    let changes = [
        test_binding("a", "  - name: id\n    value: '{uuid}-x'\n"),
        test_binding(
            "a",
            "  - name: id\n    value: '{uuid}'\n  - name: route\n    value: /r\n",
        ),
        test_binding(
            "a",
            "  - name: id\n    value: '{uuid}'\n  - name: direction\n    value: input\n",
        ),
        test_binding("a", "  - name: id\n    value: '{uuid}'\n")
            .replace("  version: v1\n", "  version: v1\n  initTimeout: 6s\n"),
        test_binding("a", "  - name: id\n    value: '{uuid}'\n")
            .replace("  version: v1\n", "  version: v1\n  ignoreErrors: true\n"),
        test_binding("a", "  - name: id\n    value: '{uuid}'\n")
            .replace("version: v1", "version: v0"),
    ];
    for yaml in changes {
        d.write("a.yaml", &yaml);
        assert_ne!(binding(&d.ok(), "a").fingerprint, first, "{yaml}");
    }
}

// ---------------------------------------------------------------------------------------------
// Reporting

#[test]
fn every_problem_in_every_file_is_reported_together() {
    let d = Dir::new();
    let a = d.write("a.yaml", component("alpha", "bindings.nope", "    []\n"));
    let b = d.write(
        "b.yaml",
        format!(
            "{}---\n{}",
            test_binding("fine", ""),
            component(
                "beta",
                "bindings.test",
                "  - name: timeout\n    value: 5 parsecs\n"
            )
        ),
    );
    let c = d.write(
        "c.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: [\n",
    );
    d.write("d.yaml", test_binding("bad/name", ""));
    let errors = d.errors();
    let got: Vec<_> = errors
        .iter()
        .map(|e| {
            (
                e.file
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                e.document,
                e.component.as_deref(),
                e.field.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("c.yaml".to_owned(), Some(1), None, None),
            (
                "d.yaml".to_owned(),
                Some(1),
                Some("bad/name"),
                Some("metadata.name")
            ),
            (
                "a.yaml".to_owned(),
                Some(1),
                Some("alpha"),
                Some("spec.type")
            ),
            (
                "b.yaml".to_owned(),
                Some(2),
                Some("beta"),
                Some("spec.metadata.url")
            ),
            (
                "b.yaml".to_owned(),
                Some(2),
                Some("beta"),
                Some("spec.metadata.timeout")
            ),
        ],
        "{}",
        show(&errors)
    );
    let shown = errors[4].to_string();
    assert!(
        shown.starts_with(&format!(
            "{} (document 2): component \"beta\": spec.metadata.timeout: ",
            b.display()
        )),
        "{shown}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.file.as_deref() == Some(a.as_path()))
    );
    assert!(
        errors
            .iter()
            .any(|e| e.file.as_deref() == Some(c.as_path()))
    );
}

// ---------------------------------------------------------------------------------------------
// Fuzzing the parsers with deterministic junk: any input gives issues, never a panic.

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as usize
    }
}

fn parse_everything(text: &str) {
    let mut report = Report::default();
    let mut docs = Vec::new();
    manifest::parse_documents(Path::new("fuzz.yaml"), text, &mut report, &mut docs);
    for doc in &docs {
        if manifest::kind(doc, &mut report).is_some() {
            let _ = super::component::parse(doc, &mut report);
        }
    }
}

#[test]
fn random_yaml_like_input_never_panics() {
    const ALPHABET: &[char] = &[
        '-', '-', '-', ':', ' ', ' ', '\n', '\n', '\t', '\r', '[', ']', '{', '}', '&', '*', '!',
        '|', '>', '\'', '"', '#', '%', '@', '`', ',', '?', 'a', 'k', '0', '.', '~', '\\', '<', '=',
        'é', '\u{feff}', '\u{0}',
    ];
    let mut rng = Lcg(7);
    for _ in 0..3000 {
        let len = rng.next() % 120;
        let text: String = (0..len)
            .map(|_| ALPHABET[rng.next() % ALPHABET.len()])
            .collect();
        parse_everything(&text);
    }
}

#[test]
fn mutated_components_never_panic() {
    let base = format!(
        "{}auth:\n  secretStore: s\nscopes: [myapp]\n",
        test_binding(
            "a",
            "  - name: p\n    secretKeyRef: {name: x, key: y}\n  - name: e\n    envRef: V\n"
        )
    );
    let replacements: &[&str] = &[
        "",
        " ",
        "\n",
        ":",
        "- ",
        "[",
        "{",
        "~",
        "null",
        "5",
        "true",
        "  ",
        "'",
        "---\n",
        "[1, {a: b}]",
        "*x",
        "&x ",
        "!!binary ",
    ];
    let mut rng = Lcg(11);
    for _ in 0..3000 {
        let mut text = base.clone();
        for _ in 0..1 + rng.next() % 3 {
            let mut at = rng.next() % text.len();
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let cut = (at + rng.next() % 6).min(text.len());
            let cut = (at..=cut)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(at);
            text.replace_range(at..cut, replacements[rng.next() % replacements.len()]);
        }
        parse_everything(&text);
    }
}
