#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use bindery_core::{BindingFactory, ErrorKind, Metadata};

use crate::config::{MailFields, Security, SmtpConfig, TlsMode};
use crate::mailer::{XPriority, build_message};
use crate::{METADATA, SmtpFactory};

fn md(pairs: &[(&str, &str)]) -> Metadata {
    Metadata::from_pairs(pairs.iter().copied())
}

fn with(extra: &[(&str, &str)]) -> Metadata {
    let mut pairs = vec![("host", "mail.example.com"), ("port", "587")];
    pairs.extend_from_slice(extra);
    md(&pairs)
}

fn messages(errs: Vec<bindery_core::BindingError>) -> Vec<String> {
    errs.into_iter().map(|e| e.message().to_owned()).collect()
}

#[test]
fn every_field_and_default() {
    let c = SmtpConfig::parse(&with(&[])).unwrap();
    assert_eq!(c.host, "mail.example.com");
    assert_eq!(c.port, 587);
    assert_eq!(c.user, None);
    assert_eq!(c.password, None);
    assert!(!c.skip_tls_verify);
    assert_eq!(c.tls_mode, TlsMode::Auto);
    assert_eq!(
        c.mail,
        MailFields {
            priority: 3,
            ..Default::default()
        }
    );

    let c = SmtpConfig::parse(&with(&[
        ("user", "u"),
        ("password", "p"),
        ("skipTLSVerify", "true"),
        ("emailFrom", "Sender <from@example.com>"),
        ("emailTo", "a@example.com;b@example.com"),
        ("emailCC", "c@example.com"),
        ("emailBCC", "d@example.com"),
        ("subject", "hello"),
        ("priority", "1"),
        ("tlsMode", "starttls"),
    ]))
    .unwrap();
    assert_eq!(c.user.as_deref(), Some("u"));
    assert_eq!(c.password.as_deref(), Some("p"));
    assert!(c.skip_tls_verify);
    assert_eq!(c.tls_mode, TlsMode::StartTls);
    assert_eq!(c.mail.from.as_deref(), Some("Sender <from@example.com>"));
    assert_eq!(c.mail.to.as_deref(), Some("a@example.com;b@example.com"));
    assert_eq!(c.mail.cc.as_deref(), Some("c@example.com"));
    assert_eq!(c.mail.bcc.as_deref(), Some("d@example.com"));
    assert_eq!(c.mail.subject.as_deref(), Some("hello"));
    assert_eq!(c.mail.priority, 1);
}

#[test]
fn names_are_case_insensitive() {
    let c = SmtpConfig::parse(&md(&[
        ("HOST", "h"),
        ("Port", "25"),
        ("EMAILTO", "x@example.com"),
    ]))
    .unwrap();
    assert_eq!(c.host, "h");
    assert_eq!(c.mail.to.as_deref(), Some("x@example.com"));
}

#[test]
fn host_and_port_are_required() {
    const MSG: &str = "smtp binding error: host and port fields are required in metadata";
    for pairs in [
        vec![],
        vec![("host", "h")],
        vec![("port", "25")],
        vec![("host", "h"), ("port", "0")],
    ] {
        let errs = SmtpConfig::parse(&md(&pairs)).unwrap_err();
        assert_eq!(messages(errs), [MSG], "{pairs:?}");
    }
    let errs = SmtpConfig::parse(&md(&[("host", "h"), ("port", "smtp")])).unwrap_err();
    assert!(errs[0].message().contains("invalid port"), "{errs:?}");
    assert_eq!(errs[0].field(), Some("port"));
}

#[test]
fn user_and_password_go_together() {
    for extra in [[("user", "u")], [("password", "secret")]] {
        let errs = SmtpConfig::parse(&with(&extra)).unwrap_err();
        assert_eq!(
            messages(errs),
            ["smtp binding error: both user and password fields are required in metadata"]
        );
    }
}

#[test]
fn priority_is_one_to_five() {
    for ok in ["1", "3", "5", " 2 "] {
        assert!(
            SmtpConfig::parse(&with(&[("priority", ok)])).is_ok(),
            "{ok}"
        );
    }
    for bad in ["0", "6", "-1", "high"] {
        let errs = SmtpConfig::parse(&with(&[("priority", bad)])).unwrap_err();
        assert_eq!(errs[0].field(), Some("priority"), "{bad}");
    }
    let errs = SmtpConfig::parse(&with(&[("priority", "9")])).unwrap_err();
    assert_eq!(
        errs[0].message(),
        "smtp binding error: priority value must be between 1 (highest) and 5 (lowest)"
    );
}

#[test]
fn component_addresses_are_checked_at_load() {
    let errs = SmtpConfig::parse(&with(&[
        ("emailFrom", "not an address"),
        ("emailTo", "ok@example.com;also bad"),
        ("emailCC", "@@"),
        ("emailBCC", "x@example.com"),
    ]))
    .unwrap_err();
    let fields: Vec<_> = errs.iter().map(|e| e.field().unwrap().to_owned()).collect();
    assert_eq!(fields, ["emailFrom", "emailTo", "emailCC"]);
    assert!(errs[1].message().contains("\"also bad\""), "{errs:?}");
}

#[test]
fn all_problems_are_reported_together() {
    let errs = SmtpConfig::parse(&md(&[
        ("user", "u"),
        ("priority", "7"),
        ("tlsMode", "maybe"),
        ("skipTLSVerify", "perhaps"),
    ]))
    .unwrap_err();
    let fields: Vec<_> = errs.iter().map(|e| e.field().unwrap().to_owned()).collect();
    assert_eq!(
        fields,
        ["host", "password", "skipTLSVerify", "tlsMode", "priority"]
    );
}

#[test]
fn the_spec_lists_every_field() {
    for name in [
        "host",
        "port",
        "user",
        "password",
        "skipTLSVerify",
        "emailFrom",
        "emailTo",
        "emailCC",
        "emailBCC",
        "subject",
        "priority",
        "tlsMode",
    ] {
        assert!(METADATA.iter().any(|f| f.name == name), "{name}");
    }
    let spec = SmtpFactory.spec();
    assert!(spec.is_sensitive("password"));
    assert!(!spec.is_sensitive("user"));
    assert_eq!(spec.field("priority").unwrap().default, Some("3"));
    assert_eq!(spec.operations, ["create"]);
}

#[test]
fn debug_output_hides_the_password() {
    let c = SmtpConfig::parse(&with(&[("user", "u"), ("password", "hunter2")])).unwrap();
    let printed = format!("{c:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("<redacted>"));
}

#[test]
fn tls_follows_port_mode_and_credentials() {
    let sec = |pairs: &[(&str, &str)]| SmtpConfig::parse(&md(pairs)).unwrap().security();
    // Dapr (gomail): implicit TLS on 465, opportunistic STARTTLS elsewhere.
    assert_eq!(
        sec(&[("host", "smtp.example.com"), ("port", "465")]),
        Security::Implicit
    );
    assert_eq!(
        sec(&[("host", "smtp.example.com"), ("port", "587")]),
        Security::OpportunisticStartTls
    );
    assert_eq!(
        sec(&[("host", "smtp.example.com"), ("port", "25")]),
        Security::OpportunisticStartTls
    );
    // Credentials to a remote server never go out in plain text.
    let creds = [("user", "u"), ("password", "p")];
    let mut remote = vec![("host", "smtp.example.com"), ("port", "587")];
    remote.extend_from_slice(&creds);
    assert_eq!(sec(&remote), Security::RequiredStartTls);
    for local in ["localhost", "127.0.0.1", "::1", "[::1]"] {
        let mut pairs = vec![("host", local), ("port", "2525")];
        pairs.extend_from_slice(&creds);
        assert_eq!(sec(&pairs), Security::OpportunisticStartTls, "{local}");
    }
    // Explicit modes win, on any port.
    for (mode, want) in [
        ("tls", Security::Implicit),
        ("starttls", Security::RequiredStartTls),
        ("none", Security::Plain),
        ("AUTO", Security::OpportunisticStartTls),
    ] {
        assert_eq!(
            sec(&[("host", "h"), ("port", "2525"), ("tlsMode", mode)]),
            want,
            "{mode}"
        );
    }
    assert_eq!(
        sec(&[("host", "h"), ("port", "465"), ("tlsMode", "none")]),
        Security::Plain
    );
    assert_eq!(
        SmtpFactory::security(&md(&[("host", "h"), ("port", "465")])).unwrap(),
        Security::Implicit
    );
}

#[tokio::test]
async fn the_transport_builds_for_every_mode() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    for mode in ["auto", "starttls", "tls", "none"] {
        for skip in ["true", "false"] {
            let c = SmtpConfig::parse(&with(&[
                ("tlsMode", mode),
                ("skipTLSVerify", skip),
                ("user", "u"),
                ("password", "p"),
            ]))
            .unwrap();
            crate::mailer::transport(&c).unwrap();
        }
    }
}

fn request(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn request_metadata_overrides_for_one_call_only() {
    let c = SmtpConfig::parse(&with(&[
        ("emailFrom", "from@example.com"),
        ("emailTo", "to@example.com"),
        ("subject", "component"),
        ("priority", "2"),
    ]))
    .unwrap();
    let before = c.mail.clone();
    let merged = c
        .merge(&request(&[
            ("emailFrom", "other@example.com"),
            ("emailTo", "x@example.com;y@example.com"),
            ("emailCC", "cc@example.com"),
            ("emailBCC", "bcc@example.com"),
            ("subject", "request"),
            ("priority", "5"),
        ]))
        .unwrap();
    assert_eq!(merged.from.as_deref(), Some("other@example.com"));
    assert_eq!(merged.to.as_deref(), Some("x@example.com;y@example.com"));
    assert_eq!(merged.cc.as_deref(), Some("cc@example.com"));
    assert_eq!(merged.bcc.as_deref(), Some("bcc@example.com"));
    assert_eq!(merged.subject.as_deref(), Some("request"));
    assert_eq!(merged.priority, 5);
    // The component keeps its own values (Dapr's pointer aliasing made them stick).
    assert_eq!(c.mail, before);
    let next = c.merge(&HashMap::new()).unwrap();
    assert_eq!(next, before);
    // Empty values and other keys change nothing; names match in any case.
    let merged = c
        .merge(&request(&[
            ("emailTo", ""),
            ("user-agent", "x"),
            ("SUBJECT", "upper"),
        ]))
        .unwrap();
    assert_eq!(merged.to.as_deref(), Some("to@example.com"));
    assert_eq!(merged.subject.as_deref(), Some("upper"));
    let err = c.merge(&request(&[("priority", "0")])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}

fn fields(pairs: &[(&str, &str)]) -> MailFields {
    let c = SmtpConfig::parse(&with(pairs)).unwrap();
    c.mail
}

fn formatted(m: &lettre::Message) -> String {
    String::from_utf8(m.formatted()).unwrap()
}

#[test]
fn missing_from_to_or_subject_is_named() {
    let all = [
        ("emailFrom", "f@example.com"),
        ("emailTo", "t@example.com"),
        ("subject", "s"),
    ];
    for (i, field) in ["emailFrom", "emailTo", "subject"].iter().enumerate() {
        let mut pairs = all.to_vec();
        pairs.remove(i);
        let err = build_message(&fields(&pairs), b"x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert_eq!(
            err.message(),
            format!(
                "smtp binding error: {field} property not supplied in configuration- or request-metadata"
            )
        );
    }
}

#[test]
fn the_message_has_every_header() {
    let f = fields(&[
        ("emailFrom", "Sender <f@example.com>"),
        ("emailTo", "a@example.com; b@example.com;"),
        ("emailCC", "c@example.com"),
        ("emailBCC", "secret@example.com"),
        ("subject", "Hello"),
        ("priority", "1"),
    ]);
    let m = build_message(&f, br#""<b>hi</b>""#).unwrap();
    let text = formatted(&m);
    assert!(text.contains("From: Sender <f@example.com>\r\n"), "{text}");
    assert!(
        text.contains("To: a@example.com, b@example.com\r\n"),
        "{text}"
    );
    assert!(text.contains("Cc: c@example.com\r\n"), "{text}");
    assert!(!text.contains("Bcc"), "{text}");
    assert!(!text.contains("secret@example.com"), "{text}");
    assert!(text.contains("Subject: Hello\r\n"), "{text}");
    assert!(text.contains("X-Priority: 1\r\n"), "{text}");
    assert!(
        text.contains("Content-Type: text/html; charset=utf-8\r\n"),
        "{text}"
    );
    assert!(text.contains("MIME-Version: 1.0\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n<b>hi</b>"), "{text}");
    // Bcc recipients are in the envelope.
    let rcpt: Vec<String> = m.envelope().to().iter().map(|a| a.to_string()).collect();
    assert_eq!(
        rcpt,
        [
            "a@example.com",
            "b@example.com",
            "c@example.com",
            "secret@example.com"
        ]
    );
    assert_eq!(
        m.envelope().from().map(|a| a.to_string()).as_deref(),
        Some("f@example.com")
    );
}

#[test]
fn body_is_unquoted_only_when_it_is_a_json_string() {
    let f = fields(&[
        ("emailFrom", "f@example.com"),
        ("emailTo", "t@example.com"),
        ("subject", "s"),
    ]);
    let text = formatted(&build_message(&f, br#"{"a":1}"#).unwrap());
    assert!(text.ends_with("\r\n\r\n{\"a\":1}"), "{text}");
    let text = formatted(&build_message(&f, b"plain <i>text</i>").unwrap());
    assert!(text.ends_with("\r\n\r\nplain <i>text</i>"), "{text}");
    let text = formatted(&build_message(&f, br#""line1\nline2""#).unwrap());
    assert!(text.ends_with("line1\r\nline2"), "{text}");
    // Binary data is base64-encoded.
    let text = formatted(&build_message(&f, &[0xff, 0xfe, 0x00, 0x01]).unwrap());
    assert!(text.contains("Content-Transfer-Encoding: base64"), "{text}");
}

#[test]
fn invalid_addresses_are_clear_errors() {
    let f = fields(&[
        ("emailFrom", "f@example.com"),
        ("emailTo", "t@example.com"),
        ("subject", "s"),
    ]);
    let c = SmtpConfig::parse(&with(&[
        ("emailFrom", "f@example.com"),
        ("emailTo", "t@example.com"),
        ("subject", "s"),
    ]))
    .unwrap();
    for (key, value) in [
        ("emailTo", "nobody"),
        ("emailFrom", "a@b@c"),
        ("emailCC", "ok@example.com;not valid"),
        ("emailBCC", "<>"),
    ] {
        let merged = c.merge(&request(&[(key, value)])).unwrap();
        let err = build_message(&merged, b"x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{key}");
        assert!(
            err.message()
                .starts_with("smtp binding error: invalid address"),
            "{err}"
        );
        assert!(err.message().contains(key), "{err}");
    }
    let merged = c.merge(&request(&[("emailTo", " ; ")])).unwrap();
    let err = build_message(&merged, b"x").unwrap_err();
    assert_eq!(
        err.message(),
        "smtp binding error: emailTo holds no address"
    );
    assert!(build_message(&f, b"x").is_ok());
}

#[test]
fn x_priority_header_round_trips() {
    use lettre::message::header::Header;
    assert_eq!(XPriority::name().to_string(), "X-Priority");
    assert_eq!(XPriority::parse(" 4 ").unwrap(), XPriority(4));
    assert!(XPriority::parse("x").is_err());
}

#[tokio::test]
async fn a_server_that_is_down_is_unavailable_and_named() {
    use bindery_core::{BindingHealth, ComponentContext, InvokeRequest};
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let port_text = port.to_string();
    let health = BindingHealth::default();
    let ctx = ComponentContext {
        name: "mail".into(),
        app_id: "t".into(),
        metadata: md(&[
            ("host", "127.0.0.1"),
            ("port", &port_text),
            ("user", "u"),
            ("password", "pa55w0rd-secret"),
            ("emailFrom", "f@example.com"),
            ("emailTo", "t@example.com"),
            ("subject", "s"),
        ]),
        health: health.clone(),
    };
    let out = SmtpFactory.build_output(&ctx).await.unwrap();
    let err = out
        .invoke(InvokeRequest {
            operation: "create".into(),
            data: "x".into(),
            metadata: HashMap::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(!err.to_string().contains("pa55w0rd-secret"), "{err}");
    assert!(!format!("{err:?}").contains("pa55w0rd-secret"));
    assert!(!health.snapshot().connected);
    out.close().await.unwrap();
    let err = out
        .invoke(InvokeRequest {
            operation: "create".into(),
            data: "x".into(),
            metadata: HashMap::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
}
