//! Component metadata of `bindings.azure.blobstorage`, checked without I/O.

use bindery_core::{BindingError, Metadata};
use reqwest::Url;

use crate::account::{
    ACCOUNT_NAME_KEYS, ConnectionString, Service, SharedKey, endpoint_suffix, entity_url,
    join_entity, shared_key,
};

/// Default for `retryCount`.
pub(crate) const DEFAULT_RETRY_COUNT: u32 = 3;
/// Metadata names of the container.
pub(crate) const CONTAINER_KEYS: &[&str] =
    &["containerName", "container", "storageAccountContainer"];

/// `publicAccessLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PublicAccess {
    /// Private (`none` or empty).
    None,
    /// Anonymous read of blobs.
    Blob,
    /// Anonymous read of blobs and listing.
    Container,
}

/// The checked configuration of one `bindings.azure.blobstorage` component.
#[derive(Debug, Clone)]
pub(crate) struct BlobConfig {
    pub(crate) key: SharedKey,
    pub(crate) container: String,
    /// `…/<container>`, without a trailing slash.
    pub(crate) container_url: Url,
    pub(crate) public_access: PublicAccess,
    pub(crate) decode_base64: bool,
    pub(crate) retry_count: u32,
    pub(crate) disable_entity_management: bool,
}

impl BlobConfig {
    /// Parse and check `md`, reporting every problem.
    pub(crate) fn parse(md: &Metadata) -> Result<Self, Vec<BindingError>> {
        let r = md.reader();
        let suffix = endpoint_suffix(&r);
        let cs = r
            .string("connectionString")
            .and_then(|s| match ConnectionString::parse(&s) {
                Ok(cs) => Some(cs),
                Err(e) => {
                    r.error("connectionString", e);
                    None
                }
            });
        let account = match r.string_any(ACCOUNT_NAME_KEYS) {
            Some(a) => a,
            None => match cs.as_ref().and_then(|c| c.account_name.clone()) {
                Some(a) => a,
                None => {
                    if r.string("connectionString").is_none() {
                        r.error(
                            "accountName",
                            "missing or empty accountName field from metadata",
                        );
                    }
                    String::new()
                }
            },
        };
        let container = r.required_any(
            CONTAINER_KEYS,
            "missing or empty containerName field from metadata",
        );
        if !container.is_empty()
            && let Err(e) = check_container_name(&container)
        {
            r.error("containerName", e);
        }
        let key = if account.is_empty() {
            None
        } else {
            shared_key(&r, &account, cs.as_ref())
        };
        let public_access = match r.string("publicAccessLevel") {
            None => PublicAccess::None,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "none" => PublicAccess::None,
                "blob" => PublicAccess::Blob,
                "container" => PublicAccess::Container,
                _ => {
                    r.error(
                        "publicAccessLevel",
                        format!("invalid public access level: {v}; allowed: [none blob container]"),
                    );
                    PublicAccess::None
                }
            },
        };
        let decode_base64 = r.bool("decodeBase64", false);
        // `getBlobRetryCount` is the v0.11 name, still read by Dapr for compatibility.
        let retry_count = match r
            .opt_int::<i64>("retryCount")
            .or_else(|| r.opt_int::<i64>("getBlobRetryCount"))
        {
            None => DEFAULT_RETRY_COUNT,
            Some(n) if n < 0 => {
                r.error("retryCount", "retryCount must not be negative");
                DEFAULT_RETRY_COUNT
            }
            Some(n) => u32::try_from(n.min(100)).unwrap_or(DEFAULT_RETRY_COUNT),
        };
        let disable_entity_management = r.bool("disableEntityManagement", false);
        let endpoint = r.string("endpoint");
        let container_url = if container.is_empty() || account.is_empty() {
            None
        } else {
            let url = match (&cs, &endpoint) {
                // An explicit `endpoint` wins over the connection string's, as in Dapr.
                (Some(cs), None) => {
                    join_entity(&cs.service_url(Service::Blob, &suffix), &container)
                }
                _ => entity_url(
                    Service::Blob,
                    &account,
                    &container,
                    endpoint.as_deref(),
                    &suffix,
                ),
            };
            match url {
                Ok(u) => Some(u),
                Err(e) => {
                    r.error("endpoint", e);
                    None
                }
            }
        };
        r.finish()?;
        let (Some(key), Some(container_url)) = (key, container_url) else {
            return Err(vec![BindingError::config(
                "accountName",
                "missing or empty accountName field from metadata",
            )]);
        };
        Ok(BlobConfig {
            key,
            container,
            container_url,
            public_access,
            decode_base64,
            retry_count,
            disable_entity_management,
        })
    }
}

/// Azure's container naming rules: 3–63 characters, lower-case letters, digits and single
/// hyphens, starting and ending with a letter or digit (`$root` and `$web` are special).
fn check_container_name(name: &str) -> Result<(), String> {
    if name == "$root" || name == "$web" || name == "$logs" {
        return Ok(());
    }
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok = (3..=63).contains(&name.len())
        && ok_chars
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid containerName {name:?}: use 3 to 63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::account::DEV_KEY;

    fn parse(pairs: &[(&str, &str)]) -> Result<BlobConfig, Vec<BindingError>> {
        BlobConfig::parse(&Metadata::from_pairs(pairs.iter().copied()))
    }

    fn fields(errs: &[BindingError]) -> Vec<String> {
        errs.iter()
            .map(|e| e.field().unwrap_or("").to_owned())
            .collect()
    }

    #[test]
    fn defaults() {
        let c = parse(&[
            ("accountName", "acct"),
            ("accountKey", DEV_KEY),
            ("containerName", "box"),
        ])
        .unwrap();
        assert_eq!(c.key.account, "acct");
        assert_eq!(c.container, "box");
        assert_eq!(
            c.container_url.as_str(),
            "https://acct.blob.core.windows.net/box"
        );
        assert_eq!(c.public_access, PublicAccess::None);
        assert!(!c.decode_base64);
        assert_eq!(c.retry_count, 3);
        assert!(!c.disable_entity_management);
    }

    #[test]
    fn every_field_and_alias() {
        for (a, k, cn) in [
            ("accountName", "accountKey", "containerName"),
            ("storageAccount", "storageAccessKey", "container"),
            (
                "storageAccountName",
                "storageAccountKey",
                "storageAccountContainer",
            ),
            ("accountName", "accessKey", "container"),
        ] {
            let c = parse(&[
                (a, "devstoreaccount1"),
                (k, DEV_KEY),
                (cn, "box-1"),
                ("endpoint", "http://127.0.0.1:10000"),
                ("publicAccessLevel", "Container"),
                ("decodeBase64", "true"),
                ("retryCount", "0"),
                ("disableEntityManagement", "yes"),
            ])
            .unwrap();
            assert_eq!(
                c.container_url.as_str(),
                "http://127.0.0.1:10000/devstoreaccount1/box-1"
            );
            assert_eq!(c.public_access, PublicAccess::Container);
            assert!(c.decode_base64);
            assert_eq!(c.retry_count, 0);
            assert!(c.disable_entity_management);
        }
        let c = parse(&[
            ("accountName", "a"),
            ("accountKey", DEV_KEY),
            ("container", "box"),
            ("getBlobRetryCount", "7"),
            ("azureEnvironment", "AZURECHINACLOUD"),
        ])
        .unwrap();
        assert_eq!(c.retry_count, 7);
        assert_eq!(
            c.container_url.as_str(),
            "https://a.blob.core.chinacloudapi.cn/box"
        );
    }

    #[test]
    fn connection_string() {
        let cs = format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
        );
        let c = parse(&[("connectionString", &cs), ("containerName", "box")]).unwrap();
        assert_eq!(c.key.account, "devstoreaccount1");
        assert_eq!(
            c.container_url.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/box"
        );
        let c = parse(&[
            ("connectionString", "UseDevelopmentStorage=true"),
            ("containerName", "box"),
        ])
        .unwrap();
        assert_eq!(
            c.container_url.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/box"
        );
        let errs = parse(&[
            (
                "connectionString",
                "AccountName=x;AccountKey=bm90LWEta2V5;SharedAccessSignature=sig",
            ),
            ("containerName", "box"),
        ])
        .unwrap_err();
        assert_eq!(fields(&errs), ["connectionString"]);
        assert!(!format!("{errs:?}").contains("bm90LWEta2V5"));
    }

    #[test]
    fn problems_are_reported_together() {
        let errs = parse(&[("publicAccessLevel", "world"), ("retryCount", "x")]).unwrap_err();
        assert_eq!(
            fields(&errs),
            [
                "accountName",
                "containerName",
                "publicAccessLevel",
                "retryCount"
            ]
        );
        assert_eq!(
            errs[0].message(),
            "missing or empty accountName field from metadata"
        );
        assert_eq!(
            errs[1].message(),
            "missing or empty containerName field from metadata"
        );
        let errs = parse(&[("accountName", "a"), ("containerName", "box")]).unwrap_err();
        assert_eq!(fields(&errs), ["accountKey"]);
        let errs = parse(&[
            ("accountName", "a"),
            ("containerName", "box"),
            ("azureClientId", "x"),
        ])
        .unwrap_err();
        assert!(errs[0].message().contains("Azure AD"), "{errs:?}");
        let errs = parse(&[
            ("accountName", "a"),
            ("accountKey", "!!"),
            ("containerName", "Bad_Name"),
        ])
        .unwrap_err();
        assert_eq!(fields(&errs), ["containerName", "accountKey"]);
        assert!(!format!("{errs:?}").contains("!!\""));
        let errs = parse(&[
            ("accountName", "a"),
            ("accountKey", DEV_KEY),
            ("containerName", "box"),
            ("endpoint", "ftp://x"),
        ])
        .unwrap_err();
        assert_eq!(fields(&errs), ["endpoint"]);
    }

    #[test]
    fn container_names() {
        for ok in ["abc", "a-b-c", "0box", "$root", &"a".repeat(63)] {
            assert!(check_container_name(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "Box", "a--b", "-ab", "ab-", "a_b", &"a".repeat(64)] {
            assert!(check_container_name(bad).is_err(), "{bad}");
        }
    }
}
