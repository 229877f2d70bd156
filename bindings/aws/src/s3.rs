//! `bindings.aws.s3`: objects in one S3 bucket (output only).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier, StorageClass};
use aws_smithy_types::date_time::Format;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bindery_core::{
    BindingError, BindingFactory, BindingHealth, BindingSpec, ComponentContext, Direction,
    InvokeRequest, InvokeResponse, Metadata, MetadataField, OutputBinding, async_trait,
    parse_duration, parse_truthy,
};
use bytes::Bytes;
use futures::StreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::{AwsSettings, parse_or_join, probe_error, sdk_error};

/// Request metadata: the object key.
pub const KEY: &str = "key";
const DEFAULT_MAX_RESULTS: i32 = 1000;
const DEFAULT_BULK_CONCURRENCY: usize = 10;
/// S3 takes at most 1000 keys per DeleteObjects call.
const DELETE_CHUNK: usize = 1000;

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.aws.s3",
    aliases: &[],
    direction: Direction::Output,
    operations: &[
        "create",
        "get",
        "delete",
        "list",
        "presign",
        "bulkGet",
        "bulkCreate",
        "bulkDelete",
    ],
    metadata: fields![
        MetadataField::required("bucket", "the bucket"),
        MetadataField::optional(
            "forcePathStyle",
            "path-style URLs (endpoint/bucket/key) instead of virtual-hosted ones",
        )
        .default("false"),
        MetadataField::optional("disableSSL", "plain http:// to the endpoint").default("false"),
        MetadataField::optional(
            "insecureSSL",
            "accept any TLS certificate from the endpoint (self-signed test servers only)",
        )
        .default("false"),
        MetadataField::optional(
            "decodeBase64",
            "create: the data is base64; store the bytes"
        )
        .default("false"),
        MetadataField::optional("encodeBase64", "get: return the object base64-encoded")
            .default("false"),
        MetadataField::optional("storageClass", "create: the storage class of new objects"),
        MetadataField::optional(
            "presignTTL",
            "create: also return a presigned GET URL this long"
        ),
        MetadataField::optional(
            "filePath",
            "create from a local file: refused by bindery (the sidecar's files are not the app's)",
        ),
    ],
    summary: "Creates, reads, lists, presigns and deletes objects in an S3 bucket",
};

/// The parsed component metadata.
#[derive(Debug, Clone)]
pub(crate) struct S3Config {
    pub(crate) aws: AwsSettings,
    pub(crate) bucket: String,
    pub(crate) force_path_style: bool,
    pub(crate) insecure_ssl: bool,
    pub(crate) decode_base64: bool,
    pub(crate) encode_base64: bool,
    pub(crate) storage_class: Option<String>,
    pub(crate) presign_ttl: Option<Duration>,
}

const FILE_PATH_REFUSED: &str = "s3 binding error: filePath is not supported: bindery does not read or write the sidecar's local files for an app; send the content as data";

impl S3Config {
    pub(crate) fn parse(md: &Metadata) -> Result<Self, Vec<BindingError>> {
        let r = md.reader();
        let disable_ssl = r.bool("disableSSL", false);
        let aws = AwsSettings::parse(&r, disable_ssl);
        let bucket = r.required("bucket", "s3 binding error: missing bucket name");
        let presign_ttl = r.string("presignTTL").and_then(|v| match parse_ttl(&v) {
            Ok(d) => Some(d),
            Err(e) => {
                r.error("presignTTL", e);
                None
            }
        });
        if r.string("filePath").is_some() {
            r.error("filePath", FILE_PATH_REFUSED);
        }
        let config = S3Config {
            aws,
            bucket,
            force_path_style: r.bool("forcePathStyle", false),
            insecure_ssl: r.bool("insecureSSL", false),
            decode_base64: r.bool("decodeBase64", false),
            encode_base64: r.bool("encodeBase64", false),
            storage_class: r.string("storageClass"),
            presign_ttl,
        };
        r.finish().map(|()| config)
    }

    /// The URL an object lives at, as S3's upload manager reports it in `location`.
    pub(crate) fn location(&self, key: &str) -> String {
        let region = self.aws.region.as_deref().unwrap_or("us-east-1");
        let key = utf8_percent_encode(key, KEY_ESCAPE).to_string();
        let endpoint = self
            .aws
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        if self.force_path_style {
            return format!("{endpoint}/{}/{key}", self.bucket);
        }
        match endpoint.split_once("://") {
            Some((scheme, host)) => format!("{scheme}://{}.{host}/{key}", self.bucket),
            None => format!("{endpoint}/{}/{key}", self.bucket),
        }
    }
}

/// Escape everything in a key but unreserved characters and `/`.
const KEY_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

fn parse_ttl(v: &str) -> Result<Duration, String> {
    let d = parse_duration(v, Duration::from_secs(1))
        .map_err(|e| format!("s3 binding error: cannot parse duration {v}: {e}"))?;
    if d.is_zero() || d > Duration::from_secs(7 * 24 * 3600) {
        return Err(format!(
            "s3 binding error: presignTTL {v} must be more than 0 and at most 7 days"
        ));
    }
    Ok(d)
}

/// The factory for `bindings.aws.s3`.
#[derive(Debug, Default)]
pub struct S3Factory;

#[async_trait]
impl BindingFactory for S3Factory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        S3Config::parse(metadata).map(|_| ())
    }

    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        let config = parse_or_join(&ctx.metadata, S3Config::parse)?;
        let out = S3Output::connect(config, ctx.health.clone()).await?;
        Ok(Box::new(out))
    }
}

/// The output side: one S3 client.
pub(crate) struct S3Output {
    config: S3Config,
    client: Client,
    closed: std::sync::atomic::AtomicBool,
}

impl S3Output {
    pub(crate) async fn connect(
        config: S3Config,
        health: BindingHealth,
    ) -> Result<Self, BindingError> {
        let sdk = config
            .aws
            .sdk_config_with(crate::insecure::client_if(config.insecure_ssl))
            .await;
        let mut builder =
            aws_sdk_s3::config::Builder::from(&sdk).force_path_style(config.force_path_style);
        if config.aws.endpoint.is_some() {
            // S3-compatible servers (MinIO, moto, older Ceph) do not all know the newer
            // flexible checksums; send and check them only where the API requires it.
            builder = builder
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        let client = Client::from_conf(builder.build());
        if config.insecure_ssl {
            tracing::warn!(bucket = %config.bucket, "aws s3: insecureSSL skips TLS certificate verification, which is unsafe");
        }
        client
            .head_bucket()
            .bucket(&config.bucket)
            .send()
            .await
            .map_err(|e| probe_error(&format!("s3 binding error: bucket {}", config.bucket), e))?;
        health.connected();
        Ok(S3Output {
            config,
            client,
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn key(req: &InvokeRequest) -> Result<String, BindingError> {
        match req.metadata.get(KEY).filter(|k| !k.is_empty()) {
            Some(k) => Ok(k.clone()),
            None => Err(BindingError::invalid_request(
                "s3 binding error: required metadata 'key' missing",
            )),
        }
    }

    async fn create(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        let o = Overrides::from(&self.config, &req.metadata)?;
        let key = req
            .metadata
            .get(KEY)
            .filter(|k| !k.is_empty())
            .cloned()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let body = body_bytes(&req.data, o.decode_base64)?;
        let content_type = req
            .metadata
            .get("Content-Type")
            .map(|v| v.trim())
            .filter(|v| !v.is_empty());
        let tagging = match req.metadata.get("tags").filter(|t| !t.trim().is_empty()) {
            Some(t) => Some(tagging(t)?),
            None => None,
        };
        let (location, version) = self
            .put(
                &key,
                body,
                content_type,
                o.storage_class.as_deref(),
                tagging,
            )
            .await?;
        let mut resp = serde_json::Map::new();
        resp.insert("location".into(), Value::String(location));
        resp.insert(
            "versionID".into(),
            version.map(Value::String).unwrap_or(Value::Null),
        );
        if let Some(ttl) = o.presign_ttl {
            resp.insert(
                "presignURL".into(),
                Value::String(self.presign_url(&key, ttl).await?),
            );
        }
        Ok(Some(
            InvokeResponse::data(Value::Object(resp).to_string()).with_metadata(KEY, key),
        ))
    }

    /// PutObject from bytes already in memory (no copy: `Bytes` is shared).
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: Option<&str>,
        storage_class: Option<&str>,
        tagging: Option<String>,
    ) -> Result<(String, Option<String>), BindingError> {
        let mut put = self
            .client
            .put_object()
            .bucket(&self.config.bucket)
            .key(key)
            .content_length(body.len() as i64)
            .body(ByteStream::from(body));
        if let Some(ct) = content_type {
            put = put.content_type(ct);
        }
        if let Some(sc) = storage_class {
            put = put.storage_class(StorageClass::from(sc));
        }
        if let Some(t) = tagging {
            put = put.tagging(t);
        }
        let out = put
            .send()
            .await
            .map_err(|e| sdk_error("s3 binding error: uploading failed", e))?;
        Ok((
            self.config.location(key),
            out.version_id().map(str::to_owned),
        ))
    }

    async fn presign_url(&self, key: &str, ttl: Duration) -> Result<String, BindingError> {
        let conf = PresigningConfig::expires_in(ttl).map_err(|e| {
            BindingError::invalid_request(format!("s3 binding error: invalid presignTTL: {e}"))
        })?;
        let req = self
            .client
            .get_object()
            .bucket(&self.config.bucket)
            .key(key)
            .presigned(conf)
            .await
            .map_err(|e| sdk_error("s3 binding error: failed to presign URL", e))?;
        Ok(req.uri().to_owned())
    }

    async fn presign(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        let o = Overrides::from(&self.config, &req.metadata)?;
        let key = Self::key(&req)?;
        let Some(ttl) = o.presign_ttl else {
            return Err(BindingError::invalid_request(
                "s3 binding error: required metadata 'presignTTL' missing",
            ));
        };
        let url = self.presign_url(&key, ttl).await?;
        Ok(Some(InvokeResponse::data(
            json!({ "presignURL": url }).to_string(),
        )))
    }

    /// GetObject. The body streams from S3 into one buffer sized from `Content-Length`: the
    /// output API returns one `Bytes`, so the object is whole in memory once (never twice).
    async fn fetch(&self, key: &str) -> Result<(Bytes, Option<String>), BindingError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.config.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    BindingError::not_found("object not found")
                } else {
                    sdk_error("s3 binding error: error downloading S3 object", e)
                }
            })?;
        let content_type = out.content_type().map(str::to_owned);
        let len = out.content_length().unwrap_or(0).max(0) as usize;
        let mut buf = Vec::with_capacity(len);
        let mut body = out.body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                BindingError::unavailable(format!(
                    "s3 binding error: error downloading S3 object: {e}"
                ))
            })?;
            buf.extend_from_slice(&chunk);
        }
        Ok((Bytes::from(buf), content_type))
    }

    async fn get(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        let o = Overrides::from(&self.config, &req.metadata)?;
        let key = Self::key(&req)?;
        let (data, content_type) = self.fetch(&key).await?;
        let data = if o.encode_base64 {
            Bytes::from(B64.encode(&data))
        } else {
            data
        };
        let mut resp = InvokeResponse::data(data);
        if !o.encode_base64 {
            resp.content_type = content_type;
        }
        Ok(Some(resp))
    }

    async fn delete(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        let key = Self::key(&req)?;
        self.client
            .delete_object()
            .bucket(&self.config.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| sdk_error("s3 binding error: delete operation failed", e))?;
        Ok(None)
    }

    async fn list(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        let payload: ListPayload = parse_payload(&req.data).map_err(|e| {
            BindingError::invalid_request(format!(
                "s3 binding (List Operation) - unable to parse Data property - {e}"
            ))
        })?;
        let max = if payload.max_results < 1 {
            DEFAULT_MAX_RESULTS
        } else {
            payload.max_results
        };
        let mut call = self
            .client
            .list_objects()
            .bucket(&self.config.bucket)
            .max_keys(max);
        for (value, set) in [
            (&payload.marker, 0),
            (&payload.prefix, 1),
            (&payload.delimiter, 2),
        ] {
            if !value.is_empty() {
                call = match set {
                    0 => call.marker(value),
                    1 => call.prefix(value),
                    _ => call.delimiter(value),
                };
            }
        }
        let out = call
            .send()
            .await
            .map_err(|e| sdk_error("s3 binding error: list operation failed", e))?;
        Ok(Some(InvokeResponse::data(
            list_output_json(&out).to_string(),
        )))
    }

    async fn bulk_get(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        let o = Overrides::from(&self.config, &req.metadata)?;
        let payload: BulkPayload = bulk_payload(&req.data, "bulkGet")?;
        let keys = payload.keys()?;
        let results: Vec<Value> = futures::stream::iter(keys)
            .map(|key| async move {
                match self.fetch(&key).await {
                    Ok((data, _)) => {
                        let data = if o.encode_base64 {
                            B64.encode(B64.encode(&data))
                        } else {
                            B64.encode(&data)
                        };
                        json!({ "key": key, "data": data })
                    }
                    Err(e) => json!({ "key": key, "error": e.to_string() }),
                }
            })
            .buffered(payload.concurrency())
            .collect()
            .await;
        Ok(Some(InvokeResponse::data(
            Value::Array(results).to_string(),
        )))
    }

    async fn bulk_create(
        &self,
        req: InvokeRequest,
    ) -> Result<Option<InvokeResponse>, BindingError> {
        let o = Overrides::from(&self.config, &req.metadata)?;
        let payload: BulkPayload = bulk_payload(&req.data, "bulkCreate")?;
        if payload.items.is_empty() {
            return Err(BindingError::invalid_request(
                "s3 binding error: bulkCreate needs a non-empty items list",
            ));
        }
        let mut prepared = Vec::with_capacity(payload.items.len());
        for item in &payload.items {
            if item.file_path.is_some() {
                return Err(BindingError::invalid_request(FILE_PATH_REFUSED));
            }
            let key = item
                .key
                .clone()
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let data = match &item.data {
                None | Some(Value::Null) => Bytes::new(),
                Some(Value::String(s)) => Bytes::from(s.clone()),
                Some(other) => Bytes::from(other.to_string()),
            };
            let body = if o.decode_base64 {
                B64.decode(&data).map(Bytes::from).map_err(|e| {
                    BindingError::invalid_request(format!(
                        "s3 binding error: item {key}: decode: {e}"
                    ))
                })?
            } else {
                data
            };
            prepared.push((key, body, item.content_type.clone()));
        }
        let storage_class = o.storage_class.clone();
        let results: Vec<Value> = futures::stream::iter(prepared)
            .map(|(key, body, content_type)| {
                let storage_class = storage_class.clone();
                async move {
                    match self
                        .put(
                            &key,
                            body,
                            content_type.as_deref(),
                            storage_class.as_deref(),
                            None,
                        )
                        .await
                    {
                        Ok((location, version)) => {
                            json!({ "key": key, "location": location, "versionID": version })
                        }
                        Err(e) => json!({ "key": key, "error": e.to_string() }),
                    }
                }
            })
            .buffered(payload.concurrency())
            .collect()
            .await;
        Ok(Some(InvokeResponse::data(
            Value::Array(results).to_string(),
        )))
    }

    async fn bulk_delete(
        &self,
        req: InvokeRequest,
    ) -> Result<Option<InvokeResponse>, BindingError> {
        let payload: BulkPayload = bulk_payload(&req.data, "bulkDelete")?;
        let mut keys = payload.keys().unwrap_or_default();
        if let Some(prefix) = payload.prefix.as_deref().filter(|p| !p.is_empty()) {
            keys.extend(self.keys_with_prefix(prefix).await?);
        }
        if keys.is_empty() {
            return Err(BindingError::invalid_request(
                "s3 binding error: bulkDelete needs keys, items or a prefix",
            ));
        }
        let mut results = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(DELETE_CHUNK) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| BindingError::internal(format!("s3 binding error: {e}")))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(false)
                .build()
                .map_err(|e| BindingError::internal(format!("s3 binding error: {e}")))?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.config.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| sdk_error("s3 binding error: bulk delete failed", e))?;
            let failed: HashMap<&str, String> = out
                .errors()
                .iter()
                .filter_map(|e| {
                    let text = match (e.code(), e.message()) {
                        (Some(c), Some(m)) => format!("{c}: {m}"),
                        (Some(c), None) => c.to_owned(),
                        (None, Some(m)) => m.to_owned(),
                        (None, None) => "delete failed".to_owned(),
                    };
                    e.key().map(|k| (k, text))
                })
                .collect();
            for key in chunk {
                match failed.get(key.as_str()) {
                    Some(err) => results.push(json!({ "key": key, "error": err })),
                    None => results.push(json!({ "key": key })),
                }
            }
        }
        Ok(Some(InvokeResponse::data(
            Value::Array(results).to_string(),
        )))
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, BindingError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.config.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("s3 binding error: list operation failed", e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        Ok(keys)
    }
}

#[async_trait]
impl OutputBinding for S3Output {
    fn operations(&self) -> &[&'static str] {
        SPEC.operations
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(BindingError::closed());
        }
        match req.operation.as_str() {
            "create" => self.create(req).await,
            "get" => self.get(req).await,
            "delete" => self.delete(req).await,
            "list" => self.list(req).await,
            "presign" => self.presign(req).await,
            "bulkGet" => self.bulk_get(req).await,
            "bulkCreate" => self.bulk_create(req).await,
            "bulkDelete" => self.bulk_delete(req).await,
            op => Err(BindingError::unsupported(format!(
                "s3 binding error: unsupported operation {op}"
            ))),
        }
    }

    async fn close(&self) -> Result<(), BindingError> {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }
}

/// Component settings a request may override.
#[derive(Debug, Clone)]
struct Overrides {
    decode_base64: bool,
    encode_base64: bool,
    storage_class: Option<String>,
    presign_ttl: Option<Duration>,
}

impl Overrides {
    fn from(config: &S3Config, md: &HashMap<String, String>) -> Result<Self, BindingError> {
        let flag = |name: &str, default: bool| -> Result<bool, BindingError> {
            match md.get(name).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => parse_truthy(v).ok_or_else(|| {
                    BindingError::invalid_request(format!(
                        "s3 binding error: error merging metadata: {name} {v:?} is not a boolean"
                    ))
                }),
            }
        };
        if md.get("filePath").is_some_and(|v| !v.is_empty()) {
            return Err(BindingError::invalid_request(FILE_PATH_REFUSED));
        }
        let presign_ttl = match md.get("presignTTL").filter(|v| !v.is_empty()) {
            Some(v) => Some(parse_ttl(v).map_err(BindingError::invalid_request)?),
            None => config.presign_ttl,
        };
        Ok(Overrides {
            decode_base64: flag("decodeBase64", config.decode_base64)?,
            encode_base64: flag("encodeBase64", config.encode_base64)?,
            storage_class: md
                .get("storageClass")
                .filter(|v| !v.is_empty())
                .cloned()
                .or_else(|| config.storage_class.clone()),
            presign_ttl,
        })
    }
}

/// The object body from request data: a JSON string is unquoted (the HTTP API re-encodes
/// `data`), then base64-decoded when asked.
fn body_bytes(data: &Bytes, decode_base64: bool) -> Result<Bytes, BindingError> {
    let unquoted = match bindery_core::util::unquote_json_string(data) {
        std::borrow::Cow::Borrowed(_) => data.clone(),
        std::borrow::Cow::Owned(v) => Bytes::from(v),
    };
    if !decode_base64 {
        return Ok(unquoted);
    }
    let trimmed = unquoted.trim_ascii();
    B64.decode(trimmed)
        .map(Bytes::from)
        .map_err(|e| BindingError::invalid_request(format!("s3 binding error: decode: {e}")))
}

/// `k=v,k2=v2` → S3's URL-encoded tag set `k=v&k2=v2`.
fn tagging(tags: &str) -> Result<String, BindingError> {
    const TAG_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let mut out = Vec::new();
    for pair in tags.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(BindingError::invalid_request(format!(
                "s3 binding error: invalid tag {pair:?}: tags are key=value pairs separated by commas"
            )));
        };
        out.push(format!(
            "{}={}",
            utf8_percent_encode(k.trim(), TAG_ESCAPE),
            utf8_percent_encode(v.trim(), TAG_ESCAPE)
        ));
    }
    Ok(out.join("&"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ListPayload {
    marker: String,
    prefix: String,
    max_results: i32,
    delimiter: String,
}

/// A JSON payload where empty data or `null` means "all defaults".
fn parse_payload<T: Default + for<'de> Deserialize<'de>>(data: &[u8]) -> Result<T, String> {
    let text = data.trim_ascii();
    if text.is_empty() || text == b"null" {
        return Ok(T::default());
    }
    // The HTTP API may hand over a JSON string holding the JSON payload.
    let inner = bindery_core::util::unquote_json_string(text);
    serde_json::from_slice(&inner).map_err(|e| e.to_string())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct BulkItem {
    key: Option<String>,
    data: Option<Value>,
    content_type: Option<String>,
    file_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct BulkPayload {
    items: Vec<BulkItem>,
    keys: Vec<String>,
    prefix: Option<String>,
    concurrency: Option<i64>,
}

impl BulkPayload {
    fn concurrency(&self) -> usize {
        self.concurrency
            .filter(|c| *c > 0)
            .map_or(DEFAULT_BULK_CONCURRENCY, |c| c.min(100) as usize)
    }

    /// The keys of `items` then `keys`; an item without a key or with `filePath` is refused.
    fn keys(&self) -> Result<Vec<String>, BindingError> {
        let mut out = Vec::with_capacity(self.items.len() + self.keys.len());
        for item in &self.items {
            if item.file_path.is_some() {
                return Err(BindingError::invalid_request(FILE_PATH_REFUSED));
            }
            match item.key.as_deref().filter(|k| !k.is_empty()) {
                Some(k) => out.push(k.to_owned()),
                None => {
                    return Err(BindingError::invalid_request(
                        "s3 binding error: every item needs a key",
                    ));
                }
            }
        }
        out.extend(self.keys.iter().filter(|k| !k.is_empty()).cloned());
        if out.is_empty() && self.prefix.is_none() {
            return Err(BindingError::invalid_request(
                "s3 binding error: items is required and must not be empty",
            ));
        }
        Ok(out)
    }
}

fn bulk_payload(data: &[u8], op: &str) -> Result<BulkPayload, BindingError> {
    let p: BulkPayload = parse_payload(data).map_err(|e| {
        BindingError::invalid_request(format!("s3 binding error: {op}: unable to parse data: {e}"))
    })?;
    if p.concurrency.is_some_and(|c| c <= 0) {
        return Err(BindingError::invalid_request(format!(
            "s3 binding error: {op}: concurrency must be greater than 0"
        )));
    }
    Ok(p)
}

fn opt_str(v: Option<&str>) -> Value {
    v.map_or(Value::Null, |s| Value::String(s.to_owned()))
}

fn date(v: Option<&aws_smithy_types::DateTime>) -> Value {
    v.and_then(|d| d.fmt(Format::DateTime).ok())
        .map_or(Value::Null, Value::String)
}

/// `ListObjectsOutput` as Dapr returns it: aws-sdk-go's struct marshalled by Go's encoder, so
/// PascalCase field names, every field present, `null` where S3 gave nothing.
fn list_output_json(out: &aws_sdk_s3::operation::list_objects::ListObjectsOutput) -> Value {
    let contents: Vec<Value> = out
        .contents()
        .iter()
        .map(|o| {
            let mut m = BTreeMap::new();
            let algos: Vec<Value> = o
                .checksum_algorithm()
                .iter()
                .map(|a| Value::String(a.as_str().to_owned()))
                .collect();
            m.insert(
                "ChecksumAlgorithm",
                if algos.is_empty() {
                    Value::Null
                } else {
                    Value::Array(algos)
                },
            );
            m.insert(
                "ChecksumType",
                opt_str(o.checksum_type().map(|c| c.as_str())),
            );
            m.insert("ETag", opt_str(o.e_tag()));
            m.insert("Key", opt_str(o.key()));
            m.insert("LastModified", date(o.last_modified()));
            m.insert(
                "Owner",
                o.owner().map_or(
                    Value::Null,
                    |ow| json!({ "DisplayName": ow.display_name(), "ID": ow.id() }),
                ),
            );
            m.insert(
                "RestoreStatus",
                o.restore_status().map_or(Value::Null, |r| {
                    json!({
                        "IsRestoreInProgress": r.is_restore_in_progress(),
                        "RestoreExpiryDate": date(r.restore_expiry_date()),
                    })
                }),
            );
            m.insert("Size", o.size().map_or(Value::Null, Value::from));
            m.insert(
                "StorageClass",
                opt_str(o.storage_class().map(|c| c.as_str())),
            );
            json!(m)
        })
        .collect();
    let prefixes: Vec<Value> = out
        .common_prefixes()
        .iter()
        .map(|p| json!({ "Prefix": p.prefix() }))
        .collect();
    let mut m = BTreeMap::new();
    m.insert(
        "CommonPrefixes",
        if prefixes.is_empty() {
            Value::Null
        } else {
            Value::Array(prefixes)
        },
    );
    m.insert(
        "Contents",
        if contents.is_empty() {
            Value::Null
        } else {
            Value::Array(contents)
        },
    );
    m.insert("Delimiter", opt_str(out.delimiter()));
    m.insert(
        "EncodingType",
        opt_str(out.encoding_type().map(|e| e.as_str())),
    );
    m.insert(
        "IsTruncated",
        out.is_truncated().map_or(Value::Null, Value::Bool),
    );
    m.insert("Marker", opt_str(out.marker()));
    m.insert("MaxKeys", out.max_keys().map_or(Value::Null, Value::from));
    m.insert("Name", opt_str(out.name()));
    m.insert("NextMarker", opt_str(out.next_marker()));
    m.insert("Prefix", opt_str(out.prefix()));
    m.insert(
        "RequestCharged",
        opt_str(out.request_charged().map(|r| r.as_str())),
    );
    json!(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(extra: &[(&str, &str)]) -> Metadata {
        let mut m = Metadata::from_pairs([("bucket", "b1"), ("region", "us-east-1")]);
        for (k, v) in extra {
            m.insert(*k, *v);
        }
        m
    }

    #[test]
    fn defaults_and_every_field() {
        let c = S3Config::parse(&md(&[])).unwrap();
        assert_eq!(c.bucket, "b1");
        assert!(!c.force_path_style && !c.insecure_ssl && !c.decode_base64 && !c.encode_base64);
        assert_eq!(c.presign_ttl, None);
        assert_eq!(c.storage_class, None);

        let c = S3Config::parse(&md(&[
            ("forcePathStyle", "true"),
            ("disableSSL", "yes"),
            ("insecureSSL", "1"),
            ("decodeBase64", "on"),
            ("encodeBase64", "t"),
            ("storageClass", "STANDARD_IA"),
            ("presignTTL", "15m"),
            ("endpoint", "localhost:4566"),
        ]))
        .unwrap();
        assert!(c.force_path_style && c.insecure_ssl && c.decode_base64 && c.encode_base64);
        assert_eq!(c.aws.endpoint.as_deref(), Some("http://localhost:4566"));
        assert_eq!(c.storage_class.as_deref(), Some("STANDARD_IA"));
        assert_eq!(c.presign_ttl, Some(Duration::from_secs(900)));
    }

    #[test]
    fn problems_are_all_reported() {
        let m = Metadata::from_pairs([
            ("forcePathStyle", "perhaps"),
            ("presignTTL", "soon"),
            ("filePath", "/etc/passwd"),
        ]);
        let errs = S3Config::parse(&m).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field().unwrap()).collect();
        assert!(fields.contains(&"bucket"), "{fields:?}");
        assert!(fields.contains(&"forcePathStyle"), "{fields:?}");
        assert!(fields.contains(&"presignTTL"), "{fields:?}");
        assert!(fields.contains(&"filePath"), "{fields:?}");
        let bucket = errs.iter().find(|e| e.field() == Some("bucket")).unwrap();
        assert_eq!(bucket.message(), "s3 binding error: missing bucket name");
    }

    #[test]
    fn locations_follow_the_addressing_style() {
        let mut c = S3Config::parse(&md(&[("endpoint", "http://127.0.0.1:15000")])).unwrap();
        assert_eq!(
            c.location("a b/c.txt"),
            "http://b1.127.0.0.1:15000/a%20b/c.txt"
        );
        c.force_path_style = true;
        assert_eq!(
            c.location("a b/c.txt"),
            "http://127.0.0.1:15000/b1/a%20b/c.txt"
        );
        let c = S3Config::parse(&md(&[("region", "eu-west-1")])).unwrap();
        assert_eq!(c.location("k"), "https://b1.s3.eu-west-1.amazonaws.com/k");
    }

    #[test]
    fn request_metadata_overrides_the_component() {
        let c = S3Config::parse(&md(&[("decodeBase64", "true")])).unwrap();
        let o = Overrides::from(&c, &HashMap::new()).unwrap();
        assert!(o.decode_base64 && !o.encode_base64);
        let req: HashMap<String, String> = [
            ("decodeBase64".to_owned(), "false".to_owned()),
            ("encodeBase64".to_owned(), "true".to_owned()),
            ("presignTTL".to_owned(), "60".to_owned()),
            ("storageClass".to_owned(), "GLACIER".to_owned()),
        ]
        .into();
        let o = Overrides::from(&c, &req).unwrap();
        assert!(!o.decode_base64 && o.encode_base64);
        assert_eq!(o.presign_ttl, Some(Duration::from_secs(60)));
        assert_eq!(o.storage_class.as_deref(), Some("GLACIER"));
        let bad: HashMap<String, String> = [("encodeBase64".to_owned(), "x".to_owned())].into();
        assert!(Overrides::from(&c, &bad).is_err());
        let file: HashMap<String, String> = [("filePath".to_owned(), "/x".to_owned())].into();
        assert_eq!(
            Overrides::from(&c, &file).unwrap_err().message(),
            FILE_PATH_REFUSED
        );
    }

    #[test]
    fn bodies_are_unquoted_then_decoded() {
        assert_eq!(
            body_bytes(&Bytes::from_static(b"\"hello\""), false).unwrap(),
            "hello"
        );
        assert_eq!(
            body_bytes(&Bytes::from_static(b"{\"a\":1}"), false).unwrap(),
            "{\"a\":1}"
        );
        assert_eq!(
            body_bytes(&Bytes::from_static(b"\"aGk=\""), true).unwrap(),
            "hi"
        );
        assert!(body_bytes(&Bytes::from_static(b"not base64!"), true).is_err());
    }

    #[test]
    fn tags_become_a_query_string() {
        assert_eq!(tagging("a=1, b = two words").unwrap(), "a=1&b=two%20words");
        assert!(tagging("novalue").is_err());
        assert_eq!(tagging("k=v=w").unwrap(), "k=v%3Dw");
    }

    #[test]
    fn list_payload_defaults() {
        let p: ListPayload = parse_payload(b"").unwrap();
        assert_eq!(p.max_results, 0);
        let p: ListPayload = parse_payload(b"null").unwrap();
        assert_eq!(p.prefix, "");
        let p: ListPayload =
            parse_payload(br#"{"maxResults":10,"prefix":"p/","marker":"m","delimiter":"/"}"#)
                .unwrap();
        assert_eq!(
            (
                p.max_results,
                p.prefix.as_str(),
                p.marker.as_str(),
                p.delimiter.as_str()
            ),
            (10, "p/", "m", "/")
        );
        assert!(parse_payload::<ListPayload>(b"[1]").is_err());
    }

    #[test]
    fn bulk_payloads() {
        let p = bulk_payload(
            br#"{"items":[{"key":"a"},{"key":"b"}],"concurrency":3}"#,
            "bulkGet",
        )
        .unwrap();
        assert_eq!(p.keys().unwrap(), ["a", "b"]);
        assert_eq!(p.concurrency(), 3);
        let p = bulk_payload(br#"{"keys":["x"]}"#, "bulkDelete").unwrap();
        assert_eq!(p.keys().unwrap(), ["x"]);
        assert_eq!(p.concurrency(), DEFAULT_BULK_CONCURRENCY);
        assert!(bulk_payload(br#"{"items":[],"concurrency":0}"#, "bulkGet").is_err());
        let p = bulk_payload(br#"{"items":[{"key":"a","filePath":"/tmp/a"}]}"#, "bulkGet").unwrap();
        assert!(p.keys().is_err());
        let p = bulk_payload(br#"{"items":[{}]}"#, "bulkGet").unwrap();
        assert!(p.keys().is_err());
    }

    #[test]
    fn list_output_is_pascal_case_with_nulls() {
        let out = aws_sdk_s3::operation::list_objects::ListObjectsOutput::builder()
            .name("b1")
            .max_keys(10)
            .is_truncated(false)
            .contents(
                aws_sdk_s3::types::Object::builder()
                    .key("k")
                    .size(5)
                    .e_tag("\"abc\"")
                    .last_modified(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                    .storage_class(aws_sdk_s3::types::ObjectStorageClass::Standard)
                    .build(),
            )
            .build();
        let v = list_output_json(&out);
        assert_eq!(v["Name"], "b1");
        assert_eq!(v["MaxKeys"], 10);
        assert_eq!(v["IsTruncated"], false);
        assert_eq!(v["Marker"], Value::Null);
        assert_eq!(v["CommonPrefixes"], Value::Null);
        let o = &v["Contents"][0];
        assert_eq!(o["Key"], "k");
        assert_eq!(o["Size"], 5);
        assert_eq!(o["ETag"], "\"abc\"");
        assert_eq!(o["LastModified"], "2023-11-14T22:13:20Z");
        assert_eq!(o["StorageClass"], "STANDARD");
        assert_eq!(o["Owner"], Value::Null);
    }
}
