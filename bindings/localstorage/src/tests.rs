use std::collections::HashMap;
use std::os::unix::fs::symlink;

use bindery_core::{BindingHealth, ErrorKind};
use bytes::Bytes;
use tempfile::TempDir;

use super::*;

fn ctx(root: &str) -> ComponentContext {
    ComponentContext {
        name: "files".into(),
        app_id: "app".into(),
        metadata: Metadata::from_pairs([("rootPath", root)]),
        health: BindingHealth::default(),
    }
}

/// A binding on a fresh temporary root; the root's canonical path comes along.
async fn storage() -> (TempDir, PathBuf, Box<dyn OutputBinding>) {
    let dir = TempDir::new().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let b = LocalStorageFactory
        .build_output(&ctx(root.to_str().unwrap()))
        .await
        .unwrap();
    (dir, root, b)
}

fn req(op: &str, data: &[u8], file_name: Option<&str>) -> InvokeRequest {
    let mut metadata = HashMap::new();
    if let Some(f) = file_name {
        metadata.insert(FILE_NAME_KEY.to_owned(), f.to_owned());
    }
    InvokeRequest {
        operation: op.into(),
        data: Bytes::copy_from_slice(data),
        metadata,
    }
}

async fn create(b: &dyn OutputBinding, name: Option<&str>, data: &[u8]) -> String {
    let resp = b.invoke(req("create", data, name)).await.unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&resp.data).unwrap();
    v["fileName"].as_str().unwrap().to_owned()
}

async fn get(b: &dyn OutputBinding, name: &str) -> Result<Vec<u8>, BindingError> {
    b.invoke(req("get", b"", Some(name)))
        .await
        .map(|r| r.unwrap().data.to_vec())
}

async fn list(b: &dyn OutputBinding, name: Option<&str>) -> Result<String, BindingError> {
    b.invoke(req("list", b"", name))
        .await
        .map(|r| String::from_utf8(r.unwrap().data.to_vec()).unwrap())
}

#[test]
fn spec_describes_an_output_binding() {
    let spec = LocalStorageFactory.spec();
    assert_eq!(spec.type_name, "bindings.localstorage");
    assert_eq!(spec.direction, Direction::Output);
    assert_eq!(spec.operations, ["create", "get", "list", "delete"]);
    assert!(spec.field("rootpath").unwrap().required);
    let mut registry = Registry::new();
    register(&mut registry);
    assert!(registry.get("bindings.localstorage").is_some());
}

#[test]
fn validate_refuses_missing_and_system_roots() {
    let errs = LocalStorageFactory.validate(&Metadata::new()).unwrap_err();
    assert_eq!(errs[0].message(), "property rootPath must not be empty");
    assert_eq!(errs[0].field(), Some("rootPath"));
    for bad in [
        "/proc",
        "/proc/",
        "/proc/self/root",
        "/sys",
        "/sys/kernel",
        "/boot",
        "/boot/grub",
        "/var/run/secrets",
        "/var/run/secrets/kubernetes.io/serviceaccount",
        "/tmp/../proc/1",
        "/./sys",
    ] {
        let errs = LocalStorageFactory
            .validate(&Metadata::from_pairs([("rootPath", bad)]))
            .unwrap_err();
        assert!(
            errs[0]
                .message()
                .starts_with("property rootPath points to a disallowed location"),
            "{bad}: {}",
            errs[0].message()
        );
    }
    for ok in [
        "/tmp/files",
        "/procedures",
        "/var/run",
        "/system",
        "relative/dir",
        "/proc/../tmp",
    ] {
        assert!(
            LocalStorageFactory
                .validate(&Metadata::from_pairs([("rootPath", ok)]))
                .is_ok(),
            "{ok}"
        );
    }
}

#[test]
fn relative_roots_are_taken_from_the_working_directory() {
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(absolute_clean("a/./b/../c").unwrap(), cwd.join("a/c"));
    assert_eq!(absolute_clean("/x/../../y").unwrap(), PathBuf::from("/y"));
}

#[tokio::test]
async fn build_creates_the_root_and_refuses_files_and_symlinked_system_paths() {
    let dir = TempDir::new().unwrap();
    let nested = dir.path().join("a/b/c");
    let c = ctx(nested.to_str().unwrap());
    LocalStorageFactory.build_output(&c).await.unwrap();
    assert!(nested.is_dir());
    assert!(c.health.snapshot().connected);

    let file = dir.path().join("plain.txt");
    std::fs::write(&file, b"x").unwrap();
    for root in [file.clone(), file.join("below")] {
        let err = LocalStorageFactory
            .build_output(&ctx(root.to_str().unwrap()))
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(
            err.message()
                .contains("represents a file and not a directory"),
            "{}",
            err.message()
        );
    }

    // A symlink that leads into a system folder is refused once resolved.
    let link = dir.path().join("sys-link");
    symlink("/sys", &link).unwrap();
    for root in [link.clone(), link.join("kernel"), link.join("not-there")] {
        let err = LocalStorageFactory
            .build_output(&ctx(root.to_str().unwrap()))
            .await
            .err()
            .unwrap();
        assert!(
            err.message()
                .starts_with("property rootPath points to a disallowed location: /sys"),
            "{}",
            err.message()
        );
    }

    // A symlinked root is used through its target.
    let target = dir.path().join("real");
    std::fs::create_dir(&target).unwrap();
    let link = dir.path().join("link");
    symlink(&target, &link).unwrap();
    let b = LocalStorageFactory
        .build_output(&ctx(link.to_str().unwrap()))
        .await
        .unwrap();
    create(b.as_ref(), Some("f"), b"\"via link\"").await;
    assert_eq!(std::fs::read(target.join("f")).unwrap(), b"via link");
}

#[tokio::test]
async fn create_get_delete_round_trip() {
    let (_dir, root, b) = storage().await;
    // Over HTTP a string arrives quoted; it is written unquoted.
    assert_eq!(
        create(b.as_ref(), Some("a.txt"), b"\"hello world\"").await,
        "a.txt"
    );
    assert_eq!(get(b.as_ref(), "a.txt").await.unwrap(), b"hello world");
    assert_eq!(std::fs::read(root.join("a.txt")).unwrap(), b"hello world");

    // JSON that is not a string is written as it is; parents are created.
    assert_eq!(
        create(b.as_ref(), Some("dir/sub/b.json"), br#"{"x":1}"#).await,
        "dir/sub/b.json"
    );
    assert_eq!(
        get(b.as_ref(), "dir/sub/b.json").await.unwrap(),
        br#"{"x":1}"#
    );
    // Harmless `.` and `..` inside the root are cleaned.
    assert_eq!(
        create(b.as_ref(), Some("./dir/x/../c.txt"), b"\"c!\"").await,
        "dir/c.txt"
    );
    assert_eq!(get(b.as_ref(), "dir/c.txt").await.unwrap(), b"c!");

    // An existing file is replaced, not appended to.
    create(b.as_ref(), Some("a.txt"), b"\"a much longer text\"").await;
    create(b.as_ref(), Some("a.txt"), b"\"short!\"").await;
    assert_eq!(get(b.as_ref(), "a.txt").await.unwrap(), b"short!");

    // Without a name, a UUID.
    let name = create(b.as_ref(), None, b"\"anon!\"").await;
    assert!(uuid::Uuid::parse_str(&name).is_ok(), "{name}");
    assert_eq!(std::fs::read(root.join(&name)).unwrap(), b"anon!");
    let name = create(b.as_ref(), Some(""), b"\"anon!\"").await;
    assert!(uuid::Uuid::parse_str(&name).is_ok(), "{name}");

    // Missing.
    let err = get(b.as_ref(), "missing.txt").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        err.message(),
        format!("file not found: {}", root.join("missing.txt").display())
    );

    // Delete answers nothing, then the file is gone.
    let resp = b.invoke(req("delete", b"", Some("a.txt"))).await.unwrap();
    assert!(resp.is_none());
    assert!(!root.join("a.txt").exists());
    assert_eq!(
        get(b.as_ref(), "a.txt").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let err = b
        .invoke(req("delete", b"", Some("a.txt")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    // get and delete need a name, and a name of a file.
    for op in ["get", "delete"] {
        for name in [None, Some(""), Some("."), Some("dir/..")] {
            let err = b.invoke(req(op, b"", name)).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{op} {name:?}");
        }
    }
    // A folder is not a file.
    let err = get(b.as_ref(), "dir").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    assert!(root.join("dir").is_dir());
}

#[tokio::test]
async fn list_returns_absolute_paths_of_regular_files_or_null() {
    let (_dir, root, b) = storage().await;
    assert_eq!(list(b.as_ref(), None).await.unwrap(), "null");
    std::fs::create_dir(root.join("empty")).unwrap();
    assert_eq!(list(b.as_ref(), Some("empty")).await.unwrap(), "null");

    for name in ["b.txt", "a/z.txt", "a/b/c.txt", "a.txt", "c/d.txt"] {
        create(b.as_ref(), Some(name), b"\"-\"").await;
    }
    // Symlinks are neither listed nor followed.
    symlink(root.join("a.txt"), root.join("link.txt")).unwrap();
    symlink(root.join("a"), root.join("link-dir")).unwrap();

    let abs = |p: &str| root.join(p).to_string_lossy().into_owned();
    let all: Vec<String> = serde_json::from_str(&list(b.as_ref(), None).await.unwrap()).unwrap();
    assert_eq!(
        all,
        [
            abs("a/b/c.txt"),
            abs("a/z.txt"),
            abs("a.txt"),
            abs("b.txt"),
            abs("c/d.txt")
        ]
    );
    let sub: Vec<String> =
        serde_json::from_str(&list(b.as_ref(), Some("a")).await.unwrap()).unwrap();
    assert_eq!(sub, [abs("a/b/c.txt"), abs("a/z.txt")]);

    let err = list(b.as_ref(), Some("a.txt")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().contains("is not a directory"));
    let err = list(b.as_ref(), Some("nope")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = list(b.as_ref(), Some("../")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn file_names_cannot_escape_the_root() {
    let (dir, root, b) = storage().await;
    let outside = TempDir::new().unwrap();
    let outside_path = std::fs::canonicalize(outside.path()).unwrap();
    std::fs::write(outside_path.join("secret"), b"outside").unwrap();
    // Symlinks inside the root: to a folder outside, to a file outside, to nowhere.
    symlink(&outside_path, root.join("out")).unwrap();
    symlink(outside_path.join("secret"), root.join("secret-link")).unwrap();
    symlink(outside_path.join("not-yet"), root.join("dangling")).unwrap();
    let parent_escape = format!(
        "../{}/x",
        outside_path.file_name().unwrap().to_string_lossy()
    );

    for name in [
        "../x",
        "/etc/passwd",
        "a/../../x",
        "..",
        parent_escape.as_str(),
        "out/x",
        "out/secret",
        "secret-link",
        "dangling",
        "a\0b",
    ] {
        for op in ["create", "get", "delete"] {
            let err = b
                .invoke(req(op, b"\"pwned\"", Some(name)))
                .await
                .expect_err(&format!("{op} {name:?} was allowed"));
            assert_eq!(
                err.kind(),
                ErrorKind::InvalidRequest,
                "{op} {name:?}: {err}"
            );
            assert!(
                err.message()
                    .starts_with(&format!("invalid fileName {name:?}")),
                "{}",
                err.message()
            );
        }
    }
    // Nothing outside was touched.
    assert_eq!(
        std::fs::read(outside_path.join("secret")).unwrap(),
        b"outside"
    );
    assert!(!outside_path.join("x").exists());
    assert!(!outside_path.join("not-yet").exists());
    assert!(!dir.path().parent().unwrap().join("x").exists());
    assert_eq!(
        list(b.as_ref(), Some("out")).await.unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );

    // A symlink that stays inside the root is fine.
    std::fs::create_dir(root.join("real")).unwrap();
    symlink(root.join("real"), root.join("alias")).unwrap();
    assert_eq!(
        create(b.as_ref(), Some("alias/f"), b"\"in\"").await,
        "alias/f"
    );
    assert_eq!(std::fs::read(root.join("real/f")).unwrap(), b"in");
    assert_eq!(get(b.as_ref(), "alias/f").await.unwrap(), b"in");
}

#[tokio::test]
async fn create_decodes_only_standard_padded_base64() {
    let (_dir, _root, b) = storage().await;
    let cases: &[(&[u8], &[u8])] = &[
        // Quoted (HTTP) and raw (gRPC) base64 are decoded.
        (b"\"aGVsbG8=\"", b"hello"),
        (b"aGVsbG8=", b"hello"),
        (b"\"YQ==\"", b"a"),
        // Dapr's quirk, kept: text that happens to be padded base64 is decoded.
        (b"\"abcd\"", &[0x69, 0xb7, 0x1d]),
        // Everything else is written as it is.
        (b"\"aGVsbG8\"", b"aGVsbG8"),
        (b"\"aGVs\\nbG8=\"", b"aGVs\nbG8="),
        (b"\"-_-_\"", b"-_-_"),
        (b"\"YR==\"", b"YR=="),
        (b"\"hello world\"", b"hello world"),
        (b"\"\"", b""),
        (b"", b""),
        (b"{\"a\":\"aGVsbG8=\"}", b"{\"a\":\"aGVsbG8=\"}"),
    ];
    for (i, (input, written)) in cases.iter().enumerate() {
        let name = format!("f{i}");
        create(b.as_ref(), Some(&name), input).await;
        assert_eq!(
            get(b.as_ref(), &name).await.unwrap(),
            *written,
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[tokio::test]
async fn unknown_operations_and_input_side_are_refused() {
    let (_dir, _root, b) = storage().await;
    let err = b.invoke(req("append", b"", Some("x"))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(LocalStorageFactory.build_input(&ctx("/tmp")).await.is_err());
}

#[tokio::test]
async fn calls_after_close_are_refused() {
    let (_dir, _root, b) = storage().await;
    create(b.as_ref(), Some("x"), b"\"x\"").await;
    b.close().await.unwrap();
    let err = b.invoke(req("get", b"", Some("x"))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
}
