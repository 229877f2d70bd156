//! Authentication and TLS against private `nats-server` processes on free ports, on the
//! binding's traits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bindery_core::{
    BindingFactory, BindingHealth, ComponentContext, ErrorKind, InvokeRequest, Metadata,
    OutputBinding,
};
use common::*;
use futures::StreamExt;

/// A `nats-server` this test started, stopped by its pid when dropped.
struct PrivateNats {
    port: u16,
    child: Child,
}

impl PrivateNats {
    fn start(args: &[&str]) -> Self {
        let port = bindery_test_support::free_port();
        let child = Command::new("/usr/sbin/nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        let addr = format!("127.0.0.1:{port}");
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while !port_open(&addr) {
            assert!(
                std::time::Instant::now() < end,
                "nats-server did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        PrivateNats { port, child }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn build(
    pairs: &[(&str, &str)],
) -> Result<Box<dyn OutputBinding>, bindery_core::BindingError> {
    let md = Metadata::from_pairs(pairs.iter().copied());
    let factory = bindery_binding_nats::NatsFactory;
    factory.validate(&md).unwrap();
    factory
        .build_output(&ComponentContext {
            name: "nats-connect".into(),
            app_id: "test".into(),
            metadata: md,
            health: BindingHealth::default(),
        })
        .await
}

fn create(data: &str) -> InvokeRequest {
    InvokeRequest {
        operation: "create".into(),
        data: data.to_owned().into(),
        metadata: Default::default(),
    }
}

#[tokio::test]
async fn user_password_and_token() {
    let server = PrivateNats::start(&["--user", "alice", "--pass", "s3cret-pw"]);
    let url = format!("nats://127.0.0.1:{}", server.port);

    let e = build(&[
        ("natsURL", &url),
        ("publishSubject", "x"),
        ("user", "alice"),
        ("password", "wrong-pw"),
    ])
    .await
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::Rejected, "{e}");
    assert!(!e.is_retryable());
    assert!(!e.to_string().contains("wrong-pw"), "{e}");

    let watcher =
        async_nats::ConnectOptions::with_user_and_password("alice".into(), "s3cret-pw".into())
            .connect(&url)
            .await
            .unwrap();
    let mut sub = watcher.subscribe("auth.ok").await.unwrap();
    watcher.flush().await.unwrap();
    let b = build(&[
        ("natsURL", &url),
        ("publishSubject", "auth.ok"),
        ("user", "alice"),
        ("password", "s3cret-pw"),
    ])
    .await
    .unwrap();
    b.invoke(create("hello")).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.payload.as_ref(), b"hello");

    // Credentials in the URL authenticate too (the client itself ignores them there).
    let with_creds = format!("nats://alice:s3cret-pw@127.0.0.1:{}", server.port);
    let b = build(&[("natsURL", &with_creds), ("publishSubject", "auth.ok")])
        .await
        .unwrap();
    b.invoke(create("from the url")).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.payload.as_ref(), b"from the url");

    let token_server = PrivateNats::start(&["--auth", "t0ken"]);
    let url = format!("nats://127.0.0.1:{}", token_server.port);
    assert!(
        build(&[
            ("natsURL", &url),
            ("publishSubject", "x"),
            ("token", "t0ken")
        ])
        .await
        .is_ok()
    );
    let e = build(&[
        ("natsURL", &url),
        ("publishSubject", "x"),
        ("token", "nope"),
    ])
    .await
    .err()
    .unwrap();
    assert!(!e.is_retryable(), "{e}");
}

#[tokio::test]
async fn unreachable_nats_is_retryable_at_build() {
    let port = bindery_test_support::free_port();
    let e = build(&[
        ("natsURL", &format!("nats://127.0.0.1:{port}")),
        ("publishSubject", "x"),
        ("connectTimeout", "1s"),
    ])
    .await
    .err()
    .unwrap();
    assert!(e.is_retryable(), "{e}");
    assert!(
        e.message().starts_with(&format!(
            "nats binding: error connecting to NATS at nats://127.0.0.1:{port}"
        )),
        "{e}"
    );
}

#[tokio::test]
async fn mutual_tls() {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
        .distinguished_name
        .push(DnType::CommonName, "bindery nats test CA");
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
    let write = |name: &str, pem: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, pem).unwrap();
        p.to_string_lossy().into_owned()
    };
    let ca_path = write("ca.pem", ca.pem());
    let server_cert = write("server.pem", server.pem());
    let server_key = write("server.key", server_key.serialize_pem());
    let client_cert = write("client.pem", client.pem());
    let client_key = write("client.key", client_key.serialize_pem());

    let server = PrivateNats::start(&[
        "--tls",
        "--tlscert",
        &server_cert,
        "--tlskey",
        &server_key,
        "--tlsverify",
        "--tlscacert",
        &ca_path,
    ]);
    let url = format!("tls://127.0.0.1:{}", server.port);
    let b = build(&[
        ("natsURL", &url),
        ("publishSubject", "tls.ok"),
        ("enableTLS", "true"),
        ("tlsCACert", &ca_path),
        ("tlsClientCert", &client_cert),
        ("tlsClientKey", &client_key),
    ])
    .await
    .unwrap();
    b.invoke(create("over tls")).await.unwrap();

    // Without the client certificate the server refuses the connection.
    let e = build(&[
        ("natsURL", &url),
        ("publishSubject", "tls.ok"),
        ("tlsCACert", &ca_path),
        ("connectTimeout", "2s"),
    ])
    .await
    .err()
    .unwrap();
    assert!(e.message().contains("error connecting to NATS"), "{e}");
}
