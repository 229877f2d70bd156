//! `bulkGet`, `bulkCreate` and `bulkDelete`: many blobs in one call, several at a time, each
//! item answering for itself.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use bindery_core::util::unquote_json_string;
use bindery_core::{BindingError, InvokeRequest, InvokeResponse};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::BlobStorage;
use super::ops::{BlobHeaders, DownloadError, Sink, download, parse_delete_snapshots, upload};

/// How many items are worked on at once unless the request says.
const DEFAULT_CONCURRENCY: i64 = 10;

fn parse<T: for<'de> Deserialize<'de> + Default>(op: &str, data: &[u8]) -> Result<T, BindingError> {
    let data = unquote_json_string(data);
    let text = std::str::from_utf8(&data)
        .map_err(|_| {
            BindingError::invalid_request(format!("error parsing {op} payload: not UTF-8"))
        })?
        .trim();
    if text.is_empty() || text == "null" {
        return Ok(T::default());
    }
    serde_json::from_str(text)
        .map_err(|e| BindingError::invalid_request(format!("error parsing {op} payload: {e}")))
}

fn concurrency(v: Option<i64>) -> Result<usize, BindingError> {
    match v.unwrap_or(DEFAULT_CONCURRENCY) {
        n if n <= 0 => Err(BindingError::invalid_request(
            "concurrency must be greater than 0",
        )),
        n => Ok(usize::try_from(n.min(256)).unwrap_or(256)),
    }
}

fn number(n: usize) -> (String, String) {
    ("number".to_owned(), n.to_string())
}

/// `dir` joined with a blob name, never leaving `dir` (leading `/` and `..` are refused or
/// dropped, as a secure join does).
pub(crate) fn safe_join(dir: &Path, name: &str) -> Result<PathBuf, BindingError> {
    let mut out = dir.to_path_buf();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                return Err(BindingError::invalid_request(format!(
                    "unsafe blob name {name:?}: it climbs out of destinationDir"
                )));
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BulkGetItem {
    #[serde(rename = "blobName", alias = "BlobName")]
    blob_name: String,
    #[serde(rename = "filePath", alias = "FilePath")]
    file_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BulkGetPayload {
    #[serde(alias = "Items")]
    items: Vec<BulkGetItem>,
    #[serde(alias = "Prefix")]
    prefix: Option<String>,
    #[serde(rename = "destinationDir", alias = "DestinationDir")]
    destination_dir: Option<String>,
    #[serde(alias = "Concurrency")]
    concurrency: Option<i64>,
}

#[derive(Debug, Serialize)]
struct BulkGetResult {
    #[serde(rename = "blobName")]
    blob_name: String,
    #[serde(rename = "filePath", skip_serializing_if = "String::is_empty")]
    file_path: String,
    /// Base64, as Go marshals `[]byte`.
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    error: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BulkCreateItem {
    #[serde(rename = "blobName", alias = "BlobName")]
    blob_name: String,
    #[serde(rename = "sourcePath", alias = "SourcePath")]
    source_path: String,
    #[serde(alias = "Data")]
    data: Option<String>,
    #[serde(rename = "contentType", alias = "ContentType")]
    content_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BulkCreatePayload {
    #[serde(alias = "Items")]
    items: Vec<BulkCreateItem>,
    #[serde(alias = "Concurrency")]
    concurrency: Option<i64>,
}

#[derive(Debug, Serialize)]
struct BulkCreateResult {
    #[serde(rename = "blobName")]
    blob_name: String,
    #[serde(rename = "blobURL", skip_serializing_if = "String::is_empty")]
    blob_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    error: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BulkDeletePayload {
    #[serde(alias = "Prefix")]
    prefix: Option<String>,
    #[serde(rename = "blobNames", alias = "BlobNames")]
    blob_names: Vec<String>,
    #[serde(rename = "deleteSnapshots", alias = "DeleteSnapshots")]
    delete_snapshots: Option<String>,
    #[serde(alias = "Concurrency")]
    concurrency: Option<i64>,
}

#[derive(Debug, Serialize)]
struct BulkDeleteResult {
    #[serde(rename = "blobName")]
    blob_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    error: String,
}

fn error_text(e: &BindingError) -> String {
    e.to_string()
}

impl BlobStorage {
    /// Every blob name under `prefix`.
    async fn names_under(&self, prefix: &str) -> Result<Vec<String>, BindingError> {
        let (items, _, _) = self.list_blobs(prefix, "", None, u64::MAX).await?;
        Ok(items
            .iter()
            .filter_map(|i| i["Name"].as_str().map(str::to_owned))
            .collect())
    }

    pub(crate) async fn bulk_get(
        &self,
        req: InvokeRequest,
    ) -> Result<Option<InvokeResponse>, BindingError> {
        let payload: BulkGetPayload = parse("bulkGet", &req.data)?;
        let limit = concurrency(payload.concurrency)?;
        let mut work: Vec<(String, Option<PathBuf>)> = Vec::new();
        let mut explicit = HashSet::new();
        for item in &payload.items {
            if item.blob_name.is_empty() {
                continue;
            }
            explicit.insert(item.blob_name.clone());
            work.push((
                item.blob_name.clone(),
                item.file_path
                    .as_ref()
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from),
            ));
        }
        if let Some(prefix) = payload.prefix.as_deref().filter(|p| !p.is_empty()) {
            let dir = payload
                .destination_dir
                .as_deref()
                .filter(|d| !d.is_empty())
                .ok_or_else(|| {
                    BindingError::invalid_request("destinationDir is required when using prefix")
                })?;
            let mut seen = HashSet::new();
            for name in self.names_under(prefix).await? {
                if explicit.contains(&name) || !seen.insert(name.clone()) {
                    continue;
                }
                let path = safe_join(Path::new(dir), &name)?;
                work.push((name, Some(path)));
            }
        }
        if work.is_empty() {
            return Err(BindingError::invalid_request(
                "at least one of items or prefix is required",
            ));
        }
        let results: Vec<BulkGetResult> =
            futures::stream::iter(work.into_iter().map(|(name, path)| async move {
                let mut result = BulkGetResult {
                    blob_name: name.clone(),
                    file_path: String::new(),
                    data: None,
                    error: String::new(),
                };
                let url = match self.blob_url(&name) {
                    Ok(u) => u,
                    Err(e) => {
                        result.error = error_text(&e);
                        return result;
                    }
                };
                match path {
                    Some(path) => match self.get_to_file(&url, &path).await {
                        Ok(()) => result.file_path = path.to_string_lossy().into_owned(),
                        Err(e) => result.error = error_text(&e),
                    },
                    None => {
                        let mut sink = Sink::Memory(BytesMut::new());
                        match download(self, &url, &mut sink).await {
                            Ok(_) => {
                                if let Sink::Memory(b) = sink {
                                    result.data =
                                        Some(base64::engine::general_purpose::STANDARD.encode(&b));
                                }
                            }
                            Err(DownloadError::NotFound) => result.error = "blob not found".into(),
                            Err(DownloadError::Other(e)) => result.error = error_text(&e),
                        }
                    }
                }
                result
            }))
            .buffered(limit)
            .collect()
            .await;
        let (k, v) = number(results.len());
        let body = serde_json::to_string(&results).map_err(|e| {
            BindingError::internal(format!("error marshalling bulkGet response: {e}"))
        })?;
        Ok(Some(InvokeResponse::data(body).with_metadata(k, v)))
    }

    pub(crate) async fn bulk_create(
        &self,
        req: InvokeRequest,
    ) -> Result<Option<InvokeResponse>, BindingError> {
        let payload: BulkCreatePayload = parse("bulkCreate", &req.data)?;
        if payload.items.is_empty() {
            return Err(BindingError::invalid_request(
                "items array must not be empty",
            ));
        }
        for (i, item) in payload.items.iter().enumerate() {
            if item.blob_name.is_empty() {
                return Err(BindingError::invalid_request(format!(
                    "item at index {i} is missing blobName"
                )));
            }
            if item.source_path.is_empty() && item.data.is_none() {
                return Err(BindingError::invalid_request(format!(
                    "item at index {i} is missing both data and sourcePath"
                )));
            }
        }
        let limit = concurrency(payload.concurrency)?;
        let results: Vec<BulkCreateResult> =
            futures::stream::iter(payload.items.into_iter().map(|item| async move {
                let mut result = BulkCreateResult {
                    blob_name: item.blob_name.clone(),
                    blob_url: String::new(),
                    error: String::new(),
                };
                match self.create_one(&item).await {
                    Ok(url) => result.blob_url = url,
                    Err(e) => result.error = error_text(&e),
                }
                result
            }))
            .buffered(limit)
            .collect()
            .await;
        let (k, v) = number(results.len());
        let body = serde_json::to_string(&results).map_err(|e| {
            BindingError::internal(format!("error marshalling bulkCreate response: {e}"))
        })?;
        Ok(Some(InvokeResponse::data(body).with_metadata(k, v)))
    }

    async fn create_one(&self, item: &BulkCreateItem) -> Result<String, BindingError> {
        let url = self.blob_url(&item.blob_name)?;
        let mut headers = BlobHeaders::default();
        if let Some(ct) = item.content_type.as_deref().filter(|c| !c.is_empty()) {
            headers
                .properties
                .push(("x-ms-blob-content-type", ct.to_owned()));
        }
        let data = match &item.data {
            Some(d) => {
                let bytes = Bytes::from(d.clone().into_bytes());
                if self.config.decode_base64 {
                    base64::engine::general_purpose::STANDARD
                        .decode(&bytes)
                        .map(Bytes::from)
                        .map_err(|e| {
                            BindingError::invalid_request(format!(
                                "error uploading blob: data is not valid base64: {e}"
                            ))
                        })?
                } else {
                    bytes
                }
            }
            None => self.read_source(&item.source_path).await?,
        };
        upload(self, &url, data, &headers)
            .await
            .map_err(|e| BindingError::new(e.kind(), format!("error uploading blob: {e}")))?;
        Ok(url.to_string())
    }

    /// The content of `sourcePath` (base64-decoded with `decodeBase64`).
    async fn read_source(&self, path: &str) -> Result<Bytes, BindingError> {
        let mut f = tokio::fs::File::open(path).await.map_err(|e| {
            BindingError::invalid_request(format!("error opening source file: {e}"))
        })?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).await.map_err(|e| {
            BindingError::invalid_request(format!("error reading source file: {e}"))
        })?;
        if self.config.decode_base64 {
            let text: Vec<u8> = buf
                .into_iter()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            return base64::engine::general_purpose::STANDARD
                .decode(text)
                .map(Bytes::from)
                .map_err(|e| {
                    BindingError::invalid_request(format!(
                        "error uploading blob: source file is not valid base64: {e}"
                    ))
                });
        }
        Ok(Bytes::from(buf))
    }

    pub(crate) async fn bulk_delete(
        &self,
        req: InvokeRequest,
    ) -> Result<Option<InvokeResponse>, BindingError> {
        let payload: BulkDeletePayload = parse("bulkDelete", &req.data)?;
        let snapshots = payload
            .delete_snapshots
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(parse_delete_snapshots)
            .transpose()?;
        let limit = concurrency(payload.concurrency)?;
        let mut seen = HashSet::new();
        let mut names = Vec::new();
        for n in payload.blob_names {
            if !n.is_empty() && seen.insert(n.clone()) {
                names.push(n);
            }
        }
        if let Some(prefix) = payload.prefix.as_deref().filter(|p| !p.is_empty()) {
            for n in self.names_under(prefix).await? {
                if seen.insert(n.clone()) {
                    names.push(n);
                }
            }
        }
        if names.is_empty() {
            return Err(BindingError::invalid_request(
                "at least one of prefix or blobNames is required",
            ));
        }
        let results: Vec<BulkDeleteResult> =
            futures::stream::iter(names.into_iter().map(|name| async move {
                let error = match self.delete_blob(&name, snapshots).await {
                    Ok(()) => String::new(),
                    Err(e) => error_text(&e),
                };
                BulkDeleteResult {
                    blob_name: name,
                    error,
                }
            }))
            .buffered(limit)
            .collect()
            .await;
        let (k, v) = number(results.len());
        let body = serde_json::to_string(&results).map_err(|e| {
            BindingError::internal(format!("error marshalling bulkDelete response: {e}"))
        })?;
        Ok(Some(InvokeResponse::data(body).with_metadata(k, v)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn joins_stay_inside() {
        let d = Path::new("/tmp/out");
        assert_eq!(
            safe_join(d, "a/b.txt").unwrap(),
            PathBuf::from("/tmp/out/a/b.txt")
        );
        assert_eq!(
            safe_join(d, "/abs/x").unwrap(),
            PathBuf::from("/tmp/out/abs/x")
        );
        assert_eq!(safe_join(d, "./x").unwrap(), PathBuf::from("/tmp/out/x"));
        assert!(safe_join(d, "../etc/passwd").is_err());
        assert!(safe_join(d, "a/../../b").is_err());
    }

    #[test]
    fn payloads_and_concurrency() {
        let p: BulkGetPayload = parse("bulkGet", br#"{"items":[{"blobName":"a","filePath":"/x"}],"prefix":"p","destinationDir":"/d","concurrency":3}"#).unwrap();
        assert_eq!(p.items[0].blob_name, "a");
        assert_eq!(p.items[0].file_path.as_deref(), Some("/x"));
        assert_eq!(p.concurrency, Some(3));
        let p: BulkDeletePayload = parse("bulkDelete", b"null").unwrap();
        assert!(p.blob_names.is_empty());
        assert!(parse::<BulkCreatePayload>("bulkCreate", b"{").is_err());
        assert_eq!(concurrency(None).unwrap(), 10);
        assert!(concurrency(Some(0)).is_err());
        assert_eq!(concurrency(Some(5)).unwrap(), 5);
        let r = BulkGetResult {
            blob_name: "a".into(),
            file_path: String::new(),
            data: None,
            error: String::new(),
        };
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"blobName":"a"}"#);
    }
}
