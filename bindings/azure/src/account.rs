//! The storage account: its name and key (from metadata or a connection string), the Azure
//! cloud it lives in, and the URLs of its services.

use std::sync::Arc;

use base64::Engine as _;
use bindery_core::MetadataReader;
use reqwest::Url;

/// The Azurite emulator's account.
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
/// The Azurite emulator's well-known key (published by Microsoft; not a secret).
pub const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Metadata names of the account name, key and Entra ID fields, shared by both bindings.
pub(crate) const ACCOUNT_NAME_KEYS: &[&str] =
    &["accountName", "storageAccount", "storageAccountName"];
pub(crate) const ACCOUNT_KEY_KEYS: &[&str] = &[
    "accountKey",
    "accessKey",
    "storageAccessKey",
    "storageAccountKey",
];
/// Entra ID (Azure AD) fields; bindery signs with the account key only.
pub(crate) const ENTRA_KEYS: &[&str] = &[
    "azureTenantId",
    "azureClientId",
    "azureClientSecret",
    "azureCertificate",
    "azureCertificateFile",
    "azureCertificatePassword",
];

/// An account name and its decoded key. The key never appears in `Debug` output or messages.
#[derive(Clone)]
pub struct SharedKey {
    pub(crate) account: String,
    pub(crate) key: Arc<[u8]>,
}

impl std::fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedKey")
            .field("account", &self.account)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl SharedKey {
    /// `account` with the base64 `key` (as the portal shows it).
    ///
    /// ```
    /// use bindery_binding_azure::rest::SharedKey;
    /// assert!(SharedKey::new("acct", "a2V5").is_ok());
    /// assert!(SharedKey::new("acct", "not base64!").is_err());
    /// ```
    pub fn new(account: &str, key: &str) -> Result<Self, String> {
        let key = base64::engine::general_purpose::STANDARD
            .decode(key.trim())
            .map_err(|_| "the account key is not valid base64".to_owned())?;
        if key.is_empty() {
            return Err("the account key is empty".to_owned());
        }
        Ok(SharedKey {
            account: account.to_owned(),
            key: key.into(),
        })
    }

    /// The account name.
    pub fn account(&self) -> &str {
        &self.account
    }
}

/// Which storage service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Blob,
    Queue,
}

impl Service {
    fn label(self) -> &'static str {
        match self {
            Service::Blob => "blob",
            Service::Queue => "queue",
        }
    }
}

/// The DNS suffix of storage endpoints in `azureEnvironment`.
pub(crate) fn endpoint_suffix(r: &MetadataReader<'_>) -> String {
    match r.string("azureEnvironment") {
        None => "core.windows.net".to_owned(),
        Some(env) => match env.trim().to_ascii_uppercase().as_str() {
            "AZUREPUBLICCLOUD" | "AZURECLOUD" | "PUBLIC" => "core.windows.net".to_owned(),
            "AZURECHINACLOUD" | "CHINA" => "core.chinacloudapi.cn".to_owned(),
            "AZUREUSGOVERNMENTCLOUD" | "AZUREUSGOVERNMENT" | "USGOVERNMENT" => {
                "core.usgovcloudapi.net".to_owned()
            }
            _ => {
                r.error(
                    "azureEnvironment",
                    format!(
                        "invalid azureEnvironment {env:?}: use AZUREPUBLICCLOUD, AZURECHINACLOUD or AZUREUSGOVERNMENTCLOUD"
                    ),
                );
                "core.windows.net".to_owned()
            }
        },
    }
}

/// The parts of a storage connection string bindery uses.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct ConnectionString {
    pub(crate) account_name: Option<String>,
    pub(crate) account_key: Option<String>,
    pub(crate) protocol: Option<String>,
    pub(crate) endpoint_suffix: Option<String>,
    pub(crate) blob_endpoint: Option<String>,
    pub(crate) queue_endpoint: Option<String>,
}

impl std::fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionString")
            .field("account_name", &self.account_name)
            .field(
                "account_key",
                &self.account_key.as_ref().map(|_| "<redacted>"),
            )
            .field("protocol", &self.protocol)
            .field("endpoint_suffix", &self.endpoint_suffix)
            .field("blob_endpoint", &self.blob_endpoint)
            .field("queue_endpoint", &self.queue_endpoint)
            .finish()
    }
}

impl ConnectionString {
    /// Parse `Key=Value;Key=Value`. Messages never repeat the string (it holds the key).
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let mut cs = ConnectionString::default();
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                return Err(
                    "connectionString is malformed: expected Name=Value pairs separated by ;"
                        .to_owned(),
                );
            };
            let v = v.trim().to_owned();
            match k.trim().to_ascii_lowercase().as_str() {
                "accountname" => cs.account_name = Some(v),
                "accountkey" => cs.account_key = Some(v),
                "defaultendpointsprotocol" => cs.protocol = Some(v.to_ascii_lowercase()),
                "endpointsuffix" => cs.endpoint_suffix = Some(v),
                "blobendpoint" => cs.blob_endpoint = Some(v),
                "queueendpoint" => cs.queue_endpoint = Some(v),
                "usedevelopmentstorage" if v.eq_ignore_ascii_case("true") => {
                    cs.account_name = Some(DEV_ACCOUNT.to_owned());
                    cs.account_key = Some(DEV_KEY.to_owned());
                    cs.protocol = Some("http".to_owned());
                    cs.blob_endpoint = Some(format!("http://127.0.0.1:10000/{DEV_ACCOUNT}"));
                    cs.queue_endpoint = Some(format!("http://127.0.0.1:10001/{DEV_ACCOUNT}"));
                }
                "sharedaccesssignature" => {
                    return Err("connectionString: SharedAccessSignature connection strings are not supported; use one with AccountName and AccountKey".to_owned());
                }
                _ => {}
            }
        }
        if cs.account_key.is_none() {
            return Err("connectionString has no AccountKey".to_owned());
        }
        if cs.account_name.is_none() {
            return Err("connectionString has no AccountName".to_owned());
        }
        if let Some(p) = &cs.protocol
            && p != "http"
            && p != "https"
        {
            return Err(format!(
                "connectionString: DefaultEndpointsProtocol must be http or https, not {p:?}"
            ));
        }
        Ok(cs)
    }

    /// The service endpoint the string names, or the one its account implies.
    pub(crate) fn service_url(&self, service: Service, default_suffix: &str) -> String {
        let explicit = match service {
            Service::Blob => &self.blob_endpoint,
            Service::Queue => &self.queue_endpoint,
        };
        if let Some(e) = explicit {
            return e.trim_end_matches('/').to_owned();
        }
        format!(
            "{}://{}.{}.{}",
            self.protocol.as_deref().unwrap_or("https"),
            self.account_name.as_deref().unwrap_or_default(),
            service.label(),
            self.endpoint_suffix.as_deref().unwrap_or(default_suffix)
        )
    }
}

/// The URL of `entity` (a container or a queue):
///
/// * with a custom `endpoint` (e.g. Azurite's `http://127.0.0.1:10000`):
///   `<endpoint>/<account>/<entity>`, unless the endpoint is the account's public Azure one,
///   which is then used as usual (as Dapr does);
/// * else `https://<account>.<service>.<suffix>/<entity>`.
pub(crate) fn entity_url(
    service: Service,
    account: &str,
    entity: &str,
    endpoint: Option<&str>,
    suffix: &str,
) -> Result<Url, String> {
    let public = format!("{account}.{}.{suffix}", service.label());
    let base = match endpoint {
        Some(e) => {
            let parsed =
                Url::parse(e.trim()).map_err(|err| format!("invalid endpoint {e:?}: {err}"))?;
            if parsed.scheme() != "http" && parsed.scheme() != "https" {
                return Err(format!(
                    "invalid endpoint {e:?}: it must start with http:// or https://"
                ));
            }
            if parsed.host_str() == Some(public.as_str()) && matches!(parsed.path(), "" | "/") {
                format!("https://{public}")
            } else {
                format!("{}/{account}", e.trim().trim_end_matches('/'))
            }
        }
        None => format!("https://{public}"),
    };
    join_entity(&base, entity)
}

/// `<base>/<entity>` as a URL.
pub(crate) fn join_entity(base: &str, entity: &str) -> Result<Url, String> {
    let s = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        percent_encoding::utf8_percent_encode(entity, PATH_SEGMENT)
    );
    Url::parse(&s).map_err(|e| format!("invalid URL {s:?}: {e}"))
}

/// What is percent-encoded in one path segment (a container, queue or message id).
pub(crate) const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'$');

/// What is percent-encoded in a blob name: like a segment, but `/` separates virtual folders.
pub(crate) const BLOB_PATH: &percent_encoding::AsciiSet = &PATH_SEGMENT.remove(b'/');

/// The key from `accountKey` (or an alias) or the connection string, with the account name;
/// records what is missing. `what` names the binding in messages.
pub(crate) fn shared_key(
    r: &MetadataReader<'_>,
    account: &str,
    cs: Option<&ConnectionString>,
) -> Option<SharedKey> {
    let key = r
        .string_any(ACCOUNT_KEY_KEYS)
        .or_else(|| cs.and_then(|c| c.account_key.clone()));
    match key {
        Some(k) => match SharedKey::new(account, &k) {
            Ok(k) => Some(k),
            Err(e) => {
                r.error("accountKey", format!("invalid accountKey: {e}"));
                None
            }
        },
        None => {
            let entra = ENTRA_KEYS.iter().any(|k| r.string(k).is_some());
            r.error(
                "accountKey",
                if entra {
                    "Azure AD (Entra ID) authentication is not supported by bindery: set accountKey (or a connectionString with AccountKey)"
                } else {
                    "missing or empty accountKey field from metadata (bindery authenticates with the account key)"
                },
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn connection_strings() {
        let cs = ConnectionString::parse(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;",
        )
        .unwrap();
        assert_eq!(cs.account_name.as_deref(), Some("devstoreaccount1"));
        assert_eq!(
            cs.service_url(Service::Blob, "core.windows.net"),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert_eq!(
            cs.service_url(Service::Queue, "x"),
            "http://127.0.0.1:10001/devstoreaccount1"
        );
        let cs = ConnectionString::parse(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.chinacloudapi.cn",
        )
        .unwrap();
        assert_eq!(
            cs.service_url(Service::Blob, "core.windows.net"),
            "https://acct.blob.core.chinacloudapi.cn"
        );
        let cs = ConnectionString::parse("UseDevelopmentStorage=true").unwrap();
        assert_eq!(cs.account_key.as_deref(), Some(DEV_KEY));
        assert_eq!(
            cs.service_url(Service::Queue, "x"),
            "http://127.0.0.1:10001/devstoreaccount1"
        );
        for bad in [
            "AccountName=a",
            "AccountKey=k",
            "garbage",
            "AccountName=a;SharedAccessSignature=sv=2020&sig=x",
            "AccountName=a;AccountKey=k;DefaultEndpointsProtocol=ftp",
        ] {
            let err = ConnectionString::parse(bad).unwrap_err();
            assert!(!err.contains("sig=x"), "{err}");
        }
        let printed = format!(
            "{:?}",
            ConnectionString::parse("AccountName=a;AccountKey=c2VjcmV0").unwrap()
        );
        assert!(!printed.contains("c2VjcmV0"), "{printed}");
    }

    #[test]
    fn entity_urls() {
        let u = entity_url(Service::Blob, "acct", "box", None, "core.windows.net").unwrap();
        assert_eq!(u.as_str(), "https://acct.blob.core.windows.net/box");
        let u = entity_url(
            Service::Blob,
            "devstoreaccount1",
            "box",
            Some("http://127.0.0.1:10000/"),
            "core.windows.net",
        )
        .unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:10000/devstoreaccount1/box");
        let u = entity_url(
            Service::Queue,
            "acct",
            "q",
            Some("https://acct.queue.core.windows.net"),
            "core.windows.net",
        )
        .unwrap();
        assert_eq!(u.as_str(), "https://acct.queue.core.windows.net/q");
        assert!(entity_url(Service::Queue, "a", "q", Some("ftp://x"), "s").is_err());
        assert!(entity_url(Service::Queue, "a", "q", Some("not a url"), "s").is_err());
    }

    #[test]
    fn keys_are_base64_and_hidden() {
        let k = SharedKey::new("a", DEV_KEY).unwrap();
        assert_eq!(k.key.len(), 64);
        assert!(!format!("{k:?}").contains("Eby8"));
        assert!(SharedKey::new("a", "").is_err());
    }
}
