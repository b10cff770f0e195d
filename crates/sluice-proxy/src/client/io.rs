//! The client socket with its read buffer and pending output, plus the
//! small blocking helpers used before the session loop takes over.

use bytes::{Buf, BytesMut};
use sluice_protocol::{builders, take_message, Message};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::errors::ClientError;

pub struct ClientIo<S> {
    pub stream: S,
    pub rbuf: BytesMut,
    pub wbuf: BytesMut,
    pub max_packet: usize,
}

impl ClientIo<super::stream::ClientStream> {
    pub fn stream_is_tls(&self) -> bool {
        self.stream.is_tls()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ClientIo<S> {
    pub fn new(stream: S, pkt_buf: usize, max_packet: usize) -> Self {
        ClientIo {
            stream,
            rbuf: BytesMut::with_capacity(pkt_buf.max(1024)),
            wbuf: BytesMut::with_capacity(pkt_buf.max(1024)),
            max_packet,
        }
    }

    /// Reads more bytes; EOF is an error (the client is gone).
    pub async fn fill(&mut self) -> Result<(), ClientError> {
        if self.rbuf.capacity() - self.rbuf.len() < 512 {
            self.rbuf.reserve(4096);
        }
        let n = self.stream.read_buf(&mut self.rbuf).await?;
        if n == 0 {
            return Err(ClientError::Gone(std::io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(())
    }

    pub async fn read_message(&mut self) -> Result<Message, ClientError> {
        loop {
            if let Some(m) = take_message(&mut self.rbuf, self.max_packet)? {
                return Ok(m);
            }
            self.fill().await?;
        }
    }

    /// Writes everything queued in `wbuf`.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        while !self.wbuf.is_empty() {
            let n = self.stream.write(&self.wbuf).await?;
            if n == 0 {
                return Err(ClientError::Gone(std::io::ErrorKind::WriteZero.into()));
            }
            self.wbuf.advance(n);
        }
        self.stream.flush().await?;
        Ok(())
    }

    /// Sends an error (if the client can still hear) and flushes; best effort.
    pub async fn send_error(&mut self, e: &ClientError) {
        if let Some((sev, code, msg)) = e.to_wire() {
            builders::put_error(&mut self.wbuf, &sev, &code, &msg);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.flush()).await;
        }
    }
}
