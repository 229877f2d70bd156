//! Dapr's binding conformance steps for `bindings.smtp` (init, operations, create, close) on the
//! binding's traits, against the aiosmtpd sink; the message is then read back from the maildir.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bindery_binding_smtp::SmtpFactory;
use bindery_core::Metadata;
use bindery_test_support::conformance::{self, Conformance, DEFAULT_OUTPUT_DATA};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    common::require_sink();
    common::crypto();
    let subject = common::subject("conformance");
    let metadata = Metadata::from_pairs([
        ("host", "127.0.0.1"),
        ("port", "12525"),
        ("emailFrom", "conformance@example.com"),
        ("emailTo", "to@example.com"),
    ]);
    let mut c = Conformance::new("smtp-conformance", metadata);
    c.operations = vec!["create"];
    c.output_metadata.insert("subject".into(), subject.clone());
    conformance::run(&SmtpFactory, c).await;
    let mail = common::wait_mail(&subject).await;
    assert_eq!(mail.text(), DEFAULT_OUTPUT_DATA);
    assert_eq!(mail.header("X-Priority").as_deref(), Some("3"));
}
