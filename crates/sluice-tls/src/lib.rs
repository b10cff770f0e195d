//! TLS for Sluice on both sides, built from PgBouncer's `client_tls_*` and
//! `server_tls_*` settings with rustls (ring as the crypto provider, passed
//! explicitly, so no process-wide default provider is installed or needed).
//! No sockets here: [`ClientTls`] holds a [`TlsAcceptor`] for connections
//! from clients (Sluice is the TLS server), [`ServerTls`] a
//! [`TlsConnector`] for connections to PostgreSQL (Sluice is the TLS
//! client). Both are rebuilt from the settings on every load and reload, so
//! new certificate and key files take effect for new connections.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (config, _) = sluice_config::load(std::path::Path::new("pgbouncer.ini"))?;
//! let (to_clients, mut warnings) = sluice_tls::ClientTls::from_settings(&config.general)?;
//! let (to_servers, more) = sluice_tls::ServerTls::from_settings(&config.general)?;
//! warnings.extend(more);
//! // to_clients.acceptor.unwrap().accept(tcp) after answering SSLRequest with 'S';
//! // to_servers.connector.unwrap().connect(ServerName::try_from(host)?, tcp).
//! # let _ = (to_clients, to_servers);
//! # Ok(())
//! # }
//! ```
//!
//! # How PgBouncer's settings map onto rustls
//!
//! rustls implements TLS 1.2 and 1.3 with modern AEAD suites only. Where a
//! setting asks for something it lacks, Sluice returns a warning (or, where
//! going on would silently use something the operator ruled out, an error);
//! it never weakens what was asked for.
//!
//! - `client_tls_sslmode`: `disable` → no TLS (an `SSLRequest` is answered
//!   `N`); `allow`/`prefer` → TLS if the client asks; `require` → plaintext
//!   refused; `verify-ca`/`verify-full` → in addition the client must
//!   present a certificate that verifies against `client_tls_ca_file`
//!   (PgBouncer makes no difference between the two on this side; the CN
//!   check is `auth_type=cert`'s). Any mode but `disable` needs
//!   `client_tls_key_file` and `client_tls_cert_file` (error otherwise, as
//!   PgBouncer); `verify-full` needs `client_tls_ca_file` (as PgBouncer);
//!   `verify-ca` without it verifies against the system CA bundle (as
//!   PgBouncer, with a warning). `auth_type=cert` needs
//!   `client_tls_sslmode=verify-full` and `client_tls_ca_file` (as
//!   PgBouncer).
//! - `client_tls_ca_file` with `allow`/`prefer`/`require`: client
//!   certificates are requested but optional; one that is presented must
//!   verify (PgBouncer's documentation says it is not validated there;
//!   Sluice is stricter rather than accepting a certificate it has not
//!   checked).
//! - ALPN: Sluice offers `postgresql` (PostgreSQL 17 direct TLS needs it);
//!   a client that sends no ALPN (libpq before 17, over `SSLRequest`) is
//!   accepted; a client that offers only other protocols is refused by
//!   rustls.
//! - `server_tls_sslmode`: `disable` → no TLS; `allow`/`prefer`/`require` →
//!   encrypted, certificate not verified (libpq and PgBouncer), except that
//!   `require` with `server_tls_ca_file` set verifies the chain like
//!   `verify-ca` (libpq's rule; PgBouncer does not verify there);
//!   `verify-ca` → chain verified against `server_tls_ca_file` (or the
//!   system CA bundle when unset), host name not checked; `verify-full` →
//!   chain and host name (the `[databases]` host given as [`ServerName`],
//!   IP addresses checked against IP SANs). `server_tls_key_file` +
//!   `server_tls_cert_file` → client certificate presented to PostgreSQL
//!   (both or neither). `server_tls_ca_file` with `allow`/`prefer` → warning
//!   that it is not used. Sluice offers ALPN `postgresql` to servers, as
//!   libpq 17 does (older servers ignore it).
//! - `*_tls_protocols`: PgBouncer's (libtls's) syntax: items separated by
//!   `,` or `:` (Sluice also takes spaces), each `tlsv1.0`, `tlsv1.1`,
//!   `tlsv1.2`, `tlsv1.3`, `tlsv1` (all four), `all`/`legacy` (all four),
//!   `secure`/`default` (1.2 and 1.3), any case, `!` before an item to
//!   exclude it (`+` is accepted and ignored); empty = `secure`. The 1.2/1.3
//!   part is honoured exactly; a set that also has 1.0/1.1 → warning that
//!   they are not available; a set with only 1.0/1.1 (or nothing) → error.
//! - `*_tls_ciphers` (TLS 1.2 and lower, as in PgBouncer): the keywords
//!   `default`, `secure`, `fast`, `normal` (and empty) → rustls's default
//!   suites, silently (they are at least as strong as what PgBouncer picks);
//!   `compat`, `legacy`, `all`, `insecure` → rustls's defaults with a
//!   warning (legacy suites are not available; nothing is weakened). An
//!   OpenSSL cipher string is evaluated over rustls's six TLS 1.2 suites
//!   (ECDHE-{ECDSA,RSA}-{AES128-GCM-SHA256, AES256-GCM-SHA384,
//!   CHACHA20-POLY1305}): exact suite names (OpenSSL or IANA), the aliases
//!   that apply to them (`HIGH`, `ALL`, `DEFAULT`, `ECDHE`, `EECDH`, `aRSA`,
//!   `aECDSA`, `ECDSA`, `AES`, `AESGCM`, `AES128`, `AES256`, `CHACHA20`,
//!   `SHA256`, `SHA384`, `A+B` intersections), aliases of suite families
//!   rustls does not have (`aNULL`, `RC4`, `3DES`, `DHE`, `kRSA`, `CAMELLIA`,
//!   …), `!`/`-`/`+` prefixes and `@STRENGTH`/`@SECLEVEL=n` (ignored). The
//!   result is used in the given order, server preference; a string that
//!   selects none of rustls's suites, or has an element Sluice cannot
//!   interpret, is not honoured: warning, rustls's default suites.
//! - `*_tls13_ciphers` (TLS 1.3; empty = rustls's defaults):
//!   `TLS_AES_256_GCM_SHA384`, `TLS_AES_128_GCM_SHA256`,
//!   `TLS_CHACHA20_POLY1305_SHA256` honoured in the given order;
//!   `TLS_AES_128_CCM_SHA256` and `TLS_AES_128_CCM_8_SHA256` are not in
//!   rustls: dropped with a warning (only those → warning, rustls's default
//!   TLS 1.3 suites); any other name → error.
//! - `client_tls_ecdhcurve`: `auto` (and empty) → rustls's groups (X25519,
//!   P-256, P-384); curve names `prime256v1`/`secp256r1`/`P-256`,
//!   `secp384r1`/`P-384`, `x25519` (also a `,`/`:` list) → exactly those
//!   groups, for TLS 1.2 and 1.3; `secp521r1`/`P-521`/`x448` are not in
//!   rustls's ring provider (dropped with a warning; only those → error);
//!   `none` → warning, rustls's groups (ECDHE cannot be turned off: it is
//!   rustls's only key exchange); other names → error.
//! - `client_tls_dheparams`: `none`/`auto` → nothing to do (rustls has no
//!   finite-field DHE suites; clients that support only DHE, not ECDHE,
//!   cannot connect); `legacy` or anything else → warning that it is
//!   ignored (rustls has no DHE suites, which is not weaker).
//! - Keys: PEM, unencrypted PKCS#8, PKCS#1 (RSA) or SEC1 (EC); the
//!   certificate file may hold the chain (leaf first); the key must match
//!   the certificate. An encrypted key is an error.

mod cert;
mod choices;
mod files;
mod verify;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use sluice_config::{AuthType, GeneralSettings};

pub use cert::{peer_common_name, tls_server_end_point};
pub use files::SYSTEM_CA_BUNDLES;
pub use rustls::pki_types::ServerName;
pub use sluice_config::TlsMode;
pub use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The ALPN protocol name of PostgreSQL (required by PostgreSQL 17's direct
/// TLS negotiation).
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// Why a TLS configuration cannot be built. Each message names the setting,
/// the file where there is one, and the reason.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file named by a setting could not be read.
    #[error("{setting} {}: could not read file: {source}", .path.display())]
    Io {
        setting: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// A file was read but holds no usable certificate or key.
    #[error("{setting} {}: {reason}", .path.display())]
    Pem {
        setting: &'static str,
        path: PathBuf,
        reason: String,
    },

    /// A setting the chosen mode needs is not set.
    #[error("{0}")]
    Missing(String),

    /// A value that cannot be used (unknown protocol, curve, …).
    #[error("invalid {setting} \"{value}\": {reason}")]
    InvalidSetting {
        setting: &'static str,
        value: String,
        reason: String,
    },

    /// A verify mode without a CA file, and no system CA bundle either.
    #[error(
        "{mode_setting} = {}: {ca_setting} is not set and no system CA bundle was found \
         (looked for {})",
        .mode.as_str(),
        SYSTEM_CA_BUNDLES.join(", ")
    )]
    NoCaBundle {
        mode_setting: &'static str,
        mode: TlsMode,
        ca_setting: &'static str,
    },

    /// The private key is not the certificate's.
    #[error("{key_setting} {} does not match the certificate in {cert_setting} {}", .key_path.display(), .cert_path.display())]
    KeyMismatch {
        key_setting: &'static str,
        key_path: PathBuf,
        cert_setting: &'static str,
        cert_path: PathBuf,
    },

    /// rustls refused the configuration (for example a key type it cannot
    /// use); `context` says which settings were involved.
    #[error("{context}: {source}")]
    Rustls {
        context: String,
        source: rustls::Error,
    },
}

/// TLS towards clients (Sluice is the TLS server).
#[derive(Clone)]
pub struct ClientTls {
    pub mode: TlsMode,
    /// `None` when `mode` is `Disable`.
    pub acceptor: Option<TlsAcceptor>,
    /// Client certificates are requested (`client_tls_ca_file` set, or a
    /// verify mode): mandatory for verify-ca/verify-full, optional (but
    /// verified when given) otherwise.
    pub request_client_cert: bool,
    end_point: Option<Arc<[u8]>>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("mode", &self.mode)
            .field("acceptor", &self.acceptor.as_ref().map(|_| "TlsAcceptor"))
            .field("request_client_cert", &self.request_client_cert)
            .finish()
    }
}

impl ClientTls {
    /// From `[pgbouncer]` `client_tls_*` (and `auth_type`, which PgBouncer
    /// also checks here). See the crate documentation for how each setting
    /// maps onto rustls. Returns warnings for what cannot be honoured
    /// exactly.
    pub fn from_settings(g: &GeneralSettings) -> Result<(ClientTls, Vec<String>), TlsError> {
        let mode = g.client_tls_sslmode;
        let mut warnings = Vec::new();
        if mode == TlsMode::Disable {
            if g.auth_type == AuthType::Cert {
                return Err(TlsError::Missing(
                    "auth_type = cert requires client_tls_sslmode = verify-full (and \
                     client_tls_ca_file), as in PgBouncer"
                        .to_string(),
                ));
            }
            return Ok((ClientTls::disabled(), warnings));
        }
        let (Some(key_path), Some(cert_path)) = (&g.client_tls_key_file, &g.client_tls_cert_file)
        else {
            return Err(TlsError::Missing(format!(
                "client_tls_sslmode = {} needs client_tls_key_file and client_tls_cert_file \
                 (the key and certificate Sluice presents to clients)",
                mode.as_str()
            )));
        };
        if g.auth_type == AuthType::Cert {
            if mode != TlsMode::VerifyFull {
                return Err(TlsError::Missing(format!(
                    "auth_type = cert requires client_tls_sslmode = verify-full (it is {}), as \
                     in PgBouncer",
                    mode.as_str()
                )));
            }
            if g.client_tls_ca_file.is_none() {
                return Err(TlsError::Missing(
                    "auth_type = cert requires client_tls_ca_file, as in PgBouncer".to_string(),
                ));
            }
        }
        if mode == TlsMode::VerifyFull && g.client_tls_ca_file.is_none() {
            return Err(TlsError::Missing(
                "client_tls_sslmode = verify-full requires client_tls_ca_file (the CA that \
                 signs client certificates), as in PgBouncer"
                    .to_string(),
            ));
        }

        let choices = choices::build(
            choices::CLIENT_KEYS,
            &choices::Raw {
                protocols: &g.client_tls_protocols,
                ciphers: &g.client_tls_ciphers,
                tls13_ciphers: &g.client_tls13_ciphers,
                ecdhcurve: Some(&g.client_tls_ecdhcurve),
                dheparams: Some(&g.client_tls_dheparams),
            },
            &mut warnings,
        )?;
        let certs = files::load_certs("client_tls_cert_file", cert_path)?;
        let key = files::load_key("client_tls_key_file", key_path)?;
        let end_point = tls_server_end_point(certs[0].as_ref()).map(Arc::from);

        let roots = match &g.client_tls_ca_file {
            Some(ca) => Some(files::load_roots("client_tls_ca_file", ca)?),
            None if mode == TlsMode::VerifyCa => {
                let bundle = files::system_ca_bundle().ok_or(TlsError::NoCaBundle {
                    mode_setting: "client_tls_sslmode",
                    mode,
                    ca_setting: "client_tls_ca_file",
                })?;
                warnings.push(format!(
                    "client_tls_sslmode = verify-ca without client_tls_ca_file: client \
                     certificates are verified against the system CA bundle {}, as PgBouncer \
                     does; set client_tls_ca_file to the CA that signs your client certificates",
                    bundle.display()
                ));
                Some(files::load_system_roots("client_tls_ca_file", &bundle)?)
            }
            None => None,
        };
        let request_client_cert = roots.is_some();

        let builder = ServerConfig::builder_with_provider(choices.provider.clone())
            .with_protocol_versions(&choices.versions)
            .map_err(|source| TlsError::Rustls {
                context: "client_tls_protocols/client_tls_ciphers/client_tls13_ciphers".to_string(),
                source,
            })?;
        let builder = match roots {
            None => builder.with_no_client_auth(),
            Some(roots) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    choices.provider.clone(),
                );
                let verifier = if mode.verifies_peer() {
                    verifier
                } else {
                    verifier.allow_unauthenticated()
                };
                let verifier = verifier.build().map_err(|e| TlsError::Pem {
                    setting: "client_tls_ca_file",
                    path: g.client_tls_ca_file.clone().unwrap_or_default(),
                    reason: format!("cannot verify client certificates with it: {e}"),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| {
            key_error(
                e,
                ("client_tls_key_file", key_path),
                ("client_tls_cert_file", cert_path),
            )
        })?;
        config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
        config.ignore_client_order = true;

        Ok((
            ClientTls {
                mode,
                acceptor: Some(TlsAcceptor::from(Arc::new(config))),
                request_client_cert,
                end_point,
            },
            warnings,
        ))
    }

    /// No TLS towards clients (`client_tls_sslmode = disable`).
    pub fn disabled() -> ClientTls {
        ClientTls {
            mode: TlsMode::Disable,
            acceptor: None,
            request_client_cert: false,
            end_point: None,
        }
    }

    /// The RFC 5929 `tls-server-end-point` data of the certificate Sluice
    /// presents to clients (see [`tls_server_end_point`]), for
    /// SCRAM-SHA-256-PLUS. `None` when TLS is disabled or the certificate's
    /// signature algorithm has no defined hash.
    pub fn server_end_point(&self) -> Option<&[u8]> {
        self.end_point.as_deref()
    }
}

/// TLS towards PostgreSQL servers (Sluice is the TLS client).
#[derive(Clone)]
pub struct ServerTls {
    pub mode: TlsMode,
    /// `None` when `mode` is `Disable`.
    pub connector: Option<TlsConnector>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("mode", &self.mode)
            .field(
                "connector",
                &self.connector.as_ref().map(|_| "TlsConnector"),
            )
            .finish()
    }
}

impl ServerTls {
    /// From `[pgbouncer]` `server_tls_*`. See the crate documentation for
    /// how each setting maps onto rustls. The caller passes the
    /// `[databases]` host as the [`ServerName`] when connecting; it is
    /// checked only in `verify-full`.
    pub fn from_settings(g: &GeneralSettings) -> Result<(ServerTls, Vec<String>), TlsError> {
        let mode = g.server_tls_sslmode;
        let mut warnings = Vec::new();
        if mode == TlsMode::Disable {
            return Ok((ServerTls::disabled(), warnings));
        }
        let choices = choices::build(
            choices::SERVER_KEYS,
            &choices::Raw {
                protocols: &g.server_tls_protocols,
                ciphers: &g.server_tls_ciphers,
                tls13_ciphers: &g.server_tls13_ciphers,
                ecdhcurve: None,
                dheparams: None,
            },
            &mut warnings,
        )?;

        let verify_chain =
            mode.verifies_peer() || (mode == TlsMode::Require && g.server_tls_ca_file.is_some());
        if !verify_chain && g.server_tls_ca_file.is_some() {
            warnings.push(format!(
                "server_tls_ca_file is set but server_tls_sslmode = {} does not verify server \
                 certificates; use require, verify-ca or verify-full to have it used",
                mode.as_str()
            ));
        }

        let builder = ClientConfig::builder_with_provider(choices.provider.clone())
            .with_protocol_versions(&choices.versions)
            .map_err(|source| TlsError::Rustls {
                context: "server_tls_protocols/server_tls_ciphers/server_tls13_ciphers".to_string(),
                source,
            })?;
        let builder = if verify_chain {
            let roots = server_roots(g, mode)?;
            let webpki = WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                choices.provider.clone(),
            )
            .build()
            .map_err(|e| TlsError::Pem {
                setting: "server_tls_ca_file",
                path: g.server_tls_ca_file.clone().unwrap_or_default(),
                reason: format!("cannot verify server certificates with it: {e}"),
            })?;
            if mode == TlsMode::VerifyFull {
                builder.with_webpki_verifier(webpki)
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verify::ChainOnly::new(webpki)))
            }
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verify::NoVerification::new(
                    choices.provider.clone(),
                )))
        };
        let mut config = match (&g.server_tls_key_file, &g.server_tls_cert_file) {
            (Some(key_path), Some(cert_path)) => {
                let certs = files::load_certs("server_tls_cert_file", cert_path)?;
                let key = files::load_key("server_tls_key_file", key_path)?;
                builder.with_client_auth_cert(certs, key).map_err(|e| {
                    key_error(
                        e,
                        ("server_tls_key_file", key_path),
                        ("server_tls_cert_file", cert_path),
                    )
                })?
            }
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) | (None, Some(_)) => {
                return Err(TlsError::Missing(
                    "server_tls_key_file and server_tls_cert_file must be set together (the \
                     client certificate Sluice presents to servers)"
                        .to_string(),
                ))
            }
        };
        config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];

        Ok((
            ServerTls {
                mode,
                connector: Some(TlsConnector::from(Arc::new(config))),
            },
            warnings,
        ))
    }

    /// No TLS towards servers (`server_tls_sslmode = disable`).
    pub fn disabled() -> ServerTls {
        ServerTls {
            mode: TlsMode::Disable,
            connector: None,
        }
    }
}

/// The roots to verify servers against: `server_tls_ca_file`, else the
/// system CA bundle.
fn server_roots(g: &GeneralSettings, mode: TlsMode) -> Result<RootCertStore, TlsError> {
    if let Some(ca) = &g.server_tls_ca_file {
        return files::load_roots("server_tls_ca_file", ca);
    }
    let bundle = files::system_ca_bundle().ok_or(TlsError::NoCaBundle {
        mode_setting: "server_tls_sslmode",
        mode,
        ca_setting: "server_tls_ca_file",
    })?;
    tracing::debug!(
        "server_tls_ca_file not set: verifying servers against {}",
        bundle.display()
    );
    files::load_system_roots("server_tls_ca_file", &bundle)
}

/// A rustls error from pairing a key with its certificate.
fn key_error(
    e: rustls::Error,
    (key_setting, key_path): (&'static str, &Path),
    (cert_setting, cert_path): (&'static str, &Path),
) -> TlsError {
    match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
            key_setting,
            key_path: key_path.to_path_buf(),
            cert_setting,
            cert_path: cert_path.to_path_buf(),
        },
        source => TlsError::Rustls {
            context: format!(
                "{key_setting} {} with {cert_setting} {}",
                key_path.display(),
                cert_path.display()
            ),
            source,
        },
    }
}
