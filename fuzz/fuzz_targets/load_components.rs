//! Component loading never panics, whatever a resources file holds: every input is either a
//! set of components or a list of problems.
#![no_main]

use std::sync::OnceLock;

use bindery_core::{
    BindingError, BindingFactory, BindingSpec, Direction, Metadata, MetadataField, Registry,
    async_trait,
};
use bindery_runtime::loader::{LoadOptions, load};
use libfuzzer_sys::fuzz_target;

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.test",
    aliases: &["bindings.alias"],
    direction: Direction::Both,
    operations: &["create"],
    metadata: &[
        MetadataField::required("url", "a required field"),
        MetadataField::optional("timeout", "a duration").default("5s"),
        MetadataField::optional("password", "a credential").sensitive(),
    ],
    summary: "a binding for fuzzing the loader",
};

struct Test;

#[async_trait]
impl BindingFactory for Test {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }
    fn validate(&self, md: &Metadata) -> Result<(), Vec<BindingError>> {
        let r = md.reader();
        let _ = r.required("url", "url is required");
        let _ = r.duration("timeout", std::time::Duration::from_secs(5));
        r.finish()
    }
}

struct Dir {
    dir: tempfile::TempDir,
    registry: Registry,
}

fn dir() -> &'static Dir {
    static DIR: OnceLock<Dir> = OnceLock::new();
    DIR.get_or_init(|| {
        let mut registry = Registry::new();
        registry.register(Test);
        Dir {
            dir: tempfile::tempdir().expect("temp dir"),
            registry,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let d = dir();
    let file = d.dir.path().join("fuzz.yaml");
    if std::fs::write(&file, data).is_err() {
        return;
    }
    let options = LoadOptions {
        paths: vec![d.dir.path().to_owned()],
        app_id: "fuzz".into(),
        namespace: None,
    };
    let _ = load(&options, &d.registry);
});
