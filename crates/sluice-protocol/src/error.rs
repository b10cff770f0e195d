//! The one error type of the protocol layer.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("invalid packet length {0}")]
    BadLength(i64),
    #[error("packet too large: {len} bytes (limit {max})")]
    TooLarge { len: usize, max: usize },
    #[error("unsupported protocol version {major}.{minor}")]
    UnsupportedVersion { major: u16, minor: u16 },
    #[error("malformed {what} message")]
    Malformed { what: &'static str },
    #[error("string is not valid UTF-8")]
    BadUtf8,
}
