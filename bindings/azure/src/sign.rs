//! Shared Key request signing and service SAS tokens, as the Azure Storage REST API defines
//! them (HMAC-SHA256 with the account key).

use base64::Engine as _;
use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderValue};

use crate::account::SharedKey;

/// The REST API version bindery speaks.
pub const API_VERSION: &str = "2021-12-02";
/// The version of the SAS tokens bindery signs.
pub(crate) const SAS_VERSION: &str = "2021-12-02";

fn hmac(key: &SharedKey, message: &str) -> String {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key.key);
    let tag = ring::hmac::sign(&k, message.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// `x-ms-date`'s format (RFC 1123, GMT).
pub(crate) fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Add `x-ms-date`, `x-ms-version` and the Shared Key `Authorization` header to a request whose
/// other headers (and `Content-Length`, when it has a body) are final.
pub(crate) fn sign(
    method: &Method,
    url: &Url,
    headers: &mut HeaderMap,
    key: &SharedKey,
) -> Result<(), String> {
    let date = http_date(Utc::now());
    headers.insert(
        "x-ms-date",
        HeaderValue::from_str(&date).map_err(|e| e.to_string())?,
    );
    if !headers.contains_key("x-ms-version") {
        headers.insert("x-ms-version", HeaderValue::from_static(API_VERSION));
    }
    let to_sign = string_to_sign(method, url, headers, &key.account);
    let auth = format!("SharedKey {}:{}", key.account, hmac(key, &to_sign));
    let mut value = HeaderValue::from_str(&auth).map_err(|e| e.to_string())?;
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    Ok(())
}

/// The Shared Key string-to-sign (version 2015-02-21 and later).
pub(crate) fn string_to_sign(
    method: &Method,
    url: &Url,
    headers: &HeaderMap,
    account: &str,
) -> String {
    let h = |name: &str| -> String {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
    };
    let length = h("content-length");
    let length = if length == "0" { String::new() } else { length };
    let mut s = String::with_capacity(256);
    s.push_str(method.as_str());
    s.push('\n');
    for part in [
        h("content-encoding"),
        h("content-language"),
        length,
        h("content-md5"),
        h("content-type"),
        // `Date` is left empty: `x-ms-date` is always sent and signed below.
        String::new(),
        h("if-modified-since"),
        h("if-match"),
        h("if-none-match"),
        h("if-unmodified-since"),
        h("range"),
    ] {
        s.push_str(&part);
        s.push('\n');
    }
    // Canonicalized headers: every x-ms-*, lower case, sorted, one per line.
    let mut ms: Vec<(String, String)> = Vec::new();
    for name in headers.keys() {
        let lower = name.as_str().to_ascii_lowercase();
        if lower.starts_with("x-ms-") {
            let value = headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(",");
            ms.push((lower, value));
        }
    }
    ms.sort();
    ms.dedup_by(|a, b| a.0 == b.0);
    for (k, v) in ms {
        s.push_str(&k);
        s.push(':');
        s.push_str(&v);
        s.push('\n');
    }
    // Canonicalized resource: /account/path, then each query parameter, sorted.
    s.push('/');
    s.push_str(account);
    s.push_str(if url.path().is_empty() {
        "/"
    } else {
        url.path()
    });
    let mut params: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in url.query_pairs() {
        let k = k.to_ascii_lowercase();
        match params.iter_mut().find(|(n, _)| *n == k) {
            Some((_, vs)) => vs.push(v.into_owned()),
            None => params.push((k, vec![v.into_owned()])),
        }
    }
    params.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, mut vs) in params {
        vs.sort();
        s.push('\n');
        s.push_str(&k);
        s.push(':');
        s.push_str(&vs.join(","));
    }
    s
}

/// A read-only service SAS for one blob, valid until `expiry`: the query string to append to
/// the blob's URL.
pub(crate) fn blob_read_sas(
    key: &SharedKey,
    container: &str,
    blob: &str,
    expiry: DateTime<Utc>,
) -> String {
    let permissions = "r";
    let se = expiry.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let resource = format!("/blob/{}/{container}/{blob}", key.account);
    // sp, st, se, canonicalized resource, si, sip, spr, sv, sr, snapshot time, encryption
    // scope, rscc, rscd, rsce, rscl, rsct.
    let to_sign = [
        permissions,
        "",
        &se,
        &resource,
        "",
        "",
        "",
        SAS_VERSION,
        "b",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ]
    .join("\n");
    let sig = hmac(key, &to_sign);
    let enc = |v: &str| {
        percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "sv={SAS_VERSION}&sr=b&sp={permissions}&se={}&sig={}",
        enc(&se),
        enc(&sig)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn key() -> SharedKey {
        SharedKey::new("acct", crate::account::DEV_KEY).unwrap()
    }

    #[test]
    fn string_to_sign_follows_the_spec() {
        let url = Url::parse(
            "http://127.0.0.1:10000/devstoreaccount1/box?restype=container&comp=list&Prefix=a%20b&include=metadata&include=copy",
        )
        .unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-ms-version", HeaderValue::from_static("2021-12-02"));
        h.insert(
            "x-ms-date",
            HeaderValue::from_static("Sat, 28 Nov 2026 00:00:00 GMT"),
        );
        h.insert("X-Ms-Meta-Zeta", HeaderValue::from_static("  z  "));
        h.insert("content-length", HeaderValue::from_static("0"));
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        h.insert("range", HeaderValue::from_static("bytes=5-"));
        let s = string_to_sign(&Method::GET, &url, &h, "devstoreaccount1");
        assert_eq!(
            s,
            "GET\n\n\n\n\ntext/plain\n\n\n\n\n\nbytes=5-\n\
             x-ms-date:Sat, 28 Nov 2026 00:00:00 GMT\nx-ms-meta-zeta:z\nx-ms-version:2021-12-02\n\
             /devstoreaccount1/devstoreaccount1/box\ncomp:list\ninclude:copy,metadata\nprefix:a b\nrestype:container"
        );
    }

    #[test]
    fn signing_adds_date_version_and_a_hidden_authorization() {
        let url = Url::parse("https://acct.queue.core.windows.net/q/messages").unwrap();
        let mut h = HeaderMap::new();
        h.insert("content-length", HeaderValue::from_static("12"));
        sign(&Method::POST, &url, &mut h, &key()).unwrap();
        assert_eq!(h["x-ms-version"], API_VERSION);
        assert!(h.contains_key("x-ms-date"));
        let auth = &h[reqwest::header::AUTHORIZATION];
        assert!(auth.is_sensitive());
        assert!(auth.to_str().unwrap().starts_with("SharedKey acct:"));
        // Deterministic for a fixed string.
        assert_eq!(hmac(&key(), "abc"), hmac(&key(), "abc"));
        assert_ne!(hmac(&key(), "abc"), hmac(&key(), "abd"));
    }

    #[test]
    fn sas_has_every_parameter() {
        let expiry = DateTime::parse_from_rfc3339("2026-11-28T01:02:03Z")
            .unwrap()
            .with_timezone(&Utc);
        let q = blob_read_sas(&key(), "box", "a/b.txt", expiry);
        assert!(
            q.starts_with("sv=2021-12-02&sr=b&sp=r&se=2026%2D11%2D28T01%3A02%3A03Z&sig="),
            "{q}"
        );
        assert!(!q.contains(crate::account::DEV_KEY));
    }
}
