//! Errors that end a client session, and how each one is shown to the
//! client: a PostgreSQL ErrorResponse with PgBouncer's wording and SQLSTATE.

use sluice_pool::PoolError;
use sluice_protocol::ProtocolError;

/// What PgBouncer tells a client whose pool cannot reach its server.
const CANNOT_CONNECT: &str = "pgbouncer cannot connect to server";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The client went away or its socket failed: nothing to tell it.
    #[error("client connection lost: {0}")]
    Gone(#[from] std::io::Error),
    #[error("client protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// A fatal error for the client, in PgBouncer's words.
    #[error("{message}")]
    Fatal { code: &'static str, message: String },
    /// An error the server sent, passed on as it is.
    #[error("{message}")]
    Server {
        severity: String,
        code: String,
        message: String,
    },
}

impl ClientError {
    pub fn fatal(code: &'static str, message: impl Into<String>) -> ClientError {
        ClientError::Fatal {
            code,
            message: message.into(),
        }
    }

    pub fn protocol_violation(message: impl Into<String>) -> ClientError {
        ClientError::fatal("08P01", message)
    }

    /// (severity, SQLSTATE, message) to send, if the client can still hear.
    pub fn to_wire(&self) -> Option<(String, String, String)> {
        match self {
            ClientError::Gone(_) => None,
            ClientError::Protocol(e) => Some(("FATAL".into(), "08P01".into(), format!("{e}"))),
            ClientError::Fatal { code, message } => {
                Some(("FATAL".into(), code.to_string(), message.clone()))
            }
            ClientError::Server {
                severity,
                code,
                message,
            } => Some((severity.clone(), code.clone(), message.clone())),
        }
    }

    /// From a pool failure while getting a server for this client.
    pub fn from_pool(e: PoolError) -> ClientError {
        match e {
            PoolError::WaitTimeout => ClientError::fatal("08P01", "query_wait_timeout"),
            PoolError::Refused {
                severity,
                code,
                message,
            } => ClientError::Server {
                severity: if severity == "ERROR" {
                    "FATAL".into()
                } else {
                    severity
                },
                code,
                message,
            },
            // PgBouncer's words (check_fast_fail) whether the server did
            // not answer in time or could not be reached at all; the
            // detail is in Sluice's log ("server login failed: ...").
            // A TLS handshake refused (e.g. the server's certificate failed
            // verification) keeps its reason: the operator must fix a CA
            // file or a host name, not wait for the server.
            PoolError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                ClientError::fatal("08P01", format!("{CANNOT_CONNECT}: {e}"))
            }
            PoolError::ConnectTimeout | PoolError::Io(_) => {
                ClientError::fatal("08P01", CANNOT_CONNECT)
            }
            PoolError::Tls(m) => ClientError::fatal("08P01", format!("server TLS: {m}")),
            PoolError::PoolClosed => ClientError::fatal("08P01", "pooler is shutting down"),
            PoolError::Auth(m) => ClientError::fatal("08P01", format!("server login failed: {m}")),
            PoolError::Protocol(e) => {
                ClientError::fatal("08P01", format!("server protocol error: {e}"))
            }
            PoolError::Closed => ClientError::fatal("08P01", "server conn crashed?"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_or_silent_server_gets_pgbouncers_text() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for e in [PoolError::ConnectTimeout, PoolError::Io(refused)] {
            let (severity, code, message) = ClientError::from_pool(e).to_wire().unwrap();
            assert_eq!(
                (severity.as_str(), code.as_str(), message.as_str()),
                ("FATAL", "08P01", "pgbouncer cannot connect to server")
            );
        }
    }

    #[test]
    fn a_refused_tls_handshake_keeps_its_reason() {
        let bad = std::io::Error::new(std::io::ErrorKind::InvalidData, "invalid peer certificate");
        let (_, code, message) = ClientError::from_pool(PoolError::Io(bad))
            .to_wire()
            .unwrap();
        assert_eq!(code, "08P01");
        assert_eq!(
            message,
            "pgbouncer cannot connect to server: invalid peer certificate"
        );
    }
}
