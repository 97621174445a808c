//! TLS for the relay (`serve --tls-cert FILE --tls-key FILE`): the rustls
//! server configuration, with the `ring` provider chosen explicitly.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;
use crate::error::{RelayError, Result};

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| RelayError::Tls(format!("cannot read {what} {}: {e}", path.display())))
}

/// Load the certificate chain and key and build the server configuration.
/// Errors name the file and what is wrong with it.
pub(crate) fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>> {
    let cert_pem = read(&files.cert, "certificate file")?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            RelayError::Tls(format!(
                "{} is not a PEM certificate file: {e}",
                files.cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(RelayError::Tls(format!(
            "{} holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)",
            files.cert.display()
        )));
    }
    let key_pem = read(&files.key, "key file")?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        RelayError::Tls(format!(
            "{} holds no usable PEM private key: {e}",
            files.key.display()
        ))
    })?;
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| RelayError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                RelayError::Tls(format!(
                    "certificate {} and key {} cannot be used together: {e}",
                    files.cert.display(),
                    files.key.display()
                ))
            })?;
    Ok(Arc::new(config))
}
