//! TLS with a client certificate against a Mosquitto of the test's own: a TLS listener on a free
//! loopback port that requires a certificate signed by a CA made here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bindery_binding_mqtt::MqttFactory;
use bindery_core::{
    BindingFactory, BindingHealth, CancellationToken, ComponentContext, EventHandler, EventSink,
    InputEvent, InvokeRequest, Metadata, Outcome, async_trait,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

struct Pki {
    ca: String,
    server: String,
    server_key: String,
    client: String,
    client_key: String,
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
        .push(DnType::CommonName, "bindery mqtt test CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params.signed_by(&server_key, &*ca).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["client.local".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "bindery client");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = params.signed_by(&client_key, &*ca).unwrap();
    Pki {
        ca: ca.pem(),
        server: server.pem(),
        server_key: server_key.serialize_pem(),
        client: client.pem(),
        client_key: client_key.serialize_pem(),
    }
}

/// A Mosquitto with a TLS listener that requires client certificates; killed on drop.
struct TlsBroker {
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
    port: u16,
}

async fn tls_broker(pki: &Pki) -> TlsBroker {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // Mosquitto drops root privileges to its own user: let it read the files.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let ca = write("ca.pem", &pki.ca);
    let cert = write("server.pem", &pki.server);
    let key = write("server.key", &pki.server_key);
    let port = bindery_test_support::free_port();
    let conf = write(
        "mosquitto.conf",
        &format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             cafile {ca}\ncertfile {cert}\nkeyfile {key}\nrequire_certificate true\n"
        ),
    );
    let child = tokio::process::Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start mosquitto (the machine's broker package provides it)");
    bindery_test_support::wait_until(Duration::from_secs(10), "the TLS broker", || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    TlsBroker {
        _child: child,
        _dir: dir,
        port,
    }
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
async fn mutual_tls_publish_and_receive() {
    let pki = pki();
    let broker = tls_broker(&pki).await;
    let url = format!("ssl://127.0.0.1:{}", broker.port);
    let topic = common::unique("tls");
    let consumer = common::unique("ctls");
    let pairs = [
        ("url", url.as_str()),
        ("topic", topic.as_str()),
        ("consumerID", consumer.as_str()),
        ("caCert", pki.ca.as_str()),
        ("clientCert", pki.client.as_str()),
        ("clientKey", pki.client_key.as_str()),
    ];
    let ctx = ctx(&pairs);
    let input = MqttFactory.build_input(&ctx).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let reader = {
        let stop = stop.clone();
        let sink = EventSink::new(Arc::new(Collect(tx)));
        tokio::spawn(async move { input.read(sink, stop).await })
    };
    bindery_test_support::wait_until(Duration::from_secs(10), "the subscription", || {
        let connected = ctx.health.snapshot().connected;
        async move { connected.then_some(()) }
    })
    .await;
    let output = MqttFactory.build_output(&ctx).await.unwrap();
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

    // Without a client certificate the broker refuses the handshake.
    let no_cert = [
        ("url", url.as_str()),
        ("topic", topic.as_str()),
        ("consumerID", "no-cert"),
        ("caCert", pki.ca.as_str()),
    ];
    assert!(
        MqttFactory
            .build_output(&self::ctx(&no_cert))
            .await
            .is_err()
    );
    // Nor does a client that does not trust the broker's CA (the system roots) get in.
    let untrusted = [
        ("url", url.as_str()),
        ("topic", topic.as_str()),
        ("consumerID", "untrusted"),
        ("clientCert", pki.client.as_str()),
        ("clientKey", pki.client_key.as_str()),
    ];
    let e = MqttFactory
        .build_output(&self::ctx(&untrusted))
        .await
        .err()
        .expect("refused");
    assert!(
        e.message().contains("failed to create producer connection"),
        "{e}"
    );
}
