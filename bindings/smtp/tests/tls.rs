//! TLS and authentication, which the plain aiosmtpd sink cannot exercise: a small SMTP server
//! written here (implicit TLS or STARTTLS with a self-signed certificate, AUTH PLAIN/LOGIN) on
//! `127.0.0.1:0`, talked to through the binding's traits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bindery_binding_smtp::SmtpFactory;
use bindery_core::{
    BindingFactory, BindingHealth, ComponentContext, ErrorKind, InvokeRequest, Metadata,
    OutputBinding,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What the server saw in one session.
#[derive(Debug, Default, Clone)]
struct Seen {
    tls: bool,
    auth: Option<(String, String)>,
    mail_from: String,
    rcpt: Vec<String>,
    data: String,
}

#[derive(Clone, Copy)]
enum Mode {
    /// TLS from the first byte.
    Implicit,
    /// Plain text; `STARTTLS` offered.
    StartTls,
    /// Plain text; `STARTTLS` not offered.
    PlainOnly,
}

struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn acceptor() -> TlsAcceptor {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

impl Server {
    async fn start(mode: Mode) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let tls = acceptor();
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let tls = tls.clone();
                let record = Arc::clone(&record);
                tokio::spawn(async move {
                    let (stream, is_tls): (Box<dyn Io>, bool) = match mode {
                        Mode::Implicit => match tls.accept(tcp).await {
                            Ok(s) => (Box::new(s), true),
                            Err(_) => return,
                        },
                        _ => (Box::new(tcp), false),
                    };
                    let offer = matches!(mode, Mode::StartTls);
                    session(stream, is_tls, offer, tls, record).await;
                });
            }
        });
        Server { port, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// One SMTP session; each accepted message is recorded as soon as it is accepted (the client
/// keeps pooled connections open).
async fn session(
    stream: Box<dyn Io>,
    mut tls: bool,
    offer_starttls: bool,
    acceptor: TlsAcceptor,
    record: Arc<Mutex<Vec<Seen>>>,
) -> Option<()> {
    let mut seen = Seen {
        tls,
        ..Default::default()
    };
    let mut io = BufReader::new(stream);
    io.write_all(b"220 fake ESMTP\r\n").await.ok()?;
    loop {
        let mut line = String::new();
        if io.read_line(&mut line).await.ok()? == 0 {
            break;
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            let mut reply = String::from("250-fake\r\n");
            if offer_starttls && !tls {
                reply.push_str("250-STARTTLS\r\n");
            }
            reply.push_str("250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n");
            io.write_all(reply.as_bytes()).await.ok()?;
        } else if upper == "STARTTLS" {
            io.write_all(b"220 go ahead\r\n").await.ok()?;
            let inner = io.into_inner();
            let upgraded = acceptor.accept(inner).await.ok()?;
            io = BufReader::new(Box::new(upgraded) as Box<dyn Io>);
            tls = true;
            seen.tls = true;
        } else if let Some(arg) = upper.strip_prefix("AUTH PLAIN") {
            let arg = if arg.trim().is_empty() {
                io.write_all(b"334 \r\n").await.ok()?;
                let mut l = String::new();
                io.read_line(&mut l).await.ok()?;
                l.trim().to_owned()
            } else {
                cmd["AUTH PLAIN".len()..].trim().to_owned()
            };
            let raw = base64::engine::general_purpose::STANDARD.decode(arg).ok()?;
            let parts: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
            let user = String::from_utf8_lossy(parts.get(1)?).into_owned();
            let pass = String::from_utf8_lossy(parts.get(2)?).into_owned();
            let ok = user == "mailer" && pass == "right-password";
            seen.auth = Some((user, pass));
            let reply: &[u8] = if ok {
                b"235 2.7.0 Authentication successful\r\n"
            } else {
                b"535 5.7.8 Authentication credentials invalid\r\n"
            };
            io.write_all(reply).await.ok()?;
        } else if upper.starts_with("MAIL FROM:") {
            seen.mail_from = cmd[10..].trim().to_owned();
            io.write_all(b"250 ok\r\n").await.ok()?;
        } else if upper.starts_with("RCPT TO:") {
            seen.rcpt.push(cmd[8..].trim().to_owned());
            io.write_all(b"250 ok\r\n").await.ok()?;
        } else if upper == "DATA" {
            io.write_all(b"354 go on\r\n").await.ok()?;
            loop {
                let mut l = String::new();
                if io.read_line(&mut l).await.ok()? == 0 {
                    return None;
                }
                if l == ".\r\n" {
                    break;
                }
                seen.data.push_str(&l);
            }
            record.lock().unwrap().push(seen.clone());
            seen.rcpt.clear();
            seen.data.clear();
            io.write_all(b"250 queued\r\n").await.ok()?;
        } else if upper == "QUIT" {
            io.write_all(b"221 bye\r\n").await.ok()?;
            break;
        } else {
            io.write_all(b"250 ok\r\n").await.ok()?;
        }
        io.flush().await.ok()?;
    }
    Some(())
}

async fn binding(port: u16, extra: &[(&str, &str)]) -> Box<dyn OutputBinding> {
    let port = port.to_string();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("host", "127.0.0.1"),
        ("port", &port),
        ("emailFrom", "from@example.com"),
        ("emailTo", "to@example.com"),
        ("subject", "tls test"),
    ];
    pairs.extend_from_slice(extra);
    let ctx = ComponentContext {
        name: "mail".into(),
        app_id: "tls-test".into(),
        metadata: Metadata::from_pairs(pairs),
        health: BindingHealth::default(),
    };
    SmtpFactory.build_output(&ctx).await.unwrap()
}

fn create(body: &str) -> InvokeRequest {
    InvokeRequest {
        operation: "create".into(),
        data: body.to_owned().into(),
        metadata: HashMap::new(),
    }
}

/// `tlsMode: tls` talks TLS from the first byte; `skipTLSVerify` accepts the self-signed
/// certificate; the credentials go through AUTH PLAIN inside TLS.
#[tokio::test]
async fn implicit_tls_with_skip_verify_and_credentials() {
    let server = Server::start(Mode::Implicit).await;
    let out = binding(
        server.port,
        &[
            ("tlsMode", "tls"),
            ("skipTLSVerify", "true"),
            ("user", "mailer"),
            ("password", "right-password"),
        ],
    )
    .await;
    out.invoke(create("<p>over TLS</p>")).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].tls);
    assert_eq!(
        seen[0].auth,
        Some(("mailer".to_owned(), "right-password".to_owned()))
    );
    assert_eq!(seen[0].mail_from, "<from@example.com>");
    assert_eq!(seen[0].rcpt, ["<to@example.com>"]);
    assert!(
        seen[0].data.contains("<p>over TLS</p>"),
        "{:?}",
        seen[0].data
    );
    out.close().await.unwrap();
}

/// Without `skipTLSVerify`, an untrusted certificate is refused: a TLS error that is not
/// retried, naming the server.
#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let server = Server::start(Mode::Implicit).await;
    let out = binding(server.port, &[("tlsMode", "tls")]).await;
    let err = out.invoke(create("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    assert!(err.to_string().contains("TLS"), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{}", server.port)),
        "{err}"
    );
    assert!(server.seen().is_empty());
}

/// `auto` upgrades with STARTTLS when the server offers it.
#[tokio::test]
async fn auto_upgrades_with_starttls_when_offered() {
    let server = Server::start(Mode::StartTls).await;
    let out = binding(server.port, &[("skipTLSVerify", "true")]).await;
    out.invoke(create("upgraded")).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].tls, "STARTTLS was not used");
}

/// `auto` stays in plain text when the server offers no STARTTLS (Dapr's behaviour), while
/// `starttls` refuses to.
#[tokio::test]
async fn starttls_required_fails_when_not_offered() {
    let server = Server::start(Mode::PlainOnly).await;
    let out = binding(server.port, &[]).await;
    out.invoke(create("plain")).await.unwrap();
    assert!(!server.seen()[0].tls);

    let out = binding(server.port, &[("tlsMode", "starttls")]).await;
    let err = out.invoke(create("never sent")).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().to_lowercase().contains("starttls"), "{err}");
    assert_eq!(server.seen().len(), 1, "the second message went out");
}

/// `none` never upgrades, even when the server offers STARTTLS.
#[tokio::test]
async fn none_never_upgrades() {
    let server = Server::start(Mode::StartTls).await;
    let out = binding(server.port, &[("tlsMode", "none")]).await;
    out.invoke(create("plain")).await.unwrap();
    assert!(!server.seen()[0].tls);
}

/// A wrong password: the server's own code and text reach the caller, the password does not.
#[tokio::test]
async fn a_wrong_password_is_the_servers_refusal_without_the_password() {
    let server = Server::start(Mode::StartTls).await;
    let out = binding(
        server.port,
        &[
            ("skipTLSVerify", "true"),
            ("user", "mailer"),
            ("password", "wrong-Secret-123"),
        ],
    )
    .await;
    let err = out.invoke(create("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    let text = err.to_string();
    assert!(text.contains("535"), "{text}");
    assert!(
        text.contains("Authentication credentials invalid"),
        "{text}"
    );
    assert!(!text.contains("wrong-Secret-123"), "{text}");
    assert!(!format!("{err:?}").contains("wrong-Secret-123"));
}
