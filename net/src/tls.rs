//! TLS for what hush connects to as a client: the transport's `wss://` relay URLs and the relay's
//! `https://` push endpoints. rustls with the *ring* provider, trusting the Mozilla roots of
//! `webpki-roots` plus any extra roots a deployment adds (a self-hosted relay's or push server's own
//! CA, test certificates). The relay itself serves plain HTTP: terminate TLS in front of it.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Why a TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate file could not be read.
    #[error("reading {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Bytes that are not a usable X.509 certificate.
    #[error("not a usable certificate: {0}")]
    BadCertificate(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// A client configuration trusting the webpki roots and `extra_roots` (DER certificates).
pub fn client_config(extra_roots: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for der in extra_roots {
        roots.add(CertificateDer::from(der.clone())).map_err(|e| TlsError::BadCertificate(e.to_string()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Reads certificates from a file: PEM (one or more `CERTIFICATE` blocks) or a single DER certificate.
pub fn read_certificates(path: &Path) -> Result<Vec<Vec<u8>>, TlsError> {
    let read_error = |reason: String| TlsError::Read { path: path.display().to_string(), reason };
    let bytes = std::fs::read(path).map_err(|e| read_error(e.to_string()))?;
    if bytes.starts_with(b"-----") {
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::BadCertificate(e.to_string()))?;
        if certs.is_empty() {
            return Err(TlsError::BadCertificate("no CERTIFICATE block in the PEM file".into()));
        }
        Ok(certs)
    } else {
        Ok(vec![bytes])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_roots_are_checked() {
        assert!(client_config(&[]).is_ok());
        assert!(matches!(client_config(&[vec![1, 2, 3]]), Err(TlsError::BadCertificate(_))));
        let dir = tempfile::tempdir().unwrap();
        let empty_pem = dir.path().join("empty.pem");
        std::fs::write(&empty_pem, "-----BEGIN NOTHING-----\n-----END NOTHING-----\n").unwrap();
        assert!(matches!(read_certificates(&empty_pem), Err(TlsError::BadCertificate(_))));
        assert!(matches!(read_certificates(&dir.path().join("missing.pem")), Err(TlsError::Read { .. })));
    }
}
