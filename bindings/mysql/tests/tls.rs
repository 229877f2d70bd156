//! TLS to MariaDB: the machine's server has TLS off, so this file starts a private `mariadbd`
//! (a fresh data folder from `mariadb-install-db`, a free port, a certificate signed by a test
//! CA) and stops it, by its pid, when done.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bindery_core::{ErrorKind, Metadata};
use common::*;
use serde_json::json;

/// A `mariadbd` with TLS on a free port, killed when dropped.
struct TlsServer {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_certificates(dir: &Path) {
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
        .push(rcgen::DnType::CommonName, "bindery mysql test CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &*ca).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    // A CA that signed nothing here.
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let other = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("other-ca.pem"), other.pem()).unwrap();
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn start_tls_server() -> TlsServer {
    let dir = tempfile::tempdir().unwrap();
    write_certificates(dir.path());
    let data = dir.path().join("data");
    let user = if is_root() {
        vec!["--user=root"]
    } else {
        vec![]
    };
    let status = Command::new("mariadb-install-db")
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(&user)
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run mariadb-install-db (Debian package mariadb-server)");
    assert!(status.success(), "mariadb-install-db failed: {status}");
    let port = bindery_test_support::free_port();
    let p = |f: &str| dir.path().join(f).display().to_string();
    let child = Command::new("/usr/sbin/mariadbd")
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(&user)
        .arg(format!("--port={port}"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--socket={}", p("mysqld.sock")))
        .arg(format!("--pid-file={}", p("mysqld.pid")))
        .arg(format!("--ssl-cert={}", p("server.pem")))
        .arg(format!("--ssl-key={}", p("server.key")))
        .args(["--skip-log-bin", "--innodb-buffer-pool-size=16M"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mariadbd");
    let server = TlsServer { port, child, dir };
    wait_port(&format!("127.0.0.1:{port}"), true, Duration::from_secs(30));
    server
}

async fn cipher(
    url: &str,
    pem: Option<&str>,
) -> Result<serde_json::Value, bindery_core::BindingError> {
    let mut pairs = vec![("url", url)];
    if let Some(p) = pem {
        pairs.push(("pemPath", p));
    }
    let b = try_build(&pairs).await?;
    Ok(query(&*b, "SHOW SESSION STATUS LIKE 'Ssl_cipher'", None).await)
}

fn encrypted(rows: &serde_json::Value) -> bool {
    rows[0]["Value"].as_str().is_some_and(|c| !c.is_empty())
}

#[tokio::test]
async fn tls_modes() {
    let server = start_tls_server();
    let ca = server.dir.path().join("ca.pem").display().to_string();
    let other = server.dir.path().join("other-ca.pem").display().to_string();
    let base =
        |host: &str, params: &str| format!("root:@tcp({host}:{})/mysql{params}", server.port);

    // Without tls: clear text.
    let rows = cipher(&base("127.0.0.1", ""), None).await.unwrap();
    assert!(!encrypted(&rows), "{rows}");
    // tls=custom with pemPath: the certificate and its name are checked.
    let rows = cipher(&base("localhost", "?tls=custom"), Some(&ca))
        .await
        .unwrap();
    assert!(encrypted(&rows), "{rows}");
    let rows = cipher(&base("127.0.0.1", "?tls=custom"), Some(&ca))
        .await
        .unwrap();
    assert!(encrypted(&rows), "{rows}");
    // pemPath alone also turns TLS on (Dapr would silently stay in clear text).
    let rows = cipher(&base("localhost", ""), Some(&ca)).await.unwrap();
    assert!(encrypted(&rows), "{rows}");
    // skip-verify and preferred encrypt without checking.
    for mode in ["skip-verify", "preferred"] {
        let rows = cipher(&base("127.0.0.1", &format!("?tls={mode}")), None)
            .await
            .unwrap();
        assert!(encrypted(&rows), "{mode}: {rows}");
    }
    // tls=true checks against the public web roots, which did not sign this certificate.
    let e = cipher(&base("localhost", "?tls=true"), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected, "{e}");
    assert!(e.message().to_lowercase().contains("certificate"), "{e}");
    // The wrong CA is refused.
    let e = cipher(&base("localhost", "?tls=custom"), Some(&other))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected, "{e}");
    // tls=custom without pemPath is a configuration error.
    let md = Metadata::from_pairs([("url", base("localhost", "?tls=custom"))]);
    let errs = bindery_core::BindingFactory::validate(&bindery_binding_mysql::MySqlFactory, &md)
        .unwrap_err();
    assert_eq!(errs[0].field(), Some("pemPath"));
    // A pemPath that does not exist is reported at build.
    let e = cipher(
        &base("localhost", "?tls=custom"),
        Some("/nonexistent/ca.pem"),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    assert_eq!(
        query(
            &*try_build(&[("url", &base("localhost", "?tls=custom")), ("pemPath", &ca)])
                .await
                .unwrap(),
            "SELECT 1 AS ok",
            None
        )
        .await,
        json!([{"ok": 1}])
    );
}
