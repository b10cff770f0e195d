//! The socket to a server: TCP or unix-domain, behind one type.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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

#[derive(Debug)]
pub enum ServerStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl ServerStream {
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

    /// Non-blocking read, for liveness checks of idle connections.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ServerStream::Tcp(s) => s.try_read(buf),
            ServerStream::Unix(s) => s.try_read(buf),
        }
    }

    /// Non-blocking write (used for a polite Terminate on close).
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ServerStream::Tcp(s) => s.try_write(buf),
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
            ServerStream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            ServerStream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            ServerStream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
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
