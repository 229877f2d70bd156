//! The AWS bindings for bindery, on the official AWS SDK for Rust:
//!
//! | type | sides | operations |
//! |---|---|---|
//! | `bindings.aws.s3` | output | `create`, `get`, `delete`, `list`, `presign`, `bulkGet`, `bulkCreate`, `bulkDelete` |
//! | `bindings.aws.sqs` | input, output | `create` |
//! | `bindings.aws.sns` | output | `create` |
//! | `bindings.aws.dynamodb` | output | `create` |
//! | `bindings.aws.kinesis` | input, output | `create` |
//!
//! Each service is behind a cargo feature of the same name (`s3`, `sqs`, `sns`, `dynamodb`,
//! `kinesis`; all on by default), so a slim build compiles only the SDK crates it uses.
//!
//! Common metadata (Dapr's AWS authentication profile): `region` (alias `awsRegion`),
//! `endpoint` (LocalStack, moto, MinIO…), `accessKey` + `secretKey` (+ `sessionToken`) for
//! static credentials, else the SDK's default chain (environment, profile, web identity,
//! ECS, IMDS), and `assumeRoleArn` / `sessionName` to assume a role on top. `secretKey` and
//! `sessionToken` are credentials: never logged, never in error texts. IAM Roles Anywhere
//! (`trustAnchorArn`, `trustProfileArn`) is refused with a clear error. The SDK talks HTTPS
//! through rustls on the `ring` provider (no aws-lc-rs).
//!
//! Guarantees (details in each module and in `docs/bindings/aws.*.md`):
//!
//! * SQS input: a message is deleted only after its outcome says to acknowledge it; a message
//!   the app failed is hidden for a backoff (ChangeMessageVisibility) and then offered again,
//!   rather than after the queue's whole visibility timeout; receive errors are retried with
//!   backoff while health reports the binding not ready.
//! * Kinesis input: each shard in order; a failed record is retried, never skipped; the
//!   checkpoint moves only past acknowledged records.
//! * Errors carry AWS's own error code and message; throttling, 5xx answers and connection
//!   failures are retryable, other answers are rejections.
//!
//! ```
//! let mut registry = bindery_core::Registry::new();
//! bindery_binding_aws::register(&mut registry);
//! let s3 = registry.get("bindings.aws.s3").unwrap();
//! let md = bindery_core::Metadata::from_pairs([("bucket", "b"), ("secretKey", "s"), ("accessKey", "a")]);
//! assert!(s3.validate(&md).is_ok());
//! assert!(s3.spec().is_sensitive("secretKey"));
//! ```

#[cfg(any(
    feature = "s3",
    feature = "sqs",
    feature = "sns",
    feature = "dynamodb",
    feature = "kinesis"
))]
#[macro_use]
mod common;
#[cfg(feature = "dynamodb")]
mod dynamodb;
#[cfg(feature = "s3")]
mod insecure;
#[cfg(feature = "kinesis")]
mod kinesis;
#[cfg(feature = "s3")]
mod s3;
#[cfg(feature = "sns")]
mod sns;
#[cfg(feature = "sqs")]
mod sqs;

use bindery_core::Registry;

#[cfg(feature = "dynamodb")]
pub use dynamodb::DynamoFactory;
#[cfg(feature = "kinesis")]
pub use kinesis::{ARRIVAL_TIMESTAMP, KinesisFactory, PARTITION_KEY, SEQUENCE_NUMBER, SHARD_ID};
#[cfg(feature = "s3")]
pub use s3::{KEY, S3Factory};
#[cfg(feature = "sns")]
pub use sns::SnsFactory;
#[cfg(feature = "sqs")]
pub use sqs::{MESSAGE_ID, RECEIVE_COUNT, SENT_TIMESTAMP, SqsFactory};

/// Add every AWS binding enabled by this crate's features to `registry`.
pub fn register(registry: &mut Registry) {
    #[cfg(feature = "s3")]
    registry.register(S3Factory);
    #[cfg(feature = "sqs")]
    registry.register(SqsFactory);
    #[cfg(feature = "sns")]
    registry.register(SnsFactory);
    #[cfg(feature = "dynamodb")]
    registry.register(DynamoFactory);
    #[cfg(feature = "kinesis")]
    registry.register(KinesisFactory);
    let _ = registry;
}
