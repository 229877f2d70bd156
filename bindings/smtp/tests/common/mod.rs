//! Shared helpers for the SMTP tests: the aiosmtpd sink on 127.0.0.1:12525 and the mail files
//! it writes into `.test-env/maildir/new/` at the repository root, a small mail parser, and
//! component files.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bindery_test_support::Bindery;

/// The SMTP sink's address.
pub const SINK: &str = "127.0.0.1:12525";
/// Its port.
pub const SINK_PORT: u16 = 12525;

/// Fail (never skip) when the sink is not reachable.
pub fn require_sink() {
    let ok = std::net::TcpStream::connect_timeout(&SINK.parse().unwrap(), Duration::from_secs(3))
        .is_ok();
    assert!(
        ok,
        "the SMTP sink is not reachable at {SINK}: start it with scripts/backends.sh"
    );
}

/// `.test-env/maildir/new` at the repository root.
pub fn maildir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(".test-env/maildir/new")
}

/// A unique subject for one test.
pub fn subject(tag: &str) -> String {
    format!("bindery-{tag}-{}", uuid::Uuid::new_v4())
}

/// One delivered message.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Headers as `(name, unfolded value)`, in order.
    pub headers: Vec<(String, String)>,
    /// The body, transfer encoding undone.
    pub body: Vec<u8>,
}

impl Mail {
    /// Parse a stored message.
    pub fn parse(raw: &[u8]) -> Mail {
        let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
            } else if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let mut mail = Mail {
            headers,
            body: Vec::new(),
        };
        let encoding = mail
            .header("Content-Transfer-Encoding")
            .unwrap_or_default()
            .to_ascii_lowercase();
        mail.body = match encoding.as_str() {
            "base64" => base64::engine::general_purpose::STANDARD
                .decode(body.split_whitespace().collect::<String>())
                .expect("base64 body"),
            "quoted-printable" => decode_qp(body),
            _ => body.trim_end_matches('\n').as_bytes().to_vec(),
        };
        mail
    }

    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    /// Whether any header is named `name`.
    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// The envelope recipients the sink recorded (`X-RcptTo`).
    pub fn rcpt_to(&self) -> Vec<String> {
        self.header("X-RcptTo")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }
}

/// Quoted-printable, as lettre writes it.
fn decode_qp(body: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let lines: Vec<&str> = body.trim_end_matches('\n').split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let (line, soft) = match line.strip_suffix('=') {
            Some(l) => (l, true),
            None => (*line, false),
        };
        let bytes = line.as_bytes();
        let mut j = 0;
        while j < bytes.len() {
            if bytes[j] == b'=' && j + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[j + 1..j + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                j += 3;
            } else {
                out.push(bytes[j]);
                j += 1;
            }
        }
        if !soft && i + 1 < lines.len() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// Every stored message whose `Subject` is exactly `subject`.
pub fn mails_with(subject: &str) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(maildir()) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for e in entries.flatten() {
        let Ok(raw) = std::fs::read(e.path()) else {
            continue;
        };
        // Cheap filter before parsing.
        if !raw.windows(subject.len()).any(|w| w == subject.as_bytes()) {
            continue;
        }
        let mail = Mail::parse(&raw);
        if mail.header("Subject").as_deref() == Some(subject) {
            found.push(mail);
        }
    }
    found
}

/// Wait until a message with `subject` was delivered, and return it; fail after 20 s.
pub async fn wait_mail(subject: &str) -> Mail {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(m) = mails_with(subject).into_iter().next() {
            return m;
        }
        assert!(
            Instant::now() < end,
            "no message with subject {subject:?} reached {} within 20s",
            maildir().display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A component file for `bindings.smtp` named `name` on the sink, with `extra` metadata.
pub fn component(name: &str, extra: &[(&str, &str)]) -> String {
    let port = SINK_PORT.to_string();
    let mut md: Vec<(&str, &str)> = vec![("host", "127.0.0.1"), ("port", &port)];
    for (k, v) in extra {
        md.retain(|(n, _)| n != k);
        md.push((k, v));
    }
    let mut yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: bindings.smtp\n  version: v1\n  metadata:\n"
    );
    for (k, v) in md {
        yaml.push_str(&format!("  - name: {k}\n    value: \"{v}\"\n"));
    }
    yaml
}

/// The test harness's HTTP client needs a TLS crypto provider, as the binary installs one.
pub fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Start bindery with one component file.
pub async fn start(app_id: &str, file: &str) -> Bindery {
    crypto();
    Bindery::builder(app_id)
        .file("smtp.yaml", file)
        .start()
        .await
}
