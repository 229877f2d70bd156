//! Shared helpers for the mysql binding's tests: the machine's MariaDB on 127.0.0.1:3306
//! (root, empty password, database test) and building the binding on its traits.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bindery_core::{
    BindingError, BindingFactory, BindingHealth, ComponentContext, InvokeRequest, InvokeResponse,
    Metadata, OutputBinding,
};

/// The machine's MariaDB.
pub(crate) const ADDR: &str = "127.0.0.1:3306";
/// A go-sql-driver DSN for it, as Dapr users write them.
pub(crate) const DSN: &str = "root:@tcp(127.0.0.1:3306)/test";

pub(crate) fn port_open(addr: &str) -> bool {
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(200)).is_ok()
}

/// Fail (never skip) when MariaDB is down.
pub(crate) fn require_mysql() {
    assert!(
        port_open(ADDR),
        "MariaDB is not reachable on {ADDR}: start it with scripts/backends.sh"
    );
}

pub(crate) fn wait_port(addr: &str, open: bool, deadline: Duration) {
    let end = Instant::now() + deadline;
    while port_open(addr) != open {
        assert!(
            Instant::now() < end,
            "{addr} did not {} within {deadline:?}",
            if open { "open" } else { "close" }
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Build the output binding from `pairs` on its traits.
pub(crate) async fn try_build(
    pairs: &[(&str, &str)],
) -> Result<Box<dyn OutputBinding>, BindingError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let md = Metadata::from_pairs(pairs.iter().copied());
    let factory = bindery_binding_mysql::MySqlFactory;
    if let Err(e) = factory.validate(&md) {
        panic!("metadata refused: {e:?}");
    }
    factory
        .build_output(&ComponentContext {
            name: "mysql-test".into(),
            app_id: "test".into(),
            metadata: md,
            health: BindingHealth::default(),
        })
        .await
}

/// The binding on the machine's MariaDB, plus `extra` metadata.
pub(crate) async fn build(extra: &[(&str, &str)]) -> Box<dyn OutputBinding> {
    require_mysql();
    let mut pairs = vec![("url", DSN)];
    pairs.extend_from_slice(extra);
    try_build(&pairs).await.unwrap()
}

/// A request for `operation` with `sql` and, when given, `params` (JSON text).
pub(crate) fn req(operation: &str, sql: &str, params: Option<&str>) -> InvokeRequest {
    let mut metadata = HashMap::new();
    metadata.insert("sql".to_owned(), sql.to_owned());
    if let Some(p) = params {
        metadata.insert("params".to_owned(), p.to_owned());
    }
    InvokeRequest {
        operation: operation.into(),
        data: bytes::Bytes::new(),
        metadata,
    }
}

/// Run `exec` and return the response.
pub(crate) async fn exec(b: &dyn OutputBinding, sql: &str, params: Option<&str>) -> InvokeResponse {
    b.invoke(req("exec", sql, params))
        .await
        .unwrap_or_else(|e| panic!("exec {sql}: {e}"))
        .unwrap()
}

/// Run `query` and return the rows as JSON.
pub(crate) async fn query(
    b: &dyn OutputBinding,
    sql: &str,
    params: Option<&str>,
) -> serde_json::Value {
    let r = b
        .invoke(req("query", sql, params))
        .await
        .unwrap_or_else(|e| panic!("query {sql}: {e}"))
        .unwrap();
    serde_json::from_slice(&r.data).unwrap_or_else(|e| {
        panic!(
            "query {sql} answered invalid JSON ({e}): {}",
            String::from_utf8_lossy(&r.data)
        )
    })
}

/// A fresh table name.
pub(crate) fn table() -> String {
    format!("bindery_{}", uuid::Uuid::new_v4().simple())
}
