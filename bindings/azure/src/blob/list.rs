//! `list`: the List Blobs XML turned into the JSON Dapr returns (the Go SDK's `BlobItem`
//! marshalled with its Go field names).

use bindery_core::util::unquote_json_string;
use bindery_core::{BindingError, InvokeRequest, InvokeResponse};
use chrono::{DateTime, SecondsFormat};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::BlobStorage;
use crate::rest::Call;
use crate::xml::{child_text, parse};

/// Default and per-page maximum of `maxResults`.
pub(crate) const MAX_RESULTS: u32 = 5000;

/// The `list` request data.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub(crate) struct ListPayload {
    pub(crate) marker: String,
    pub(crate) prefix: String,
    #[serde(rename = "maxResults")]
    pub(crate) max_results: i64,
    pub(crate) include: ListInclude,
}

/// `include` of the `list` request data.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub(crate) struct ListInclude {
    pub(crate) copy: bool,
    pub(crate) metadata: bool,
    pub(crate) snapshots: bool,
    #[serde(rename = "uncommittedBlobs")]
    pub(crate) uncommitted_blobs: bool,
    pub(crate) deleted: bool,
}

impl ListPayload {
    /// Parse the request data: empty or `null` means defaults; a JSON string holding the
    /// object is accepted too.
    pub(crate) fn parse(data: &[u8]) -> Result<Self, BindingError> {
        let data = unquote_json_string(data);
        let text = std::str::from_utf8(&data)
            .map_err(|_| BindingError::invalid_request("list: the data is not UTF-8 JSON"))?
            .trim();
        if text.is_empty() || text == "null" {
            return Ok(ListPayload::default());
        }
        serde_json::from_str(text).map_err(|e| {
            BindingError::invalid_request(format!(
                "list: the data is not a valid list request: {e}"
            ))
        })
    }

    /// The service's `include` parameter.
    fn include(&self) -> Option<String> {
        let i = &self.include;
        let parts: Vec<&str> = [
            (i.copy, "copy"),
            (i.metadata, "metadata"),
            (i.snapshots, "snapshots"),
            (i.uncommitted_blobs, "uncommittedblobs"),
            (i.deleted, "deleted"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        (!parts.is_empty()).then(|| parts.join(","))
    }
}

/// One page of List Blobs: the items as JSON and the next marker.
pub(crate) fn parse_page(xml: &str) -> Result<(Vec<Value>, String), String> {
    let doc = parse(xml)?;
    let root = doc.root_element();
    let next = child_text(root, "NextMarker").unwrap_or("").to_owned();
    let mut items = Vec::new();
    if let Some(blobs) = root.children().find(|n| n.has_tag_name("Blobs")) {
        for b in blobs.children().filter(|n| n.has_tag_name("Blob")) {
            items.push(blob_item(b));
        }
    }
    Ok((items, next))
}

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Time,
    Int,
    Bool,
}

/// `BlobProperties` fields: (XML element, Go field, type).
const PROPERTIES: &[(&str, &str, Kind)] = &[
    ("Etag", "ETag", Kind::Str),
    ("Last-Modified", "LastModified", Kind::Time),
    ("AccessTier", "AccessTier", Kind::Str),
    ("AccessTierChangeTime", "AccessTierChangeTime", Kind::Time),
    ("AccessTierInferred", "AccessTierInferred", Kind::Bool),
    ("ArchiveStatus", "ArchiveStatus", Kind::Str),
    ("x-ms-blob-sequence-number", "BlobSequenceNumber", Kind::Int),
    ("BlobType", "BlobType", Kind::Str),
    ("Cache-Control", "CacheControl", Kind::Str),
    ("Content-Disposition", "ContentDisposition", Kind::Str),
    ("Content-Encoding", "ContentEncoding", Kind::Str),
    ("Content-Language", "ContentLanguage", Kind::Str),
    ("Content-Length", "ContentLength", Kind::Int),
    ("Content-MD5", "ContentMD5", Kind::Str),
    ("Content-Type", "ContentType", Kind::Str),
    ("CopyCompletionTime", "CopyCompletionTime", Kind::Time),
    ("CopyId", "CopyID", Kind::Str),
    ("CopyProgress", "CopyProgress", Kind::Str),
    ("CopySource", "CopySource", Kind::Str),
    ("CopyStatus", "CopyStatus", Kind::Str),
    ("CopyStatusDescription", "CopyStatusDescription", Kind::Str),
    ("Creation-Time", "CreationTime", Kind::Time),
    (
        "CustomerProvidedKeySha256",
        "CustomerProvidedKeySHA256",
        Kind::Str,
    ),
    ("DeletedTime", "DeletedTime", Kind::Time),
    ("CopyDestinationSnapshot", "DestinationSnapshot", Kind::Str),
    ("EncryptionScope", "EncryptionScope", Kind::Str),
    ("Expiry-Time", "ExpiresOn", Kind::Time),
    (
        "ImmutabilityPolicyUntilDate",
        "ImmutabilityPolicyExpiresOn",
        Kind::Time,
    ),
    (
        "ImmutabilityPolicyMode",
        "ImmutabilityPolicyMode",
        Kind::Str,
    ),
    ("IncrementalCopy", "IncrementalCopy", Kind::Bool),
    ("Sealed", "IsSealed", Kind::Bool),
    ("LastAccessTime", "LastAccessedOn", Kind::Time),
    ("LeaseDuration", "LeaseDuration", Kind::Str),
    ("LeaseState", "LeaseState", Kind::Str),
    ("LeaseStatus", "LeaseStatus", Kind::Str),
    ("LegalHold", "LegalHold", Kind::Bool),
    ("RehydratePriority", "RehydratePriority", Kind::Str),
    (
        "RemainingRetentionDays",
        "RemainingRetentionDays",
        Kind::Int,
    ),
    ("ServerEncrypted", "ServerEncrypted", Kind::Bool),
    ("TagCount", "TagCount", Kind::Int),
];

fn typed(kind: Kind, text: &str) -> Value {
    let t = text.trim();
    match kind {
        Kind::Str => {
            if t.is_empty() {
                Value::Null
            } else {
                Value::String(text.to_owned())
            }
        }
        Kind::Time => DateTime::parse_from_rfc2822(t)
            .map(|d| {
                Value::String(
                    d.with_timezone(&chrono::Utc)
                        .to_rfc3339_opts(SecondsFormat::AutoSi, true),
                )
            })
            .unwrap_or_else(|_| {
                if t.is_empty() {
                    Value::Null
                } else {
                    Value::String(t.to_owned())
                }
            }),
        Kind::Int => t.parse::<i64>().map(Value::from).unwrap_or(Value::Null),
        Kind::Bool => match t.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::Null,
        },
    }
}

fn bool_child(node: roxmltree::Node<'_, '_>, name: &str) -> Value {
    child_text(node, name).map_or(Value::Null, |t| typed(Kind::Bool, t))
}

fn str_child(node: roxmltree::Node<'_, '_>, name: &str) -> Value {
    child_text(node, name).map_or(Value::Null, |t| Value::String(t.to_owned()))
}

fn map_child(node: roxmltree::Node<'_, '_>, name: &str) -> Value {
    match node.children().find(|n| n.has_tag_name(name)) {
        None => Value::Null,
        Some(m) => Value::Object(
            m.children()
                .filter(roxmltree::Node::is_element)
                .map(|e| {
                    (
                        e.tag_name().name().to_owned(),
                        Value::String(e.text().unwrap_or("").to_owned()),
                    )
                })
                .collect(),
        ),
    }
}

/// One `<Blob>` as Go's `container.BlobItem` JSON.
fn blob_item(b: roxmltree::Node<'_, '_>) -> Value {
    let mut item = Map::new();
    let name = b.children().find(|n| n.has_tag_name("Name"));
    let name_value = name.map_or(Value::Null, |n| {
        let text = n.text().unwrap_or("");
        if n.attribute("Encoded") == Some("true") {
            Value::String(
                percent_encoding::percent_decode_str(text)
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        } else {
            Value::String(text.to_owned())
        }
    });
    item.insert("Deleted".into(), bool_child(b, "Deleted"));
    item.insert("Name".into(), name_value);
    let mut props = Map::new();
    let p = b.children().find(|n| n.has_tag_name("Properties"));
    for (xml, go, kind) in PROPERTIES {
        let v = p
            .and_then(|p| child_text(p, xml))
            .map_or(Value::Null, |t| typed(*kind, t));
        props.insert((*go).to_owned(), v);
    }
    item.insert(
        "Properties".into(),
        if p.is_some() {
            Value::Object(props)
        } else {
            Value::Null
        },
    );
    item.insert("Snapshot".into(), str_child(b, "Snapshot"));
    let tags = b.children().find(|n| n.has_tag_name("Tags")).map(|t| {
        let set: Vec<Value> = t
            .descendants()
            .filter(|n| n.has_tag_name("Tag"))
            .map(|tag| {
                serde_json::json!({
                    "Key": child_text(tag, "Key"),
                    "Value": child_text(tag, "Value"),
                })
            })
            .collect();
        serde_json::json!({ "BlobTagSet": set })
    });
    item.insert("BlobTags".into(), tags.unwrap_or(Value::Null));
    item.insert("HasVersionsOnly".into(), bool_child(b, "HasVersionsOnly"));
    item.insert("IsCurrentVersion".into(), bool_child(b, "IsCurrentVersion"));
    item.insert("Metadata".into(), map_child(b, "Metadata"));
    item.insert("OrMetadata".into(), map_child(b, "OrMetadata"));
    item.insert("VersionID".into(), str_child(b, "VersionId"));
    Value::Object(item)
}

impl BlobStorage {
    pub(crate) async fn list(
        &self,
        req: InvokeRequest,
    ) -> Result<Option<InvokeResponse>, BindingError> {
        let payload = ListPayload::parse(&req.data)?;
        let want = if payload.max_results > 0 {
            u64::try_from(payload.max_results).unwrap_or(u64::from(MAX_RESULTS))
        } else {
            u64::from(MAX_RESULTS)
        };
        let (items, marker, pages) = self
            .list_blobs(&payload.prefix, &payload.marker, payload.include(), want)
            .await?;
        let number = items.len();
        let body = Value::Array(items).to_string();
        Ok(Some(
            InvokeResponse::data(body)
                .with_metadata("marker", marker)
                .with_metadata("number", number.to_string())
                .with_metadata("pagesTraversed", pages.to_string()),
        ))
    }

    /// Page through List Blobs until `want` items or the end; returns the items, the marker to
    /// continue from (empty at the end) and the number of pages read.
    pub(crate) async fn list_blobs(
        &self,
        prefix: &str,
        marker: &str,
        include: Option<String>,
        want: u64,
    ) -> Result<(Vec<Value>, String, u32), BindingError> {
        let mut items: Vec<Value> = Vec::new();
        let mut marker = marker.to_owned();
        let mut pages = 0u32;
        loop {
            let remaining = want.saturating_sub(items.len() as u64);
            let page_size = remaining.min(u64::from(MAX_RESULTS));
            let mut url = self.config.container_url.clone();
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("restype", "container")
                    .append_pair("comp", "list")
                    .append_pair("maxresults", &page_size.to_string());
                if !prefix.is_empty() {
                    q.append_pair("prefix", prefix);
                }
                if !marker.is_empty() {
                    q.append_pair("marker", &marker);
                }
                if let Some(i) = &include {
                    q.append_pair("include", i);
                }
            }
            let sent = self.client.send(&Call::new(Method::GET, url)).await?;
            if !sent.response.status().is_success() {
                return Err(self
                    .client
                    .status_error("error listing blobs", sent.response)
                    .await);
            }
            let text = sent
                .response
                .text()
                .await
                .map_err(|e| self.client.transport_error(&self.config.container_url, &e))?;
            let (page, next) = parse_page(&text)
                .map_err(|e| BindingError::internal(format!("error listing blobs: {e}")))?;
            pages += 1;
            items.extend(page);
            marker = next;
            if marker.is_empty() || items.len() as u64 >= want {
                break;
            }
        }
        Ok((items, marker, pages))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn payloads() {
        assert_eq!(ListPayload::parse(b"").unwrap(), ListPayload::default());
        assert_eq!(ListPayload::parse(b"null").unwrap(), ListPayload::default());
        let p = ListPayload::parse(
            br#"{"marker":"m","prefix":"p/","maxResults":10,"include":{"copy":true,"metadata":true,"snapshots":true,"uncommittedBlobs":true,"deleted":true}}"#,
        )
        .unwrap();
        assert_eq!(p.marker, "m");
        assert_eq!(p.prefix, "p/");
        assert_eq!(p.max_results, 10);
        assert_eq!(
            p.include().as_deref(),
            Some("copy,metadata,snapshots,uncommittedblobs,deleted")
        );
        let p = ListPayload::parse(br#""{\"prefix\":\"x\"}""#).unwrap();
        assert_eq!(p.prefix, "x");
        assert!(ListPayload::parse(b"[1]").is_err());
        assert_eq!(
            ListPayload::parse(br#"{"other":1}"#).unwrap().include(),
            None
        );
    }

    #[test]
    fn pages_become_go_blob_items() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="http://127.0.0.1:10000/devstoreaccount1" ContainerName="box">
  <MaxResults>2</MaxResults>
  <Blobs>
    <Blob>
      <Name>a/one.txt</Name>
      <Properties>
        <Creation-Time>Sat, 28 Nov 2026 01:02:03 GMT</Creation-Time>
        <Last-Modified>Sat, 28 Nov 2026 01:02:04 GMT</Last-Modified>
        <Etag>0x8DB</Etag>
        <Content-Length>5</Content-Length>
        <Content-Type>text/plain</Content-Type>
        <Content-MD5>XUFAKrxLKna5cZ2REBfFkg==</Content-MD5>
        <BlobType>BlockBlob</BlobType>
        <LeaseStatus>unlocked</LeaseStatus>
        <ServerEncrypted>true</ServerEncrypted>
        <AccessTierInferred>true</AccessTierInferred>
      </Properties>
      <Metadata><Custom>hello</Custom></Metadata>
    </Blob>
    <Blob>
      <Name Encoded="true">odd%0Bname</Name>
      <Deleted>true</Deleted>
      <Snapshot>2026-11-28T01:02:03.0000000Z</Snapshot>
      <Properties><Content-Length>0</Content-Length></Properties>
    </Blob>
  </Blobs>
  <NextMarker>2!next</NextMarker>
</EnumerationResults>"#;
        let (items, next) = parse_page(xml).unwrap();
        assert_eq!(next, "2!next");
        assert_eq!(items.len(), 2);
        let a = &items[0];
        assert_eq!(a["Name"], "a/one.txt");
        assert_eq!(a["Deleted"], Value::Null);
        assert_eq!(a["Snapshot"], Value::Null);
        assert_eq!(a["Metadata"]["Custom"], "hello");
        assert_eq!(a["VersionID"], Value::Null);
        let p = &a["Properties"];
        assert_eq!(p["ContentLength"], 5);
        assert_eq!(p["ContentType"], "text/plain");
        assert_eq!(p["ETag"], "0x8DB");
        assert_eq!(p["CreationTime"], "2026-11-28T01:02:03Z");
        assert_eq!(p["LastModified"], "2026-11-28T01:02:04Z");
        assert_eq!(p["ContentMD5"], "XUFAKrxLKna5cZ2REBfFkg==");
        assert_eq!(p["ServerEncrypted"], true);
        assert_eq!(p["AccessTierInferred"], true);
        assert_eq!(p["LeaseStatus"], "unlocked");
        assert_eq!(p["AccessTier"], Value::Null);
        assert_eq!(p.as_object().unwrap().len(), PROPERTIES.len());
        let b = &items[1];
        assert_eq!(b["Name"], "odd\u{b}name");
        assert_eq!(b["Deleted"], true);
        assert_eq!(b["Snapshot"], "2026-11-28T01:02:03.0000000Z");
        assert_eq!(b["Metadata"], Value::Null);
        let (none, end) =
            parse_page("<EnumerationResults><Blobs /><NextMarker /></EnumerationResults>").unwrap();
        assert!(none.is_empty());
        assert_eq!(end, "");
        assert!(parse_page("not xml").is_err());
    }
}
