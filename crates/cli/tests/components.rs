//! Component loading: secrets, scopes, namespaces, configuration errors, `ignoreErrors`, and
//! localstorage's confinement to its root, against the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{bindery, call, component, dapr_error, get_status, localstorage, logs, q};
use reqwest::Method;
use serde_json::json;

/// A localstorage component whose `rootPath` comes from `key` of secret `secret` in `store`.
fn localstorage_from_secret(name: &str, store: &str, secret: &str, key: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: {name}
spec:
  type: bindings.localstorage
  version: v1
  metadata:
  - name: rootPath
    secretKeyRef:
      name: {}
      key: {}
auth:
  secretStore: {store}
",
        q(secret),
        q(key)
    )
}

async fn create(b: &common::Bindery, binding: &str, file: &str, data: &str) -> reqwest::Response {
    call(
        b,
        Method::POST,
        binding,
        json!({"operation": "create", "data": data, "metadata": {"fileName": file}}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_refs_resolve_from_the_file_and_env_stores() {
    let dir = tempfile::tempdir().unwrap();
    let from_file = dir.path().join("from-file");
    let nested = dir.path().join("nested");
    let from_env = dir.path().join("from-env");
    let builder = bindery("secrets");
    let secrets_file = builder.resources_dir().join("secrets.json");
    std::fs::write(
        &secrets_file,
        json!({
            "rootPath": from_file.to_str().unwrap(),
            "storage": {"root": nested.to_str().unwrap()}
        })
        .to_string(),
    )
    .unwrap();
    let b = builder
        .file(
            "stores.yaml",
            &format!(
                "{}---\n{}",
                component(
                    "filestore",
                    "secretstores.local.file",
                    &[("secretsFile", secrets_file.to_str().unwrap())]
                ),
                component("envstore", "secretstores.local.env", &[])
            ),
        )
        .file(
            "bindings.yaml",
            &[
                localstorage_from_secret("byfile", "filestore", "rootPath", "rootPath"),
                localstorage_from_secret("bynested", "filestore", "storage:root", "storage:root"),
                localstorage_from_secret("byenv", "envstore", "FILES_ROOT", "FILES_ROOT"),
            ]
            .join("---\n"),
        )
        .env("FILES_ROOT", from_env.to_str().unwrap())
        .start()
        .await;

    for (binding, root) in [
        ("byfile", &from_file),
        ("bynested", &nested),
        ("byenv", &from_env),
    ] {
        let proof = format!("written through {binding}");
        let resp = create(&b, binding, "proof.txt", &proof).await;
        assert_eq!(resp.status(), 200, "{binding}");
        assert_eq!(
            std::fs::read_to_string(root.join("proof.txt")).unwrap(),
            proof,
            "{binding} writes under the root its secret names"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_and_namespace_decide_which_components_load() {
    let dir = tempfile::tempdir().unwrap();
    // `extra` is either `namespace: <ns>` (put under metadata) or top-level YAML (scopes).
    let with = |name: &str, extra: &str| {
        let doc = localstorage(name, &dir.path().join(name));
        match extra.strip_prefix("namespace: ") {
            Some(ns) => doc.replacen(
                &format!("  name: {}\n", q(name)),
                &format!("  name: {}\n  namespace: {ns}\n", q(name)),
                1,
            ),
            None => format!("{doc}{extra}"),
        }
    };
    let b = bindery("me")
        .file(
            "all.yaml",
            &[
                with("mine", "scopes:\n- other\n- me\n"),
                with("theirs", "scopes:\n- other\n"),
                with("prod", "namespace: prod"),
                with("dev", "namespace: dev"),
                with("anyns", ""),
            ]
            .join("---\n"),
        )
        .env("NAMESPACE", "prod")
        .start()
        .await;

    for name in ["mine", "prod", "anyns"] {
        let resp = create(&b, name, "f", "x").await;
        assert_eq!(resp.status(), 200, "{name} is loaded");
    }
    for name in ["theirs", "dev"] {
        let resp = create(&b, name, "f", "x").await;
        let msg = dapr_error(resp, 500, "ERR_INVOKE_OUTPUT_BINDING").await;
        assert!(
            msg.ends_with(&format!("couldn't find output binding {name}")),
            "{name}: {msg}"
        );
        assert!(!dir.path().join(name).exists(), "{name} was never built");
    }
    let md: serde_json::Value = b
        .client()
        .get(b.url("/v1.0/metadata"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut names: Vec<&str> = md["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["anyns", "mine", "prod"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_configuration_error_is_reported_and_bindery_exits() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let a = [
        component("ghost", "bindings.nope", &[]),
        component("tick", "bindings.cron", &[]),
        component("twin", "bindings.localstorage", &[("rootPath", root)]),
        component("fine", "bindings.cron", &[("schedule", "@every 1s")]),
    ]
    .join("---\n");
    let b = [
        component("twin", "bindings.localstorage", &[("rootPath", root)]),
        component("late", "bindings.cron", &[("schedule", "61 * * * *")]),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: [broken\n".to_owned(),
    ]
    .join("---\n");
    let mut p = bindery("broken")
        .file("a.yaml", &a)
        .file("b.yaml", &b)
        .no_wait()
        .start()
        .await;
    let status = p.wait_exit(Duration::from_secs(20)).await;
    assert!(!status.success(), "{status}");
    let log = logs(&p);
    let a = p.resources_dir().join("a.yaml");
    let b = p.resources_dir().join("b.yaml");
    let (a, b) = (a.display(), b.display());
    let expected = [
        format!(
            "{a} (document 1): component \"ghost\": spec.type: couldn't find binding ghost (bindings.nope/v1)"
        ),
        format!("{a} (document 2): component \"tick\": spec.metadata.schedule: schedule not set"),
        format!(
            "{b} (document 1): component \"twin\": metadata.name: duplicate definition of Component name twin (first defined in {a}, document 3)"
        ),
        format!(
            "{b} (document 2): component \"late\": spec.metadata.schedule: invalid schedule format '61 * * * *'"
        ),
        format!("{b} (document 3): invalid YAML"),
    ];
    // The summary on stderr lists each problem on its own line.
    assert!(
        log.contains("the resources are invalid (5 problem(s)):"),
        "{log}"
    );
    for want in &expected {
        assert!(
            log.lines()
                .any(|l| l.starts_with("  - ") && l.contains(want.as_str())),
            "missing {want:?} in:\n{log}"
        );
    }
    assert!(
        !log.contains("\"fine\""),
        "a valid component is no problem: {log}"
    );
    assert!(!log.contains("bindery is ready"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_errors_lets_bindery_start_without_the_broken_component() {
    let dir = tempfile::tempdir().unwrap();
    let a_file = dir.path().join("not-a-folder");
    std::fs::write(&a_file, "x").unwrap();
    let ignore = "  ignoreErrors: true\n";
    let spec_with_ignore = |doc: String| doc.replacen("spec:\n", &format!("spec:\n{ignore}"), 1);
    let b = bindery("tolerant")
        .file(
            "broken.yaml",
            &[
                spec_with_ignore(component("noschedule", "bindings.cron", &[])),
                spec_with_ignore(localstorage("onafile", &a_file)),
                spec_with_ignore(component("ghost", "bindings.nope", &[])),
            ]
            .join("---\n"),
        )
        .file("good.yaml", &localstorage("good", &dir.path().join("good")))
        .start()
        .await;
    assert_eq!(get_status(&b, "/v1.0/healthz").await, 204);
    let resp = create(&b, "good", "f", "x").await;
    assert_eq!(resp.status(), 200);
    // Its build failed: loaded, not ready, and calls fail fast with the reason.
    let resp = create(&b, "onafile", "f", "x").await;
    let msg = dapr_error(resp, 500, "ERR_INVOKE_OUTPUT_BINDING").await;
    assert!(
        msg.starts_with(
            "error invoking output binding onafile: output binding onafile is not ready:"
        ) && msg.contains("represents a file and not a directory"),
        "{msg}"
    );
    // Its configuration was invalid: skipped.
    for name in ["noschedule", "ghost"] {
        let resp = create(&b, name, "f", "x").await;
        let msg = dapr_error(resp, 500, "ERR_INVOKE_OUTPUT_BINDING").await;
        assert!(
            msg.ends_with(&format!("couldn't find output binding {name}")),
            "{msg}"
        );
    }
    let log = logs(&b);
    for want in [
        "component \"noschedule\": spec.metadata.schedule: schedule not set",
        "component \"ghost\": spec.type: couldn't find binding ghost (bindings.nope/v1)",
        "component skipped because of the problems above (ignoreErrors is true)",
    ] {
        assert!(log.contains(want), "missing {want:?} in:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localstorage_refuses_file_names_outside_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let sibling = dir.path().join("root-sibling");
    std::fs::write(&sibling, "keep me").unwrap();
    let b = bindery("confined")
        .file("store.yaml", &localstorage("store", &root))
        .start()
        .await;
    // A symlink inside the root that leads out of it.
    std::os::unix::fs::symlink(dir.path(), root.join("exit")).unwrap();
    let outside = dir.path().join("abs.txt");
    let outside = outside.to_str().unwrap();
    for (op, name, why) in [
        ("create", "../x", "it points outside rootPath"),
        ("create", "a/../../x", "it points outside rootPath"),
        ("create", outside, "absolute paths are not allowed"),
        ("create", "exit/x", "outside rootPath"),
        ("get", "/etc/passwd", "absolute paths are not allowed"),
        (
            "get",
            "../../../../../../etc/passwd",
            "it points outside rootPath",
        ),
        ("get", "exit/root-sibling", "outside rootPath"),
        ("delete", "../root-sibling", "it points outside rootPath"),
        ("list", "..", "it points outside rootPath"),
    ] {
        let resp = call(
            &b,
            Method::POST,
            "store",
            json!({"operation": op, "data": "escaped", "metadata": {"fileName": name}}),
        )
        .await;
        let msg = dapr_error(resp, 500, "ERR_INVOKE_OUTPUT_BINDING").await;
        assert!(
            msg.starts_with(&format!(
                "error invoking output binding store: invalid fileName {name:?}: "
            )) && msg.contains(why),
            "{op} {name}: {msg}"
        );
        assert!(!msg.contains("root:"), "{op} {name} leaked a file: {msg}");
    }
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort_unstable();
    assert_eq!(
        left,
        ["root", "root-sibling"],
        "nothing written outside rootPath"
    );
    assert_eq!(std::fs::read_to_string(&sibling).unwrap(), "keep me");
    let mut inside: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    inside.sort_unstable();
    assert_eq!(inside, ["exit"], "nothing written inside either");
}
