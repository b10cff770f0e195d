//! The first packets of a client connection: SSLRequest (handed back to the
//! caller, which answers `S` and upgrades, or `N`), GSSENCRequest (always
//! `N`), CancelRequest, StartupMessage.

use sluice_protocol::startup::{parse_startup, StartupParams};
use sluice_protocol::{take_startup, StartupPacket};
use tokio::io::AsyncWriteExt;

use super::io::ClientIo;
use super::stream::ClientStream;
use crate::errors::ClientError;

pub enum Handshake {
    /// The client asks for TLS; nothing else has been read after it.
    SslRequest,
    Login(StartupParams),
    Cancel {
        pid: i32,
        key: i32,
    },
}

pub async fn read_startup(io: &mut ClientIo<ClientStream>) -> Result<Handshake, ClientError> {
    let mut negotiations = 0;
    loop {
        let pkt = loop {
            if let Some(p) = take_startup(&mut io.rbuf)? {
                break p;
            }
            io.fill().await?;
        };
        let packet = parse_startup(&pkt)?;
        match packet {
            StartupPacket::SslRequest | StartupPacket::GssEncRequest => {
                negotiations += 1;
                // Bytes sent behind an SSLRequest would be read as if they
                // came through TLS: refuse (CVE-2021-23214's lesson).
                if negotiations > 2 || !io.rbuf.is_empty() {
                    return Err(ClientError::protocol_violation("bad startup sequence"));
                }
                if matches!(packet, StartupPacket::SslRequest) && !io.stream_is_tls() {
                    return Ok(Handshake::SslRequest);
                }
                io.stream.write_all(b"N").await?;
            }
            StartupPacket::Cancel { pid, key } => return Ok(Handshake::Cancel { pid, key }),
            StartupPacket::Startup(p) => return Ok(Handshake::Login(p)),
        }
    }
}
