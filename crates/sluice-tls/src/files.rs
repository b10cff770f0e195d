//! Reading PEM certificates, keys and CA bundles named by the settings.
//! Every error names the setting and the file.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use crate::TlsError;

/// Where the usual Linux/BSD distributions keep the system CA bundle, in the
/// order tried when a `verify-*` mode has no CA file of its own. (PgBouncer
/// uses the bundle its TLS library was built with, the same file.)
pub const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The first system CA bundle that exists.
pub(crate) fn system_ca_bundle() -> Option<PathBuf> {
    SYSTEM_CA_BUNDLES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io {
        setting,
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(setting: &'static str, path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::Pem {
        setting,
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn describe_pem_error(e: pem::Error) -> String {
    match e {
        pem::Error::NoItemsFound => "no PEM section found".to_string(),
        other => format!("invalid PEM: {other:?}"),
    }
}

/// A certificate chain (leaf first), as in a `*_cert_file`.
pub(crate) fn load_certs(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(setting, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(setting, path, describe_pem_error(e)))?;
    if certs.is_empty() {
        return Err(pem_error(
            setting,
            path,
            "no certificate found (expected a PEM \"BEGIN CERTIFICATE\" section)",
        ));
    }
    Ok(certs)
}

/// A private key (PKCS#8, PKCS#1 RSA or SEC1 EC, unencrypted), as in a
/// `*_key_file`.
pub(crate) fn load_key(
    setting: &'static str,
    path: &Path,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(setting, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => {
            let encrypted = String::from_utf8_lossy(&bytes).contains("ENCRYPTED");
            pem_error(
                setting,
                path,
                if encrypted {
                    "the private key is encrypted; Sluice needs an unencrypted key (PKCS#8, \
                     PKCS#1 RSA or SEC1 EC)"
                } else {
                    "no private key found (expected a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\" \
                     or \"EC PRIVATE KEY\" section)"
                },
            )
        }
        other => pem_error(setting, path, describe_pem_error(other)),
    })
}

/// The trust anchors of a `*_ca_file`: every certificate in it must be
/// usable, and there must be at least one.
pub(crate) fn load_roots(setting: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
    let certs = load_certs(setting, path)?;
    let mut roots = RootCertStore::empty();
    for (index, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            pem_error(
                setting,
                path,
                format!(
                    "certificate #{} is not a usable CA certificate: {e}",
                    index + 1
                ),
            )
        })?;
    }
    Ok(roots)
}

/// The trust anchors of the system CA bundle: certificates that do not
/// parse are skipped (distribution bundles carry a few odd ones), but at
/// least one must be usable.
pub(crate) fn load_system_roots(
    setting: &'static str,
    path: &Path,
) -> Result<RootCertStore, TlsError> {
    let certs = load_certs(setting, path)?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(pem_error(
            setting,
            path,
            "no usable CA certificate in the system bundle",
        ));
    }
    Ok(roots)
}
