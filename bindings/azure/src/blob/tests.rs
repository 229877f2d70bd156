#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use bindery_core::{BindingFactory, ErrorKind};

use super::ops::{
    blob_headers, go_canonical, metadata_from_headers, parse_delete_snapshots, parse_sign_ttl,
};
use super::{BlobStorageFactory, OPERATIONS, check_blob_name, req_md};

fn md(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn properties_and_metadata_are_split_as_dapr_does() {
    let h = blob_headers(&md(&[
        ("blobName", "x"),
        ("ContentType", "text/plain"),
        ("contentmd5", "vZGKbMRDAnMs4BIwlXaRvQ=="),
        ("ContentEncoding", "gzip"),
        ("ContentLanguage", "en-us"),
        ("ContentDisposition", "attachment"),
        ("CacheControl", "no-cache"),
        ("Custom", "hello"),
        ("my-key_1", "v\u{e9}\u{0}al"),
        ("signTTL", "5m"),
        ("user-agent", "grpc-go"),
        ("dapr-authority", "127.0.0.1"),
        ("dapr-grpc-accept-encoding", "gzip"),
        ("traceparent", "00-x"),
        ("empty", ""),
        ("---", "dropped"),
    ]))
    .unwrap();
    assert_eq!(
        h.properties,
        [
            ("x-ms-blob-cache-control", "no-cache".to_owned()),
            ("x-ms-blob-content-disposition", "attachment".to_owned()),
            ("x-ms-blob-content-encoding", "gzip".to_owned()),
            ("x-ms-blob-content-language", "en-us".to_owned()),
            (
                "x-ms-blob-content-md5",
                "vZGKbMRDAnMs4BIwlXaRvQ==".to_owned()
            ),
            ("x-ms-blob-content-type", "text/plain".to_owned()),
        ]
    );
    assert_eq!(h.content_md5.as_deref(), Some("vZGKbMRDAnMs4BIwlXaRvQ=="));
    let meta: Vec<(&str, &str)> = h
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(meta, [("Custom", "hello"), ("mykey1", "val")]);
}

#[test]
fn bad_md5_and_line_breaks_are_refused() {
    let e = blob_headers(&md(&[("ContentMD5", "bm90LW1kNQ==")])).unwrap_err();
    assert_eq!(
        e.message(),
        "the MD5 value specified in Content MD5 is invalid, MD5 value must be 128 bits and base64 encoded"
    );
    let e = blob_headers(&md(&[("note", "a\r\nx-ms-meta-evil: 1")])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(e.message().contains("line break"), "{e}");
    let e = blob_headers(&md(&[("CacheControl", "a\nb")])).unwrap_err();
    assert!(e.message().contains("line break"));
}

#[test]
fn blob_names() {
    for ok in [
        "a",
        "a/b/c.txt",
        "with space",
        "ünï",
        "a//b",
        &"x".repeat(1024),
    ] {
        assert!(check_blob_name(ok).is_ok(), "{ok}");
    }
    for bad in ["", "a/../b", "./a", "..", "a/.", &"x".repeat(1025)] {
        assert!(check_blob_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn request_metadata_helpers() {
    let m = md(&[("BlobName", "x"), ("empty", "")]);
    assert_eq!(req_md(&m, "blobName"), Some("x"));
    assert_eq!(req_md(&m, "empty"), None);
    assert_eq!(parse_delete_snapshots("include").unwrap(), "include");
    assert_eq!(parse_delete_snapshots("only").unwrap(), "only");
    assert_eq!(
        parse_delete_snapshots("all").unwrap_err().message(),
        "invalid delete snapshot option type: all; allowed: [include only]"
    );
    assert_eq!(parse_sign_ttl("15m").unwrap().as_secs(), 900);
    assert_eq!(parse_sign_ttl("60").unwrap().as_secs(), 60);
    assert!(parse_sign_ttl("0").is_err());
    assert!(parse_sign_ttl("soon").is_err());
}

#[test]
fn metadata_names_come_back_as_go_reports_them() {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("x-ms-meta-custom", "hello".parse().unwrap());
    h.insert("x-ms-meta-mykey1", "v".parse().unwrap());
    h.insert("content-type", "text/plain".parse().unwrap());
    let m = metadata_from_headers(&h);
    assert_eq!(m.len(), 2);
    assert_eq!(m["Custom"], "hello");
    assert_eq!(m["Mykey1"], "v");
    assert_eq!(go_canonical("ABC"), "Abc");
}

#[test]
fn the_spec_lists_every_field_and_operation() {
    let spec = BlobStorageFactory.spec();
    assert_eq!(spec.type_name, "bindings.azure.blobstorage");
    assert_eq!(spec.operations, OPERATIONS);
    for f in [
        "accountName",
        "storageAccount",
        "storageAccountName",
        "accountKey",
        "accessKey",
        "storageAccessKey",
        "storageAccountKey",
        "connectionString",
        "containerName",
        "container",
        "storageAccountContainer",
        "endpoint",
        "publicAccessLevel",
        "decodeBase64",
        "retryCount",
        "getBlobRetryCount",
        "disableEntityManagement",
        "azureEnvironment",
        "azureClientSecret",
    ] {
        assert!(spec.field(f).is_some(), "{f}");
    }
    for s in [
        "accountKey",
        "storageAccessKey",
        "connectionString",
        "azureClientSecret",
    ] {
        assert!(spec.is_sensitive(s), "{s}");
    }
    assert_eq!(spec.field("retryCount").unwrap().default, Some("3"));
    assert_eq!(
        spec.field("publicAccessLevel").unwrap().default,
        Some("none")
    );
}
