//! Builders for the messages Sluice writes itself, to clients (auth,
//! ParameterStatus, errors…) and to servers (startup, password, Query…).
//! Each `put_*` appends one message to a buffer; the plain forms return it.

use bytes::{BufMut, BytesMut};

/// Appends a message with `tag`, letting `body` write the payload, then
/// patches the length.
pub fn put_message(buf: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    buf.put_u8(tag);
    let at = buf.len();
    buf.put_i32(0);
    body(buf);
    let len = (buf.len() - at) as i32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn build(f: impl FnOnce(&mut BytesMut)) -> BytesMut {
    let mut b = BytesMut::with_capacity(64);
    f(&mut b);
    b
}

fn put_cstr(buf: &mut BytesMut, s: &str) {
    // A NUL inside would end the string early on the wire; drop it instead.
    buf.extend(s.bytes().filter(|&b| b != 0));
    buf.put_u8(0);
}

/// ErrorResponse (or NoticeResponse with `notice`) with severity, SQLSTATE, message.
pub fn put_error(buf: &mut BytesMut, severity: &str, code: &str, message: &str) {
    put_fields(buf, b'E', severity, code, message);
}

pub fn put_notice(buf: &mut BytesMut, severity: &str, code: &str, message: &str) {
    put_fields(buf, b'N', severity, code, message);
}

fn put_fields(buf: &mut BytesMut, tag: u8, severity: &str, code: &str, message: &str) {
    put_message(buf, tag, |b| {
        b.put_u8(b'S');
        put_cstr(b, severity);
        b.put_u8(b'V');
        put_cstr(b, severity);
        b.put_u8(b'C');
        put_cstr(b, code);
        b.put_u8(b'M');
        put_cstr(b, message);
        b.put_u8(0);
    });
}

pub fn error_response(severity: &str, code: &str, message: &str) -> BytesMut {
    build(|b| put_error(b, severity, code, message))
}

pub fn put_ready_for_query(buf: &mut BytesMut, status: u8) {
    put_message(buf, b'Z', |b| b.put_u8(status));
}

/// NegotiateProtocolVersion: the newest 3.x minor version spoken and the
/// `_pq_.` protocol options not recognized.
pub fn put_negotiate_protocol_version(buf: &mut BytesMut, minor: i32, unrecognized: &[&str]) {
    put_message(buf, b'v', |b| {
        b.put_i32(minor);
        b.put_i32(unrecognized.len() as i32);
        for name in unrecognized {
            b.put_slice(name.as_bytes());
            b.put_u8(0);
        }
    });
}

pub fn put_parameter_status(buf: &mut BytesMut, name: &str, value: &str) {
    put_message(buf, b'S', |b| {
        put_cstr(b, name);
        put_cstr(b, value);
    });
}

pub fn put_backend_key_data(buf: &mut BytesMut, pid: i32, key: i32) {
    put_message(buf, b'K', |b| {
        b.put_i32(pid);
        b.put_i32(key);
    });
}

pub fn put_auth_ok(buf: &mut BytesMut) {
    put_message(buf, b'R', |b| b.put_i32(0));
}

pub fn put_auth_cleartext(buf: &mut BytesMut) {
    put_message(buf, b'R', |b| b.put_i32(3));
}

pub fn put_auth_md5(buf: &mut BytesMut, salt: [u8; 4]) {
    put_message(buf, b'R', |b| {
        b.put_i32(5);
        b.put_slice(&salt);
    });
}

pub fn put_auth_sasl(buf: &mut BytesMut, mechanisms: &[&str]) {
    put_message(buf, b'R', |b| {
        b.put_i32(10);
        for m in mechanisms {
            put_cstr(b, m);
        }
        b.put_u8(0);
    });
}

pub fn put_auth_sasl_continue(buf: &mut BytesMut, data: &[u8]) {
    put_message(buf, b'R', |b| {
        b.put_i32(11);
        b.put_slice(data);
    });
}

pub fn put_auth_sasl_final(buf: &mut BytesMut, data: &[u8]) {
    put_message(buf, b'R', |b| {
        b.put_i32(12);
        b.put_slice(data);
    });
}

/// A simple Query.
pub fn put_query(buf: &mut BytesMut, sql: &str) {
    put_message(buf, b'Q', |b| put_cstr(b, sql));
}

/// Parse of the unnamed statement with no declared parameter types.
pub fn put_parse_unnamed(buf: &mut BytesMut, sql: &str) {
    put_message(buf, b'P', |b| {
        b.put_u8(0);
        put_cstr(b, sql);
        b.put_i16(0);
    });
}

/// Bind of the unnamed portal to the unnamed statement, text parameters
/// (`None` = NULL), text results.
pub fn put_bind_unnamed(buf: &mut BytesMut, params: &[Option<&str>]) {
    put_message(buf, b'B', |b| {
        b.put_u8(0);
        b.put_u8(0);
        b.put_i16(0);
        b.put_i16(params.len() as i16);
        for p in params {
            match p {
                Some(v) => {
                    b.put_i32(v.len() as i32);
                    b.put_slice(v.as_bytes());
                }
                None => b.put_i32(-1),
            }
        }
        b.put_i16(0);
    });
}

/// Execute of the unnamed portal, all rows.
pub fn put_execute_unnamed(buf: &mut BytesMut) {
    put_message(buf, b'E', |b| {
        b.put_u8(0);
        b.put_i32(0);
    });
}

pub fn put_terminate(buf: &mut BytesMut) {
    put_message(buf, b'X', |_| {});
}

pub fn put_sync(buf: &mut BytesMut) {
    put_message(buf, b'S', |_| {});
}

pub fn put_password(buf: &mut BytesMut, password: &str) {
    put_message(buf, b'p', |b| put_cstr(b, password));
}

pub fn put_sasl_initial_response(buf: &mut BytesMut, mechanism: &str, data: &[u8]) {
    put_message(buf, b'p', |b| {
        put_cstr(b, mechanism);
        b.put_i32(data.len() as i32);
        b.put_slice(data);
    });
}

pub fn put_sasl_response(buf: &mut BytesMut, data: &[u8]) {
    put_message(buf, b'p', |b| b.put_slice(data));
}

/// A v3.0 StartupMessage with the given parameters.
pub fn startup_message(params: &[(&str, &str)]) -> BytesMut {
    let mut b = BytesMut::with_capacity(128);
    b.put_i32(0);
    b.put_i32(crate::startup::PROTOCOL_V3);
    for (k, v) in params {
        put_cstr(&mut b, k);
        put_cstr(&mut b, v);
    }
    b.put_u8(0);
    let len = b.len() as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b
}

pub fn cancel_request(pid: i32, key: i32) -> BytesMut {
    let mut b = BytesMut::with_capacity(16);
    b.put_i32(16);
    b.put_i32(crate::startup::CANCEL_REQUEST_CODE);
    b.put_i32(pid);
    b.put_i32(key);
    b
}

/// Quotes a SQL literal the standard way ('it''s'), for SET statements.
pub fn quote_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push('\'');
        }
        if c != '\0' {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quotes a SQL identifier ("my""name").
pub fn quote_ident(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        if c != '\0' {
            out.push(c);
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::take_message;

    #[test]
    fn built_messages_frame_correctly() {
        let mut b = BytesMut::new();
        put_parameter_status(&mut b, "TimeZone", "UTC");
        put_ready_for_query(&mut b, b'I');
        let m = take_message(&mut b, 1000).unwrap().unwrap();
        assert_eq!(m.tag(), b'S');
        assert_eq!(m.body(), b"TimeZone\0UTC\0");
        let m = take_message(&mut b, 1000).unwrap().unwrap();
        assert_eq!(m.raw().as_ref(), b"Z\0\0\0\x05I");
    }

    #[test]
    fn literals_and_identifiers_are_escaped() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("a\0b"), "'ab'");
    }
}
