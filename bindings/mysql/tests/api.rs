//! `bindings.mysql` through the real `bindery` binary, over the Dapr HTTP API and gRPC
//! `InvokeBinding`, as an app uses it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use bindery_test_support::Bindery;
use common::*;
use dapr::dapr::proto::runtime::v1 as pb;
use serde_json::{Value, json};

const URL_VAR: &str = "BINDERY_MYSQL_TEST_URL";
const DOWN_URL_VAR: &str = "BINDERY_MYSQL_TEST_DOWN_URL";

/// A component whose `url` comes from the environment secret store.
fn component(name: &str, var: &str, extra: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: bindings.mysql\n  version: v1\n  metadata:\n  - name: url\n    secretKeyRef:\n      name: {var}\n      key: {var}\n{extra}auth:\n  secretStore: envstore\n"
    )
}

const ENV_STORE: &str = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: envstore\nspec:\n  type: secretstores.local.env\n  version: v1\n  metadata: []\n";

async fn start(secret: &str) -> Bindery {
    require_mysql();
    let _ = rustls::crypto::ring::default_provider().install_default();
    Bindery::builder("mysql-api")
        .file("store.yaml", ENV_STORE)
        .file(
            "db.yaml",
            &component(
                "db",
                URL_VAR,
                "  - name: maxOpenConns\n    value: \"4\"\n  - name: connMaxIdleTime\n    value: \"1m\"\n",
            ),
        )
        .file("down.yaml", &component("dbdown", DOWN_URL_VAR, ""))
        .env(URL_VAR, DSN)
        // Nothing listens on port 1: this one never connects.
        .env(
            DOWN_URL_VAR,
            &format!("root:{secret}@tcp(127.0.0.1:1)/test?timeout=1s"),
        )
        .start()
        .await
}

fn header(r: &reqwest::Response, key: &str) -> String {
    r.headers()
        .get(format!("metadata.{key}"))
        .unwrap_or_else(|| panic!("no metadata.{key} header in {:?}", r.headers()))
        .to_str()
        .unwrap()
        .to_owned()
}

async fn error_message(r: reqwest::Response) -> String {
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "ERR_INVOKE_OUTPUT_BINDING", "{body}");
    body["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_operation_over_http() {
    let secret = format!("pw{}", uuid::Uuid::new_v4().simple());
    let b = start(&secret).await;
    let t = table();

    let create =
        format!("CREATE TABLE {t} (id int primary key, name varchar(20), doc json, at datetime)");
    let r = b
        .invoke(
            "db",
            json!({"operation": "exec", "metadata": {"sql": create}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "operation"), "exec");
    assert_eq!(header(&r, "sql"), create);
    assert_eq!(header(&r, "rows-affected"), "0");
    for key in ["start-time", "end-time", "duration"] {
        assert!(!header(&r, key).is_empty());
    }
    assert!(header(&r, "end-time").ends_with('Z'));
    assert!(r.bytes().await.unwrap().is_empty());

    let insert = format!("INSERT INTO {t} VALUES (?, ?, ?, ?), (?, ?, ?, ?)");
    let params =
        json!([1, "one", {"k": [1, 2]}, "2024-05-01 10:00:00", 2, null, null, null]).to_string();
    let r = b
        .invoke(
            "db",
            json!({"operation": "exec", "metadata": {"sql": insert, "params": params}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "rows-affected"), "2");

    let select = format!("SELECT id, name, doc, at FROM {t} WHERE id >= ? ORDER BY id");
    let r = b
        .invoke(
            "db",
            json!({"operation": "query", "metadata": {"sql": select, "params": "[1]"}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "operation"), "query");
    assert_eq!(header(&r, "sql"), select);
    assert!(r.headers().get("metadata.rows-affected").is_none());
    assert_eq!(
        r.headers().get("content-type").unwrap().to_str().unwrap(),
        "application/json"
    );
    let rows: Value = r.json().await.unwrap();
    assert_eq!(
        rows,
        json!([
            {"id": 1, "name": "one", "doc": "{\"k\":[1,2]}", "at": "2024-05-01T10:00:00Z"},
            {"id": 2}
        ])
    );

    // No rows: `null`.
    let r = b
        .invoke(
            "db",
            json!({"operation": "query", "metadata": {"sql": format!("SELECT * FROM {t} WHERE id < 0")}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"null");

    // Errors come back with MySQL's code, SQLSTATE and message.
    let missing = table();
    let r = b
        .invoke(
            "db",
            json!({"operation": "query", "metadata": {"sql": format!("SELECT * FROM {missing}")}}),
        )
        .await;
    let m = error_message(r).await;
    assert!(
        m.ends_with(&format!(
            "error executing query: Error 1146 (42S02): Table 'test.{missing}' doesn't exist"
        )),
        "{m}"
    );
    let r = b
        .invoke(
            "db",
            json!({"operation": "exec", "metadata": {"sql": "CREATE TABLEX"}}),
        )
        .await;
    assert!(error_message(r).await.contains("Error 1064 (42000)"));
    let r = b.invoke("db", json!({"operation": "exec"})).await;
    assert!(
        error_message(r)
            .await
            .ends_with("required metadata not set: sql")
    );
    let r = b
        .invoke(
            "db",
            json!({"operation": "query", "metadata": {"sql": "SELECT ?", "params": "7"}}),
        )
        .await;
    assert!(
        error_message(r)
            .await
            .contains("invalid metadata property params: failed to unserialize into an array")
    );
    let r = b
        .invoke(
            "db",
            json!({"operation": "get", "metadata": {"sql": "SELECT 1"}}),
        )
        .await;
    assert!(
        error_message(r)
            .await
            .contains("supported operations:exec query close")
    );

    // The binding that never connected fails, without its password.
    let r = b
        .invoke(
            "dbdown",
            json!({"operation": "query", "metadata": {"sql": "SELECT 1"}}),
        )
        .await;
    let m = error_message(r).await;
    assert!(m.contains("mysql at 127.0.0.1:1 is unavailable"), "{m}");
    assert!(!m.contains(&secret), "{m}");

    let r = b
        .invoke(
            "db",
            json!({"operation": "exec", "metadata": {"sql": format!("DROP TABLE {t}")}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    // close: 204, then "component is closed".
    let r = b.invoke("db", json!({"operation": "close"})).await;
    assert_eq!(r.status(), 204);
    let r = b
        .invoke(
            "db",
            json!({"operation": "query", "metadata": {"sql": "SELECT 1"}}),
        )
        .await;
    assert!(error_message(r).await.ends_with("component is closed"));

    // The DSN shows neither in /v1.0/metadata nor in the log.
    let md = b
        .client()
        .get(b.url("/v1.0/metadata"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(md.contains("bindings.mysql"), "{md}");
    assert!(!md.contains(&secret), "{md}");
    let logs = b.logs();
    assert!(
        !logs.contains(&secret),
        "the password is in the log:\n{logs}"
    );
    assert!(logs.contains("127.0.0.1:1"), "{logs}");
}

fn request(
    name: &str,
    operation: &str,
    sql: &str,
    params: Option<&str>,
) -> pb::InvokeBindingRequest {
    let mut metadata = HashMap::new();
    if !sql.is_empty() {
        metadata.insert("sql".to_owned(), sql.to_owned());
    }
    if let Some(p) = params {
        metadata.insert("params".to_owned(), p.to_owned());
    }
    pb::InvokeBindingRequest {
        name: name.into(),
        data: Vec::new(),
        metadata,
        operation: operation.into(),
    }
}

#[tokio::test]
async fn every_operation_over_grpc() {
    let b = start("unused").await;
    let mut c = pb::dapr_client::DaprClient::connect(format!("http://127.0.0.1:{}", b.grpc_port))
        .await
        .unwrap();
    let t = table();
    let r = c
        .invoke_binding(request(
            "db",
            "exec",
            &format!(
                "CREATE TABLE {t} (id bigint unsigned, amount decimal(12,2), raw varbinary(8))"
            ),
            None,
        ))
        .await
        .unwrap();
    let headers = r.metadata().clone();
    let r = r.into_inner();
    assert!(r.data.is_empty());
    assert_eq!(r.metadata["rows-affected"], "0");
    assert_eq!(r.metadata["operation"], "exec");
    for key in ["sql", "start-time", "end-time", "duration"] {
        assert!(r.metadata.contains_key(key), "{key}: {:?}", r.metadata);
    }
    assert_eq!(headers.get("metadata.rows-affected").unwrap(), "0");

    let r = c
        .invoke_binding(request(
            "db",
            "exec",
            &format!("INSERT INTO {t} VALUES (?, ?, UNHEX(?))"),
            Some(r#"[18446744073709551615, "1234567890.12", "cafe"]"#),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.metadata["rows-affected"], "1");
    let r = c
        .invoke_binding(request("db", "query", &format!("SELECT * FROM {t}"), None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.metadata["operation"], "query");
    assert_eq!(
        String::from_utf8(r.data).unwrap(),
        r#"[{"id":18446744073709551615,"amount":"1234567890.12","raw":"yv4="}]"#
    );
    let e = c
        .invoke_binding(request("db", "query", "SELECT * FROM nowhere_at_all", None))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Internal);
    assert!(
        e.message().contains("Error 1146 (42S02)"),
        "{}",
        e.message()
    );
    c.invoke_binding(request("db", "exec", &format!("DROP TABLE {t}"), None))
        .await
        .unwrap();
    let r = c
        .invoke_binding(request("db", "close", "", None))
        .await
        .unwrap()
        .into_inner();
    assert!(r.data.is_empty());
    let e = c
        .invoke_binding(request("db", "query", "SELECT 1", None))
        .await
        .unwrap_err();
    assert!(
        e.message().ends_with("component is closed"),
        "{}",
        e.message()
    );
}
