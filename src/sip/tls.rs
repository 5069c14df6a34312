//! SIP over TLS: the server's certificate chain and key, read from PEM files and re-read on a
//! reload without dropping a call (the next full handshake uses the new pair), and the acceptor
//! on rustls with the `ring` provider.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

#[derive(Debug)]
pub struct Certificates {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Arc<Certificates>> {
        Ok(Arc::new(Certificates {
            current: RwLock::new(read(cert_file, key_file)?),
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
        }))
    }

    /// Reads the files again; on any error the pair in use stays.
    pub fn reload(&self) -> Result<()> {
        let fresh = read(&self.cert_file, &self.key_file)?;
        if let Ok(mut current) = self.current.write() {
            *current = fresh;
        }
        Ok(())
    }

    pub fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// The client side, for registering with trunks over TLS: the system's trusted roots, plus
/// those in `ca_file` (a private CA, or a test's).
pub fn connector(ca_file: Option<&Path>) -> Result<TlsConnector> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let extra = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("tls.ca_file {}", path.display()))?;
        for cert in extra {
            roots
                .add(cert)
                .with_context(|| format!("tls.ca_file {}", path.display()))?;
        }
    } else if added == 0 {
        tracing::warn!("no trusted CA certificates found: trunks over TLS cannot be verified");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|key| key.clone())
    }
}

fn read(cert_file: &Path, key_file: &Path) -> Result<Arc<CertifiedKey>> {
    let chain = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("tls.cert_file {}", cert_file.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "tls.cert_file {}: no certificate",
        cert_file.display()
    );
    let key = PrivateKeyDer::from_pem_file(key_file)
        .with_context(|| format!("tls.key_file {}", key_file.display()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .with_context(|| format!("tls.key_file {}: unusable key", key_file.display()))?;
    Ok(Arc::new(CertifiedKey::new(chain, signer)))
}
