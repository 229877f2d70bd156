//! The postgres binding on its traits against the machine's PostgreSQL: Dapr's conformance
//! steps, every operation, the type mapping, parameters, errors, TLS and timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use bindery_core::{ErrorKind, Metadata};
use bindery_test_support::conformance::{self, Conformance};
use common::*;
use serde_json::json;

#[tokio::test]
async fn conformance_suite() {
    require_postgres();
    // Dapr's conformance config uses the legacy `url` key.
    let mut c = Conformance::new("pg-conformance", Metadata::from_pairs([("url", CONN)]));
    c.operations = vec!["exec", "query", "close"];
    conformance::run(&bindery_binding_postgres::PostgresFactory, c).await;
}

fn is_rfc3339_nano_utc(s: &str) -> bool {
    // 2026-11-28T00:57:28.271382117Z, fraction optional and without trailing zeros.
    let b = s.as_bytes();
    b.len() >= 20
        && s.ends_with('Z')
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (b.len() == 20 || (b[19] == b'.' && !s[20..s.len() - 1].ends_with('0')))
}

fn is_go_duration(s: &str) -> bool {
    let units = ["ns", "µs", "ms", "s"];
    units.iter().any(|u| {
        s.strip_suffix(u).is_some_and(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_digit() || c == '.' || c == 'm' || c == 'h')
        })
    })
}

#[tokio::test]
async fn exec_and_query_answer_dapr_shapes() {
    let b = build(&[]).await;
    let t = table();
    let create = format!("CREATE TABLE {t} (id int primary key, name text)");
    let r = exec(&*b, &create, None).await;
    assert!(r.data.is_empty(), "exec answers no data");
    assert_eq!(r.metadata["rows-affected"], "0");
    assert_eq!(r.metadata["operation"], "exec");
    assert_eq!(r.metadata["sql"], create);
    for key in ["start-time", "end-time"] {
        assert!(
            is_rfc3339_nano_utc(&r.metadata[key]),
            "{key}: {}",
            r.metadata[key]
        );
    }
    assert!(r.metadata["start-time"] <= r.metadata["end-time"]);
    assert!(
        is_go_duration(&r.metadata["duration"]),
        "{}",
        r.metadata["duration"]
    );

    let insert = format!("INSERT INTO {t} (id, name) VALUES ($1, $2), ($3, $4), ($5, $6)");
    let r = exec(&*b, &insert, Some(r#"[1, "one", 2, "two", 3, null]"#)).await;
    assert_eq!(r.metadata["rows-affected"], "3");
    let r = exec(
        &*b,
        &format!("UPDATE {t} SET name = $1 WHERE id > $2"),
        Some(r#"["many", 1]"#),
    )
    .await;
    assert_eq!(r.metadata["rows-affected"], "2");

    let select = format!("SELECT id, name FROM {t} WHERE id >= $1 ORDER BY id");
    let r = b
        .invoke(req("query", &select, Some("[1]")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&r.data).unwrap(),
        json!([[1, "one"], [2, "many"], [3, "many"]])
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

    // No rows: an empty array, not null.
    let r = b
        .invoke(req(
            "query",
            &format!("SELECT * FROM {t} WHERE id < 0"),
            None,
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.data.as_ref(), b"[]");

    // Several statements in one exec without params (the simple protocol); the last count.
    let r = exec(
        &*b,
        &format!("INSERT INTO {t} VALUES (10, 'x'); DELETE FROM {t} WHERE id >= 2;"),
        None,
    )
    .await;
    assert_eq!(r.metadata["rows-affected"], "3");
    exec(&*b, &format!("DROP TABLE {t}"), None).await;
}

#[tokio::test]
async fn column_types_map_to_json_as_documented() {
    let b = build(&[]).await;
    let rows = query(
        &*b,
        "SELECT 1::smallint, 2147483647::int, 9223372036854775807::bigint, 42::oid,
                123456789012345678901234567890.000000001::numeric, 12.3400::numeric(10,4),
                (-0.0005)::numeric, 'NaN'::numeric, 0::numeric,
                1.5::real, 0.1::real, 2.25::double precision, 'NaN'::float8,
                'Infinity'::float8, '-Infinity'::real,
                true, false,
                'héllo \"q\"'::text, 'v'::varchar(5), 'c'::char(3), 'n'::name, 'x'::\"char\",
                '\\x00ff41'::bytea, ''::bytea,
                '{\"a\": [1, 2.5, null]}'::json, '{\"b\": {\"c\": true}}'::jsonb, '\"s\"'::jsonb,
                'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid,
                '2024-05-01 12:30:45.123'::timestamp, '2024-05-01 12:30:00+02'::timestamptz,
                'infinity'::timestamp, '-infinity'::timestamptz,
                '2024-02-29'::date, '0044-03-15 BC'::date, 'infinity'::date,
                '12:30:00.5'::time, '23:59:59'::time, '12:30:00+05:30'::timetz,
                '1 year 2 mons 3 days 04:05:06.789'::interval, '0'::interval,
                '-1 day -00:00:01.5'::interval, '13 months'::interval,
                NULL::int, NULL::text, NULL::jsonb",
        None,
    )
    .await;
    assert_eq!(
        rows,
        json!([[
            1, 2147483647, 9223372036854775807i64, 42,
            "123456789012345678901234567890.000000001", "12.3400", "-0.0005", "NaN", "0",
            1.5, 0.1, 2.25, "NaN", "Infinity", "-Infinity",
            true, false,
            "héllo \"q\"", "v", "c  ", "n", "x",
            "AP9B", "",
            {"a": [1, 2.5, null]}, {"b": {"c": true}}, "s",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "2024-05-01T12:30:45.123Z", "2024-05-01T10:30:00Z",
            "infinity", "-infinity",
            "2024-02-29", "-0043-03-15", "infinity",
            "12:30:00.5", "23:59:59", "12:30:00+05:30",
            "P1Y2M3DT4H5M6.789S", "PT0S", "P-1DT-1.5S", "P1Y1M",
            null, null, null
        ]])
    );
    // bigint keeps every digit in the JSON text, even past 2^53.
    let r = b
        .invoke(req("query", "SELECT 9007199254740993::bigint", None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.data.as_ref(), b"[[9007199254740993]]");
}

#[tokio::test]
async fn arrays_domains_enums_and_other_types() {
    let b = build(&[]).await;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (mood, dom, pair) = (
        format!("mood_{suffix}"),
        format!("posint_{suffix}"),
        format!("pair_{suffix}"),
    );
    exec(
        &*b,
        &format!("CREATE TYPE {mood} AS ENUM ('sad', 'happy')"),
        None,
    )
    .await;
    exec(
        &*b,
        &format!("CREATE DOMAIN {dom} AS int CHECK (VALUE > 0)"),
        None,
    )
    .await;
    exec(&*b, &format!("CREATE TYPE {pair} AS (a int, b text)"), None).await;
    let rows = query(
        &*b,
        &format!(
            "SELECT ARRAY[1,2,NULL]::int[], ARRAY[['a','b'],['c','d']]::text[], '{{}}'::int[],
                    ARRAY['2024-01-02'::date], ARRAY['{{\"k\":1}}'::jsonb],
                    ARRAY[1.50, 2]::numeric[], '[3:4]={{7,8}}'::int[],
                    'happy'::{mood}, ARRAY['sad','happy']::{mood}[], 5::{dom},
                    '192.168.0.1/24'::inet, '08:00:2b:01:02:03'::macaddr, point(1.5, 2),
                    ROW(1, 'x')::{pair}, ROW(NULL, NULL)::{pair}, NULL::{pair}, int4range(1, 10), B'101'::bit(3),
                    ARRAY['10.0.0.1'::inet], 'a b'::tsvector"
        ),
        None,
    )
    .await;
    assert_eq!(
        rows,
        json!([[
            [1, 2, null], [["a", "b"], ["c", "d"]], [],
            ["2024-01-02"], [{"k": 1}],
            ["1.50", "2"], [7, 8],
            "happy", ["sad", "happy"], 5,
            // Types without a JSON mapping arrive as PostgreSQL's text form.
            "192.168.0.1/24", "08:00:2b:01:02:03", "(1.5,2)",
            "(1,x)", "(,)", null, "[1,10)", "101",
            "{10.0.0.1}", "'a' 'b'"
        ]])
    );
    // The text fallback also works for INSERT … RETURNING and keeps parameters.
    let t = table();
    exec(
        &*b,
        &format!("CREATE TABLE {t} (id int, addr inet, mood {mood})"),
        None,
    )
    .await;
    let rows = query(
        &*b,
        &format!("INSERT INTO {t} VALUES ($1, $2, $3) RETURNING id, addr, mood"),
        Some(r#"[7, "10.1.2.3", "sad"]"#),
    )
    .await;
    assert_eq!(rows, json!([[7, "10.1.2.3", "sad"]]));
    exec(
        &*b,
        &format!("DROP TABLE {t}; DROP TYPE {mood}; DROP DOMAIN {dom}; DROP TYPE {pair}"),
        None,
    )
    .await;
}

#[tokio::test]
async fn params_bind_with_the_inferred_types() {
    let b = build(&[]).await;
    let t = table();
    exec(
        &*b,
        &format!(
            "CREATE TABLE {t} (i int, n numeric, f float8, ok bool, j jsonb, tags text[], nums int[],
                               raw bytea, at timestamptz, d date, u uuid, note text)"
        ),
        None,
    )
    .await;
    let insert =
        format!("INSERT INTO {t} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)");
    exec(
        &*b,
        &insert,
        Some(
            r#"["42", 12345678901234567890.123456789, 2.5, true, {"k": [1, "two"]}, ["a", "b \"c\"", null],
                [[1, 2], [3, 4]], "\\x48690a", "2024-05-01T10:00:00+02:00", "2024-05-01",
                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", null]"#,
        ),
    )
    .await;
    // A JSON string for a json parameter is JSON text; a number keeps its digits.
    exec(
        &*b,
        &insert,
        Some(r#"[1, "0.1", 1e3, "false", "{\"s\": 1}", "{x,y}", [], null, null, null, null, "z"]"#),
    )
    .await;
    let rows = query(&*b, &format!("SELECT * FROM {t} ORDER BY i DESC"), None).await;
    assert_eq!(
        rows,
        json!([
            [42, "12345678901234567890.123456789", 2.5, true, {"k": [1, "two"]}, ["a", "b \"c\"", null],
             [[1, 2], [3, 4]], "SGkK", "2024-05-01T08:00:00Z", "2024-05-01",
             "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", null],
            [1, "0.1", 1000.0, false, {"s": 1}, ["x", "y"], [], null, null, null, null, "z"]
        ])
    );
    // Parameters in a WHERE clause, and a parameter PostgreSQL types as text.
    let rows = query(
        &*b,
        &format!("SELECT $1::text || note FROM {t} WHERE i = $2"),
        Some(r#"["n:", 1]"#),
    )
    .await;
    assert_eq!(rows, json!([["n:z"]]));
    let rows = query(&*b, "SELECT $1, $2::int + 1", Some(r#"["plain", 41]"#)).await;
    assert_eq!(rows, json!([["plain", 42]]));

    // A value that does not fit its type is PostgreSQL's error.
    let e = b
        .invoke(req(
            "exec",
            &insert,
            Some(r#"["x", 1, 1, true, null, null, null, null, null, null, null, null]"#),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert!(
        e.message()
            .contains("invalid input syntax for type integer: \"x\" (SQLSTATE 22P02)"),
        "{e}"
    );
    // Too few parameters.
    let e = b
        .invoke(req("exec", &insert, Some("[1]")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(
        e.message()
            .contains("takes 12 parameter(s) but params holds 1"),
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
        &format!("INSERT INTO {t} VALUES ($1, $2)"),
        Some(&params),
    )
    .await;
    let params = serde_json::to_string(&json!([format!("' OR '1'='1")])).unwrap();
    let rows = query(
        &*b,
        &format!("SELECT id FROM {t} WHERE name = $1"),
        Some(&params),
    )
    .await;
    assert_eq!(rows, json!([]), "the condition was not injected");
    // The table is still there, holding the text as it was sent.
    let rows = query(&*b, &format!("SELECT name FROM {t}"), None).await;
    assert_eq!(rows, json!([[attack]]));
    // An array parameter with quotes and braces stays data too.
    let rows = query(&*b, "SELECT $1::text[]", Some(r#"[["a\"}, {b", "c\\d"]]"#)).await;
    assert_eq!(rows, json!([[["a\"}, {b", "c\\d"]]]));
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
    let e = b.invoke(req("exec", "", None)).await.unwrap_err();
    assert_eq!(e.message(), "required metadata not set: sql");

    for bad in [r#"{"a": 1}"#, "1", "not json", r#""[1]""#] {
        let e = b
            .invoke(req("query", "SELECT 1", Some(bad)))
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
    // An empty params value means none.
    assert_eq!(query(&*b, "SELECT 1", Some("")).await, json!([[1]]));

    // SQL errors carry PostgreSQL's message and SQLSTATE.
    let e = b.invoke(req("query", "SELEC 1", None)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert_eq!(
        e.message(),
        "error executing query: ERROR: syntax error at or near \"SELEC\" (SQLSTATE 42601)"
    );
    let missing = table();
    let e = b
        .invoke(req(
            "exec",
            &format!("INSERT INTO {missing} VALUES ($1)"),
            Some("[1]"),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert_eq!(
        e.message(),
        format!(
            "error executing query: ERROR: relation \"{missing}\" does not exist (SQLSTATE 42P01)"
        )
    );
    let e = b
        .invoke(req("exec", &format!("DELETE FROM {missing}"), None))
        .await
        .unwrap_err();
    assert!(e.message().contains("(SQLSTATE 42P01)"), "{e}");
    // A constraint violation carries PostgreSQL's detail.
    let t = table();
    exec(&*b, &format!("CREATE TABLE {t} (id int primary key)"), None).await;
    exec(&*b, &format!("INSERT INTO {t} VALUES (1)"), None).await;
    let e = b
        .invoke(req(
            "exec",
            &format!("INSERT INTO {t} VALUES ($1)"),
            Some("[1]"),
        ))
        .await
        .unwrap_err();
    assert!(
        e.message()
            .contains("(SQLSTATE 23505); DETAIL: Key (id)=(1) already exists."),
        "{e}"
    );
    exec(&*b, &format!("DROP TABLE {t}"), None).await;

    // An operation the binding does not know.
    let e = b.invoke(req("create", "SELECT 1", None)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn close_refuses_later_calls() {
    let b = build(&[]).await;
    assert_eq!(query(&*b, "SELECT 1", None).await, json!([[1]]));
    assert_eq!(b.invoke(req("close", "", None)).await.unwrap(), None);
    let e = b.invoke(req("query", "SELECT 1", None)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed);
    assert_eq!(e.message(), "component is closed");
    // Closing again is fine, on the operation and on the trait.
    assert_eq!(b.invoke(req("close", "", None)).await.unwrap(), None);
    b.close().await.unwrap();
}

#[tokio::test]
async fn a_call_over_the_timeout_is_cancelled_on_the_server() {
    let b = build(&[("timeout", "1s"), ("maxConns", "1")]).await;
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let started = Instant::now();
    let e = b
        .invoke(req(
            "query",
            &format!("SELECT pg_sleep(30) /* {marker} */"),
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
    assert!(e.message().contains("timed out after 1s"), "{e}");
    // The statement does not go on running on the server.
    let watcher = build(&[]).await;
    bindery_test_support::wait_until(Duration::from_secs(10), "the sleeping query to be cancelled", || {
        let watcher = &watcher;
        let marker = marker.clone();
        async move {
            let rows = query(
                &**watcher,
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
                Some(&serde_json::to_string(&json!([marker])).unwrap()),
            )
            .await;
            (rows == json!([[0]])).then_some(())
        }
    })
    .await;
    // The pool (of one connection) still serves.
    assert_eq!(query(&*b, "SELECT 2", None).await, json!([[2]]));
}

#[tokio::test]
async fn timeout_below_one_second_is_refused() {
    let md = Metadata::from_pairs([("connectionString", CONN), ("timeout", "500ms")]);
    let errs =
        bindery_core::BindingFactory::validate(&bindery_binding_postgres::PostgresFactory, &md)
            .unwrap_err();
    assert_eq!(errs[0].field(), Some("timeout"));
}

#[tokio::test]
async fn one_connection_serves_concurrent_calls() {
    let b = std::sync::Arc::new(build(&[("maxConns", "1")]).await);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let b = std::sync::Arc::clone(&b);
        tasks.push(tokio::spawn(async move {
            query(&**b, "SELECT $1::int", Some(&format!("[{i}]"))).await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), json!([[i]]));
    }
}

#[tokio::test]
async fn cached_statements_survive_a_table_change() {
    for mode in [
        "cache_statement",
        "cache_describe",
        "describe_exec",
        "exec",
        "simple_protocol",
    ] {
        let b = build(&[("queryExecMode", mode)]).await;
        let t = table();
        exec(&*b, &format!("CREATE TABLE {t} (a int)"), None).await;
        exec(&*b, &format!("INSERT INTO {t} VALUES ($1)"), Some("[1]")).await;
        let select = format!("SELECT * FROM {t} WHERE a > $1");
        assert_eq!(
            query(&*b, &select, Some("[0]")).await,
            json!([[1]]),
            "{mode}"
        );
        exec(
            &*b,
            &format!("ALTER TABLE {t} ADD COLUMN b text DEFAULT 'x'"),
            None,
        )
        .await;
        assert_eq!(
            query(&*b, &select, Some("[0]")).await,
            json!([[1, "x"]]),
            "{mode}"
        );
        exec(&*b, &format!("DROP TABLE {t}"), None).await;
    }
}

#[tokio::test]
async fn connection_string_forms_and_discrete_fields() {
    require_postgres();
    let check = |pairs: Vec<(&'static str, String)>| async move {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let b = try_build(&pairs)
            .await
            .unwrap_or_else(|e| panic!("{pairs:?}: {e}"));
        query(&*b, "SELECT current_database(), current_user", None).await
    };
    let expect = json!([["test", "postgres"]]);
    assert_eq!(
        check(vec![(
            "url",
            "postgres://postgres@127.0.0.1:5432/test?sslmode=disable".into()
        )])
        .await,
        expect
    );
    assert_eq!(
        check(vec![(
            "connectionString",
            "postgresql://postgres:any%20pw@localhost/test".into()
        )])
        .await,
        expect
    );
    assert_eq!(
        check(vec![(
            "connectionString",
            "host = 127.0.0.1 user='postgres' database=test".into()
        )])
        .await,
        expect
    );
    // The discrete fields override the connection string, as in Dapr.
    assert_eq!(
        check(vec![
            (
                "connectionString",
                "host=127.0.0.1 user=nobody dbname=nowhere".into()
            ),
            ("database", "test".into()),
            ("user", "postgres".into()),
        ])
        .await,
        expect
    );
    assert_eq!(
        check(vec![
            ("host", "127.0.0.1".into()),
            ("port", "5432".into()),
            ("user", "postgres".into()),
            ("password", "unused-with-trust".into()),
            ("database", "test".into()),
        ])
        .await,
        expect
    );
    assert_eq!(
        check(vec![
            ("hostaddr", "127.0.0.1".into()),
            ("user", "postgres".into()),
            ("database", "test".into())
        ])
        .await,
        expect
    );
    // Other keys are server settings, sent at connection start (as pgx does).
    let b = build(&[]).await;
    drop(b);
    let pairs = [(
        "connectionString",
        "host=127.0.0.1 user=postgres dbname=test application_name=bindery-test search_path=pg_catalog,public timezone=Asia/Tokyo",
    )];
    let b = try_build(&pairs).await.unwrap();
    assert_eq!(
        query(&*b, "SELECT current_setting('application_name'), current_setting('search_path'), current_setting('TimeZone')", None).await,
        json!([["bindery-test", "pg_catalog,public", "Asia/Tokyo"]])
    );
}

#[tokio::test]
async fn tls_follows_sslmode() {
    require_postgres();
    let ssl_in_use = |conn: String| async move {
        let b = try_build(&[("connectionString", &conn)]).await?;
        Ok::<_, bindery_core::BindingError>(
            query(
                &*b,
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                None,
            )
            .await,
        )
    };
    let base = "user=postgres dbname=test";
    assert_eq!(
        ssl_in_use(format!("host=127.0.0.1 {base} sslmode=disable"))
            .await
            .unwrap(),
        json!([[false]])
    );
    // libpq's default, prefer: the machine's server offers TLS, so it is used.
    assert_eq!(
        ssl_in_use(format!("host=127.0.0.1 {base}")).await.unwrap(),
        json!([[true]])
    );
    assert_eq!(
        ssl_in_use(format!("host=127.0.0.1 {base} sslmode=require"))
            .await
            .unwrap(),
        json!([[true]])
    );
    // The server's certificate is the Debian snakeoil one, issued to localhost.
    let root = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    assert_eq!(
        ssl_in_use(format!(
            "host=localhost {base} sslmode=verify-full sslrootcert={root}"
        ))
        .await
        .unwrap(),
        json!([[true]])
    );
    assert_eq!(
        ssl_in_use(format!(
            "host=127.0.0.1 {base} sslmode=verify-ca sslrootcert={root}"
        ))
        .await
        .unwrap(),
        json!([[true]])
    );
    // verify-full checks the name: 127.0.0.1 is not in the certificate.
    let e = ssl_in_use(format!(
        "host=127.0.0.1 {base} sslmode=verify-full sslrootcert={root}"
    ))
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected, "{e}");
    assert!(e.message().contains("certificate"), "{e}");
    // verify-ca against a root that did not sign it fails.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other_root = dir.path().join("other.pem");
    std::fs::write(&other_root, other.cert.pem()).unwrap();
    let e = ssl_in_use(format!(
        "host=localhost {base} sslmode=verify-ca sslrootcert={}",
        other_root.display()
    ))
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected, "{e}");
    assert!(e.message().contains("certificate"), "{e}");
    // require with a root certificate checks the chain, as libpq does.
    let e = ssl_in_use(format!(
        "host=localhost {base} sslmode=require sslrootcert={}",
        other_root.display()
    ))
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected, "{e}");
    // A missing root file is a configuration error.
    let e = ssl_in_use(format!(
        "host=localhost {base} sslmode=verify-ca sslrootcert=/nonexistent.pem"
    ))
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
}

#[tokio::test]
async fn credentials_never_reach_error_messages() {
    require_postgres();
    let secret = format!("pw-{}", uuid::Uuid::new_v4().simple());
    // Nothing listens on port 1.
    let conn = format!("host=127.0.0.1 port=1 user=postgres password={secret} dbname=test");
    let e = try_build(&[("connectionString", &conn), ("timeout", "2s")])
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        e.message()
            .contains("postgres at 127.0.0.1:1 is unavailable"),
        "{e}"
    );
    assert!(!e.to_string().contains(&secret), "{e}");
    assert!(!format!("{e:?}").contains(&secret));
    // A URL with the password, and a database that does not exist.
    let url = format!(
        "postgres://postgres:{secret}@127.0.0.1:5432/nodb_{}",
        uuid::Uuid::new_v4().simple()
    );
    let e = try_build(&[("url", &url)]).await.err().unwrap();
    assert!(e.message().contains("(SQLSTATE 3D000)"), "{e}");
    assert!(!e.to_string().contains(&secret), "{e}");
    // A malformed connection string does not echo its values.
    let md = Metadata::from_pairs([("connectionString", format!("host=x password='{secret}"))]);
    let errs =
        bindery_core::BindingFactory::validate(&bindery_binding_postgres::PostgresFactory, &md)
            .unwrap_err();
    for e in errs {
        assert!(!e.to_string().contains(&secret), "{e}");
    }
}
