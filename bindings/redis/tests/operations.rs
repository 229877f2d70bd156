//! The redis binding on its traits against real Redis servers: Dapr's conformance steps, every
//! operation, authentication, databases, TLS, Redis Cluster and Redis Sentinel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bindery_core::{ErrorKind, Metadata};
use bindery_test_support::conformance::{self, Conformance};
use common::*;

#[tokio::test]
async fn conformance_suite() {
    require_shared_redis();
    let mut c = Conformance::new(
        "redis-conformance",
        Metadata::from_pairs([("redisHost", SHARED)]),
    );
    c.operations = vec!["create", "get", "delete"];
    c.output_metadata.insert("key".into(), key());
    c.get_after_delete_is_empty = true;
    conformance::run(&bindery_binding_redis::RedisFactory, c).await;
}

#[tokio::test]
async fn create_get_delete_keep_data_as_received() {
    require_shared_redis();
    let b = build(&[("redisHost", SHARED)]).await.unwrap();
    let k = key();
    // Over HTTP a JSON string arrives with its quotes; it is stored as is.
    assert_eq!(
        b.invoke(req("create", &k, b"\"hello\"", &[]))
            .await
            .unwrap(),
        None
    );
    let got = b.invoke(req("get", &k, b"", &[])).await.unwrap().unwrap();
    assert_eq!(got.data.as_ref(), b"\"hello\"");
    // Binary data survives.
    let bin = [0u8, 159, 146, 150, 255];
    b.invoke(req("create", &k, &bin, &[])).await.unwrap();
    let got = b.invoke(req("get", &k, b"", &[])).await.unwrap().unwrap();
    assert_eq!(got.data.as_ref(), bin);
    assert_eq!(b.invoke(req("delete", &k, b"", &[])).await.unwrap(), None);
    // A miss is an empty response, not an error and not "nothing".
    let miss = b.invoke(req("get", &k, b"", &[])).await.unwrap().unwrap();
    assert!(miss.data.is_empty());
    // Deleting a missing key is fine.
    assert_eq!(b.invoke(req("delete", &k, b"", &[])).await.unwrap(), None);
    b.close().await.unwrap();
    let e = b.invoke(req("get", &k, b"", &[])).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed);
}

#[tokio::test]
async fn get_with_delete_reads_once() {
    require_shared_redis();
    let b = build(&[("redisHost", SHARED)]).await.unwrap();
    let k = key();
    b.invoke(req("create", &k, b"once", &[])).await.unwrap();
    let got = b
        .invoke(req("get", &k, b"", &[("delete", "true")]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.data.as_ref(), b"once");
    let again = b.invoke(req("get", &k, b"", &[])).await.unwrap().unwrap();
    assert!(again.data.is_empty());
    let e = b
        .invoke(req("get", &k, b"", &[("delete", "perhaps")]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn ttl_on_create_and_increment() {
    require_shared_redis();
    let b = build(&[("redisHost", SHARED)]).await.unwrap();
    let mut conn = redis::Client::open(format!("redis://{SHARED}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();

    let k = key();
    b.invoke(req("create", &k, b"v", &[("ttlInSeconds", "100")]))
        .await
        .unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&k)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((90_000..=100_000).contains(&pttl), "PTTL {pttl}");

    b.invoke(req("create", &k, b"v", &[("ttl", "300ms")]))
        .await
        .unwrap();
    bindery_test_support::wait_until(Duration::from_secs(5), "the key to expire", || {
        let b = &b;
        let k = k.clone();
        async move {
            let r = b.invoke(req("get", &k, b"", &[])).await.unwrap().unwrap();
            r.data.is_empty().then_some(())
        }
    })
    .await;

    // A plain create drops an earlier TTL, as SET does.
    b.invoke(req("create", &k, b"v", &[("ttl", "1h")]))
        .await
        .unwrap();
    b.invoke(req("create", &k, b"v", &[])).await.unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&k)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(pttl, -1);

    let c = key();
    for _ in 0..3 {
        assert_eq!(
            b.invoke(req("increment", &c, b"", &[])).await.unwrap(),
            None
        );
    }
    b.invoke(req("increment", &c, b"", &[("ttlInSeconds", "60")]))
        .await
        .unwrap();
    let got = b.invoke(req("get", &c, b"", &[])).await.unwrap().unwrap();
    assert_eq!(got.data.as_ref(), b"4");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&c)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((50_000..=60_000).contains(&pttl), "PTTL {pttl}");

    // A bad TTL writes nothing.
    let bad = key();
    let e = b
        .invoke(req("create", &bad, b"v", &[("ttl", "-1")]))
        .await
        .unwrap_err();
    assert_eq!(
        e.message(),
        "ttl value must be higher than zero: actual is '-1'"
    );
    let got = b.invoke(req("get", &bad, b"", &[])).await.unwrap().unwrap();
    assert!(got.data.is_empty());

    // INCR on text is Redis's refusal, reported as such.
    let e = b.invoke(req("increment", &k, b"", &[])).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert!(e.message().contains("not an integer"), "{}", e.message());
}

#[tokio::test]
async fn every_operation_needs_a_key() {
    require_shared_redis();
    let b = build(&[("redisHost", SHARED)]).await.unwrap();
    for op in ["create", "get", "delete", "increment"] {
        let mut r = req(op, "", b"x", &[]);
        let e = b.invoke(r.clone()).await.unwrap_err();
        assert_eq!(
            e.message(),
            "redis binding: missing key in request metadata"
        );
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        r.metadata.remove("key");
        let e = b.invoke(r).await.unwrap_err();
        assert_eq!(
            e.message(),
            "redis binding: missing key in request metadata"
        );
    }
    assert_eq!(b.operations(), ["create", "delete", "get", "increment"]);
}

#[tokio::test]
async fn unreachable_redis_is_retryable_at_build() {
    let port = free_port();
    let e = build(&[
        ("redisHost", &format!("127.0.0.1:{port}")),
        ("redisMinRetryInterval", "1ms"),
        ("redisMaxRetryInterval", "2ms"),
    ])
    .await
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.is_retryable());
    assert!(
        e.message().starts_with(&format!(
            "redis binding: error connecting to redis at 127.0.0.1:{port}: "
        )),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn password_username_and_database() {
    let port = free_port();
    let _server = PrivateRedis::start(
        port,
        port,
        &[
            "--requirepass",
            "topsecret",
            "--user",
            "alice",
            "on",
            ">alicepw",
            "~*",
            "+@all",
        ],
    );
    let host = format!("127.0.0.1:{port}");

    // Wrong password: refused, not retried forever, and the password is not in the message.
    let e = build(&[("redisHost", &host), ("redisPassword", "wrong-pw")])
        .await
        .err()
        .unwrap();
    assert!(!e.is_retryable(), "{e}");
    assert!(!e.to_string().contains("wrong-pw"), "{e}");

    // Password only (the default user), database 3.
    let b = build(&[
        ("redisHost", &host),
        ("redisPassword", "topsecret"),
        ("redisDB", "3"),
    ])
    .await
    .unwrap();
    let k = key();
    b.invoke(req("create", &k, b"in-db-3", &[])).await.unwrap();
    let out = redis_cli(&[
        "-p",
        &port.to_string(),
        "-a",
        "topsecret",
        "--no-auth-warning",
        "-n",
        "3",
        "GET",
        &k,
    ]);
    assert_eq!(out.trim(), "in-db-3");
    let out = redis_cli(&[
        "-p",
        &port.to_string(),
        "-a",
        "topsecret",
        "--no-auth-warning",
        "-n",
        "0",
        "EXISTS",
        &k,
    ]);
    assert_eq!(out.trim(), "0");

    // An ACL user.
    let b = build(&[
        ("redisHost", "127.0.0.1"),
        ("redisPort", &port.to_string()),
        ("redisUsername", "alice"),
        ("redisPassword", "alicepw"),
    ])
    .await
    .unwrap();
    b.invoke(req("create", &k, b"alice", &[])).await.unwrap();
    let got = b.invoke(req("get", &k, b"", &[])).await.unwrap().unwrap();
    assert_eq!(got.data.as_ref(), b"alice");
}

fn write_tls_material(dir: &std::path::Path) -> (String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa,
        KeyPair, KeyUsagePurpose,
    };
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "bindery redis test CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params.signed_by(&server_key, &*ca).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["client.local".to_owned()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = params.signed_by(&client_key, &*ca).unwrap();

    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.crt"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    (client.pem(), client_key.serialize_pem())
}

#[tokio::test]
async fn mutual_tls() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let (client_cert, client_key) = write_tls_material(dir.path());
    let path = |f: &str| dir.path().join(f).to_string_lossy().into_owned();
    let tls_port = free_port();
    let (ca, crt, keyf) = (path("ca.crt"), path("server.crt"), path("server.key"));
    let _server = PrivateRedis::start_in(
        dir,
        0,
        tls_port,
        &[
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &crt,
            "--tls-key-file",
            &keyf,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "yes",
        ],
    );
    let host = format!("127.0.0.1:{tls_port}");

    // The server's CA is not a system root: only insecureSkipTLSVerify gets through, and the
    // server demands a client certificate.
    let b = build(&[
        ("redisHost", &host),
        ("enableTLS", "true"),
        ("insecureSkipTLSVerify", "true"),
        ("clientCert", &client_cert),
        ("clientKey", &client_key),
    ])
    .await
    .unwrap();
    let k = key();
    b.invoke(req("create", &k, b"over tls", &[])).await.unwrap();
    let got = b.invoke(req("get", &k, b"", &[])).await.unwrap().unwrap();
    assert_eq!(got.data.as_ref(), b"over tls");

    // Without the client certificate the handshake fails.
    let e = build(&[
        ("redisHost", &host),
        ("enableTLS", "true"),
        ("insecureSkipTLSVerify", "true"),
        ("redisMaxRetries", "-1"),
    ])
    .await
    .err()
    .unwrap();
    assert!(e.message().contains("error connecting to redis"), "{e}");

    // Verifying the certificate against the system roots fails.
    let e = build(&[
        ("redisHost", &host),
        ("enableTLS", "true"),
        ("clientCert", &client_cert),
        ("clientKey", &client_key),
        ("redisMaxRetries", "-1"),
    ])
    .await
    .err()
    .unwrap();
    assert!(e.message().contains("error connecting to redis"), "{e}");
}

#[tokio::test]
async fn redis_cluster() {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let _nodes: Vec<PrivateRedis> = ports
        .iter()
        .map(|p| {
            PrivateRedis::start(
                *p,
                *p,
                &["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"],
            )
        })
        .collect();
    let mut args = vec!["--cluster".to_owned(), "create".to_owned()];
    args.extend(ports.iter().map(|p| format!("127.0.0.1:{p}")));
    args.extend(["--cluster-replicas", "0", "--cluster-yes"].map(str::to_owned));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    redis_cli(&args);
    // Wait until every slot is served.
    bindery_test_support::wait_until(Duration::from_secs(20), "the cluster to be ok", || async {
        redis_cli(&["-p", &ports[0].to_string(), "CLUSTER", "INFO"])
            .contains("cluster_state:ok")
            .then_some(())
    })
    .await;

    let hosts = ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let b = build(&[("redisHost", &hosts), ("redisType", "cluster")])
        .await
        .unwrap();
    // Keys spread over every node's slots.
    let keys: Vec<String> = (0..30).map(|_| key()).collect();
    for k in &keys {
        b.invoke(req("create", k, k.as_bytes(), &[])).await.unwrap();
        b.invoke(req("increment", &format!("{k}-n"), b"", &[("ttl", "1m")]))
            .await
            .unwrap();
    }
    for k in &keys {
        let got = b.invoke(req("get", k, b"", &[])).await.unwrap().unwrap();
        assert_eq!(got.data.as_ref(), k.as_bytes());
        let n = b
            .invoke(req("get", &format!("{k}-n"), b"", &[("delete", "true")]))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n.data.as_ref(), b"1");
        b.invoke(req("delete", k, b"", &[])).await.unwrap();
    }
}

#[tokio::test]
async fn redis_sentinel_follows_a_failover() {
    let master_port = free_port();
    let replica_port = free_port();
    let sentinel_port = free_port();
    let _master = PrivateRedis::start(master_port, master_port, &[]);
    let _replica = PrivateRedis::start(
        replica_port,
        replica_port,
        &["--replicaof", "127.0.0.1", &master_port.to_string()],
    );
    let conf = format!(
        "sentinel monitor bindery 127.0.0.1 {master_port} 1\n\
         sentinel down-after-milliseconds bindery 1000\n\
         sentinel failover-timeout bindery 5000\n"
    );
    let _sentinel = PrivateRedis::sentinel(sentinel_port, &conf);
    // The replica must be in sync before a failover can promote it.
    bindery_test_support::wait_until(Duration::from_secs(20), "the replica to sync", || async {
        redis_cli(&["-p", &replica_port.to_string(), "INFO", "replication"])
            .contains("master_link_status:up")
            .then_some(())
    })
    .await;
    bindery_test_support::wait_until(
        Duration::from_secs(20),
        "the sentinel to see the replica",
        || async {
            redis_cli(&[
                "-p",
                &sentinel_port.to_string(),
                "SENTINEL",
                "replicas",
                "bindery",
            ])
            .contains(&replica_port.to_string())
            .then_some(())
        },
    )
    .await;

    let b = build(&[
        ("redisHost", &format!("127.0.0.1:{sentinel_port}")),
        ("failover", "true"),
        ("sentinelMasterName", "bindery"),
        ("redisMaxRetries", "10"),
        ("redisMaxRetryInterval", "500ms"),
    ])
    .await
    .unwrap();
    let k = key();
    b.invoke(req("create", &k, b"before", &[])).await.unwrap();

    redis_cli(&[
        "-p",
        &sentinel_port.to_string(),
        "SENTINEL",
        "FAILOVER",
        "bindery",
    ]);
    bindery_test_support::wait_until(
        Duration::from_secs(30),
        "the replica to be promoted",
        || async {
            redis_cli(&[
                "-p",
                &sentinel_port.to_string(),
                "SENTINEL",
                "get-master-addr-by-name",
                "bindery",
            ])
            .contains(&replica_port.to_string())
            .then_some(())
        },
    )
    .await;
    // Writes reach the new master: the binding asks the sentinel again once the old master
    // turns read-only or drops the connection. (Until the sentinel demotes the old master,
    // writes may still land there, as with any Sentinel client; so look for one that arrived.)
    let mut n = 0;
    bindery_test_support::wait_until(
        Duration::from_secs(30),
        "a write to reach the new master",
        || {
            n += 1;
            let value = format!("after-{n}");
            let b = &b;
            let k = k.clone();
            async move {
                b.invoke(req("create", &k, value.as_bytes(), &[]))
                    .await
                    .ok()?;
                let out = redis_cli(&["-p", &replica_port.to_string(), "GET", &k]);
                (out.trim() == value).then_some(())
            }
        },
    )
    .await;
}
