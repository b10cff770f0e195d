//! Splitting a byte stream into whole messages (`tag`, `i32 length`, body)
//! without copying: each message is a `Bytes` slice of the read buffer.

use bytes::{Buf, Bytes, BytesMut};

use crate::ProtocolError;

/// One whole regular protocol message, header included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    raw: Bytes,
}

impl Message {
    /// Wraps bytes that hold exactly one message (header included).
    pub fn from_raw(raw: Bytes) -> Result<Message, ProtocolError> {
        if raw.len() < 5 {
            return Err(ProtocolError::Malformed { what: "header" });
        }
        let len = i32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]);
        if len < 4 || len as usize + 1 != raw.len() {
            return Err(ProtocolError::BadLength(len as i64));
        }
        Ok(Message { raw })
    }

    pub fn tag(&self) -> u8 {
        self.raw[0]
    }

    /// The body, after tag and length.
    pub fn body(&self) -> &[u8] {
        &self.raw[5..]
    }

    /// The whole message as it came over the wire.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    pub fn into_raw(self) -> Bytes {
        self.raw
    }

    pub fn len(&self) -> usize {
        self.raw.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Reads the header at the start of `buf`: (tag, total length incl. tag).
/// `None` when fewer than 5 bytes are buffered. Validates the length before
/// anybody sizes a buffer from it.
pub fn peek_header(buf: &[u8], max_len: usize) -> Result<Option<(u8, usize)>, ProtocolError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if len < 4 {
        return Err(ProtocolError::BadLength(len as i64));
    }
    let total = len as usize + 1;
    if total > max_len {
        return Err(ProtocolError::TooLarge {
            len: total,
            max: max_len,
        });
    }
    Ok(Some((buf[0], total)))
}

/// Takes one whole message off the front of `buf`, or `None` if more bytes
/// are needed. `max_len` bounds the message size (max_packet_size).
pub fn take_message(buf: &mut BytesMut, max_len: usize) -> Result<Option<Message>, ProtocolError> {
    match peek_header(buf, max_len)? {
        Some((_, total)) if buf.len() >= total => Ok(Some(Message {
            raw: buf.split_to(total).freeze(),
        })),
        Some((_, total)) => {
            // Grow with the data that actually arrives, not with what the
            // header claims: a peer can announce 2 GB and send nothing.
            buf.reserve((total - buf.len()).min(64 * 1024));
            Ok(None)
        }
        None => Ok(None),
    }
}

/// A cursor over a message body for the NUL-terminated strings and
/// big-endian integers of the protocol.
pub struct BodyReader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> BodyReader<'a> {
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        BodyReader { buf, what }
    }

    fn malformed(&self) -> ProtocolError {
        ProtocolError::Malformed { what: self.what }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn cstr_bytes(&mut self) -> Result<&'a [u8], ProtocolError> {
        let pos = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.malformed())?;
        let s = &self.buf[..pos];
        self.buf = &self.buf[pos + 1..];
        Ok(s)
    }

    pub fn cstr(&mut self) -> Result<&'a str, ProtocolError> {
        let b = self.cstr_bytes()?;
        std::str::from_utf8(b).map_err(|_| ProtocolError::BadUtf8)
    }

    pub fn u8(&mut self) -> Result<u8, ProtocolError> {
        if self.buf.is_empty() {
            return Err(self.malformed());
        }
        let v = self.buf[0];
        self.buf = &self.buf[1..];
        Ok(v)
    }

    pub fn i16(&mut self) -> Result<i16, ProtocolError> {
        if self.buf.len() < 2 {
            return Err(self.malformed());
        }
        let v = (&self.buf[..2]).get_i16();
        self.buf = &self.buf[2..];
        Ok(v)
    }

    pub fn i32(&mut self) -> Result<i32, ProtocolError> {
        if self.buf.len() < 4 {
            return Err(self.malformed());
        }
        let v = (&self.buf[..4]).get_i32();
        self.buf = &self.buf[4..];
        Ok(v)
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if self.buf.len() < n {
            return Err(self.malformed());
        }
        let v = &self.buf[..n];
        self.buf = &self.buf[n..];
        Ok(v)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        let v = self.buf;
        self.buf = &[];
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn whole_messages_are_split_off_and_partial_ones_wait() {
        let mut data = msg(b'Q', b"select 1\0");
        data.extend_from_slice(&msg(b'S', b"")[..3]);
        let mut buf = BytesMut::from(&data[..]);
        let m = take_message(&mut buf, 1 << 20).unwrap().unwrap();
        assert_eq!(m.tag(), b'Q');
        assert_eq!(m.body(), b"select 1\0");
        assert_eq!(take_message(&mut buf, 1 << 20).unwrap(), None);
        buf.extend_from_slice(&msg(b'S', b"")[3..]);
        let m = take_message(&mut buf, 1 << 20).unwrap().unwrap();
        assert_eq!(m.tag(), b'S');
        assert!(buf.is_empty());
    }

    #[test]
    fn truncated_header_needs_more_bytes() {
        let mut buf = BytesMut::from(&b"Q\0\0"[..]);
        assert_eq!(take_message(&mut buf, 100).unwrap(), None);
    }

    #[test]
    fn negative_or_tiny_length_is_rejected() {
        let mut buf = BytesMut::from(&b"Q\xff\xff\xff\xff"[..]);
        assert!(matches!(
            take_message(&mut buf, 100),
            Err(ProtocolError::BadLength(_))
        ));
        let mut buf = BytesMut::from(&b"Q\0\0\0\x03"[..]);
        assert!(matches!(
            take_message(&mut buf, 100),
            Err(ProtocolError::BadLength(3))
        ));
    }

    #[test]
    fn oversized_message_is_rejected_before_buffering() {
        let mut buf = BytesMut::from(&b"Q\x7f\xff\xff\xff"[..]);
        let cap = buf.capacity();
        assert!(matches!(
            take_message(&mut buf, 1 << 20),
            Err(ProtocolError::TooLarge { .. })
        ));
        assert_eq!(buf.capacity(), cap);
    }

    #[test]
    fn a_huge_announced_length_does_not_allocate_it() {
        let mut buf = BytesMut::from(&b"d\x40\x00\x00\x00"[..]);
        assert_eq!(take_message(&mut buf, usize::MAX).unwrap(), None);
        assert!(buf.capacity() < 1 << 20);
    }

    #[test]
    fn body_reader_rejects_missing_terminator() {
        let mut r = BodyReader::new(b"abc", "test");
        assert!(r.cstr().is_err());
        let mut r = BodyReader::new(b"ab\0\0\0\0\x07", "test");
        assert_eq!(r.cstr().unwrap(), "ab");
        assert_eq!(r.i32().unwrap(), 7);
        assert!(r.u8().is_err());
    }
}
