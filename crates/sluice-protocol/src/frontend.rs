//! Views of the client (frontend) messages the pooler looks into.

use crate::framing::BodyReader;
use crate::ProtocolError;

pub const QUERY: u8 = b'Q';
pub const PARSE: u8 = b'P';
pub const BIND: u8 = b'B';
pub const DESCRIBE: u8 = b'D';
pub const EXECUTE: u8 = b'E';
pub const CLOSE: u8 = b'C';
pub const SYNC: u8 = b'S';
pub const FLUSH: u8 = b'H';
pub const TERMINATE: u8 = b'X';
pub const COPY_DATA: u8 = b'd';
pub const COPY_DONE: u8 = b'c';
pub const COPY_FAIL: u8 = b'f';
pub const FUNCTION_CALL: u8 = b'F';
/// PasswordMessage, SASLInitialResponse and SASLResponse share this tag.
pub const PASSWORD: u8 = b'p';

/// The SQL text of a simple Query.
pub fn query_text(body: &[u8]) -> Result<&str, ProtocolError> {
    BodyReader::new(body, "Query").cstr()
}

/// A PasswordMessage's password.
pub fn password(body: &[u8]) -> Result<&str, ProtocolError> {
    BodyReader::new(body, "PasswordMessage").cstr()
}

/// A SASLInitialResponse: mechanism and initial data (empty when length -1).
pub fn sasl_initial_response(body: &[u8]) -> Result<(&str, &[u8]), ProtocolError> {
    let mut r = BodyReader::new(body, "SASLInitialResponse");
    let mech = r.cstr()?;
    let len = r.i32()?;
    let data = if len < 0 {
        &[][..]
    } else {
        r.bytes(len as usize)?
    };
    Ok((mech, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_initial_response_with_bad_length_is_an_error() {
        let mut b = b"SCRAM-SHA-256\0".to_vec();
        b.extend_from_slice(&100i32.to_be_bytes());
        b.extend_from_slice(b"short");
        assert!(sasl_initial_response(&b).is_err());
        let mut b = b"SCRAM-SHA-256\0".to_vec();
        b.extend_from_slice(&3i32.to_be_bytes());
        b.extend_from_slice(b"abc");
        assert_eq!(
            sasl_initial_response(&b).unwrap(),
            ("SCRAM-SHA-256", &b"abc"[..])
        );
    }
}
