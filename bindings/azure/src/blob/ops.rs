//! `create`, `get`, `delete` and `presign`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use bindery_core::util::unquote_json_string;
use bindery_core::{BindingError, InvokeRequest, InvokeResponse, parse_duration, parse_truthy};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};
use tokio::io::AsyncWriteExt;
use tracing::{debug, warn};

use super::{BlobStorage, req_md};
use crate::rest::{Call, read_error};

/// Request metadata keys.
pub(crate) const BLOB_NAME: &str = "blobName";
pub(crate) const SIGN_TTL: &str = "signTTL";
pub(crate) const INCLUDE_METADATA: &str = "includeMetadata";
pub(crate) const DELETE_SNAPSHOTS: &str = "deleteSnapshots";
pub(crate) const FILE_PATH: &str = "filePath";

/// Request metadata that becomes a blob property header, and the header.
const PROPERTY_HEADERS: &[(&str, &str)] = &[
    ("contentType", "x-ms-blob-content-type"),
    ("contentMD5", "x-ms-blob-content-md5"),
    ("contentEncoding", "x-ms-blob-content-encoding"),
    ("contentLanguage", "x-ms-blob-content-language"),
    ("contentDisposition", "x-ms-blob-content-disposition"),
    ("cacheControl", "x-ms-blob-cache-control"),
];

/// Request metadata that is neither a property nor blob metadata: the binding's own keys, and
/// what the runtime adds to every call (tracing, gRPC transport headers).
const NOT_BLOB_METADATA: &[&str] = &[
    BLOB_NAME,
    SIGN_TTL,
    FILE_PATH,
    "user-agent",
    "dapr-authority",
    "traceparent",
    "tracestate",
    "baggage",
];

/// Blobs up to this size are uploaded with one request; larger ones in blocks.
pub(crate) const SINGLE_UPLOAD_MAX: usize = 4 * 1024 * 1024;
/// The size of each block of a larger upload.
pub(crate) const BLOCK_SIZE: usize = 4 * 1024 * 1024;
/// How many blocks are uploaded at once.
const BLOCK_CONCURRENCY: usize = 4;

/// What `create` sends besides the data.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct BlobHeaders {
    /// `x-ms-blob-*` property headers.
    pub(crate) properties: Vec<(&'static str, String)>,
    /// The decoded `ContentMD5`, base64 again, for the transactional `Content-MD5` check.
    pub(crate) content_md5: Option<String>,
    /// Blob metadata, sanitized keys.
    pub(crate) metadata: BTreeMap<String, String>,
}

/// Split request metadata into property headers and blob metadata, as Dapr does: property keys
/// match in any case; other keys become metadata with only `[A-Za-z0-9]` kept in their names
/// and non-ASCII characters dropped from their values. Values with line breaks are refused.
pub(crate) fn blob_headers(md: &HashMap<String, String>) -> Result<BlobHeaders, BindingError> {
    let mut out = BlobHeaders::default();
    for (key, value) in md {
        if value.is_empty() {
            continue;
        }
        if let Some((_, header)) = PROPERTY_HEADERS
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
        {
            if *header == "x-ms-blob-content-md5" {
                let ok = base64::engine::general_purpose::STANDARD
                    .decode(value.trim())
                    .is_ok_and(|d| d.len() == 16);
                if !ok {
                    return Err(BindingError::invalid_request(
                        "the MD5 value specified in Content MD5 is invalid, MD5 value must be 128 bits and base64 encoded",
                    ));
                }
                out.content_md5 = Some(value.trim().to_owned());
            }
            check_header_value(key, value)?;
            out.properties.push((header, value.clone()));
            continue;
        }
        let lower = key.to_ascii_lowercase();
        if NOT_BLOB_METADATA
            .iter()
            .any(|k| k.eq_ignore_ascii_case(key))
            || lower.starts_with("dapr-grpc-")
            || lower == "dapr-api-token"
        {
            continue;
        }
        let name: String = key.chars().filter(char::is_ascii_alphanumeric).collect();
        if name.is_empty() {
            warn!(key = %key, "request metadata key has no letters or digits; not stored as blob metadata");
            continue;
        }
        if name != *key {
            warn!(key = %key, sanitized = %name, "metadata key contains disallowed characters, sanitized");
        }
        let v: String = value
            .chars()
            .filter(|c| c.is_ascii() && *c != '\0')
            .collect();
        check_header_value(key, &v)?;
        out.metadata.insert(name, v);
    }
    out.properties.sort();
    Ok(out)
}

fn check_header_value(key: &str, value: &str) -> Result<(), BindingError> {
    if value.contains(['\r', '\n']) {
        return Err(BindingError::invalid_request(format!(
            "request metadata {key} contains a line break, which blob headers cannot carry"
        )));
    }
    Ok(())
}

impl BlobHeaders {
    /// Add the property and metadata headers to `call`.
    pub(crate) fn apply(&self, mut call: Call) -> Result<Call, BindingError> {
        for (h, v) in &self.properties {
            call = call.header(h, v)?;
        }
        for (k, v) in &self.metadata {
            call = call.header(&format!("x-ms-meta-{k}"), v)?;
        }
        Ok(call)
    }
}

/// A signed-URL lifetime: a Go duration or whole seconds, above zero.
pub(crate) fn parse_sign_ttl(v: &str) -> Result<Duration, BindingError> {
    let d = parse_duration(v, Duration::from_secs(1))
        .map_err(|e| BindingError::invalid_request(format!("invalid signTTL: {e}")))?;
    if d.is_zero() {
        return Err(BindingError::invalid_request(
            "invalid signTTL: it must be above zero",
        ));
    }
    Ok(d)
}

/// Upload `data` to `url` as a block blob: one request up to [`SINGLE_UPLOAD_MAX`], else
/// blocks of [`BLOCK_SIZE`] (several at once) and a block list.
pub(crate) async fn upload(
    blob: &BlobStorage,
    url: &Url,
    data: Bytes,
    headers: &BlobHeaders,
) -> Result<(), BindingError> {
    let context = "error uploading az blob";
    if data.len() <= SINGLE_UPLOAD_MAX {
        let mut call = Call::new(Method::PUT, url.clone())
            .header("x-ms-blob-type", "BlockBlob")?
            .body(data);
        call = headers.apply(call)?;
        if let Some(md5) = &headers.content_md5 {
            // The service checks the data against it, as Dapr's upload does.
            call = call.header("Content-MD5", md5)?;
        }
        let sent = blob.client.send(&call).await?;
        if sent.response.status().is_success() {
            return Ok(());
        }
        return Err(blob.client.status_error(context, sent.response).await);
    }
    let count = data.len().div_ceil(BLOCK_SIZE);
    let ids: Vec<String> = (0..count)
        .map(|i| base64::engine::general_purpose::STANDARD.encode(format!("bindery-block-{i:08}")))
        .collect();
    let mut puts = Vec::with_capacity(count);
    for (i, id) in ids.iter().enumerate() {
        let start = i * BLOCK_SIZE;
        let end = (start + BLOCK_SIZE).min(data.len());
        let chunk = data.slice(start..end);
        let mut block_url = url.clone();
        block_url
            .query_pairs_mut()
            .append_pair("comp", "block")
            .append_pair("blockid", id);
        puts.push(put_block(blob, block_url, chunk));
    }
    let results: Vec<Result<(), BindingError>> = futures::stream::iter(puts)
        .buffer_unordered(BLOCK_CONCURRENCY)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let mut list = String::from(r#"<?xml version="1.0" encoding="utf-8"?><BlockList>"#);
    for id in &ids {
        list.push_str("<Latest>");
        list.push_str(id);
        list.push_str("</Latest>");
    }
    list.push_str("</BlockList>");
    let mut commit_url = url.clone();
    commit_url
        .query_pairs_mut()
        .append_pair("comp", "blocklist");
    let call = headers.apply(
        Call::new(Method::PUT, commit_url)
            .header("Content-Type", "application/xml")?
            .body(list),
    )?;
    let sent = blob.client.send(&call).await?;
    if sent.response.status().is_success() {
        debug!(
            blocks = count,
            bytes = data.len(),
            "uploaded blob in blocks"
        );
        Ok(())
    } else {
        Err(blob.client.status_error(context, sent.response).await)
    }
}

async fn put_block(blob: &BlobStorage, url: Url, chunk: Bytes) -> Result<(), BindingError> {
    let call = Call::new(Method::PUT, url).body(chunk);
    let sent = blob.client.send(&call).await?;
    if sent.response.status().is_success() {
        Ok(())
    } else {
        Err(blob
            .client
            .status_error("error uploading az blob", sent.response)
            .await)
    }
}

/// Where a download goes.
pub(crate) enum Sink {
    /// Collected in memory.
    Memory(BytesMut),
    /// Written to a file.
    File(tokio::fs::File),
}

impl Sink {
    async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Memory(b) => {
                b.extend_from_slice(chunk);
                Ok(())
            }
            Sink::File(f) => f.write_all(chunk).await,
        }
    }
}

/// What a download learnt besides the data.
pub(crate) struct Downloaded {
    pub(crate) headers: HeaderMap,
}

/// The reason a download failed.
pub(crate) enum DownloadError {
    /// The blob does not exist.
    NotFound,
    /// Anything else.
    Other(BindingError),
}

impl From<BindingError> for DownloadError {
    fn from(e: BindingError) -> Self {
        DownloadError::Other(e)
    }
}

/// Download `url` into `sink`, chunk by chunk. When the connection breaks mid-body the rest is
/// requested again from where it stopped (`Range`, pinned to the same version with `If-Match`),
/// up to `retryCount` times.
pub(crate) async fn download(
    blob: &BlobStorage,
    url: &Url,
    sink: &mut Sink,
) -> Result<Downloaded, DownloadError> {
    let context = "error downloading az blob";
    let sent = blob
        .client
        .send(&Call::new(Method::GET, url.clone()))
        .await?;
    let mut resp = sent.response;
    if resp.status() == StatusCode::NOT_FOUND {
        let (code, _) = read_error(resp).await;
        return match code.as_deref() {
            Some("BlobNotFound") | None => Err(DownloadError::NotFound),
            Some(c) => Err(DownloadError::Other(BindingError::not_found(format!(
                "{context}: 404 {c}"
            )))),
        };
    }
    if !resp.status().is_success() {
        return Err(blob.client.status_error(context, resp).await.into());
    }
    let headers = resp.headers().clone();
    let etag = headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let expected = resp.content_length();
    if let (Sink::Memory(b), Some(n)) = (&mut *sink, expected) {
        b.reserve(usize::try_from(n).unwrap_or(0).min(64 * 1024 * 1024));
    }
    let mut offset: u64 = 0;
    let mut resumes = 0u32;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                sink.write(&chunk).await.map_err(|e| {
                    BindingError::internal(format!("{context}: writing the data failed: {e}"))
                })?;
                offset += chunk.len() as u64;
            }
            Ok(None) => break,
            Err(e) if resumes < blob.config.retry_count => {
                resumes += 1;
                debug!(error = %e, offset, "blob download broke off; resuming");
                let mut call = Call::new(Method::GET, url.clone())
                    .header("Range", &format!("bytes={offset}-"))?;
                if let Some(tag) = &etag {
                    call = call.header("If-Match", tag)?;
                }
                let sent = blob.client.send(&call).await?;
                if sent.response.status() != StatusCode::PARTIAL_CONTENT {
                    return Err(blob
                        .client
                        .status_error(
                            &format!("{context}: resuming at byte {offset}"),
                            sent.response,
                        )
                        .await
                        .into());
                }
                resp = sent.response;
            }
            Err(e) => return Err(blob.client.transport_error(url, &e).into()),
        }
    }
    if let Some(n) = expected.filter(|n| *n != offset) {
        return Err(BindingError::unavailable(format!(
            "{context}: the blob has {n} bytes but {offset} arrived"
        ))
        .into());
    }
    Ok(Downloaded { headers })
}

/// Blob metadata from `x-ms-meta-*` response headers, names as Dapr (Go) reports them: first
/// letter upper case, the rest lower case.
pub(crate) fn metadata_from_headers(headers: &HeaderMap) -> HashMap<String, String> {
    headers
        .iter()
        .filter_map(|(k, v)| {
            let name = k.as_str().strip_prefix("x-ms-meta-")?;
            let value = v.to_str().ok()?;
            Some((go_canonical(name), value.to_owned()))
        })
        .collect()
}

/// Go's canonical header form for a name without dashes: `custom` → `Custom`.
pub(crate) fn go_canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c.to_ascii_lowercase());
        }
        upper = c == '-';
    }
    out
}

impl BlobStorage {
    pub(crate) async fn create(
        &self,
        req: InvokeRequest,
    ) -> Result<Option<InvokeResponse>, BindingError> {
        let name = match req_md(&req.metadata, BLOB_NAME) {
            Some(n) => n.to_owned(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let url = self.blob_url(&name)?;
        let headers = blob_headers(&req.metadata)?;
        let sign_ttl = req_md(&req.metadata, SIGN_TTL)
            .map(parse_sign_ttl)
            .transpose()?;
        let data = self.decode(req.data)?;
        upload(self, &url, data, &headers).await?;
        let mut body = serde_json::json!({
            "blobURL": url.as_str(),
            "blobName": name,
        });
        if let Some(ttl) = sign_ttl {
            body["presignURL"] = serde_json::Value::String(self.presign_url(&name, ttl)?);
        }
        Ok(Some(
            InvokeResponse::data(body.to_string()).with_metadata(BLOB_NAME, name),
        ))
    }

    /// The data `create` stores: a JSON string unquoted, then base64-decoded when
    /// `decodeBase64` is set.
    pub(crate) fn decode(&self, data: Bytes) -> Result<Bytes, BindingError> {
        let data = match unquote_json_string(&data) {
            std::borrow::Cow::Borrowed(_) => data,
            std::borrow::Cow::Owned(v) => Bytes::from(v),
        };
        if !self.config.decode_base64 {
            return Ok(data);
        }
        base64::engine::general_purpose::STANDARD
            .decode(&data)
            .map(Bytes::from)
            .map_err(|e| {
                BindingError::invalid_request(format!(
                    "decodeBase64 is set but the data is not valid base64: {e}"
                ))
            })
    }

    pub(crate) async fn get(
        &self,
        req: InvokeRequest,
    ) -> Result<Option<InvokeResponse>, BindingError> {
        let name = req_md(&req.metadata, BLOB_NAME)
            .ok_or_else(|| BindingError::invalid_request("blobName is a required attribute"))?;
        let url = self.blob_url(name)?;
        let include_metadata = match req_md(&req.metadata, INCLUDE_METADATA) {
            None => false,
            Some(v) => parse_truthy(v).ok_or_else(|| {
                BindingError::invalid_request(format!(
                    "error parsing metadata: includeMetadata {v:?} is not a boolean"
                ))
            })?,
        };
        if let Some(path) = req_md(&req.metadata, FILE_PATH) {
            let path = PathBuf::from(path);
            self.get_to_file(&url, &path).await?;
            return Ok(Some(
                InvokeResponse::default()
                    .with_metadata(FILE_PATH, path.to_string_lossy().into_owned()),
            ));
        }
        let mut sink = Sink::Memory(BytesMut::new());
        let got = match download(self, &url, &mut sink).await {
            Ok(d) => d,
            Err(DownloadError::NotFound) => return Err(BindingError::not_found("blob not found")),
            Err(DownloadError::Other(e)) => return Err(e),
        };
        let Sink::Memory(data) = sink else {
            return Err(BindingError::internal("download went to a file"));
        };
        let mut resp = InvokeResponse::data(data.freeze());
        resp.content_type = got
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if include_metadata {
            resp.metadata = metadata_from_headers(&got.headers);
        }
        Ok(Some(resp))
    }

    /// Stream a blob into `path` (parent folders created); a partial file is removed on error.
    pub(crate) async fn get_to_file(&self, url: &Url, path: &Path) -> Result<(), BindingError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent).await.map_err(|e| {
                BindingError::invalid_request(format!(
                    "error creating directory for {:?}: {e}",
                    path.display().to_string()
                ))
            })?;
        }
        let file = tokio::fs::File::create(path).await.map_err(|e| {
            BindingError::invalid_request(format!(
                "error creating file {:?}: {e}",
                path.display().to_string()
            ))
        })?;
        let mut sink = Sink::File(file);
        let result = download(self, url, &mut sink).await;
        let flushed = match &mut sink {
            Sink::File(f) => f.flush().await,
            Sink::Memory(_) => Ok(()),
        };
        drop(sink);
        let outcome = match (result, flushed) {
            (Ok(_), Ok(())) => Ok(()),
            (Ok(_), Err(e)) => Err(BindingError::internal(format!(
                "error writing {:?}: {e}",
                path.display().to_string()
            ))),
            (Err(DownloadError::NotFound), _) => Err(BindingError::not_found("blob not found")),
            (Err(DownloadError::Other(e)), _) => Err(e),
        };
        if outcome.is_err() {
            let _ = tokio::fs::remove_file(path).await;
        }
        outcome
    }

    pub(crate) async fn delete(
        &self,
        req: InvokeRequest,
    ) -> Result<Option<InvokeResponse>, BindingError> {
        let name = req_md(&req.metadata, BLOB_NAME)
            .ok_or_else(|| BindingError::invalid_request("blobName is a required attribute"))?;
        let snapshots = req_md(&req.metadata, DELETE_SNAPSHOTS)
            .map(parse_delete_snapshots)
            .transpose()?;
        self.delete_blob(name, snapshots).await.map(|()| None)
    }

    /// Delete one blob; a blob already gone after a retried attempt counts as deleted.
    pub(crate) async fn delete_blob(
        &self,
        name: &str,
        snapshots: Option<&'static str>,
    ) -> Result<(), BindingError> {
        let url = self.blob_url(name)?;
        let mut call = Call::new(Method::DELETE, url);
        if let Some(s) = snapshots {
            call = call.header("x-ms-delete-snapshots", s)?;
        }
        let sent = self.client.send(&call).await?;
        let status = sent.response.status();
        if status.is_success() {
            return Ok(());
        }
        if status == StatusCode::NOT_FOUND {
            let (code, message) = read_error(sent.response).await;
            if sent.maybe_applied_before {
                return Ok(());
            }
            return match code.as_deref() {
                Some("BlobNotFound") | None => Err(BindingError::not_found("blob not found")),
                Some(c) => Err(BindingError::not_found(format!(
                    "error deleting az blob: 404 {c}: {}",
                    message.unwrap_or_default()
                ))),
            };
        }
        Err(self
            .client
            .status_error("error deleting az blob", sent.response)
            .await)
    }

    pub(crate) fn presign(
        &self,
        req: &InvokeRequest,
    ) -> Result<Option<InvokeResponse>, BindingError> {
        let name = req_md(&req.metadata, BLOB_NAME)
            .ok_or_else(|| BindingError::invalid_request("blobName is a required attribute"))?;
        let ttl = req_md(&req.metadata, SIGN_TTL).ok_or_else(|| {
            BindingError::invalid_request("signTTL is required to presign a blob")
        })?;
        let url = self.presign_url(name, parse_sign_ttl(ttl)?)?;
        let body = serde_json::json!({ "presignURL": url });
        Ok(Some(InvokeResponse::data(body.to_string())))
    }

    /// A read-only URL for blob `name`, valid for `ttl`.
    pub(crate) fn presign_url(&self, name: &str, ttl: Duration) -> Result<String, BindingError> {
        let url = self.blob_url(name)?;
        let ttl = chrono::Duration::from_std(ttl)
            .map_err(|_| BindingError::invalid_request("invalid signTTL: too long"))?;
        let expiry = chrono::Utc::now()
            .checked_add_signed(ttl)
            .ok_or_else(|| BindingError::invalid_request("invalid signTTL: too long"))?;
        let sas =
            crate::sign::blob_read_sas(&self.config.key, &self.config.container, name, expiry);
        Ok(format!("{url}?{sas}"))
    }
}

/// `deleteSnapshots`: `include` or `only`.
pub(crate) fn parse_delete_snapshots(v: &str) -> Result<&'static str, BindingError> {
    match v {
        "include" => Ok("include"),
        "only" => Ok("only"),
        other => Err(BindingError::invalid_request(format!(
            "invalid delete snapshot option type: {other}; allowed: [include only]"
        ))),
    }
}
