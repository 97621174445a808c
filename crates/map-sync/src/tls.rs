//! TLS for `wss://` relays (and the relay's `https://` API): a rustls client
//! configuration with the `ring` provider chosen explicitly, trusting the
//! platform's root certificates plus, optionally, the CA certificates of a
//! PEM file (a relay with a private or self-signed CA).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::error::SyncError;

/// The crypto provider every TLS configuration of map uses (`ring`).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The platform's root certificates, loaded once per process.
fn native_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!(error = %e, "could not load some platform root certificates");
        }
        found.certs
    })
}

/// The certificates of a PEM file; [`SyncError::CaFile`] when it cannot be
/// read or holds no certificate.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, SyncError> {
    let fail = |reason: String| SyncError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(fail(
            "no certificate in it (expected PEM `BEGIN CERTIFICATE` blocks)".into(),
        ));
    }
    Ok(certs)
}

/// A client configuration trusting the platform roots and, if given, the
/// CAs in `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, SyncError> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(native_roots().iter().cloned());
    if let Some(path) = ca_file {
        for cert in load_ca_file(path)? {
            roots.add(cert).map_err(|e| SyncError::CaFile {
                path: path.to_path_buf(),
                reason: format!("unusable CA certificate: {e}"),
            })?;
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| SyncError::CaFile {
            path: ca_file.map(Path::to_path_buf).unwrap_or_default(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// True when `url` uses TLS (`wss://` or `https://`).
pub fn is_tls_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("wss://") || lower.starts_with("https://")
}

/// The rustls error inside an I/O error, if any (certificate problems come
/// back from the TLS stream this way).
pub fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}
