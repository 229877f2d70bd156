//! MQTT client options shared by the producer and the consumer: address, credentials, TLS.

use std::sync::Arc;
use std::time::Duration;

use bindery_core::BindingError;
use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::MqttConfig;

/// The keep-alive interval (paho's default, as daprd uses).
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// The largest packet MQTT allows (256 MiB); rumqttc's default is 10 KiB.
const MAX_PACKET: usize = 268_435_455;

/// Options for a client with id `client_id`.
pub(crate) fn options(
    config: &MqttConfig,
    client_id: String,
    manual_acks: bool,
) -> Result<MqttOptions, BindingError> {
    let b = &config.broker;
    let mut o = MqttOptions::new(client_id, b.host.clone(), b.port);
    o.set_keep_alive(KEEP_ALIVE)
        .set_clean_session(config.clean_session)
        .set_manual_acks(manual_acks)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if let Some(user) = &b.username {
        o.set_credentials(user.clone(), b.password.clone().unwrap_or_default());
    }
    if b.tls {
        o.set_transport(Transport::Tls(TlsConfiguration::Rustls(Arc::new(
            tls_config(config)?,
        ))));
    }
    Ok(o)
}

/// rustls with the ring provider: `caCert` as the only trusted root when set (as Dapr), the
/// system's roots otherwise; the client certificate when set.
fn tls_config(config: &MqttConfig) -> Result<rustls::ClientConfig, BindingError> {
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_cert {
        Some(pem) => {
            let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    BindingError::config("caCert", format!("invalid ca certificate: {e}"))
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(BindingError::config("caCert", "invalid ca certificate"));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BindingError::internal(format!("TLS setup: {e}")))?
        .with_root_certificates(roots);
    match (&config.client_cert, &config.client_key) {
        (Some(cert), Some(key)) => {
            let certs = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    BindingError::config("clientCert", format!("invalid client certificate: {e}"))
                })?;
            if certs.is_empty() {
                return Err(BindingError::config(
                    "clientCert",
                    "invalid client certificate",
                ));
            }
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|_| BindingError::config("clientKey", "invalid client certificate key"))?;
            builder.with_client_auth_cert(certs, key).map_err(|e| {
                BindingError::config(
                    "clientCert",
                    format!("client certificate and key do not fit: {e}"),
                )
            })
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}
