//! A client's socket: TCP, TCP upgraded to TLS, or unix-domain, behind one
//! type the session loop can read and write.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

pub enum ClientStream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Unix(UnixStream),
    /// Left behind while the socket is being upgraded to TLS.
    Closed,
}

impl ClientStream {
    pub fn is_tls(&self) -> bool {
        matches!(self, ClientStream::Tls(_))
    }

    pub fn is_unix(&self) -> bool {
        matches!(self, ClientStream::Unix(_))
    }

    /// The CN of the client's certificate, if it presented one (rustls has
    /// verified it against client_tls_ca_file by then).
    pub fn peer_common_name(&self) -> Option<String> {
        let ClientStream::Tls(s) = self else {
            return None;
        };
        let certs = s.get_ref().1.peer_certificates()?;
        sluice_tls::peer_common_name(certs.first()?.as_ref())
    }

    /// The client's IP address (None for unix-socket clients).
    pub fn peer_ip(&self) -> Option<std::net::IpAddr> {
        match self {
            ClientStream::Tcp(s) => s.peer_addr().ok().map(|a| a.ip()),
            ClientStream::Tls(s) => s.get_ref().0.peer_addr().ok().map(|a| a.ip()),
            _ => None,
        }
    }

    /// Our end of the connection (address, port); empty for unix sockets.
    pub fn local_endpoint(&self) -> (String, u16) {
        let a = match self {
            ClientStream::Tcp(s) => s.local_addr(),
            ClientStream::Tls(s) => s.get_ref().0.local_addr(),
            _ => return (String::new(), 0),
        };
        a.map(|a| (a.ip().to_string(), a.port()))
            .unwrap_or((String::new(), 0))
    }

    /// "TLSv1_3/TLS13_AES_256_GCM_SHA384" for TLS, empty for plaintext.
    pub fn tls_description(&self) -> String {
        let ClientStream::Tls(s) = self else {
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

    /// The OS user id of a unix-socket client (SO_PEERCRED).
    pub fn peer_uid(&self) -> Option<u32> {
        let ClientStream::Unix(s) = self else {
            return None;
        };
        s.peer_cred().ok().map(|c| c.uid())
    }

    /// The OS user name of a unix-socket client (SO_PEERCRED), for `peer`.
    pub fn peer_os_user(&self) -> Option<String> {
        let ClientStream::Unix(s) = self else {
            return None;
        };
        let uid = s.peer_cred().ok()?.uid();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: getpwuid_r writes into our buffers only; we read pw_name
        // only when it reports success.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc != 0 || result.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points to a NUL-terminated string in buf.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        Some(name.to_string_lossy().into_owned())
    }

    fn closed() -> io::Error {
        io::Error::new(io::ErrorKind::NotConnected, "client stream closed")
    }
}

/// A stream that can say "readable" without being read, so that an idle
/// client holds no read buffer.
pub trait ReadReady {
    /// `None` when the stream cannot tell (TLS: the library may hold
    /// decrypted bytes the socket no longer shows).
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Option<Poll<io::Result<()>>>;

    /// Whether [`ReadReady::poll_read_ready`] can answer (not TLS).
    fn can_wait_unbuffered(&self) -> bool;
}

impl ReadReady for ClientStream {
    fn can_wait_unbuffered(&self) -> bool {
        matches!(self, ClientStream::Tcp(_) | ClientStream::Unix(_))
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Option<Poll<io::Result<()>>> {
        match self {
            ClientStream::Tcp(s) => Some(s.poll_read_ready(cx)),
            ClientStream::Unix(s) => Some(s.poll_read_ready(cx)),
            _ => None,
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            ClientStream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Closed => Poll::Ready(Err(Self::closed())),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            ClientStream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Closed => Poll::Ready(Err(Self::closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            ClientStream::Unix(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            ClientStream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Closed => Poll::Ready(Ok(())),
        }
    }
}
