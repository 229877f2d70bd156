//! The mysql binding on its traits against the machine's MariaDB: Dapr's conformance steps,
//! every operation, the type mapping on both protocols, parameters, errors and timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use bindery_core::{ErrorKind, Metadata};
use bindery_test_support::conformance::{self, Conformance};
use common::*;
use serde_json::json;

#[tokio::test]
async fn conformance_suite() {
    require_mysql();
    let mut c = Conformance::new("mysql-conformance", Metadata::from_pairs([("url", DSN)]));
    c.operations = vec!["exec", "query", "close"];
    conformance::run(&bindery_binding_mysql::MySqlFactory, c).await;
}

#[tokio::test]
async fn exec_and_query_answer_dapr_shapes() {
    let b = build(&[]).await;
    let t = table();
    let create = format!("CREATE TABLE {t} (id int primary key, name varchar(20))");
    let r = exec(&*b, &create, None).await;
    assert!(r.data.is_empty(), "exec answers no data");
    assert_eq!(r.metadata["rows-affected"], "0");
    assert_eq!(r.metadata["operation"], "exec");
    assert_eq!(r.metadata["sql"], create);
    for key in ["start-time", "end-time"] {
        let v = &r.metadata[key];
        assert!(
            v.ends_with('Z') && v.len() >= 20 && &v[10..11] == "T",
            "{key}: {v}"
        );
    }
    assert!(r.metadata["start-time"] <= r.metadata["end-time"]);
    let d = &r.metadata["duration"];
    assert!(
        ["ns", "µs", "ms", "s"].iter().any(|u| d.ends_with(u)),
        "duration: {d}"
    );

    let insert = format!("INSERT INTO {t} (id, name) VALUES (?, ?), (?, ?), (?, ?)");
    let r = exec(&*b, &insert, Some(r#"[1, "one", 2, "two", 3, null]"#)).await;
    assert_eq!(r.metadata["rows-affected"], "3");
    let r = exec(
        &*b,
        &format!("UPDATE {t} SET name = ? WHERE id > ?"),
        Some(r#"["many", 1]"#),
    )
    .await;
    assert_eq!(r.metadata["rows-affected"], "2");

    // Objects keyed by column name; NULL columns left out.
    let select = format!("SELECT id, name FROM {t} WHERE id >= ? ORDER BY id");
    let r = b
        .invoke(req("query", &select, Some("[1]")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.data).unwrap(),
        json!([{"id": 1, "name": "one"}, {"id": 2, "name": "many"}, {"id": 3, "name": "many"}])
    );
    assert_eq!(r.metadata["operation"], "query");
    assert_eq!(r.metadata["sql"], select);
    assert!(!r.metadata.contains_key("rows-affected"));
    for key in ["start-time", "end-time", "duration"] {
        assert!(
            r.metadata.contains_key(key),
            "{key} missing: {:?}",
            r.metadata
        );
    }
    exec(
        &*b,
        &format!("UPDATE {t} SET name = NULL WHERE id = 3"),
        None,
    )
    .await;
    assert_eq!(
        query(&*b, &format!("SELECT id, name FROM {t} WHERE id = 3"), None).await,
        json!([{"id": 3}])
    );

    // No rows: `null`, Dapr's shape (not `[]`).
    for (sql, params) in [
        (format!("SELECT * FROM {t} WHERE id < 0"), None),
        (format!("SELECT * FROM {t} WHERE id < ?"), Some("[-1]")),
    ] {
        let r = b.invoke(req("query", &sql, params)).await.unwrap().unwrap();
        assert_eq!(r.data.as_ref(), b"null");
    }

    // Several statements without params; the last one's count.
    let r = exec(
        &*b,
        &format!("INSERT INTO {t} VALUES (10, 'x'); DELETE FROM {t} WHERE id >= 2;"),
        None,
    )
    .await;
    assert_eq!(r.metadata["rows-affected"], "3");
    // A query with several statements answers the first result set.
    assert_eq!(
        query(&*b, &format!("SELECT id FROM {t}; SELECT 2 AS other"), None).await,
        json!([{"id": 1}])
    );
    exec(&*b, &format!("DROP TABLE {t}"), None).await;
}

const TYPES_TABLE: &str = "(
    ti TINYINT, b BOOL, si SMALLINT, mi MEDIUMINT, i INT, bi BIGINT, ubi BIGINT UNSIGNED,
    d DECIMAL(30,10), f FLOAT, db DOUBLE, bt BIT(10), b1 BIT(1),
    c CHAR(3), vc VARCHAR(20), tx TEXT, mt MEDIUMTEXT, e ENUM('x','y'), st SET('a','b','c'),
    bin BINARY(3), vb VARBINARY(10), bl BLOB,
    j JSON, dt DATE, dtm DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME, tm3 TIME(3), y YEAR,
    n INT)";

const TYPES_ROW: &str = "(-128, true, -32768, 8388607, 2147483647, -9223372036854775808,
    18446744073709551615, '12345678901234567890.0123456789', 1.5, 0.1, b'1010101010', b'1',
    'ab', 'héllo \"q\"', 'text', 'medium', 'y', 'a,c',
    x'00ff41', x'0102', x'deadbeef',
    '{\"a\": [1, 2.5, null]}', '2024-02-29', '2024-05-01 12:30:45.123400',
    '2024-05-01 10:00:00.500', '-838:59:59', '12:00:00.5', 2024, NULL)";

#[tokio::test]
async fn column_types_map_to_json_on_both_protocols() {
    let b = build(&[]).await;
    let t = table();
    exec(&*b, &format!("CREATE TABLE {t} {TYPES_TABLE}"), None).await;
    exec(&*b, &format!("INSERT INTO {t} VALUES {TYPES_ROW}"), None).await;
    let expected = json!([{
        "ti": -128, "b": 1, "si": -32768, "mi": 8388607, "i": 2147483647,
        "bi": -9223372036854775808i64, "ubi": 18446744073709551615u64,
        "d": "12345678901234567890.0123456789", "f": 1.5, "db": 0.1, "bt": 682, "b1": 1,
        "c": "ab", "vc": "héllo \"q\"", "tx": "text", "mt": "medium", "e": "y", "st": "a,c",
        "bin": "AP9B", "vb": "AQI=", "bl": "3q2+7w==",
        // MariaDB's JSON is a LONGTEXT: the JSON text as a string.
        "j": "{\"a\": [1, 2.5, null]}",
        "dt": "2024-02-29", "dtm": "2024-05-01T12:30:45.1234Z", "ts": "2024-05-01T10:00:00.5Z",
        "tm": "-838:59:59", "tm3": "12:00:00.500", "y": 2024
    }]);
    // Text protocol (no params) and binary protocol (a prepared statement) agree.
    assert_eq!(
        query(&*b, &format!("SELECT * FROM {t}"), None).await,
        expected
    );
    assert_eq!(
        query(&*b, &format!("SELECT * FROM {t} WHERE 1 = ?"), Some("[1]")).await,
        expected
    );
    // Big integers keep every digit in the JSON text.
    let r = b
        .invoke(req("query", &format!("SELECT ubi FROM {t}"), None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.data.as_ref(), br#"[{"ubi":18446744073709551615}]"#);
    // Expressions, zero dates and JSON functions.
    let rows = query(
        &*b,
        "SELECT 1 AS one, NULL AS nothing, CAST(1.50 AS DECIMAL(5,2)) AS dec2, 2.5e0 AS dbl,
                CAST('0000-00-00' AS DATE) AS zero, JSON_OBJECT('k', 1) AS obj, 'x' AS x",
        None,
    )
    .await;
    assert_eq!(
        rows,
        json!([{"one": 1, "dec2": "1.50", "dbl": 2.5, "zero": "0000-00-00", "obj": "{\"k\": 1}", "x": "x"}])
    );
    exec(&*b, &format!("DROP TABLE {t}"), None).await;
}

#[tokio::test]
async fn params_bind_as_values() {
    let b = build(&[]).await;
    let t = table();
    exec(
        &*b,
        &format!(
            "CREATE TABLE {t} (i BIGINT, u BIGINT UNSIGNED, d DECIMAL(30,10), f DOUBLE, ok BOOL,
                               j JSON, dt DATE, at DATETIME(3), note TEXT, raw BLOB)"
        ),
        None,
    )
    .await;
    let insert = format!("INSERT INTO {t} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, UNHEX(?))");
    exec(
        &*b,
        &insert,
        Some(
            r#"[-42, 18446744073709551615, 12345678901234567890.0123456789, 2.5, true,
                {"k": [1, "two"]}, "2024-05-01", "2024-05-01 12:00:00.250", null, "00ff"]"#,
        ),
    )
    .await;
    exec(
        &*b,
        &insert,
        Some(r#"["7", 1, "0.1", 1e3, false, [1, 2], null, null, "z", null]"#),
    )
    .await;
    let rows = query(&*b, &format!("SELECT * FROM {t} ORDER BY i"), None).await;
    assert_eq!(
        rows,
        json!([
            {"i": -42, "u": 18446744073709551615u64, "d": "12345678901234567890.0123456789",
             "f": 2.5, "ok": 1, "j": "{\"k\": [1, \"two\"]}", "dt": "2024-05-01",
             "at": "2024-05-01T12:00:00.25Z", "raw": "AP8="},
            {"i": 7, "u": 1, "d": "0.1000000000", "f": 1000.0, "ok": 0, "j": "[1, 2]", "note": "z"}
        ])
    );
    let rows = query(
        &*b,
        &format!("SELECT note FROM {t} WHERE i = ? AND ok = ?"),
        Some("[7, false]"),
    )
    .await;
    assert_eq!(rows, json!([{"note": "z"}]));

    // Too few parameters.
    let e = b
        .invoke(req("exec", &insert, Some("[1]")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(
        e.message()
            .contains("takes 10 parameter(s) but params holds 1"),
        "{e}"
    );
    exec(&*b, &format!("DROP TABLE {t}"), None).await;
}

#[tokio::test]
async fn params_stay_data() {
    let b = build(&[]).await;
    let t = table();
    exec(&*b, &format!("CREATE TABLE {t} (id int, name text)"), None).await;
    let attack = format!("x'); DROP TABLE {t}; --");
    let params = serde_json::to_string(&json!([1, attack])).unwrap();
    exec(
        &*b,
        &format!("INSERT INTO {t} VALUES (?, ?)"),
        Some(&params),
    )
    .await;
    let params = serde_json::to_string(&json!(["' OR '1'='1"])).unwrap();
    let rows = query(
        &*b,
        &format!("SELECT id FROM {t} WHERE name = ?"),
        Some(&params),
    )
    .await;
    assert_eq!(rows, json!(null), "the condition was not injected");
    // The table is still there, holding the text as it was sent.
    let rows = query(&*b, &format!("SELECT name FROM {t}"), None).await;
    assert_eq!(rows, json!([{"name": attack}]));
    exec(&*b, &format!("DROP TABLE {t}"), None).await;
}

#[tokio::test]
async fn request_errors_use_daprs_words() {
    let b = build(&[]).await;
    let mut r = req("query", "", None);
    r.metadata.remove("sql");
    let e = b.invoke(r).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert_eq!(e.message(), "required metadata not set: sql");
    for bad in [r#"{"a": 1}"#, "1", "not json"] {
        let e = b
            .invoke(req("query", "SELECT ?", Some(bad)))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        assert!(
            e.message().starts_with(
                "invalid metadata property params: failed to unserialize into an array"
            ),
            "{e}"
        );
    }
    // SQL errors carry MySQL's code, SQLSTATE and message (go-sql-driver's format).
    let e = b.invoke(req("query", "SELEC 1", None)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert!(
        e.message().starts_with(
            "error executing query: Error 1064 (42000): You have an error in your SQL syntax"
        ),
        "{e}"
    );
    let missing = table();
    let e = b
        .invoke(req(
            "exec",
            &format!("INSERT INTO {missing} VALUES (?)"),
            Some("[1]"),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert_eq!(
        e.message(),
        format!("error executing query: Error 1146 (42S02): Table 'test.{missing}' doesn't exist")
    );
    let e = b
        .invoke(req("query", &format!("SELECT * FROM {missing}"), None))
        .await
        .unwrap_err();
    assert!(e.message().contains("Error 1146 (42S02)"), "{e}");
    let t = table();
    exec(&*b, &format!("CREATE TABLE {t} (id int primary key)"), None).await;
    exec(&*b, &format!("INSERT INTO {t} VALUES (1)"), None).await;
    let e = b
        .invoke(req(
            "exec",
            &format!("INSERT INTO {t} VALUES (?)"),
            Some("[1]"),
        ))
        .await
        .unwrap_err();
    assert!(
        e.message()
            .contains("Error 1062 (23000): Duplicate entry '1' for key 'PRIMARY'"),
        "{e}"
    );
    exec(&*b, &format!("DROP TABLE {t}"), None).await;
    let e = b.invoke(req("create", "SELECT 1", None)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn close_refuses_later_calls() {
    let b = build(&[]).await;
    assert_eq!(query(&*b, "SELECT 1 AS x", None).await, json!([{"x": 1}]));
    assert_eq!(b.invoke(req("close", "", None)).await.unwrap(), None);
    let e = b.invoke(req("query", "SELECT 1", None)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed);
    assert_eq!(e.message(), "component is closed");
    assert_eq!(b.invoke(req("close", "", None)).await.unwrap(), None);
    b.close().await.unwrap();
}

#[tokio::test]
async fn read_timeout_limits_a_call_and_kills_it() {
    let b = build(&[]).await;
    drop(b);
    let b = try_build(&[("url", &format!("{DSN}?readTimeout=1s"))])
        .await
        .unwrap();
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let started = Instant::now();
    let e = b
        .invoke(req(
            "query",
            &format!("SELECT SLEEP(30) AS `{marker}`"),
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let watcher = build(&[]).await;
    bindery_test_support::wait_until(Duration::from_secs(10), "the sleeping query to be killed", || {
        let watcher = &watcher;
        let marker = marker.clone();
        async move {
            let rows = query(
                &**watcher,
                "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE CONCAT('%SLEEP(30) AS `', ?, '%')",
                Some(&serde_json::to_string(&json!([marker])).unwrap()),
            )
            .await;
            (rows == json!([{"n": 0}])).then_some(())
        }
    })
    .await;
    assert_eq!(query(&*b, "SELECT 2 AS x", None).await, json!([{"x": 2}]));
}

#[tokio::test]
async fn one_connection_serves_concurrent_calls() {
    let b = std::sync::Arc::new(build(&[("maxOpenConns", "1"), ("maxIdleConns", "1")]).await);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let b = std::sync::Arc::clone(&b);
        tasks.push(tokio::spawn(async move {
            query(&**b, "SELECT ? + 0 AS v", Some(&format!("[{i}]"))).await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), json!([{"v": i}]));
    }
}

#[tokio::test]
async fn dsn_forms_and_parameters() {
    require_mysql();
    let check = |url: String| async move {
        let b = try_build(&[("url", &url)])
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        query(
            &*b,
            "SELECT DATABASE() AS db, SUBSTRING_INDEX(CURRENT_USER(), '@', 1) AS who",
            None,
        )
        .await
    };
    let expect = json!([{"db": "test", "who": "root"}]);
    assert_eq!(check("root:@tcp(127.0.0.1:3306)/test".into()).await, expect);
    assert_eq!(check("root@tcp(localhost)/test".into()).await, expect);
    assert_eq!(check("root@/test".into()).await, expect);
    assert_eq!(
        check("mysql://root@127.0.0.1:3306/test".into()).await,
        expect
    );
    assert_eq!(
        check(
            "root:@tcp(127.0.0.1:3306)/test?parseTime=true&interpolateParams=true&charset=utf8mb4"
                .into()
        )
        .await,
        expect
    );

    // Unknown parameters are system variables, set on each connection.
    let b = try_build(&[(
        "url",
        "root:@tcp(127.0.0.1:3306)/test?time_zone=%27%2B02%3A00%27&collation=utf8mb4_bin&sql_mode=%27ANSI_QUOTES%27",
    )])
    .await
    .unwrap();
    assert_eq!(
        query(&*b, "SELECT @@session.time_zone AS tz, @@collation_connection AS coll, @@session.sql_mode AS mode", None).await,
        json!([{"tz": "+02:00", "coll": "utf8mb4_bin", "mode": "ANSI_QUOTES"}])
    );

    // clientFoundRows counts matched rows, not changed ones; columnsWithAlias prefixes names.
    let t = table();
    let plain = build(&[]).await;
    exec(&*plain, &format!("CREATE TABLE {t} (id int, v int)"), None).await;
    exec(&*plain, &format!("INSERT INTO {t} VALUES (1, 5)"), None).await;
    let same = format!("UPDATE {t} SET v = 5 WHERE id = 1");
    assert_eq!(
        exec(&*plain, &same, None).await.metadata["rows-affected"],
        "0"
    );
    let found = try_build(&[(
        "url",
        &format!("{DSN}?clientFoundRows=true&columnsWithAlias=true"),
    )])
    .await
    .unwrap();
    assert_eq!(
        exec(&*found, &same, None).await.metadata["rows-affected"],
        "1"
    );
    assert_eq!(
        query(&*found, &format!("SELECT id, v FROM {t} AS x"), None).await,
        json!([{"x.id": 1, "x.v": 5}])
    );
    exec(&*plain, &format!("DROP TABLE {t}"), None).await;
}

#[tokio::test]
async fn credentials_never_reach_error_messages() {
    require_mysql();
    let secret = format!("pw{}", uuid::Uuid::new_v4().simple());
    // Nothing listens on port 1.
    let e = try_build(&[(
        "url",
        &format!("root:{secret}@tcp(127.0.0.1:1)/test?timeout=2s"),
    )])
    .await
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        e.message().contains("mysql at 127.0.0.1:1 is unavailable"),
        "{e}"
    );
    assert!(!e.to_string().contains(&secret), "{e}");
    // A wrong password is MariaDB's refusal, without the password.
    let e = try_build(&[("url", &format!("mysql://root:{secret}@127.0.0.1:3306/test"))])
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Rejected, "{e}");
    assert!(e.message().contains("Error 1045 (28000)"), "{e}");
    assert!(!e.to_string().contains(&secret), "{e}");
    assert!(!format!("{e:?}").contains(&secret));
    // A malformed DSN does not echo it.
    let md = Metadata::from_pairs([("url", format!("root:{secret}@tcp(127.0.0.1:3306/test"))]);
    let errs = bindery_core::BindingFactory::validate(&bindery_binding_mysql::MySqlFactory, &md)
        .unwrap_err();
    assert!(
        errs[0]
            .message()
            .starts_with("illegal Data Source Name (DSN) specified by url"),
        "{:?}",
        errs
    );
    for e in errs {
        assert!(!e.to_string().contains(&secret), "{e}");
    }
}

#[tokio::test]
async fn tls_to_a_server_without_tls_fails_clearly() {
    require_mysql();
    // The machine's MariaDB has TLS off (have_ssl DISABLED).
    let e = try_build(&[("url", &format!("{DSN}?tls=skip-verify"))])
        .await
        .err()
        .unwrap();
    assert!(e.message().contains("mysql at 127.0.0.1:3306"), "{e}");
    assert!(
        e.message().to_lowercase().contains("tls") || e.message().to_lowercase().contains("ssl"),
        "{e}"
    );
}
