//! `bindings.aws.sns`: publish to one SNS topic (output only).

use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_sns::Client;
use bindery_core::{
    BindingError, BindingFactory, BindingSpec, ComponentContext, Direction, InvokeRequest,
    InvokeResponse, Metadata, MetadataField, OutputBinding, async_trait,
};
use serde_json::Value;

use crate::common::{AwsSettings, parse_or_join, probe_error, sdk_error};

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.aws.sns",
    aliases: &[],
    direction: Direction::Output,
    operations: &["create"],
    metadata: fields![MetadataField::required("topicArn", "the topic's ARN")],
    summary: "Publishes messages to an SNS topic",
};

/// The parsed component metadata.
#[derive(Debug, Clone)]
pub(crate) struct SnsConfig {
    pub(crate) aws: AwsSettings,
    pub(crate) topic_arn: String,
}

impl SnsConfig {
    pub(crate) fn parse(md: &Metadata) -> Result<Self, Vec<BindingError>> {
        let r = md.reader();
        let aws = AwsSettings::parse(&r, false);
        let topic_arn = r.required("topicArn", "sns binding error: missing topicArn");
        if !topic_arn.is_empty() && !topic_arn.starts_with("arn:") {
            r.error(
                "topicArn",
                format!("sns binding error: topicArn {topic_arn:?} is not an ARN (arn:aws:sns:region:account:name)"),
            );
        }
        let config = SnsConfig { aws, topic_arn };
        r.finish().map(|()| config)
    }
}

/// The factory for `bindings.aws.sns`.
#[derive(Debug, Default)]
pub struct SnsFactory;

#[async_trait]
impl BindingFactory for SnsFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        SnsConfig::parse(metadata).map(|_| ())
    }

    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        let config = parse_or_join(&ctx.metadata, SnsConfig::parse)?;
        let client = Client::new(&config.aws.sdk_config().await);
        client
            .get_topic_attributes()
            .topic_arn(&config.topic_arn)
            .send()
            .await
            .map_err(|e| {
                probe_error(&format!("sns binding error: topic {}", config.topic_arn), e)
            })?;
        ctx.health.connected();
        Ok(Box::new(SnsOutput {
            config,
            client,
            closed: AtomicBool::new(false),
        }))
    }
}

/// The output side.
pub(crate) struct SnsOutput {
    config: SnsConfig,
    client: Client,
    closed: AtomicBool,
}

/// The message and subject from Dapr's payload `{"message": …, "subject": …}`. A message that
/// is not a JSON string is sent as its JSON text; a subject that is absent or null is left out
/// (Dapr sends the text `<nil>`).
pub(crate) fn payload(data: &[u8]) -> Result<(String, Option<String>), BindingError> {
    let value: Value = serde_json::from_slice(data).map_err(|e| {
        BindingError::invalid_request(format!(
            "sns binding error: data must be a JSON object {{\"message\": ..., \"subject\": ...}}: {e}"
        ))
    })?;
    let Value::Object(mut obj) = value else {
        return Err(BindingError::invalid_request(
            "sns binding error: data must be a JSON object {\"message\": ..., \"subject\": ...}",
        ));
    };
    let text = |v: Value| match v {
        Value::String(s) => s,
        other => other.to_string(),
    };
    let message = match obj.remove("message") {
        None | Some(Value::Null) => {
            return Err(BindingError::invalid_request(
                "sns binding error: data has no message",
            ));
        }
        Some(v) => text(v),
    };
    let subject = match obj.remove("subject") {
        None | Some(Value::Null) => None,
        Some(v) => Some(text(v)),
    };
    Ok((message, subject))
}

#[async_trait]
impl OutputBinding for SnsOutput {
    fn operations(&self) -> &[&'static str] {
        SPEC.operations
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BindingError::closed());
        }
        if req.operation != "create" {
            return Err(BindingError::unsupported(format!(
                "sns binding error: unsupported operation {}",
                req.operation
            )));
        }
        let (message, subject) = payload(&req.data)?;
        self.client
            .publish()
            .topic_arn(&self.config.topic_arn)
            .message(message)
            .set_subject(subject)
            .send()
            .await
            .map_err(|e| sdk_error("sns binding error: publish failed", e))?;
        Ok(None)
    }

    async fn close(&self) -> Result<(), BindingError> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_arn_is_required_and_checked() {
        let e = SnsConfig::parse(&Metadata::new()).unwrap_err();
        assert_eq!(e[0].field(), Some("topicArn"));
        assert_eq!(e[0].message(), "sns binding error: missing topicArn");
        let e = SnsConfig::parse(&Metadata::from_pairs([("topicArn", "my-topic")])).unwrap_err();
        assert_eq!(e[0].field(), Some("topicArn"));
        let c = SnsConfig::parse(&Metadata::from_pairs([
            ("topicArn", "arn:aws:sns:us-east-1:123456789012:t"),
            ("region", "us-east-1"),
        ]))
        .unwrap();
        assert_eq!(c.topic_arn, "arn:aws:sns:us-east-1:123456789012:t");
    }

    #[test]
    fn payloads() {
        assert_eq!(
            payload(br#"{"message":"hi","subject":"s"}"#).unwrap(),
            ("hi".to_owned(), Some("s".to_owned()))
        );
        assert_eq!(
            payload(br#"{"message":{"a":1}}"#).unwrap(),
            (r#"{"a":1}"#.to_owned(), None)
        );
        assert_eq!(
            payload(br#"{"message":42,"subject":null}"#).unwrap(),
            ("42".to_owned(), None)
        );
        assert!(payload(b"\"just text\"").is_err());
        assert!(payload(b"{}").is_err());
        assert!(payload(b"not json").is_err());
    }
}
