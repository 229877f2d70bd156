#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bindery_core::{ErrorKind, Metadata};

use super::*;
use crate::config::{Auth, DeliverPolicy, check_name, check_subject, default_durable, redact_url};
use crate::output::headers_from;

fn parse(pairs: &[(&str, &str)]) -> Result<NatsConfig, Vec<BindingError>> {
    NatsConfig::parse(&Metadata::from_pairs(pairs.iter().copied()))
}

fn fields(errs: &[BindingError]) -> Vec<String> {
    errs.iter()
        .map(|e| e.field().unwrap_or("").to_owned())
        .collect()
}

const URL: (&str, &str) = ("natsURL", "nats://127.0.0.1:4222");

#[test]
fn defaults() {
    let c = parse(&[URL, ("subject", "orders.new")]).unwrap();
    assert_eq!(c.servers, ["nats://127.0.0.1:4222"]);
    assert_eq!(c.name, None);
    assert_eq!(c.auth, Auth::None);
    assert!(!c.tls.required && !c.tls.first);
    assert_eq!(c.tls.ca_cert, None);
    assert_eq!(c.tls.client, None);
    assert_eq!(c.connect_timeout, Duration::from_secs(5));
    assert_eq!(c.request_timeout, Duration::from_secs(10));
    assert_eq!(c.ping_interval, Duration::from_secs(60));
    assert_eq!(c.reconnect_wait, Duration::from_secs(2));
    assert_eq!(c.subject.as_deref(), Some("orders.new"));
    // A subject without wildcards is also where create publishes.
    assert_eq!(c.publish_subject.as_deref(), Some("orders.new"));
    assert_eq!(c.queue_group, None);
    assert_eq!(c.concurrency, 1);
    assert_eq!(c.max_in_process, 1000);
    assert_eq!(c.backoff_initial, Duration::from_millis(500));
    assert_eq!(c.backoff_max, Duration::from_secs(60));
    assert_eq!(c.jetstream, None);
}

#[test]
fn jetstream_defaults_and_fields() {
    let c = parse(&[URL, ("subject", "orders.>"), ("jetStream", "true")]).unwrap();
    let js = c.jetstream.unwrap();
    assert_eq!(js.stream, None);
    assert_eq!(js.durable, None);
    assert_eq!(js.deliver_policy, DeliverPolicy::All);
    assert_eq!(js.ack_wait, Duration::from_secs(30));
    assert_eq!(js.max_deliver, -1);
    assert_eq!(js.max_ack_pending, 1000);
    // A wildcard subject is no publish subject.
    assert_eq!(c.publish_subject, None);

    let c = parse(&[
        URL,
        ("subject", "orders.*"),
        ("publishSubject", "orders.created"),
        ("jetStream", "yes"),
        ("streamName", "ORDERS"),
        ("durableName", "billing"),
        ("deliverPolicy", "lastPerSubject"),
        ("ackWait", "5s"),
        ("maxDeliver", "7"),
        ("maxAckPending", "50"),
        ("concurrency", "4"),
        ("backOffInitialInterval", "20ms"),
        ("backOffMaxInterval", "1s"),
    ])
    .unwrap();
    assert_eq!(c.publish_subject.as_deref(), Some("orders.created"));
    assert_eq!(c.concurrency, 4);
    assert_eq!(c.max_in_process, 50);
    assert_eq!(c.backoff_initial, Duration::from_millis(20));
    assert_eq!(c.backoff_max, Duration::from_secs(1));
    let js = c.jetstream.unwrap();
    assert_eq!(js.stream.as_deref(), Some("ORDERS"));
    assert_eq!(js.durable.as_deref(), Some("billing"));
    assert_eq!(js.deliver_policy, DeliverPolicy::LastPerSubject);
    assert_eq!(js.ack_wait, Duration::from_secs(5));
    assert_eq!(js.max_deliver, 7);
    assert_eq!(js.max_ack_pending, 50);

    for (v, want) in [
        ("all", DeliverPolicy::All),
        ("NEW", DeliverPolicy::New),
        ("last", DeliverPolicy::Last),
    ] {
        let c = parse(&[
            URL,
            ("subject", "a"),
            ("jetStream", "true"),
            ("deliverPolicy", v),
        ])
        .unwrap();
        assert_eq!(c.jetstream.unwrap().deliver_policy, want);
    }
    let c = parse(&[
        URL,
        ("subject", "a"),
        ("jetStream", "true"),
        ("startSequence", "42"),
    ])
    .unwrap();
    assert_eq!(
        c.jetstream.unwrap().deliver_policy,
        DeliverPolicy::Sequence(42)
    );
    let errs = parse(&[
        URL,
        ("subject", "a"),
        ("jetStream", "true"),
        ("deliverPolicy", "sequence"),
    ])
    .unwrap_err();
    assert_eq!(fields(&errs), ["startSequence"]);
    let errs = parse(&[
        URL,
        ("subject", "a"),
        ("jetStream", "true"),
        ("deliverPolicy", "new"),
        ("startSequence", "3"),
    ])
    .unwrap_err();
    assert_eq!(fields(&errs), ["startSequence"]);
    let errs = parse(&[
        URL,
        ("subject", "a"),
        ("jetStream", "true"),
        ("deliverPolicy", "oldest"),
    ])
    .unwrap_err();
    assert_eq!(fields(&errs), ["deliverPolicy"]);
    let c = parse(&[
        URL,
        ("subject", "a"),
        ("jetStream", "true"),
        ("maxAckPending", "-1"),
    ])
    .unwrap();
    assert_eq!(c.jetstream.unwrap().max_ack_pending, -1);
    assert_eq!(c.max_in_process, usize::MAX);
}

#[test]
fn jetstream_settings_need_jetstream() {
    let errs = parse(&[
        URL,
        ("subject", "a"),
        ("streamName", "S"),
        ("durableName", "d"),
        ("ackWait", "5s"),
    ])
    .unwrap_err();
    assert_eq!(fields(&errs), ["streamName", "durableName", "ackWait"]);
    let errs = parse(&[
        URL,
        ("subject", "a"),
        ("jetStream", "true"),
        ("queueGroupName", "workers"),
    ])
    .unwrap_err();
    assert_eq!(fields(&errs), ["queueGroupName"]);
}

#[test]
fn subjects_are_required_and_checked() {
    let errs = parse(&[URL]).unwrap_err();
    assert_eq!(fields(&errs), ["subject"]);
    // Output only: publishSubject alone is enough.
    assert!(parse(&[URL, ("publishSubject", "out")]).is_ok());
    // ... unless the component asks for the input side.
    let errs = parse(&[
        URL,
        ("publishSubject", "out"),
        ("direction", "input, output"),
    ])
    .unwrap_err();
    assert_eq!(fields(&errs), ["subject"]);
    let errs = parse(&[URL, ("subject", "a..b")]).unwrap_err();
    assert_eq!(fields(&errs), ["subject"]);
    let errs = parse(&[URL, ("subject", "a"), ("publishSubject", "a.*")]).unwrap_err();
    assert_eq!(fields(&errs), ["publishSubject"]);

    assert!(check_subject("orders.*.eu", true).is_ok());
    assert!(check_subject("orders.>", true).is_ok());
    assert!(check_subject("orders.>", false).is_err());
    assert!(check_subject("orders.>.x", true).is_err());
    assert!(check_subject("orders.a*", true).is_err());
    assert!(check_subject("or ders", true).is_err());
    assert!(check_subject("", true).is_err());
    assert!(check_subject(".a", true).is_err());
}

#[test]
fn missing_or_bad_url() {
    let errs = parse(&[("subject", "a")]).unwrap_err();
    assert_eq!(errs[0].message(), "nats binding: natsURL is required");
    let errs = parse(&[("natsURL", " , "), ("subject", "a")]).unwrap_err();
    assert_eq!(errs[0].message(), "nats binding: natsURL is required");
    let errs = parse(&[
        ("natsURL", "nats://u:secretpw@host:notaport"),
        ("subject", "a"),
    ])
    .unwrap_err();
    assert_eq!(fields(&errs), ["natsURL"]);
    assert!(
        !errs[0].message().contains("secretpw"),
        "{}",
        errs[0].message()
    );
    let c = parse(&[
        ("natsURL", "127.0.0.1:4222, tls://b:4443"),
        ("subject", "a"),
    ])
    .unwrap();
    assert_eq!(c.servers, ["127.0.0.1:4222", "tls://b:4443"]);
    assert_eq!(c.servers_display(), "127.0.0.1:4222,tls://b:4443");
}

#[test]
fn authentication_methods() {
    let c = parse(&[URL, ("subject", "a"), ("user", "u"), ("password", "p")]).unwrap();
    assert_eq!(
        c.auth,
        Auth::UserPassword {
            user: "u".into(),
            password: "p".into()
        }
    );
    let c = parse(&[URL, ("subject", "a"), ("token", "t0k")]).unwrap();
    assert_eq!(c.auth, Auth::Token("t0k".into()));
    let c = parse(&[URL, ("subject", "a"), ("nkeySeed", "SUAXXX")]).unwrap();
    assert_eq!(c.auth, Auth::Nkey("SUAXXX".into()));
    let c = parse(&[URL, ("subject", "a"), ("seedKey", "SUAYYY"), ("jwt", "eyJ")]).unwrap();
    assert_eq!(
        c.auth,
        Auth::Jwt {
            jwt: "eyJ".into(),
            seed: "SUAYYY".into()
        }
    );
    let c = parse(&[URL, ("subject", "a"), ("credsFile", "/etc/nats/user.creds")]).unwrap();
    assert_eq!(
        c.auth,
        Auth::CredsFile(PathBuf::from("/etc/nats/user.creds"))
    );
    // Secrets stay out of Debug.
    let c = parse(&[
        URL,
        ("subject", "a"),
        ("user", "u"),
        ("password", "hunter2"),
    ])
    .unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));

    let errs = parse(&[URL, ("subject", "a"), ("user", "u")]).unwrap_err();
    assert_eq!(fields(&errs), ["password"]);
    let errs = parse(&[URL, ("subject", "a"), ("jwt", "eyJ")]).unwrap_err();
    assert_eq!(fields(&errs), ["nkeySeed"]);
    let errs = parse(&[URL, ("subject", "a"), ("nkeySeed", "notaseed")]).unwrap_err();
    assert_eq!(fields(&errs), ["nkeySeed"]);
    let errs = parse(&[
        URL,
        ("subject", "a"),
        ("token", "t"),
        ("user", "u"),
        ("password", "p"),
    ])
    .unwrap_err();
    assert!(
        errs[0].message().contains("choose one"),
        "{}",
        errs[0].message()
    );
}

#[test]
fn tls_settings() {
    let c = parse(&[
        URL,
        ("subject", "a"),
        ("enableTLS", "true"),
        ("tlsFirst", "true"),
        ("tlsCACert", "/ca.pem"),
        ("tls_client_cert", "/c.pem"),
        ("tlsClientKey", "/k.pem"),
    ])
    .unwrap();
    assert!(c.tls.required && c.tls.first);
    assert_eq!(c.tls.ca_cert, Some(PathBuf::from("/ca.pem")));
    assert_eq!(
        c.tls.client,
        Some((PathBuf::from("/c.pem"), PathBuf::from("/k.pem")))
    );
    let errs = parse(&[URL, ("subject", "a"), ("tlsClientCert", "/c.pem")]).unwrap_err();
    assert_eq!(fields(&errs), ["tlsClientKey"]);
}

#[test]
fn timing_and_counts_are_checked() {
    let c = parse(&[
        URL,
        ("subject", "a"),
        ("name", "orders-reader"),
        ("connectTimeout", "1s"),
        ("requestTimeout", "3s"),
        ("pingInterval", "20s"),
        ("reconnectWait", "500ms"),
        ("queueGroupName", "workers"),
    ])
    .unwrap();
    assert_eq!(c.name.as_deref(), Some("orders-reader"));
    assert_eq!(c.connect_timeout, Duration::from_secs(1));
    assert_eq!(c.request_timeout, Duration::from_secs(3));
    assert_eq!(c.ping_interval, Duration::from_secs(20));
    assert_eq!(c.reconnect_wait, Duration::from_millis(500));
    assert_eq!(c.queue_group.as_deref(), Some("workers"));

    let errs = parse(&[
        URL,
        ("subject", "a"),
        ("connectTimeout", "0s"),
        ("concurrency", "0"),
        ("maxAckPending", "0"),
        ("backOffInitialInterval", "2s"),
        ("backOffMaxInterval", "1s"),
        ("requestTimeout", "soon"),
    ])
    .unwrap_err();
    let f = fields(&errs);
    for want in [
        "connectTimeout",
        "concurrency",
        "maxAckPending",
        "backOffMaxInterval",
        "requestTimeout",
    ] {
        assert!(f.contains(&want.to_owned()), "{want} not in {f:?}");
    }
}

#[test]
fn spec_lists_fields_and_credentials() {
    for f in [
        "natsURL",
        "subject",
        "publishSubject",
        "queueGroupName",
        "jetStream",
        "streamName",
        "durableName",
        "deliverPolicy",
        "startSequence",
        "ackWait",
        "maxDeliver",
        "maxAckPending",
        "concurrency",
        "backOffInitialInterval",
        "backOffMaxInterval",
        "user",
        "password",
        "token",
        "nkeySeed",
        "seedKey",
        "jwt",
        "credsFile",
        "enableTLS",
        "tlsFirst",
        "tlsCACert",
        "tlsClientCert",
        "tls_client_cert",
        "tlsClientKey",
        "tls_client_key",
        "name",
        "connectTimeout",
        "requestTimeout",
        "pingInterval",
        "reconnectWait",
    ] {
        assert!(SPEC.field(f).is_some(), "{f} missing from the spec");
    }
    for f in ["password", "token", "nkeySeed", "seedKey", "jwt"] {
        assert!(SPEC.is_sensitive(f), "{f} must be sensitive");
    }
    assert!(!SPEC.is_sensitive("user"));
    assert_eq!(SPEC.operations, ["create"]);
}

#[test]
fn names_and_urls() {
    assert_eq!(default_durable("my-app", "orders.in"), "my-app-orders_in");
    assert_eq!(default_durable("app", "a b*c>"), "app-a_b_c_");
    assert!(check_name("ORDERS").is_ok());
    assert!(check_name("a.b").is_err());
    assert!(check_name("").is_err());
    assert_eq!(redact_url("nats://u:p@h:4222"), "nats://h:4222");
    assert_eq!(redact_url("tok@h:4222"), "h:4222");
    assert_eq!(redact_url("nats://h"), "nats://h");
}

fn md(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn request_metadata_becomes_headers() {
    let (h, id) = headers_from(&md(&[
        ("subject", "x"),
        ("msgID", "m-1"),
        ("X-Trace", "t"),
        ("traceparent", "00-abc"),
    ]))
    .unwrap();
    assert_eq!(id.unwrap().as_str(), "m-1");
    assert_eq!(h.get("X-Trace").unwrap().as_str(), "t");
    assert_eq!(h.get("traceparent").unwrap().as_str(), "00-abc");
    assert!(h.get("subject").is_none());
    assert!(h.get("msgID").is_none());
    let (_, id) = headers_from(&md(&[("Nats-Msg-Id", "m-2")])).unwrap();
    assert_eq!(id.unwrap().as_str(), "m-2");

    let e = headers_from(&md(&[("bad key", "v")])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    let e = headers_from(&md(&[("k", "a\r\nb")])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
}

#[test]
fn core_events_carry_subject_reply_and_headers() {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Content-Type", "text/plain");
    headers.append("X-Multi", "a");
    headers.append("X-Multi", "b");
    headers.insert("subject", "spoofed");
    let msg = async_nats::Message {
        subject: "orders.new".into(),
        reply: Some("_INBOX.r1".into()),
        payload: bytes::Bytes::from_static(b"{\"id\":1}"),
        headers: Some(headers),
        status: None,
        description: None,
        length: 0,
    };
    let e = input::core_event(&msg);
    assert_eq!(e.data.as_ref(), b"{\"id\":1}");
    assert_eq!(e.metadata["subject"], "orders.new");
    assert_eq!(e.metadata["reply"], "_INBOX.r1");
    assert_eq!(e.metadata["X-Multi"], "a, b");
    assert_eq!(e.content_type.as_deref(), Some("text/plain"));
}

#[test]
fn timestamps_and_backoff() {
    assert_eq!(input::rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
    assert_eq!(
        input::rfc3339_nanos(1_600_000_000_123_456_789),
        "2020-09-13T12:26:40.123456789Z"
    );
    let c = parse(&[
        URL,
        ("subject", "a"),
        ("backOffInitialInterval", "100ms"),
        ("backOffMaxInterval", "1s"),
    ])
    .unwrap();
    let first = input::nak_delay(1, None, &c);
    assert!(
        first >= Duration::from_millis(80) && first <= Duration::from_millis(120),
        "{first:?}"
    );
    let fourth = input::nak_delay(4, None, &c);
    assert!(
        fourth >= Duration::from_millis(640) && fourth <= Duration::from_millis(960),
        "{fourth:?}"
    );
    assert!(input::nak_delay(40, None, &c) <= Duration::from_millis(1200));
    assert_eq!(
        input::nak_delay(1, Some(Duration::from_millis(300)), &c),
        Duration::from_millis(300)
    );
    assert_eq!(
        connect::reconnect_delay(0, Duration::from_secs(2)),
        Duration::from_millis(25)
    );
    assert_eq!(
        connect::reconnect_delay(20, Duration::from_secs(2)),
        Duration::from_secs(2)
    );
}

#[test]
fn credentials_in_urls_are_taken_out_and_used() {
    let c = parse(&[
        (
            "natsURL",
            "nats://al%40ice:p%3Ass@h1:4222, nats://al%40ice:p%3Ass@h2:4222",
        ),
        ("subject", "a"),
    ])
    .unwrap();
    assert_eq!(c.servers, ["nats://h1:4222", "nats://h2:4222"]);
    assert_eq!(
        c.auth,
        Auth::UserPassword {
            user: "al@ice".into(),
            password: "p:ss".into()
        }
    );
    assert!(!format!("{c:?}").contains("p:ss"));
    let c = parse(&[("natsURL", "tok3n@h:4222"), ("subject", "a")]).unwrap();
    assert_eq!(c.servers, ["h:4222"]);
    assert_eq!(c.auth, Auth::Token("tok3n".into()));
    // Metadata wins over the URL.
    let c = parse(&[
        ("natsURL", "nats://u:url-pw@h:4222"),
        ("subject", "a"),
        ("token", "t"),
    ])
    .unwrap();
    assert_eq!(c.auth, Auth::Token("t".into()));
    let errs = parse(&[
        ("natsURL", "nats://u:one@h1:4222,nats://u:two@h2:4222"),
        ("subject", "a"),
    ])
    .err()
    .unwrap();
    assert_eq!(fields(&errs), ["natsURL"]);
    assert!(!errs[0].to_string().contains("one"), "{}", errs[0]);
}
