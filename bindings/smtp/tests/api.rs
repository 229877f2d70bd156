//! Black-box tests: the real `bindery` binary sends mail to the aiosmtpd sink on 127.0.0.1:12525,
//! called through the Dapr HTTP API and through gRPC `InvokeBinding`. Each message is read back
//! from the sink's maildir. Build the binary first (`cargo build -p bindery`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::HashMap;

use common::{component, require_sink, start, subject, wait_mail};
use dapr::dapr::proto::runtime::v1::InvokeBindingRequest;
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use serde_json::{Value, json};

const FULL: &[(&str, &str)] = &[
    ("emailFrom", "Bindery <sender@example.com>"),
    ("emailTo", "to1@example.com;to2@example.com"),
    ("emailCC", "cc@example.com"),
    ("emailBCC", "hidden@example.com"),
    ("subject", "component subject"),
    ("priority", "2"),
];

async fn grpc(port: u16) -> DaprClient<tonic::transport::Channel> {
    DaprClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "bindery does not serve the Dapr gRPC API on --dapr-grpc-port {port} \
                 (is bindery_grpc::serve started by the binary?): {e}"
            )
        })
}

fn grpc_request(operation: &str, data: &[u8], md: &[(&str, &str)]) -> InvokeBindingRequest {
    InvokeBindingRequest {
        name: "mail".into(),
        data: data.to_vec(),
        metadata: md
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        operation: operation.into(),
    }
}

/// `create` over HTTP: every header, the Bcc recipient in the envelope only, the unquoted HTML
/// body, and an empty 204 answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_create_delivers_every_header_and_the_body() {
    require_sink();
    let b = start("smtp-http", &component("mail", FULL)).await;
    let subj = subject("http");
    let resp = b
        .invoke(
            "mail",
            json!({"operation": "create", "data": "<h1>Hello</h1><p>from bindery</p>", "metadata": {"subject": subj}}),
        )
        .await;
    assert_eq!(resp.status(), 204, "{:?}", resp.text().await);
    assert!(resp.bytes().await.unwrap().is_empty());
    let mail = wait_mail(&subj).await;
    assert_eq!(
        mail.header("From").as_deref(),
        Some("Bindery <sender@example.com>")
    );
    assert_eq!(
        mail.header("To").as_deref(),
        Some("to1@example.com, to2@example.com")
    );
    assert_eq!(mail.header("Cc").as_deref(), Some("cc@example.com"));
    assert!(!mail.has_header("Bcc"), "{:?}", mail.headers);
    assert_eq!(mail.header("Subject").as_deref(), Some(subj.as_str()));
    assert_eq!(mail.header("X-Priority").as_deref(), Some("2"));
    assert_eq!(
        mail.header("Content-Type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(mail.text(), "<h1>Hello</h1><p>from bindery</p>");
    assert_eq!(
        mail.header("X-MailFrom").as_deref(),
        Some("sender@example.com")
    );
    let mut rcpt = mail.rcpt_to();
    rcpt.sort();
    assert_eq!(
        rcpt,
        [
            "cc@example.com",
            "hidden@example.com",
            "to1@example.com",
            "to2@example.com"
        ]
    );
}

/// `create` over gRPC: the data is sent as given; non-ASCII text survives; the answer is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_create_delivers_the_data() {
    require_sink();
    let b = start("smtp-grpc", &component("mail", FULL)).await;
    let mut c = grpc(b.grpc_port).await;
    let subj = subject("grpc");
    let body = "<p>Grüße, café ✓</p>";
    let resp = c
        .invoke_binding(grpc_request(
            "create",
            body.as_bytes(),
            &[("subject", &subj), ("priority", "4")],
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.data.is_empty());
    assert!(resp.metadata.is_empty(), "{:?}", resp.metadata);
    let mail = wait_mail(&subj).await;
    assert_eq!(mail.text(), body);
    assert_eq!(mail.header("X-Priority").as_deref(), Some("4"));
    assert_eq!(mail.header("Cc").as_deref(), Some("cc@example.com"));
    // A JSON string is unquoted over gRPC too, as Dapr does.
    let subj2 = subject("grpc-quoted");
    c.invoke_binding(grpc_request(
        "create",
        br#""<b>quoted</b>""#,
        &[("subject", &subj2)],
    ))
    .await
    .unwrap();
    assert_eq!(wait_mail(&subj2).await.text(), "<b>quoted</b>");
}

/// Request metadata overrides last for one call; the next call uses the component's values again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_do_not_leak_into_later_calls() {
    require_sink();
    let b = start("smtp-leak", &component("mail", FULL)).await;
    let first = subject("override");
    let resp = b
        .invoke(
            "mail",
            json!({"operation": "create", "data": "one", "metadata": {
                "subject": first,
                "emailFrom": "other@example.com",
                "emailTo": "override@example.com",
                "emailCC": "override-cc@example.com",
                "emailBCC": "override-bcc@example.com",
                "priority": "5"
            }}),
        )
        .await;
    assert_eq!(resp.status(), 204, "{:?}", resp.text().await);
    let m1 = wait_mail(&first).await;
    assert_eq!(m1.header("From").as_deref(), Some("other@example.com"));
    assert_eq!(m1.header("To").as_deref(), Some("override@example.com"));
    assert_eq!(m1.header("Cc").as_deref(), Some("override-cc@example.com"));
    assert_eq!(m1.header("X-Priority").as_deref(), Some("5"));
    assert!(
        m1.rcpt_to()
            .contains(&"override-bcc@example.com".to_owned()),
        "{:?}",
        m1.rcpt_to()
    );

    // The second call sets only its subject: everything else is the component's again.
    let second = subject("after-override");
    let mut c = grpc(b.grpc_port).await;
    c.invoke_binding(grpc_request("create", b"two", &[("subject", &second)]))
        .await
        .unwrap();
    let m2 = wait_mail(&second).await;
    assert_eq!(
        m2.header("From").as_deref(),
        Some("Bindery <sender@example.com>")
    );
    assert_eq!(
        m2.header("To").as_deref(),
        Some("to1@example.com, to2@example.com")
    );
    assert_eq!(m2.header("Cc").as_deref(), Some("cc@example.com"));
    assert_eq!(m2.header("X-Priority").as_deref(), Some("2"));
    let rcpt = m2.rcpt_to();
    assert!(rcpt.contains(&"hidden@example.com".to_owned()), "{rcpt:?}");
    assert!(!rcpt.iter().any(|r| r.starts_with("override")), "{rcpt:?}");

    // And a call with no subject at all uses the component's subject.
    let resp = b
        .invoke("mail", json!({"operation": "create", "data": "three"}))
        .await;
    assert_eq!(resp.status(), 204);
}

/// Missing sender, recipient or subject, and malformed addresses, fail with clear errors over
/// HTTP and gRPC; nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_fields_and_bad_addresses_fail_clearly() {
    require_sink();
    let b = start("smtp-errors", &component("mail", &[])).await;
    let err = |v: Value| v["message"].as_str().unwrap_or_default().to_owned();
    let resp = b
        .invoke("mail", json!({"operation": "create", "data": "x"}))
        .await;
    assert_eq!(resp.status(), 500);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errorCode"], "ERR_INVOKE_OUTPUT_BINDING");
    assert!(
        err(body.clone()).ends_with(
            "smtp binding error: emailFrom property not supplied in configuration- or request-metadata"
        ),
        "{body}"
    );
    let resp = b
        .invoke(
            "mail",
            json!({"operation": "create", "data": "x", "metadata": {"emailFrom": "a@example.com"}}),
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert!(
        err(body.clone()).contains("emailTo property not supplied"),
        "{body}"
    );
    let resp = b
        .invoke(
            "mail",
            json!({"operation": "create", "data": "x", "metadata": {"emailFrom": "a@example.com", "emailTo": "b@example.com"}}),
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert!(
        err(body.clone()).contains("subject property not supplied"),
        "{body}"
    );
    let resp = b
        .invoke(
            "mail",
            json!({"operation": "create", "data": "x", "metadata": {
                "emailFrom": "a@example.com", "emailTo": "good@example.com;not an address", "subject": "s"}}),
        )
        .await;
    assert_eq!(resp.status(), 500);
    let body: Value = resp.json().await.unwrap();
    assert!(
        err(body.clone())
            .contains("smtp binding error: invalid address \"not an address\" in emailTo"),
        "{body}"
    );
    let resp = b
        .invoke(
            "mail",
            json!({"operation": "create", "data": "x", "metadata": {
                "emailFrom": "a@example.com", "emailTo": "b@example.com", "subject": "s", "priority": "9"}}),
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert!(
        err(body.clone()).contains("priority value must be between 1 (highest) and 5 (lowest)"),
        "{body}"
    );
    // gRPC: Internal, same message.
    let mut c = grpc(b.grpc_port).await;
    let status = c
        .invoke_binding(grpc_request(
            "create",
            b"x",
            &[
                ("emailFrom", "nope"),
                ("emailTo", "b@example.com"),
                ("subject", "s"),
            ],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal);
    assert!(
        status
            .message()
            .contains("invalid address \"nope\" in emailFrom"),
        "{status:?}"
    );
    // Only `create` exists.
    let resp = b
        .invoke("mail", json!({"operation": "get", "data": "x"}))
        .await;
    assert_eq!(resp.status(), 500);
    let body: Value = resp.json().await.unwrap();
    assert!(
        err(body.clone()).contains("supported operations:create"),
        "{body}"
    );
}

/// A server that is down: the call fails with `unavailable` naming host:port, and the password
/// shows neither in the error nor in bindery's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_named_and_the_password_never_shows() {
    let port = bindery_test_support::free_port().to_string();
    let mut md = FULL.to_vec();
    md.extend_from_slice(&[
        ("port", port.as_str()),
        ("user", "mailer"),
        ("password", "s3cr3t-Passw0rd"),
    ]);
    let b = start("smtp-down", &component("mail", &md)).await;
    let resp = b
        .invoke(
            "mail",
            json!({"operation": "create", "data": "x", "metadata": {"subject": "down"}}),
        )
        .await;
    assert_eq!(resp.status(), 500);
    let text = resp.text().await.unwrap();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("unavailable"), "{text}");
    assert!(!text.contains("s3cr3t-Passw0rd"), "{text}");
    let mut c = grpc(b.grpc_port).await;
    let status = c
        .invoke_binding(grpc_request("create", b"x", &[("subject", "down")]))
        .await
        .unwrap_err();
    assert!(
        status.message().contains(&format!("127.0.0.1:{port}")),
        "{status:?}"
    );
    assert!(!status.message().contains("s3cr3t-Passw0rd"));
    assert!(
        !b.logs().contains("s3cr3t-Passw0rd"),
        "the password is in the log"
    );
    // The component reports itself disconnected, with the error, in /v1.0/metadata.
    let meta: Value = b
        .client()
        .get(b.url("/v1.0/metadata"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mail = meta["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "mail")
        .unwrap()
        .clone();
    assert_eq!(mail["status"]["connected"], false, "{mail}");
    let last = mail["status"]["lastError"].as_str().unwrap();
    assert!(last.contains(&format!("127.0.0.1:{port}")), "{last}");
    assert!(!meta.to_string().contains("s3cr3t-Passw0rd"));
}

/// Credentials offered to a server that does not support authentication: a clear refusal, and
/// the password is not in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_the_server_cannot_use_are_refused_without_leaking() {
    require_sink();
    let mut md = FULL.to_vec();
    md.extend_from_slice(&[("user", "mailer"), ("password", "an0ther-s3cret")]);
    let b = start("smtp-auth", &component("mail", &md)).await;
    let resp = b
        .invoke(
            "mail",
            json!({"operation": "create", "data": "x", "metadata": {"subject": subject("auth")}}),
        )
        .await;
    assert_eq!(resp.status(), 500);
    let text = resp.text().await.unwrap();
    assert!(text.contains("127.0.0.1:12525"), "{text}");
    assert!(text.to_lowercase().contains("authentication"), "{text}");
    assert!(!text.contains("an0ther-s3cret"), "{text}");
    assert!(!b.logs().contains("an0ther-s3cret"));
    let meta: HashMap<String, Value> = b
        .client()
        .get(b.url("/v1.0/metadata"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !serde_json::to_string(&meta)
            .unwrap()
            .contains("an0ther-s3cret")
    );
}
