//! The untagged packets a connection starts with: SSLRequest, GSSENCRequest,
//! CancelRequest and the v3 StartupMessage.

use bytes::{Bytes, BytesMut};

use crate::framing::BodyReader;
use crate::ProtocolError;

pub const SSL_REQUEST_CODE: i32 = 80877103;
pub const GSSENC_REQUEST_CODE: i32 = 80877104;
pub const CANCEL_REQUEST_CODE: i32 = 80877102;
pub const PROTOCOL_V3: i32 = 196608;

/// What a client's first packet asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    SslRequest,
    GssEncRequest,
    Cancel { pid: i32, key: i32 },
    Startup(StartupParams),
}

/// Parameters of a StartupMessage in the order sent. Names are kept as sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StartupParams {
    pub minor_version: u16,
    pub params: Vec<(String, String)>,
}

impl StartupParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Takes one length-prefixed startup packet (length includes itself) off
/// `buf`, or `None` if more bytes are needed.
pub fn take_startup(buf: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < 8 {
        return Err(ProtocolError::BadLength(len as i64));
    }
    let len = len as usize;
    if len > crate::MAX_STARTUP_PACKET {
        return Err(ProtocolError::TooLarge {
            len,
            max: crate::MAX_STARTUP_PACKET,
        });
    }
    if buf.len() < len {
        return Ok(None);
    }
    Ok(Some(buf.split_to(len).freeze()))
}

/// Parses one packet returned by [`take_startup`].
pub fn parse_startup(packet: &[u8]) -> Result<StartupPacket, ProtocolError> {
    let mut r = BodyReader::new(packet.get(4..).unwrap_or_default(), "startup");
    let code = r.i32()?;
    match code {
        SSL_REQUEST_CODE => Ok(StartupPacket::SslRequest),
        GSSENC_REQUEST_CODE => Ok(StartupPacket::GssEncRequest),
        CANCEL_REQUEST_CODE => {
            let pid = r.i32()?;
            let key = r.i32()?;
            Ok(StartupPacket::Cancel { pid, key })
        }
        _ => {
            let major = (code >> 16) as u16;
            let minor = (code & 0xffff) as u16;
            if major != 3 {
                return Err(ProtocolError::UnsupportedVersion { major, minor });
            }
            let mut params = Vec::new();
            loop {
                let name = r.cstr()?;
                if name.is_empty() {
                    break;
                }
                let value = r.cstr()?;
                params.push((name.to_string(), value.to_string()));
            }
            Ok(StartupPacket::Startup(StartupParams {
                minor_version: minor,
                params,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders;

    #[test]
    fn startup_message_round_trips() {
        let pkt = builders::startup_message(&[("user", "bob"), ("database", "db")]);
        let mut buf = BytesMut::from(&pkt[..]);
        let raw = take_startup(&mut buf).unwrap().unwrap();
        match parse_startup(&raw).unwrap() {
            StartupPacket::Startup(p) => {
                assert_eq!(p.get("user"), Some("bob"));
                assert_eq!(p.get("database"), Some("db"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ssl_and_cancel_requests_are_recognised() {
        let mut ssl = Vec::new();
        ssl.extend_from_slice(&8i32.to_be_bytes());
        ssl.extend_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
        assert_eq!(parse_startup(&ssl).unwrap(), StartupPacket::SslRequest);
        let c = builders::cancel_request(7, 9);
        assert_eq!(
            parse_startup(&c).unwrap(),
            StartupPacket::Cancel { pid: 7, key: 9 }
        );
    }

    #[test]
    fn bad_lengths_and_truncation_are_errors() {
        let mut buf = BytesMut::from(&[0u8, 0, 0, 2][..]);
        assert!(take_startup(&mut buf).is_err());
        let mut buf = BytesMut::from(&[0u8, 1, 0, 0][..]);
        assert!(matches!(
            take_startup(&mut buf),
            Err(ProtocolError::TooLarge { .. })
        ));
        // a v3 startup whose parameter list lacks its terminators
        let mut pkt = Vec::new();
        pkt.extend_from_slice(&15i32.to_be_bytes());
        pkt.extend_from_slice(&PROTOCOL_V3.to_be_bytes());
        pkt.extend_from_slice(b"user\0bo");
        assert!(parse_startup(&pkt).is_err());
        let mut pkt = Vec::new();
        pkt.extend_from_slice(&8i32.to_be_bytes());
        pkt.extend_from_slice(&0x0002_0000i32.to_be_bytes());
        assert!(matches!(
            parse_startup(&pkt),
            Err(ProtocolError::UnsupportedVersion { major: 2, .. })
        ));
    }
}
