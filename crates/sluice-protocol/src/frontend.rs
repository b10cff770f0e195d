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

/// Whether a client may send a message with this tag once logged in (the
/// simple and extended query, function call and COPY messages, Terminate).
/// Anything else is refused rather than passed to a server, which would
/// end the server connection with "invalid frontend message type".
pub fn is_session_message(tag: u8) -> bool {
    matches!(
        tag,
        QUERY
            | PARSE
            | BIND
            | DESCRIBE
            | EXECUTE
            | CLOSE
            | SYNC
            | FLUSH
            | TERMINATE
            | COPY_DATA
            | COPY_DONE
            | COPY_FAIL
            | FUNCTION_CALL
    )
}

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

/// A Parse: (statement name, everything after the name: query text,
/// parameter types), so the name can be swapped without re-encoding.
pub fn parse_name(body: &[u8]) -> Result<(&str, &[u8]), ProtocolError> {
    let mut r = BodyReader::new(body, "Parse");
    let name = r.cstr()?;
    let rest = r.rest();
    // Check the rest is well formed: query text, then n parameter types.
    let mut q = BodyReader::new(rest, "Parse");
    q.cstr_bytes()?;
    let n = q.i16()?;
    if n < 0 || q.remaining() != n as usize * 4 {
        return Err(ProtocolError::Malformed { what: "Parse" });
    }
    Ok((name, rest))
}

/// A Bind: (portal, statement name, everything after the statement name).
pub fn bind_names(body: &[u8]) -> Result<(&str, &str, &[u8]), ProtocolError> {
    let mut r = BodyReader::new(body, "Bind");
    let portal = r.cstr()?;
    let stmt = r.cstr()?;
    Ok((portal, stmt, r.rest()))
}

/// A Describe or Close: (`S` or `P`, name).
pub fn target(body: &[u8]) -> Result<(u8, &str), ProtocolError> {
    let mut r = BodyReader::new(body, "Describe/Close");
    let kind = r.u8()?;
    if kind != b'S' && kind != b'P' {
        return Err(ProtocolError::Malformed {
            what: "Describe/Close",
        });
    }
    Ok((kind, r.cstr()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_session_messages_are_accepted_after_login() {
        let ok: Vec<u8> = (0..=255u8).filter(|&t| is_session_message(t)).collect();
        assert_eq!(ok, b"BCDEFHPQSXcdf".to_vec());
        // A password after login, a backend tag, a NUL: refused.
        for t in [b'p', b'T', b'Z', 0u8, b'z'] {
            assert!(!is_session_message(t), "{}", t as char);
        }
    }

    use super::*;

    #[test]
    fn parse_bind_and_targets_split_out_their_names() {
        let mut p = b"s1\0select $1\0".to_vec();
        p.extend_from_slice(&1i16.to_be_bytes());
        p.extend_from_slice(&23i32.to_be_bytes());
        let (name, rest) = parse_name(&p).unwrap();
        assert_eq!(name, "s1");
        assert_eq!(&rest[..10], b"select $1\0");
        assert!(parse_name(&p[..p.len() - 1]).is_err());
        let b = b"\0s1\0\0\0\0\0\0\0";
        assert_eq!(bind_names(b).unwrap().0, "");
        assert_eq!(bind_names(b).unwrap().1, "s1");
        assert_eq!(target(b"Ss1\0").unwrap(), (b'S', "s1"));
        assert!(target(b"Xs1\0").is_err());
    }

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
