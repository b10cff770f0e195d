//! The first packets of a client connection: SSLRequest/GSSENCRequest
//! (answered `N` until TLS lands), CancelRequest, StartupMessage.

use sluice_protocol::startup::{parse_startup, StartupParams};
use sluice_protocol::{take_startup, StartupPacket};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::io::ClientIo;
use crate::errors::ClientError;

pub enum Handshake {
    Login(StartupParams),
    Cancel { pid: i32, key: i32 },
}

pub async fn read_startup<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut ClientIo<S>,
) -> Result<Handshake, ClientError> {
    let mut negotiations = 0;
    loop {
        let pkt = loop {
            if let Some(p) = take_startup(&mut io.rbuf)? {
                break p;
            }
            io.fill().await?;
        };
        match parse_startup(&pkt)? {
            StartupPacket::SslRequest | StartupPacket::GssEncRequest => {
                negotiations += 1;
                if negotiations > 2 || !io.rbuf.is_empty() {
                    return Err(ClientError::protocol_violation("bad startup sequence"));
                }
                io.stream.write_all(b"N").await?;
            }
            StartupPacket::Cancel { pid, key } => return Ok(Handshake::Cancel { pid, key }),
            StartupPacket::Startup(p) => return Ok(Handshake::Login(p)),
        }
    }
}
