//! Wire compatibility with the official Rust SDK (`dapr` crate): its high-level `Client`
//! against the real `bindery` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use bindery_test_support::Bindery;
use dapr::client::ClientOptions;

fn localstorage(root: &std::path::Path) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: files\nspec:\n  type: bindings.localstorage\n  version: v1\n  metadata:\n  - name: rootPath\n    value: {:?}\n",
        root.to_str().unwrap()
    )
}

async fn client(
    b: &Bindery,
    token: Option<&str>,
) -> dapr::Client<dapr::client::TonicClientWithAuth> {
    let mut opts = ClientOptions::new().with_address(format!("http://127.0.0.1:{}", b.grpc_port));
    if let Some(t) = token {
        opts = opts.with_api_token(t);
    }
    dapr::Client::from_options(opts)
        .await
        .expect("the Rust SDK connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_invokes_bindings_and_reads_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let b = Bindery::builder("rust-sdk")
        .file("files.yaml", &localstorage(dir.path()))
        .env("DAPR_API_TOKEN", "tok")
        .start()
        .await;
    let mut c = client(&b, Some("tok")).await;

    let md = HashMap::from([("fileName".to_owned(), "r.bin".to_owned())]);
    let created = c
        .invoke_binding("files", vec![0, 159, 146, 150], "create", Some(md.clone()))
        .await
        .unwrap();
    assert_eq!(created.data, br#"{"fileName":"r.bin"}"#);
    // gRPC data is verbatim: the bytes come back as they went, not JSON re-encoded.
    let got = c
        .invoke_binding("files", vec![], "get", Some(md.clone()))
        .await
        .unwrap();
    assert_eq!(got.data, vec![0, 159, 146, 150]);
    let listed = c
        .invoke_binding("files", vec![], "list", None)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&listed.data).contains("r.bin"));

    let meta = c.get_metadata().await.unwrap();
    assert_eq!(meta.id, "rust-sdk");
    let files = meta
        .registered_components
        .iter()
        .find(|c| c.name == "files")
        .expect("the binding is listed");
    assert_eq!(files.r#type, "bindings.localstorage");
    assert!(files.capabilities.contains(&"OUTPUT_BINDING".to_owned()));

    // Error paths.
    let err = c
        .invoke_binding("nope", vec![], "create", None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("couldn't find output binding nope"),
        "{err}"
    );
    let err = c
        .invoke_binding("files", vec![], "explode", None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("supported operations:create get list delete"),
        "{err}"
    );
    let missing = HashMap::from([("fileName".to_owned(), "absent".to_owned())]);
    let err = c
        .invoke_binding("files", vec![], "get", Some(missing))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("file not found"), "{err}");

    let mut wrong = client(&b, Some("wrong")).await;
    let err = wrong.get_metadata().await.unwrap_err();
    assert!(
        err.to_string().contains("Unauthenticated") || err.to_string().contains("Unauthorized"),
        "{err}"
    );
}
