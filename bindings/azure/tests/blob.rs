//! `bindings.azure.blobstorage` against Azurite: black-box through the real `bindery` binary
//! (HTTP API and gRPC `InvokeBinding`), and on the binding's traits where the API's body limit
//! is in the way. Build the binary first (`cargo build -p bindery`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::HashMap;

use base64::Engine as _;
use bindery_binding_azure::BlobStorageFactory;
use bindery_binding_azure::rest::{DEV_ACCOUNT, DEV_KEY};
use bindery_core::{
    BindingFactory, BindingHealth, ComponentContext, ErrorKind, InvokeRequest, Metadata,
};
use common::{
    BLOB_ENDPOINT, blob_md, blob_url, component, grpc, grpc_request, header, raw_get,
    require_azurite, start, unique,
};
use serde_json::{Value, json};

const TYPE: &str = "bindings.azure.blobstorage";

fn file(container: &str, extra: &[(&str, &str)]) -> String {
    component("blob", TYPE, &blob_md(container, extra))
}

async fn json_body(resp: reqwest::Response) -> Value {
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `create` over HTTP with every property and custom metadata, read back directly and with
/// `get` + `includeMetadata`; `delete`; errors for a missing blob and missing names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_create_get_delete_with_properties_and_metadata() {
    require_azurite();
    let container = unique("http");
    let b = start("blob-http", &file(&container, &[]), None).await;

    let resp = b
        .invoke(
            "blob",
            json!({"operation": "create", "data": "hello blob", "metadata": {
                "blobName": "dir/one.txt",
                "ContentType": "text/plain",
                // MD5 of "hello blob".
                "ContentMD5": "d7BI/EKi9fb2czjYPjWmqw==",
                "ContentEncoding": "identity",
                "ContentLanguage": "en-us",
                "ContentDisposition": "attachment",
                "CacheControl": "no-cache",
                "Custom": "hello-world",
                "trace-id": "abc"
            }}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "metadata.blobName").as_deref(),
        Some("dir/one.txt")
    );
    let body = json_body(resp).await;
    assert_eq!(body["blobName"], "dir/one.txt");
    assert_eq!(
        body["blobURL"],
        format!("{BLOB_ENDPOINT}/{DEV_ACCOUNT}/{container}/dir/one.txt")
    );
    assert!(body.get("presignURL").is_none());

    // What Azurite stored.
    let (status, headers, data) = raw_get(blob_url(&container, "dir/one.txt")).await;
    assert_eq!(status, 200);
    assert_eq!(data, b"hello blob", "the JSON string was unquoted");
    let h = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(h("content-type").as_deref(), Some("text/plain"));
    assert_eq!(h("content-encoding").as_deref(), Some("identity"));
    assert_eq!(h("content-language").as_deref(), Some("en-us"));
    assert_eq!(h("content-disposition").as_deref(), Some("attachment"));
    assert_eq!(h("cache-control").as_deref(), Some("no-cache"));
    assert_eq!(h("x-ms-meta-custom").as_deref(), Some("hello-world"));
    assert_eq!(h("x-ms-meta-traceid").as_deref(), Some("abc"));
    assert!(h("x-ms-meta-blobname").is_none());

    // get, with and without the metadata.
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "get", "metadata": {"blobName": "dir/one.txt"}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, "metadata.Custom").is_none());
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"hello blob");
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "get", "metadata": {"blobName": "dir/one.txt", "includeMetadata": "true"}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "metadata.Custom").as_deref(),
        Some("hello-world")
    );
    assert_eq!(header(&resp, "metadata.Traceid").as_deref(), Some("abc"));

    // An object payload is stored as its JSON text.
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "create", "data": {"a": [1, 2]}, "metadata": {"blobName": "obj.json"}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        raw_get(blob_url(&container, "obj.json")).await.2,
        br#"{"a":[1,2]}"#
    );

    // delete, then get fails with Dapr's text.
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "delete", "metadata": {"blobName": "dir/one.txt"}}),
        )
        .await;
    assert_eq!(resp.status(), 204, "{:?}", resp.text().await);
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "get", "metadata": {"blobName": "dir/one.txt"}}),
        )
        .await;
    assert_eq!(resp.status(), 500);
    let err = json_body(resp).await;
    assert_eq!(err["errorCode"], "ERR_INVOKE_OUTPUT_BINDING");
    assert!(
        err["message"].as_str().unwrap().ends_with("blob not found"),
        "{err}"
    );
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "delete", "metadata": {"blobName": "dir/one.txt"}}),
        )
        .await;
    assert!(
        json_body(resp).await["message"]
            .as_str()
            .unwrap()
            .ends_with("blob not found")
    );

    // Missing names and bad options.
    for op in ["get", "delete"] {
        let resp = b.invoke("blob", json!({"operation": op})).await;
        assert_eq!(resp.status(), 500);
        assert!(
            json_body(resp).await["message"]
                .as_str()
                .unwrap()
                .ends_with("blobName is a required attribute")
        );
    }
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "delete", "metadata": {"blobName": "obj.json", "deleteSnapshots": "all"}}),
        )
        .await;
    assert!(
        json_body(resp).await["message"]
            .as_str()
            .unwrap()
            .contains("invalid delete snapshot option type: all; allowed: [include only]")
    );
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "create", "data": "x", "metadata": {"ContentMD5": "nope"}}),
        )
        .await;
    assert!(
        json_body(resp).await["message"]
            .as_str()
            .unwrap()
            .contains("Content MD5 is invalid")
    );
    // A wrong ContentMD5 is the service's refusal, with its own code.
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "create", "data": "x", "metadata": {
                "blobName": "bad-md5", "ContentMD5": "QVKQdpWURg4uSFkikE80XQ=="}}),
        )
        .await;
    assert_eq!(resp.status(), 500);
    let msg = json_body(resp).await["message"]
        .as_str()
        .unwrap()
        .to_owned();
    // Azure answers 400 Md5Mismatch, Azurite 400 InvalidOperation.
    assert!(
        msg.contains("400 ") && msg.to_lowercase().contains("md5"),
        "{msg}"
    );
    // deleteSnapshots=include works on a blob without snapshots.
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "delete", "metadata": {"blobName": "obj.json", "deleteSnapshots": "include"}}),
        )
        .await;
    assert_eq!(resp.status(), 204);
}

/// gRPC: binary data goes in and comes back byte for byte; response metadata and errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_round_trips_binary_data() {
    require_azurite();
    let container = unique("grpc");
    let b = start("blob-grpc", &file(&container, &[]), None).await;
    let mut c = grpc(b.grpc_port).await;
    let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let resp = c
        .invoke_binding(grpc_request(
            "blob",
            "create",
            &data,
            &[("blobName", "bin/data.bin"), ("Custom", "v")],
        ))
        .await
        .unwrap();
    let headers = resp.metadata().clone();
    let resp = resp.into_inner();
    assert_eq!(resp.metadata["blobName"], "bin/data.bin");
    assert_eq!(headers.get("metadata.blobname").unwrap(), "bin/data.bin");
    let body: Value = serde_json::from_slice(&resp.data).unwrap();
    assert_eq!(body["blobName"], "bin/data.bin");
    let got = c
        .invoke_binding(grpc_request(
            "blob",
            "get",
            b"",
            &[("blobName", "bin/data.bin"), ("includeMetadata", "true")],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.data, data);
    assert_eq!(got.metadata["Custom"], "v");
    // gRPC transport metadata does not become blob metadata.
    let (_, headers, _) = raw_get(blob_url(&container, "bin/data.bin")).await;
    assert!(headers.get("x-ms-meta-useragent").is_none(), "{headers:?}");
    assert!(headers.get("x-ms-meta-daprauthority").is_none());
    c.invoke_binding(grpc_request(
        "blob",
        "delete",
        b"",
        &[("blobName", "bin/data.bin")],
    ))
    .await
    .unwrap();
    let status = c
        .invoke_binding(grpc_request(
            "blob",
            "get",
            b"",
            &[("blobName", "bin/data.bin")],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal);
    assert!(status.message().ends_with("blob not found"), "{status:?}");
    // Without blobName, create picks a UUID.
    let resp = c
        .invoke_binding(grpc_request("blob", "create", b"anon", &[]))
        .await
        .unwrap()
        .into_inner();
    let name = resp.metadata["blobName"].clone();
    assert!(uuid::Uuid::parse_str(&name).is_ok(), "{name}");
    assert_eq!(raw_get(blob_url(&container, &name)).await.2, b"anon");
}

/// `list` pages with `maxResults`, continues from `marker`, filters by `prefix`, includes
/// metadata when asked; over HTTP and gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_prefixes_and_includes() {
    require_azurite();
    let container = unique("list");
    let b = start("blob-list", &file(&container, &[]), None).await;
    for i in 0..7 {
        let resp = b
            .invoke(
                "blob",
                json!({"operation": "create", "data": format!("item {i}"), "metadata": {"blobName": format!("p/{i}.txt"), "Index": i.to_string()}}),
            )
            .await;
        assert_eq!(resp.status(), 200);
    }
    b.invoke(
        "blob",
        json!({"operation": "create", "data": "other", "metadata": {"blobName": "q/x.txt"}}),
    )
    .await;

    let resp = b
        .invoke(
            "blob",
            json!({"operation": "list", "data": {"maxResults": 3, "prefix": "p/"}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let marker = header(&resp, "metadata.marker").unwrap();
    assert!(!marker.is_empty());
    assert_eq!(header(&resp, "metadata.number").as_deref(), Some("3"));
    assert_eq!(
        header(&resp, "metadata.pagesTraversed").as_deref(),
        Some("1")
    );
    let page = json_body(resp).await;
    let names: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["p/0.txt", "p/1.txt", "p/2.txt"]);
    let first = &page[0];
    assert_eq!(first["Properties"]["ContentLength"], 6);
    assert_eq!(first["Properties"]["BlobType"], "BlockBlob");
    assert!(
        first["Properties"]["LastModified"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(first["Metadata"], Value::Null);
    assert_eq!(first["Deleted"], Value::Null);

    let resp = b
        .invoke(
            "blob",
            json!({"operation": "list", "data": {"maxResults": 10, "prefix": "p/", "marker": marker, "include": {"metadata": true}}}),
        )
        .await;
    assert_eq!(header(&resp, "metadata.marker").as_deref(), Some(""));
    assert_eq!(header(&resp, "metadata.number").as_deref(), Some("4"));
    let rest = json_body(resp).await;
    let names: Vec<&str> = rest
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["p/3.txt", "p/4.txt", "p/5.txt", "p/6.txt"]);
    assert_eq!(rest[0]["Metadata"]["Index"], "3");

    // Everything, no payload at all: the default of 5000.
    let resp = b.invoke("blob", json!({"operation": "list"})).await;
    assert_eq!(header(&resp, "metadata.number").as_deref(), Some("8"));
    // gRPC, with the payload as bytes.
    let mut c = grpc(b.grpc_port).await;
    let resp = c
        .invoke_binding(grpc_request("blob", "list", br#"{"prefix":"q/"}"#, &[]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.metadata["number"], "1");
    assert_eq!(resp.metadata["pagesTraversed"], "1");
    let items: Value = serde_json::from_slice(&resp.data).unwrap();
    assert_eq!(items[0]["Name"], "q/x.txt");
    // A payload that is not a list request.
    let resp = b
        .invoke("blob", json!({"operation": "list", "data": [1, 2]}))
        .await;
    assert_eq!(resp.status(), 500);
}

/// `signTTL` on create and the `presign` operation give URLs that read the blob anonymously;
/// a tampered signature is refused by the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_read_the_blob() {
    require_azurite();
    let container = unique("sas");
    let b = start("blob-sas", &file(&container, &[]), None).await;
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "create", "data": "signed content", "metadata": {"blobName": "s/doc.txt", "signTTL": "15m"}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body = json_body(resp).await;
    let url = body["presignURL"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!(
            "{BLOB_ENDPOINT}/{DEV_ACCOUNT}/{container}/s/doc.txt?"
        )),
        "{url}"
    );
    let anon = reqwest::Client::new();
    let got = anon.get(&url).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.text().await.unwrap(), "signed content");
    let tampered = url.replace("sp=r", "sp=rw");
    assert_eq!(anon.get(&tampered).send().await.unwrap().status(), 403);
    // Without a SAS the private blob is not readable.
    assert_ne!(
        anon.get(url.split('?').next().unwrap())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let resp = b
        .invoke(
            "blob",
            json!({"operation": "presign", "metadata": {"blobName": "s/doc.txt", "signTTL": "60"}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let url = json_body(resp).await["presignURL"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        anon.get(&url).send().await.unwrap().text().await.unwrap(),
        "signed content"
    );
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "presign", "metadata": {"blobName": "s/doc.txt"}}),
        )
        .await;
    assert_eq!(resp.status(), 500);
}

/// `decodeBase64`, `publicAccessLevel` and the container created at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_base64_and_public_access() {
    require_azurite();
    let container = unique("pub");
    let b = start(
        "blob-b64",
        &file(
            &container,
            &[("decodeBase64", "true"), ("publicAccessLevel", "blob")],
        ),
        None,
    )
    .await;
    let raw = [0u8, 159, 146, 150, 255];
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "create", "data": base64::engine::general_purpose::STANDARD.encode(raw), "metadata": {"blobName": "b.bin"}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    // Anonymous read works: the container was created with blob-level public access.
    let got = reqwest::get(blob_url(&container, "b.bin")).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), raw);
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "create", "data": "not base64!", "metadata": {"blobName": "c"}}),
        )
        .await;
    assert_eq!(resp.status(), 500);
    assert!(
        json_body(resp).await["message"]
            .as_str()
            .unwrap()
            .contains("not valid base64")
    );
}

/// `bulkCreate`, `bulkGet` (inline and into files) and `bulkDelete` (by name and prefix).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_operations() {
    require_azurite();
    let container = unique("bulk");
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.txt");
    std::fs::write(&source, "from a file").unwrap();
    let b = start("blob-bulk", &file(&container, &[]), None).await;
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "bulkCreate", "data": {"items": [
                {"blobName": "bulk/a.txt", "data": "alpha", "contentType": "text/plain"},
                {"blobName": "bulk/b.txt", "sourcePath": source.to_str().unwrap()},
                {"blobName": "bulk/c.txt", "sourcePath": "/nonexistent/file"}
            ], "concurrency": 2}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "metadata.number").as_deref(), Some("3"));
    let results = json_body(resp).await;
    assert_eq!(results[0]["blobName"], "bulk/a.txt");
    assert!(
        results[0]["blobURL"]
            .as_str()
            .unwrap()
            .ends_with("/bulk/a.txt")
    );
    assert!(results[0].get("error").is_none());
    assert!(
        results[2]["error"]
            .as_str()
            .unwrap()
            .contains("error opening source file"),
        "{results}"
    );
    let (_, h, data) = raw_get(blob_url(&container, "bulk/a.txt")).await;
    assert_eq!(data, b"alpha");
    assert_eq!(h["content-type"], "text/plain");

    let out = dir.path().join("out");
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "bulkGet", "data": {
                "items": [{"blobName": "bulk/a.txt"}, {"blobName": "missing"}],
                "prefix": "bulk/", "destinationDir": out.to_str().unwrap()}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let results = json_body(resp).await;
    let arr = results.as_array().unwrap();
    assert_eq!(arr.len(), 3, "{results}");
    assert_eq!(
        arr[0]["data"],
        base64::engine::general_purpose::STANDARD.encode("alpha")
    );
    assert_eq!(arr[1]["error"], "blob not found");
    assert_eq!(arr[2]["blobName"], "bulk/b.txt");
    assert_eq!(
        std::fs::read_to_string(out.join("bulk/b.txt")).unwrap(),
        "from a file"
    );

    let resp = b
        .invoke(
            "blob",
            json!({"operation": "bulkDelete", "data": {"blobNames": ["nope"], "prefix": "bulk/"}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let results = json_body(resp).await;
    assert_eq!(results.as_array().unwrap().len(), 3, "{results}");
    assert_eq!(results[0]["error"], "blob not found");
    assert!(results[1].get("error").is_none());
    assert_eq!(raw_get(blob_url(&container, "bulk/a.txt")).await.0, 404);
    let resp = b
        .invoke("blob", json!({"operation": "bulkDelete", "data": {}}))
        .await;
    assert!(
        json_body(resp).await["message"]
            .as_str()
            .unwrap()
            .contains("at least one of prefix or blobNames is required")
    );
}

/// `get` with `filePath` streams the blob into a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_streams_into_a_file() {
    require_azurite();
    let container = unique("file");
    let dir = tempfile::tempdir().unwrap();
    let b = start("blob-file", &file(&container, &[]), None).await;
    b.invoke(
        "blob",
        json!({"operation": "create", "data": "to disk", "metadata": {"blobName": "f.txt"}}),
    )
    .await;
    let target = dir.path().join("nested/f.txt");
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "get", "metadata": {"blobName": "f.txt", "filePath": target.to_str().unwrap()}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "metadata.filePath").as_deref(),
        target.to_str()
    );
    assert!(resp.bytes().await.unwrap().is_empty());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "to disk");
    let missing = dir.path().join("missing.txt");
    let resp = b
        .invoke(
            "blob",
            json!({"operation": "get", "metadata": {"blobName": "nope", "filePath": missing.to_str().unwrap()}}),
        )
        .await;
    assert_eq!(resp.status(), 500);
    assert!(!missing.exists(), "a partial file was left behind");
}

fn ctx(md: &[(&str, &str)]) -> ComponentContext {
    common::crypto();
    ComponentContext {
        name: "blob".into(),
        app_id: "t".into(),
        metadata: Metadata::from_pairs(md.iter().copied()),
        health: BindingHealth::default(),
    }
}

fn call(op: &str, data: impl Into<bytes::Bytes>, md: &[(&str, &str)]) -> InvokeRequest {
    InvokeRequest {
        operation: op.into(),
        data: data.into(),
        metadata: md
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<HashMap<_, _>>(),
    }
}

/// A blob larger than one request is uploaded in blocks and reads back identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_blobs_go_up_in_blocks() {
    require_azurite();
    let container = unique("big");
    let out = BlobStorageFactory
        .build_output(&ctx(&blob_md(&container, &[])))
        .await
        .unwrap();
    let data: Vec<u8> = (0..(10 * 1024 * 1024 + 123))
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    out.invoke(call(
        "create",
        data.clone(),
        &[
            ("blobName", "big.bin"),
            ("ContentType", "application/octet-stream"),
            ("Custom", "big"),
        ],
    ))
    .await
    .unwrap();
    let mut list_url = blob_url(&container, "big.bin");
    list_url.set_query(Some("comp=blocklist"));
    let (status, _, xml) = raw_get(list_url).await;
    assert_eq!(status, 200);
    let blocks = String::from_utf8(xml).unwrap().matches("<Block>").count();
    assert_eq!(blocks, 3, "10 MiB in 4 MiB blocks");
    let got = out
        .invoke(call(
            "get",
            bytes::Bytes::new(),
            &[("blobName", "big.bin"), ("includeMetadata", "true")],
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.data.len(), data.len());
    assert!(got.data == data, "the data differs");
    assert_eq!(got.metadata["Custom"], "big");
    assert_eq!(
        got.content_type.as_deref(),
        Some("application/octet-stream")
    );
}

/// A service that is down: `unavailable` naming host:port; the key never shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_is_down_is_named() {
    let port = bindery_test_support::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let md = blob_md("box", &[("endpoint", &endpoint), ("retryCount", "1")]);
    // With entity management the build reaches for the service: unavailable, retried by the
    // runtime in the background.
    let err = match BlobStorageFactory.build_output(&ctx(&md)).await {
        Err(e) => e,
        Ok(_) => panic!("built against a closed port"),
    };
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    // Without it the build does no I/O and the call fails.
    let md = blob_md(
        "box",
        &[
            ("endpoint", &endpoint),
            ("retryCount", "0"),
            ("disableEntityManagement", "true"),
        ],
    );
    let c = ctx(&md);
    let out = BlobStorageFactory.build_output(&c).await.unwrap();
    let err = out.invoke(call("create", "x", &[])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "Azure Blob Storage at 127.0.0.1:{port} is unavailable"
        )),
        "{text}"
    );
    assert!(!text.contains(DEV_KEY));
    assert!(!c.health.snapshot().connected);

    // Through the binary: HTTP 500 naming the address; the key is in no answer and no log.
    let b = start("blob-down", &component("blob", TYPE, &md), None).await;
    let resp = b
        .invoke("blob", json!({"operation": "create", "data": "x"}))
        .await;
    assert_eq!(resp.status(), 500);
    let text = resp.text().await.unwrap();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains(DEV_KEY));
    assert!(!b.logs().contains(DEV_KEY));
    assert!(!b.logs().contains(&DEV_KEY[..20]));
}

/// A wrong key: the service's refusal (403 AuthenticationFailed) stops the component from
/// loading; the key is not in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_refused_without_showing_it() {
    require_azurite();
    let container = unique("auth");
    let wrong =
        base64::engine::general_purpose::STANDARD.encode(b"this-is-not-the-right-key-0123456789");
    let c = ctx(&blob_md(&container, &[("accountKey", &wrong)]));
    let err = match BlobStorageFactory.build_output(&c).await {
        Err(e) => e,
        Ok(_) => panic!("built with a wrong key"),
    };
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    // Azure answers 403 AuthenticationFailed, Azurite 403 AuthorizationFailure.
    assert!(err.to_string().contains("403 Auth"), "{err}");
    assert!(!err.to_string().contains(&wrong));

    let mut b = bindery_test_support::Bindery::builder("blob-auth")
        .file(
            "azure.yaml",
            &component(
                "blob",
                TYPE,
                &blob_md(&container, &[("accountKey", &wrong)]),
            ),
        )
        .no_wait()
        .start()
        .await;
    let status = b.wait_exit(std::time::Duration::from_secs(30)).await;
    assert!(!status.success());
    let logs = b.logs();
    assert!(logs.contains("403 Auth"), "{logs}");
    assert!(!logs.contains(&wrong), "the key is in the log");
}
