//! `amqps://` with a CA and a client certificate. The machine's RabbitMQ listens without TLS, so
//! the test puts a TLS terminator of its own in front of it: a rustls server on a free loopback
//! port that requires a client certificate signed by a CA made here and forwards the bytes to
//! 127.0.0.1:5672.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bindery_binding_rabbitmq::RabbitFactory;
use bindery_core::{
    BindingFactory, BindingHealth, CancellationToken, ComponentContext, EventHandler, EventSink,
    InputEvent, InvokeRequest, Metadata, Outcome, async_trait,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
    client_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
        .distinguished_name
        .push(DnType::CommonName, "bindery amqp test CA");
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
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server_der: server.der().clone(),
        server_key_der: server_key.serialize_der(),
        client_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// A TLS terminator in front of the machine's RabbitMQ; returns its port.
async fn tls_proxy(pki: &Pki) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![pki.server_der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key_der.clone())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
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
                let Ok(mut upstream) = tokio::net::TcpStream::connect(common::ADDR).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    port
}

struct Collect(tokio::sync::mpsc::UnboundedSender<InputEvent>);

#[async_trait]
impl EventHandler for Collect {
    async fn handle(&self, event: InputEvent) -> Outcome {
        let _ = self.0.send(event);
        Outcome::Accepted
    }
}

fn ctx(pairs: &[(&str, &str)]) -> ComponentContext {
    ComponentContext {
        name: "secure".into(),
        app_id: "tls-test".into(),
        metadata: Metadata::from_pairs(pairs.iter().copied()),
        health: BindingHealth::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_with_client_certificate() {
    common::require_rabbitmq().await;
    common::crypto();
    let pki = pki();
    let port = tls_proxy(&pki).await;
    let host = format!("amqps://guest:guest@localhost:{port}/%2f");
    let queue = common::queue();
    let pairs = [
        ("host", host.as_str()),
        ("queueName", queue.as_str()),
        ("caCert", pki.ca_pem.as_str()),
        ("clientCert", pki.client_pem.as_str()),
        ("clientKey", pki.client_key_pem.as_str()),
    ];
    let factory = RabbitFactory::default();
    let ctx = ctx(&pairs);
    let output = factory.build_output(&ctx).await.unwrap();
    let input = factory.build_input(&ctx).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let reader = {
        let stop = stop.clone();
        let sink = EventSink::new(Arc::new(Collect(tx)));
        tokio::spawn(async move { input.read(sink, stop).await })
    };
    output
        .invoke(InvokeRequest {
            operation: "create".into(),
            data: "over tls".into(),
            metadata: HashMap::new(),
        })
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event")
        .unwrap();
    assert_eq!(&event.data[..], b"over tls");
    stop.cancel();
    reader.await.unwrap().unwrap();
    output.close().await.unwrap();
    common::delete_queue(&queue).await;

    // Without the client certificate the TLS terminator refuses the handshake.
    let refused = RabbitFactory::default()
        .build_output(&self::ctx(&[
            ("host", host.as_str()),
            ("queueName", queue.as_str()),
            ("caCert", pki.ca_pem.as_str()),
        ]))
        .await;
    assert!(refused.is_err());
    let e = refused.err().unwrap();
    assert!(!e.message().contains("guest:guest"), "{e}");
}
