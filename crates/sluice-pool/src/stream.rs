//! The socket to a server: TCP (plain or TLS) or unix-domain, behind one
//! type, and the SSLRequest negotiation that upgrades a TCP connection.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use sluice_config::TlsMode;
use sluice_tls::{ServerName, ServerTls};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerAddr {
    Tcp {
        host: String,
        port: u16,
    },
    /// Full socket path, e.g. /var/run/postgresql/.s.PGSQL.5432
    Unix(PathBuf),
}

impl ServerAddr {
    /// From a [databases] host (hostname, IP, or socket directory) and port.
    pub fn from_host_port(host: Option<&str>, port: u16) -> ServerAddr {
        match host {
            Some(h) if h.starts_with('/') => {
                ServerAddr::Unix(PathBuf::from(h).join(format!(".s.PGSQL.{port}")))
            }
            Some(h) if !h.is_empty() => ServerAddr::Tcp {
                host: h.split(',').next().unwrap_or(h).trim().to_string(),
                port,
            },
            _ => ServerAddr::Unix(
                PathBuf::from("/var/run/postgresql").join(format!(".s.PGSQL.{port}")),
            ),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ServerAddr::Tcp { host, port } => format!("{host}:{port}"),
            ServerAddr::Unix(p) => p.display().to_string(),
        }
    }
}

pub enum ServerStream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Unix(UnixStream),
}

impl std::fmt::Debug for ServerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServerStream::Tcp(_) => "ServerStream::Tcp",
            ServerStream::Tls(_) => "ServerStream::Tls",
            ServerStream::Unix(_) => "ServerStream::Unix",
        })
    }
}

/// How TLS negotiation with a server went wrong.
#[derive(Debug, thiserror::Error)]
pub enum TlsNegotiationError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("server does not support TLS (server_tls_sslmode={0})")]
    Refused(&'static str),
    #[error("unexpected answer {0:#04x} to SSLRequest")]
    BadAnswer(u8),
    #[error("invalid server name for TLS: {0}")]
    BadName(String),
}

impl ServerStream {
    /// Connects and, per `server_tls_sslmode`, upgrades a TCP connection to
    /// TLS (unix sockets stay plain, as with libpq). `allow` and `prefer`
    /// fall back to plaintext when the server says `N` (as PgBouncer).
    pub async fn connect_with_tls(
        addr: &ServerAddr,
        tls: &ServerTls,
    ) -> Result<ServerStream, TlsNegotiationError> {
        let (mut tcp, host) = match (ServerStream::connect(addr).await?, addr) {
            (ServerStream::Tcp(t), ServerAddr::Tcp { host, .. }) => (t, host),
            (other, _) => return Ok(other),
        };
        let Some(connector) = tls
            .connector
            .as_ref()
            // As PgBouncer: every mode but disable asks for TLS first.
            .filter(|_| tls.mode != TlsMode::Disable)
        else {
            return Ok(ServerStream::Tcp(tcp));
        };
        let mut req = [0u8; 8];
        req[..4].copy_from_slice(&8i32.to_be_bytes());
        req[4..].copy_from_slice(&sluice_protocol::startup::SSL_REQUEST_CODE.to_be_bytes());
        tcp.write_all(&req).await?;
        let mut answer = [0u8; 1];
        tcp.read_exact(&mut answer).await?;
        match answer[0] {
            b'S' => {
                let name = ServerName::try_from(host.clone())
                    .map_err(|_| TlsNegotiationError::BadName(host.clone()))?;
                let s = connector.connect(name, tcp).await?;
                Ok(ServerStream::Tls(Box::new(s)))
            }
            b'N' if matches!(tls.mode, TlsMode::Allow | TlsMode::Prefer) => {
                Ok(ServerStream::Tcp(tcp))
            }
            b'N' => Err(TlsNegotiationError::Refused(tls.mode.as_str())),
            other => Err(TlsNegotiationError::BadAnswer(other)),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, ServerStream::Tls(_))
    }

    /// Our end of the connection (address, port); empty for unix sockets.
    pub fn local_endpoint(&self) -> (String, u16) {
        let tcp = match self {
            ServerStream::Tcp(s) => s,
            ServerStream::Tls(s) => s.get_ref().0,
            ServerStream::Unix(_) => return (String::new(), 0),
        };
        match tcp.local_addr() {
            Ok(a) => (a.ip().to_string(), a.port()),
            Err(_) => (String::new(), 0),
        }
    }

    /// "TLSv1_3/TLS13_AES_256_GCM_SHA384" for TLS, empty for plaintext.
    pub fn tls_description(&self) -> String {
        let ServerStream::Tls(s) = self else {
            return String::new();
        };
        let c = s.get_ref().1;
        let version = c
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default();
        let suite = c
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        format!("{version}/{suite}")
    }

    pub async fn connect(addr: &ServerAddr) -> io::Result<ServerStream> {
        match addr {
            ServerAddr::Tcp { host, port } => {
                let s = TcpStream::connect((host.as_str(), *port)).await?;
                s.set_nodelay(true)?;
                let sock = socket2::SockRef::from(&s);
                let _ = sock.set_keepalive(true);
                Ok(ServerStream::Tcp(s))
            }
            ServerAddr::Unix(path) => Ok(ServerStream::Unix(UnixStream::connect(path).await?)),
        }
    }

    /// Whether the reactor has seen the socket become readable (data or
    /// EOF) since it was last read dry — without a syscall. `Pending` means
    /// nothing arrived.
    pub fn poll_read_ready_now(&self) -> Poll<io::Result<()>> {
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        match self {
            ServerStream::Tcp(s) => s.poll_read_ready(&mut cx),
            ServerStream::Tls(s) => s.get_ref().0.poll_read_ready(&mut cx),
            ServerStream::Unix(s) => s.poll_read_ready(&mut cx),
        }
    }

    /// Non-blocking read, for liveness checks of idle connections.
    /// On TLS this reads the raw socket: only used to see whether an idle
    /// server said anything at all (it then gets closed anyway).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ServerStream::Tcp(s) => s.try_read(buf),
            ServerStream::Tls(s) => s.get_ref().0.try_read(buf),
            ServerStream::Unix(s) => s.try_read(buf),
        }
    }

    /// Non-blocking write (used for a polite Terminate on close).
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ServerStream::Tcp(s) => s.try_write(buf),
            // Not through the TLS layer: just close.
            ServerStream::Tls(_) => Ok(0),
            ServerStream::Unix(s) => s.try_write(buf),
        }
    }
}

impl AsyncRead for ServerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            ServerStream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            ServerStream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            ServerStream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            ServerStream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A waker that does nothing, for asking readiness without waiting.
fn noop_waker() -> std::task::Waker {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: std::sync::Arc<Self>) {}
    }
    static WAKER: std::sync::OnceLock<std::task::Waker> = std::sync::OnceLock::new();
    WAKER
        .get_or_init(|| std::task::Waker::from(std::sync::Arc::new(Noop)))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_forms_map_to_addresses() {
        assert_eq!(
            ServerAddr::from_host_port(Some("/tmp"), 5433),
            ServerAddr::Unix(PathBuf::from("/tmp/.s.PGSQL.5433"))
        );
        assert_eq!(
            ServerAddr::from_host_port(Some("db1,db2"), 5432),
            ServerAddr::Tcp {
                host: "db1".into(),
                port: 5432
            }
        );
    }
}
