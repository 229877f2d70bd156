//! `bindings.aws.dynamodb`: put items into one DynamoDB table (output only).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use bindery_core::{
    BindingError, BindingFactory, BindingSpec, ComponentContext, Direction, InvokeRequest,
    InvokeResponse, Metadata, MetadataField, OutputBinding, async_trait,
};
use serde_json::Value;

use crate::common::{AwsSettings, parse_or_join, probe_error, sdk_error};

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.aws.dynamodb",
    aliases: &[],
    direction: Direction::Output,
    operations: &["create"],
    metadata: fields![MetadataField::required(
        "table",
        "the table items are put into"
    )],
    summary: "Puts JSON objects as items into a DynamoDB table",
};

/// The parsed component metadata.
#[derive(Debug, Clone)]
pub(crate) struct DynamoConfig {
    pub(crate) aws: AwsSettings,
    pub(crate) table: String,
}

impl DynamoConfig {
    pub(crate) fn parse(md: &Metadata) -> Result<Self, Vec<BindingError>> {
        let r = md.reader();
        let aws = AwsSettings::parse(&r, false);
        let table = r.required("table", "dynamodb binding error: missing table");
        let config = DynamoConfig { aws, table };
        r.finish().map(|()| config)
    }
}

/// The factory for `bindings.aws.dynamodb`.
#[derive(Debug, Default)]
pub struct DynamoFactory;

#[async_trait]
impl BindingFactory for DynamoFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        DynamoConfig::parse(metadata).map(|_| ())
    }

    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        let config = parse_or_join(&ctx.metadata, DynamoConfig::parse)?;
        let client = Client::new(&config.aws.sdk_config().await);
        client
            .describe_table()
            .table_name(&config.table)
            .send()
            .await
            .map_err(|e| {
                probe_error(
                    &format!("dynamodb binding error: table {}", config.table),
                    e,
                )
            })?;
        ctx.health.connected();
        Ok(Box::new(DynamoOutput {
            config,
            client,
            closed: AtomicBool::new(false),
        }))
    }
}

/// The output side.
pub(crate) struct DynamoOutput {
    config: DynamoConfig,
    client: Client,
    closed: AtomicBool,
}

/// A JSON value as a DynamoDB attribute: string → `S`, number → `N` (its JSON text, so
/// integers keep every digit), bool → `BOOL`, null → `NULL`, array → `L`, object → `M`.
pub(crate) fn attribute(value: Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s),
        Value::Array(items) => AttributeValue::L(items.into_iter().map(attribute).collect()),
        Value::Object(obj) => AttributeValue::M(item(obj)),
    }
}

fn item(obj: serde_json::Map<String, Value>) -> HashMap<String, AttributeValue> {
    obj.into_iter().map(|(k, v)| (k, attribute(v))).collect()
}

/// The item from request data, which must be a JSON object.
pub(crate) fn parse_item(data: &[u8]) -> Result<HashMap<String, AttributeValue>, BindingError> {
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(obj)) => Ok(item(obj)),
        Ok(_) => Err(BindingError::invalid_request(
            "dynamodb binding error: data must be a JSON object (the item)",
        )),
        Err(e) => Err(BindingError::invalid_request(format!(
            "dynamodb binding error: data is not JSON: {e}"
        ))),
    }
}

#[async_trait]
impl OutputBinding for DynamoOutput {
    fn operations(&self) -> &[&'static str] {
        SPEC.operations
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BindingError::closed());
        }
        if req.operation != "create" {
            return Err(BindingError::unsupported(format!(
                "dynamodb binding error: unsupported operation {}",
                req.operation
            )));
        }
        let item = parse_item(&req.data)?;
        self.client
            .put_item()
            .table_name(&self.config.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb binding error: put item failed", e))?;
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
    fn table_is_required() {
        let e = DynamoConfig::parse(&Metadata::new()).unwrap_err();
        assert_eq!(e[0].field(), Some("table"));
        assert_eq!(e[0].message(), "dynamodb binding error: missing table");
        let c = DynamoConfig::parse(&Metadata::from_pairs([("table", "t")])).unwrap();
        assert_eq!(c.table, "t");
    }

    #[test]
    fn json_maps_to_attribute_values() {
        let item = parse_item(
            br#"{"id":"a","n":12345678901234567,"f":1.5,"ok":true,"none":null,"list":[1,"x"],"map":{"k":false}}"#,
        )
        .unwrap();
        assert_eq!(item["id"], AttributeValue::S("a".into()));
        assert_eq!(item["n"], AttributeValue::N("12345678901234567".into()));
        assert_eq!(item["f"], AttributeValue::N("1.5".into()));
        assert_eq!(item["ok"], AttributeValue::Bool(true));
        assert_eq!(item["none"], AttributeValue::Null(true));
        assert_eq!(
            item["list"],
            AttributeValue::L(vec![
                AttributeValue::N("1".into()),
                AttributeValue::S("x".into())
            ])
        );
        assert_eq!(
            item["map"],
            AttributeValue::M([("k".to_owned(), AttributeValue::Bool(false))].into())
        );
        assert!(parse_item(b"[1]").is_err());
        assert!(parse_item(b"\"text\"").is_err());
        assert!(parse_item(b"nope").is_err());
    }
}
