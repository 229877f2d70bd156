//! mTLS against a real TLS server that requires a client certificate.

use std::net::SocketAddr;
use std::sync::Arc;

use bindery_core::{BindingHealth, ComponentContext, ErrorKind, InvokeRequest, Metadata};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::HttpFactory;
use bindery_core::BindingFactory as _;

/// A CA, a server certificate for `127.0.0.1`/`localhost` and a client certificate, as PEM.
struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
    client_pem: String,
    client_key_pem: String,
}

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
        .distinguished_name
        .push(DnType::CommonName, "bindery test CA");
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn pki() -> Pki {
    let ca = ca();
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

/// Accepts TLS connections for axum, dropping those whose handshake fails.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// An HTTPS server on 127.0.0.1 that requires a client certificate signed by the test CA.
async fn mtls_server(pki: &Pki) -> SocketAddr {
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
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    let app = axum::Router::new().fallback(|| async { "secure hello" });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn call(pairs: &[(&str, &str)]) -> Result<Vec<u8>, bindery_core::BindingError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ctx = ComponentContext {
        name: "secure".into(),
        app_id: "app".into(),
        metadata: Metadata::from_pairs(pairs.iter().copied()),
        health: BindingHealth::default(),
    };
    let binding = HttpFactory.build_output(&ctx).await?;
    let req = InvokeRequest {
        operation: "get".into(),
        ..Default::default()
    };
    Ok(binding.invoke(req).await?.unwrap().data.to_vec())
}

#[tokio::test]
async fn mtls_with_inline_pem() {
    let pki = pki();
    let addr = mtls_server(&pki).await;
    let url = format!("https://127.0.0.1:{}/", addr.port());
    let body = call(&[
        ("url", &url),
        ("MTLSRootCA", &pki.ca_pem),
        ("MTLSClientCert", &pki.client_pem),
        ("MTLSClientKey", &pki.client_key_pem),
        ("MTLSRenegotiation", "RenegotiateNever"),
    ])
    .await
    .unwrap();
    assert_eq!(body, b"secure hello");
}

#[tokio::test]
async fn mtls_with_pem_files() {
    let pki = pki();
    let addr = mtls_server(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let ca = write("ca.pem", &pki.ca_pem);
    let cert = write("client.pem", &pki.client_pem);
    let key = write("client.key", &pki.client_key_pem);
    let url = format!("https://localhost:{}/", addr.port());
    let body = call(&[
        ("url", &url),
        ("MTLSRootCA", &ca),
        ("MTLSClientCert", &cert),
        ("MTLSClientKey", &key),
    ])
    .await
    .unwrap();
    assert_eq!(body, b"secure hello");
}

#[tokio::test]
async fn mtls_fails_without_a_client_certificate_or_with_another_ca() {
    let pki = pki();
    let addr = mtls_server(&pki).await;
    let url = format!("https://127.0.0.1:{}/", addr.port());

    let err = call(&[("url", &url), ("MTLSRootCA", &pki.ca_pem)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");

    let other = ca();
    let err = call(&[
        ("url", &url),
        ("MTLSRootCA", &other.pem()),
        ("MTLSClientCert", &pki.client_pem),
        ("MTLSClientKey", &pki.client_key_pem),
    ])
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    // The key never shows in a message.
    assert!(!err.to_string().contains("PRIVATE KEY"));
}
