//! Helpers for the TLS end-to-end tests (`tests/tls.rs`): a certificate for
//! Sluice to present to clients, psql runs with libpq TLS options (and
//! `\conninfo`, which tells whether the connection is encrypted), a raw
//! wire client over rustls (for what psql 15 cannot do: direct TLS with
//! ALPN, restricted protocol versions, stalled or stuffed handshakes), and
//! one PostgreSQL cluster with `ssl = on` shared by the server-side tests.
#![allow(dead_code)]

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use sluice_testkit::{psql_cmd, ClusterOptions, HbaAuth, PgCluster, TestPki};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::{Client, SimpleQueryMessage};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// How long any single network step of the raw client may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

// ------------------------------------------------------------ certificates

/// A CA of its own and a server certificate (`sluice.crt`/`sluice.key`)
/// it signed, for Sluice to present to clients.
pub struct SluiceCert {
    pub pki: TestPki,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl SluiceCert {
    /// A fresh CA and a certificate for `names` (DNS names and IPs).
    pub fn new(tag: &str, names: &[&str]) -> SluiceCert {
        let pki = TestPki::new(tag);
        let (cert, key) = pki.server_cert("sluice", names, false);
        SluiceCert { pki, cert, key }
    }

    /// The CA certificate clients should trust.
    pub fn ca(&self) -> &Path {
        &self.pki.ca_cert
    }

    /// `client_tls_sslmode`, `client_tls_cert_file` and `client_tls_key_file`
    /// lines for [pgbouncer].
    pub fn client_tls(&self, mode: &str) -> Vec<String> {
        vec![
            format!("client_tls_sslmode = {mode}"),
            format!("client_tls_cert_file = {}", self.cert.display()),
            format!("client_tls_key_file = {}", self.key.display()),
        ]
    }

    /// [`SluiceCert::client_tls`] plus `client_tls_ca_file = <this CA>`.
    pub fn client_tls_with_ca(&self, mode: &str) -> Vec<String> {
        let mut lines = self.client_tls(mode);
        lines.push(format!("client_tls_ca_file = {}", self.ca().display()));
        lines
    }
}

/// `&str` views of owned ini lines (for `common_auth::ini`).
pub fn strs(lines: &[String]) -> Vec<&str> {
    lines.iter().map(String::as_str).collect()
}

// ------------------------------------------------------------ psql

/// A libpq conninfo value, single-quoted.
pub fn q(value: impl AsRef<str>) -> String {
    format!(
        "'{}'",
        value.as_ref().replace('\\', "\\\\").replace('\'', "\\'")
    )
}

/// Conninfo for Sluice at `port` as `user` to `db`, by the host name
/// `localhost` (what `verify-full` checks) at address 127.0.0.1, followed by
/// the libpq TLS options in `tls` (e.g. `sslmode=require`).
pub fn conninfo(port: u16, user: &str, db: &str, tls: &str) -> String {
    format!(
        "host=localhost hostaddr=127.0.0.1 port={port} user={} dbname={} {tls}",
        q(user),
        q(db)
    )
}

/// `sslmode=<mode> sslrootcert=<ca>`.
pub fn verify(mode: &str, ca: &Path) -> String {
    format!("sslmode={mode} sslrootcert={}", q(ca.to_string_lossy()))
}

/// `sslcert=<cert> sslkey=<key>`.
pub fn client_cert(cert: &Path, key: &Path) -> String {
    format!(
        "sslcert={} sslkey={}",
        q(cert.to_string_lossy()),
        q(key.to_string_lossy())
    )
}

/// Runs psql with `conninfo`, one `-c` per command (so `\conninfo` and SQL
/// can be mixed), `-X -At -v ON_ERROR_STOP=1`, the password (if any) in
/// PGPASSWORD, and no other PG* variables. HOME points nowhere, so no
/// `~/.postgresql/root.crt` or `postgresql.crt` can change what libpq does.
pub fn psql(conninfo: &str, commands: &[&str], password: &str) -> Output {
    let mut cmd = Command::new(psql_cmd());
    cmd.arg(conninfo)
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::null());
    for c in commands {
        cmd.arg("-c").arg(c);
    }
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("PG") {
            cmd.env_remove(&var);
        }
    }
    cmd.env("PGCONNECT_TIMEOUT", "10")
        .env("HOME", "/nonexistent-sluice-tls-test-home");
    if !password.is_empty() {
        cmd.env("PGPASSWORD", password);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", psql_cmd().display()))
}

/// What `\conninfo` prints for a TLS connection.
const SSL_LINE: &str = "SSL connection (protocol:";

/// psql ran `\conninfo` then SQL successfully: returns (stdout lines after
/// the `\conninfo` lines, whether `\conninfo` reported TLS). Panics with
/// everything psql printed otherwise.
pub fn psql_ok(conninfo: &str, sql: &str, password: &str) -> (String, bool) {
    let out = psql(conninfo, &["\\conninfo", sql], password);
    assert!(
        out.status.success(),
        "psql {conninfo:?} failed:\n{}",
        show(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let encrypted = stdout.contains(SSL_LINE);
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with("You are connected") && !l.starts_with("SSL connection"))
        .collect();
    (rows.join("\n"), encrypted)
}

/// psql must fail: returns its stderr (libpq's and the server's messages).
pub fn psql_err(conninfo: &str, password: &str) -> String {
    let out = psql(conninfo, &["SELECT 'logged in'"], password);
    assert!(
        !out.status.success(),
        "psql {conninfo:?} succeeded, but it must fail:\n{}",
        show(&out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Status, stdout and stderr of a finished command.
pub fn show(out: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ------------------------------------------------------------ raw TLS client

/// An SSLRequest packet (length 8, code 80877103).
pub const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// The ring crypto provider (passed explicitly; no process default).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A root store holding the certificates in the PEM file `ca`.
pub fn roots(ca: &Path) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", ca.display()))
    {
        let cert = cert.unwrap_or_else(|e| panic!("bad PEM in {}: {e}", ca.display()));
        roots.add(cert).expect("CA certificate accepted");
    }
    roots
}

/// A rustls client trusting only `ca`, TLS 1.2 and 1.3, offering ALPN
/// `postgresql` when `alpn`.
pub fn tls_config(ca: &Path, alpn: bool) -> Arc<ClientConfig> {
    tls_config_with(ca, alpn, rustls::ALL_VERSIONS, provider())
}

/// Like [`tls_config`], with the protocol versions and provider (cipher
/// suites, key exchange groups) of our choosing.
pub fn tls_config_with(
    ca: &Path,
    alpn: bool,
    versions: &[&'static SupportedProtocolVersion],
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(roots(ca))
        .with_no_client_auth();
    if alpn {
        config.alpn_protocols = vec![b"postgresql".to_vec()];
    }
    Arc::new(config)
}

/// Connects to 127.0.0.1:`port`.
pub async fn tcp(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to 127.0.0.1:{port}: {e}"));
    s.set_nodelay(true).expect("TCP_NODELAY");
    s
}

/// Sends an SSLRequest on a new connection and returns it with the one-byte
/// answer (`S` or `N`).
pub async fn ssl_request(port: u16) -> (TcpStream, u8) {
    let mut s = tcp(port).await;
    s.write_all(&SSL_REQUEST).await.expect("send SSLRequest");
    let mut answer = [0u8; 1];
    tokio::time::timeout(STEP_TIMEOUT, s.read_exact(&mut answer))
        .await
        .expect("no answer to SSLRequest within 10 s")
        .expect("answer to SSLRequest");
    (s, answer[0])
}

/// The one-byte answer to an SSLRequest.
pub async fn ssl_request_answer(port: u16) -> u8 {
    ssl_request(port).await.1
}

/// TLS handshake on `tcp` for server name `name`.
pub async fn handshake(
    tcp: TcpStream,
    config: Arc<ClientConfig>,
    name: &str,
) -> io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(name.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    match tokio::time::timeout(STEP_TIMEOUT, TlsConnector::from(config).connect(name, tcp)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "TLS handshake hung for 10 s",
        )),
    }
}

/// SSLRequest, `S` (asserted), then a TLS handshake (libpq's way).
pub async fn tls_after_ssl_request(
    port: u16,
    config: Arc<ClientConfig>,
    name: &str,
) -> io::Result<TlsStream<TcpStream>> {
    let (s, answer) = ssl_request(port).await;
    assert_eq!(answer, b'S', "SSLRequest answered {:?}", answer as char);
    handshake(s, config, name).await
}

/// A TLS handshake straight after connecting (PostgreSQL 17's
/// `sslnegotiation=direct`).
pub async fn tls_direct(
    port: u16,
    config: Arc<ClientConfig>,
    name: &str,
) -> io::Result<TlsStream<TcpStream>> {
    handshake(tcp(port).await, config, name).await
}

/// How a connection the test only reads from ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// The peer closed it (EOF).
    Closed,
    /// A read failed (e.g. connection reset): closed as well.
    Failed(String),
    /// Still open when the time ran out.
    StillOpen,
}

/// Reads everything until the peer closes or `timeout` passes.
pub async fn read_to_end<S: AsyncRead + Unpin>(s: &mut S, timeout: Duration) -> (Vec<u8>, Ending) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut got = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Err(_) => return (got, Ending::StillOpen),
            Ok(Ok(0)) => return (got, Ending::Closed),
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return (got, Ending::Failed(e.to_string())),
        }
    }
}

/// Backend messages (tag, body) at the start of `bytes`, as far as they are
/// whole.
pub fn messages(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 5 {
        let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        if len < 4 || bytes.len() < 1 + len {
            break;
        }
        out.push((bytes[0], bytes[5..1 + len].to_vec()));
        bytes = &bytes[1 + len..];
    }
    out
}

/// "SQLSTATE: message" of an ErrorResponse body.
pub fn error_text(body: &[u8]) -> String {
    let mut code = String::new();
    let mut message = String::new();
    for field in body.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let value = String::from_utf8_lossy(&field[1..]).into_owned();
        match field[0] {
            b'C' => code = value,
            b'M' => message = value,
            _ => {}
        }
    }
    format!("{code}: {message}")
}

/// A bare PostgreSQL protocol client over any stream (TLS or not): startup
/// with cleartext password or no password, simple queries.
pub struct Wire<S> {
    pub stream: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub fn new(stream: S) -> Wire<S> {
        Wire {
            stream,
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| format!("write failed: {e}"))?;
        self.stream
            .flush()
            .await
            .map_err(|e| format!("flush failed: {e}"))
    }

    /// The next backend message; Err on EOF, a read error or 10 s of silence.
    pub async fn recv(&mut self) -> Result<(u8, Vec<u8>), String> {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes(self.buf[1..5].try_into().expect("4 bytes")) as usize;
                if len < 4 {
                    return Err(format!("bad message length {len}"));
                }
                if self.buf.len() > len {
                    let tag = self.buf[0];
                    let body = self.buf[5..1 + len].to_vec();
                    self.buf.drain(..1 + len);
                    return Ok((tag, body));
                }
            }
            let mut chunk = [0u8; 16384];
            let n = match tokio::time::timeout(STEP_TIMEOUT, self.stream.read(&mut chunk)).await {
                Err(_) => return Err("no answer within 10 s".to_owned()),
                Ok(Err(e)) => return Err(format!("read failed: {e}")),
                Ok(Ok(0)) => return Err("connection closed".to_owned()),
                Ok(Ok(n)) => n,
            };
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// StartupMessage for `user`/`db`, answering a cleartext password
    /// request with `password`, up to ReadyForQuery. Err("SQLSTATE: message")
    /// on an ErrorResponse, or a description of what went wrong.
    pub async fn login(&mut self, user: &str, db: &str, password: &str) -> Result<(), String> {
        let mut body = 196608u32.to_be_bytes().to_vec();
        for (k, v) in [("user", user), ("database", db)] {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        packet.extend_from_slice(&body);
        self.send(&packet).await?;
        loop {
            let (tag, body) = self.recv().await?;
            match tag {
                b'R' if body.len() >= 4 => {
                    match u32::from_be_bytes(body[..4].try_into().expect("4 bytes")) {
                        0 => {}
                        3 => {
                            let mut pw = password.as_bytes().to_vec();
                            pw.push(0);
                            let mut msg = vec![b'p'];
                            msg.extend_from_slice(&((pw.len() + 4) as u32).to_be_bytes());
                            msg.extend_from_slice(&pw);
                            self.send(&msg).await?;
                        }
                        other => return Err(format!("unsupported auth request {other}")),
                    }
                }
                b'S' | b'K' | b'N' => {}
                b'Z' => return Ok(()),
                b'E' => return Err(error_text(&body)),
                other => return Err(format!("unexpected message {:?} at login", other as char)),
            }
        }
    }

    /// A simple query: the first column of each row, or Err("SQLSTATE:
    /// message").
    pub async fn query(&mut self, sql: &str) -> Result<Vec<String>, String> {
        let mut body = sql.as_bytes().to_vec();
        body.push(0);
        let mut msg = vec![b'Q'];
        msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        msg.extend_from_slice(&body);
        self.send(&msg).await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let (tag, body) = self.recv().await?;
            match tag {
                b'D' => {
                    let len = i32::from_be_bytes(body[2..6].try_into().expect("4 bytes"));
                    rows.push(if len < 0 {
                        "NULL".to_owned()
                    } else {
                        String::from_utf8_lossy(&body[6..6 + len as usize]).into_owned()
                    });
                }
                b'E' => error = Some(error_text(&body)),
                b'Z' => return error.map_or(Ok(rows), Err),
                _ => {}
            }
        }
    }
}

// ------------------------------------------------------------ tokio-postgres

/// The columns of the first row of `sql` (simple protocol), NULL as "NULL".
pub async fn row(client: &Client, sql: &str) -> Vec<String> {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql:?} failed: {e:?}"));
    for m in messages {
        if let SimpleQueryMessage::Row(r) = m {
            return (0..r.len())
                .map(|i| r.get(i).unwrap_or("NULL").to_owned())
                .collect();
        }
    }
    panic!("{sql:?} returned no rows")
}

/// Whether the server connection behind `client` is encrypted, and with
/// what protocol version and cipher (PostgreSQL's own view, pg_stat_ssl).
pub const SERVER_SSL_SQL: &str = "SELECT ssl::text, coalesce(version, ''), coalesce(cipher, '') \
     FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

// ------------------------------------------------------------ TLS cluster

/// Role that may log in only over TLS (SCRAM password).
pub const TLS_USER: &str = "tls_user";
pub const TLS_PW: &str = "tls_pw";
/// Database owned by [`TLS_USER`].
pub const TLS_DB: &str = "tls_db";
/// Role that logs in with a client certificate (pg_hba `cert`).
pub const CERT_USER: &str = "tls_cert_user";

/// A PostgreSQL cluster with `ssl = on`, its certificate for `localhost`
/// only, signed by `pki`'s CA; pg_hba.conf lets [`TLS_USER`] in over TLS
/// only (`hostssl` SCRAM, `hostnossl` reject) and [`CERT_USER`] by client
/// certificate only.
pub struct TlsCluster {
    pub pki: TestPki,
    pub cluster: PgCluster,
    /// A client certificate with CN [`CERT_USER`], signed by `pki`'s CA,
    /// and its key: what Sluice presents with server_tls_cert_file.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// The one [`TlsCluster`] of this test process (started on first use;
/// stopped by the testkit's watchdogs when the process exits).
pub fn tls_cluster() -> &'static TlsCluster {
    static CLUSTER: OnceLock<TlsCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let started = Instant::now();
        let pki = TestPki::new("pg-server");
        let ssl = pki.cluster_ssl(&["localhost"]);
        let (client_cert, client_key) = pki.client_cert("sluice-to-postgres", CERT_USER);
        let cluster = PgCluster::start(ClusterOptions {
            auth: HbaAuth::Scram,
            users: vec![
                (TLS_USER.to_owned(), TLS_PW.to_owned()),
                (CERT_USER.to_owned(), "unused_pw".to_owned()),
            ],
            databases: vec![(TLS_DB.to_owned(), TLS_USER.to_owned())],
            ssl: Some(ssl),
            hba: Some(format!(
                "hostssl all {TLS_USER} 127.0.0.1/32 scram-sha-256\n\
                 hostnossl all {TLS_USER} 127.0.0.1/32 reject\n\
                 hostssl all {CERT_USER} 127.0.0.1/32 cert\n\
                 hostnossl all all 127.0.0.1/32 reject\n"
            )),
            ..Default::default()
        });
        eprintln!("TLS cluster started in {:?}", started.elapsed());
        TlsCluster {
            pki,
            cluster,
            client_cert,
            client_key,
        }
    })
}

impl TlsCluster {
    /// A [databases] line `name = host=<host> port=<port> dbname=tls_db
    /// <rest>`.
    pub fn db_line(&self, name: &str, host: &str, rest: &str) -> String {
        format!(
            "{name} = host={host} port={} dbname={TLS_DB} {rest}",
            self.cluster.port
        )
    }
}
