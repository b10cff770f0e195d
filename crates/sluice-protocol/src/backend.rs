//! Views of the server (backend) messages the pooler looks into.

use crate::framing::BodyReader;
use crate::ProtocolError;

pub const AUTHENTICATION: u8 = b'R';
pub const BACKEND_KEY_DATA: u8 = b'K';
pub const PARAMETER_STATUS: u8 = b'S';
pub const READY_FOR_QUERY: u8 = b'Z';
pub const ERROR_RESPONSE: u8 = b'E';
pub const NOTICE_RESPONSE: u8 = b'N';
pub const NOTIFICATION_RESPONSE: u8 = b'A';
pub const COPY_IN_RESPONSE: u8 = b'G';
pub const COPY_OUT_RESPONSE: u8 = b'H';
pub const COPY_BOTH_RESPONSE: u8 = b'W';
pub const COPY_DATA: u8 = b'd';
pub const COPY_DONE: u8 = b'c';
pub const PARSE_COMPLETE: u8 = b'1';
pub const BIND_COMPLETE: u8 = b'2';
pub const CLOSE_COMPLETE: u8 = b'3';
pub const COMMAND_COMPLETE: u8 = b'C';
pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';

/// Transaction status carried by ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    Idle,
    InTransaction,
    Failed,
}

impl TxStatus {
    pub fn byte(self) -> u8 {
        match self {
            TxStatus::Idle => b'I',
            TxStatus::InTransaction => b'T',
            TxStatus::Failed => b'E',
        }
    }
}

pub fn ready_for_query(body: &[u8]) -> Result<TxStatus, ProtocolError> {
    match body {
        [b'I'] => Ok(TxStatus::Idle),
        [b'T'] => Ok(TxStatus::InTransaction),
        [b'E'] => Ok(TxStatus::Failed),
        _ => Err(ProtocolError::Malformed {
            what: "ReadyForQuery",
        }),
    }
}

pub fn parameter_status(body: &[u8]) -> Result<(&str, &str), ProtocolError> {
    let mut r = BodyReader::new(body, "ParameterStatus");
    Ok((r.cstr()?, r.cstr()?))
}

pub fn backend_key_data(body: &[u8]) -> Result<(i32, i32), ProtocolError> {
    let mut r = BodyReader::new(body, "BackendKeyData");
    Ok((r.i32()?, r.i32()?))
}

/// An Authentication* request from a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRequest<'a> {
    Ok,
    Cleartext,
    Md5 { salt: [u8; 4] },
    Sasl { mechanisms: Vec<&'a str> },
    SaslContinue { data: &'a [u8] },
    SaslFinal { data: &'a [u8] },
    Other(i32),
}

pub fn auth_request(body: &[u8]) -> Result<AuthRequest<'_>, ProtocolError> {
    let mut r = BodyReader::new(body, "Authentication");
    match r.i32()? {
        0 => Ok(AuthRequest::Ok),
        3 => Ok(AuthRequest::Cleartext),
        5 => {
            let s = r.bytes(4)?;
            Ok(AuthRequest::Md5 {
                salt: [s[0], s[1], s[2], s[3]],
            })
        }
        10 => {
            let mut mechanisms = Vec::new();
            loop {
                let m = r.cstr()?;
                if m.is_empty() {
                    break;
                }
                mechanisms.push(m);
            }
            Ok(AuthRequest::Sasl { mechanisms })
        }
        11 => Ok(AuthRequest::SaslContinue { data: r.rest() }),
        12 => Ok(AuthRequest::SaslFinal { data: r.rest() }),
        n => Ok(AuthRequest::Other(n)),
    }
}

pub const DATA_ROW: u8 = b'D';

/// The columns of a DataRow as text (`None` = NULL).
pub fn data_row(body: &[u8]) -> Result<Vec<Option<String>>, ProtocolError> {
    let mut r = BodyReader::new(body, "DataRow");
    let n = r.i16()?;
    let mut out = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n {
        let len = r.i32()?;
        if len < 0 {
            out.push(None);
        } else {
            let v = r.bytes(len as usize)?;
            out.push(Some(String::from_utf8_lossy(v).into_owned()));
        }
    }
    Ok(out)
}

/// The fields of an ErrorResponse/NoticeResponse that the pooler uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorFields {
    pub severity: String,
    pub code: String,
    pub message: String,
}

pub fn error_fields(body: &[u8]) -> Result<ErrorFields, ProtocolError> {
    let mut r = BodyReader::new(body, "ErrorResponse");
    let mut f = ErrorFields::default();
    loop {
        let kind = r.u8()?;
        if kind == 0 {
            break;
        }
        let value = String::from_utf8_lossy(r.cstr_bytes()?).into_owned();
        match kind {
            b'V' => f.severity = value,
            b'S' if f.severity.is_empty() => f.severity = value,
            b'C' => f.code = value,
            b'M' => f.message = value,
            _ => {}
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders;

    #[test]
    fn error_response_fields_round_trip() {
        let m = builders::error_response("FATAL", "08P01", "boom");
        let f = error_fields(&m[5..]).unwrap();
        assert_eq!(f.severity, "FATAL");
        assert_eq!(f.code, "08P01");
        assert_eq!(f.message, "boom");
        assert!(error_fields(b"Cabc").is_err());
    }

    #[test]
    fn data_rows_parse_with_nulls_and_reject_truncation() {
        let mut b = 2i16.to_be_bytes().to_vec();
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(b"ab");
        b.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(data_row(&b).unwrap(), vec![Some("ab".to_string()), None]);
        assert!(data_row(&b[..7]).is_err());
    }

    #[test]
    fn auth_requests_parse() {
        let mut b = 5i32.to_be_bytes().to_vec();
        b.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(
            auth_request(&b).unwrap(),
            AuthRequest::Md5 { salt: [1, 2, 3, 4] }
        );
        let mut b = 10i32.to_be_bytes().to_vec();
        b.extend_from_slice(b"SCRAM-SHA-256\0\0");
        assert_eq!(
            auth_request(&b).unwrap(),
            AuthRequest::Sasl {
                mechanisms: vec!["SCRAM-SHA-256"]
            }
        );
        assert!(auth_request(&5i32.to_be_bytes()).is_err());
        assert!(ready_for_query(b"X").is_err());
        assert_eq!(ready_for_query(b"T").unwrap(), TxStatus::InTransaction);
    }
}
