//! The one error type of the pool layer; the proxy maps it to SQLSTATEs.

use sluice_protocol::ProtocolError;

impl PoolError {
    /// A server's ErrorResponse, as `Refused`.
    pub fn from_error_response(body: &[u8]) -> Result<PoolError, PoolError> {
        let f = sluice_protocol::backend::error_fields(body)?;
        Ok(PoolError::Refused {
            severity: f.severity,
            code: f.code,
            message: f.message,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("server connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("server protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The server sent an ErrorResponse during login (or connect_query).
    #[error("server refused login: {message}")]
    Refused {
        severity: String,
        code: String,
        message: String,
    },
    #[error("server login failed: {0}")]
    Auth(String),
    #[error("server TLS: {0}")]
    Tls(String),
    #[error("server connect timeout")]
    ConnectTimeout,
    /// No server became free within query_wait_timeout.
    #[error("query_wait_timeout")]
    WaitTimeout,
    #[error("server closed the connection unexpectedly")]
    Closed,
    #[error("pool is closed")]
    PoolClosed,
}
