//! Unit tests: a throwaway PKI made with rcgen in a temp dir, real TLS
//! handshakes between a `ServerTls` connector and a `ClientTls` acceptor
//! over an in-memory duplex pipe, and the settings parsers.

mod certs;
mod handshakes;
mod settings;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use sluice_config::GeneralSettings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{peer_common_name, ClientTls, ServerName, ServerTls, TlsMode};

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub(crate) fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "sluice-tls-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let file = self.path.join(name);
        std::fs::write(&file, text).expect("write file");
        file
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A CA and its key.
pub(crate) struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-sign CA");
        Ca { cert, key }
    }

    pub(crate) fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A leaf certificate for `cn` with the given SANs (IP addresses
    /// become IP SANs), for a TLS server or client.
    pub(crate) fn issue(&self, cn: &str, sans: &[&str], server: bool) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign leaf");
        Leaf { cert, key }
    }
}

/// A leaf certificate and its key.
pub(crate) struct Leaf {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
}

/// Files of a whole test PKI: a CA, a server certificate for `localhost`
/// and 127.0.0.1, a client certificate for CN `alice`, and a second,
/// unrelated CA with its own server and client certificates.
pub(crate) struct Pki {
    pub dir: TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub other_server_cert: PathBuf,
    pub other_server_key: PathBuf,
    pub other_client_cert: PathBuf,
    pub other_client_key: PathBuf,
    pub server_cert_der: Vec<u8>,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let dir = TempDir::new();
        let ca = Ca::new("Sluice Test CA");
        let server = ca.issue("localhost", &["localhost", "127.0.0.1"], true);
        let client = ca.issue("alice", &[], false);
        let other = Ca::new("Other CA");
        let other_server = other.issue("localhost", &["localhost", "127.0.0.1"], true);
        let other_client = other.issue("alice", &[], false);
        Pki {
            ca: dir.write("ca.crt", &ca.pem()),
            server_cert: dir.write("server.crt", &server.cert.pem()),
            server_key: dir.write("server.key", &server.key.serialize_pem()),
            client_cert: dir.write("client.crt", &client.cert.pem()),
            client_key: dir.write("client.key", &client.key.serialize_pem()),
            other_server_cert: dir.write("other-server.crt", &other_server.cert.pem()),
            other_server_key: dir.write("other-server.key", &other_server.key.serialize_pem()),
            other_client_cert: dir.write("other-client.crt", &other_client.cert.pem()),
            other_client_key: dir.write("other-client.key", &other_client.key.serialize_pem()),
            server_cert_der: server.cert.der().to_vec(),
            dir,
        }
    }

    /// Settings for Sluice as a TLS server with the main server certificate.
    pub(crate) fn client_side(&self, mode: TlsMode) -> GeneralSettings {
        GeneralSettings {
            client_tls_sslmode: mode,
            client_tls_key_file: Some(self.server_key.clone()),
            client_tls_cert_file: Some(self.server_cert.clone()),
            ..GeneralSettings::default()
        }
    }

    /// Settings for Sluice as a TLS client, trusting the main CA.
    pub(crate) fn server_side(&self, mode: TlsMode) -> GeneralSettings {
        GeneralSettings {
            server_tls_sslmode: mode,
            server_tls_ca_file: Some(self.ca.clone()),
            ..GeneralSettings::default()
        }
    }
}

pub(crate) fn client_tls(g: &GeneralSettings) -> ClientTls {
    match ClientTls::from_settings(g) {
        Ok((tls, _)) => tls,
        Err(e) => panic!("ClientTls::from_settings: {e}"),
    }
}

pub(crate) fn server_tls(g: &GeneralSettings) -> ServerTls {
    match ServerTls::from_settings(g) {
        Ok((tls, _)) => tls,
        Err(e) => panic!("ServerTls::from_settings: {e}"),
    }
}

/// What each end saw of one connection.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// On Sluice's accepting side: the client certificate's CN, the ALPN
    /// protocol, the version and the suite; or the error.
    pub accepted: Result<Accepted, String>,
    /// On Sluice's connecting side: `Ok` once a byte went both ways.
    pub connected: Result<(), String>,
}

#[derive(Debug)]
pub(crate) struct Accepted {
    pub peer_cn: Option<String>,
    pub alpn: Option<Vec<u8>>,
    pub version: Option<rustls::ProtocolVersion>,
    pub suite: Option<rustls::CipherSuite>,
    pub kx_group: Option<rustls::NamedGroup>,
}

impl Outcome {
    pub(crate) fn ok(&self) -> bool {
        self.accepted.is_ok() && self.connected.is_ok()
    }
}

/// A real TLS handshake (and one byte each way) between `server`'s
/// connector, asking for `host`, and `client`'s acceptor.
pub(crate) async fn handshake(client: &ClientTls, server: &ServerTls, host: &str) -> Outcome {
    let acceptor = client.acceptor.clone().expect("acceptor");
    let connector = server.connector.clone().expect("connector");
    let name = ServerName::try_from(host.to_string()).expect("server name");
    handshake_with(acceptor, connector, name).await
}

pub(crate) async fn handshake_with(
    acceptor: crate::TlsAcceptor,
    connector: crate::TlsConnector,
    name: ServerName<'static>,
) -> Outcome {
    let (near, far) = tokio::io::duplex(64 * 1024);
    let accept = async move {
        let mut stream = acceptor.accept(far).await.map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        stream
            .read_exact(&mut byte)
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(b"!").await.map_err(|e| e.to_string())?;
        stream.flush().await.map_err(|e| e.to_string())?;
        let conn = stream.get_ref().1;
        Ok::<_, String>(Accepted {
            peer_cn: conn
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|cert| peer_common_name(cert.as_ref())),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            version: conn.protocol_version(),
            suite: conn.negotiated_cipher_suite().map(|s| s.suite()),
            kx_group: conn.negotiated_key_exchange_group().map(|g| g.name()),
        })
    };
    let connect = async move {
        let mut stream = connector
            .connect(name, near)
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(b"?").await.map_err(|e| e.to_string())?;
        stream.flush().await.map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        stream
            .read_exact(&mut byte)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    };
    let (accepted, connected) = tokio::join!(accept, connect);
    Outcome {
        accepted,
        connected,
    }
}
