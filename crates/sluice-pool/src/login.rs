//! Opening a server connection: connect, StartupMessage, authentication
//! (cleartext, md5, SCRAM-SHA-256), ParameterStatus and BackendKeyData.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use sluice_auth::{md5_client_response, md5_response_from_secret, ScramClient};
use sluice_protocol::backend::{self, AuthRequest};
use sluice_protocol::builders;

use crate::info::ServerInfo;
use crate::server::{ServerConn, ServerSecret};
use sluice_tls::ServerTls;

use crate::stream::{ServerAddr, ServerStream, TlsNegotiationError};
use crate::PoolError;

/// Everything needed to log in to a server.
#[derive(Clone)]
pub struct LoginParams {
    pub addr: ServerAddr,
    pub user: String,
    pub database: String,
    pub secret: Option<ServerSecret>,
    /// Extra startup parameters (client_encoding, datestyle, …).
    pub startup: Vec<(String, String)>,
    pub max_packet_size: usize,
    /// server_tls_*: how to encrypt (and verify) the connection.
    pub tls: ServerTls,
}

impl std::fmt::Debug for LoginParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No secrets in logs.
        f.debug_struct("LoginParams")
            .field("addr", &self.addr)
            .field("user", &self.user)
            .field("database", &self.database)
            .field("tls", &self.tls.mode)
            .finish_non_exhaustive()
    }
}

pub async fn login(p: &LoginParams, id: u64) -> Result<ServerConn, PoolError> {
    let stream = ServerStream::connect_with_tls(&p.addr, &p.tls)
        .await
        .map_err(|e| match e {
            TlsNegotiationError::Io(e) => PoolError::Io(e),
            other => PoolError::Tls(other.to_string()),
        })?;
    let now = Instant::now();
    let mut conn = ServerConn {
        id,
        stream,
        read_buf: BytesMut::with_capacity(8192),
        addr: std::sync::Arc::new(p.addr.clone()),
        params: HashMap::new(),
        applied: HashMap::new(),
        settings_mark: 0,
        backend_pid: 0,
        backend_key: 0,
        created: now,
        last_used: now,
        last_client: 0,
        max_packet_size: p.max_packet_size,
        prepared: Default::default(),
        info: Arc::new(ServerInfo::new(
            id,
            String::new(),
            0,
            String::new(),
            0,
            0,
            String::new(),
        )),
        generation: 0,
        cancels: Default::default(),
    };
    let mut startup: Vec<(&str, &str)> = vec![("user", &p.user), ("database", &p.database)];
    for (k, v) in &p.startup {
        startup.push((k, v));
    }
    conn.write_all(&builders::startup_message(&startup)).await?;

    let mut scram: Option<ScramClient> = None;
    loop {
        let m = conn.read_message().await?;
        match m.tag() {
            backend::AUTHENTICATION => {
                let mut out = BytesMut::new();
                match backend::auth_request(m.body())? {
                    AuthRequest::Ok => continue,
                    AuthRequest::Cleartext => match &p.secret {
                        Some(ServerSecret::Plain(pw)) => builders::put_password(&mut out, pw),
                        _ => return Err(no_password(p, "cleartext")),
                    },
                    AuthRequest::Md5 { salt } => {
                        let resp = match &p.secret {
                            Some(ServerSecret::Plain(pw)) => md5_client_response(&p.user, pw, salt),
                            Some(ServerSecret::Md5(s)) => md5_response_from_secret(s, salt),
                            _ => return Err(no_password(p, "md5")),
                        };
                        builders::put_password(&mut out, &resp);
                    }
                    AuthRequest::Sasl { mechanisms } => {
                        if !mechanisms.contains(&"SCRAM-SHA-256") {
                            return Err(PoolError::Auth(format!(
                                "server offers unsupported SASL mechanisms {mechanisms:?}"
                            )));
                        }
                        let mut c = match &p.secret {
                            Some(ServerSecret::Plain(pw)) => ScramClient::from_password(pw),
                            Some(ServerSecret::Scram {
                                secret,
                                client_key: Some(key),
                            }) => ScramClient::from_client_key(*key, secret),
                            _ => return Err(no_password(p, "SCRAM-SHA-256")),
                        };
                        let first = c.client_first();
                        builders::put_sasl_initial_response(&mut out, "SCRAM-SHA-256", &first);
                        scram = Some(c);
                    }
                    AuthRequest::SaslContinue { data } => {
                        let c = scram.as_mut().ok_or_else(|| {
                            PoolError::Auth("unexpected SASL continue".to_string())
                        })?;
                        let fin = c
                            .handle_server_first(data)
                            .map_err(|e| PoolError::Auth(format!("SCRAM: {e}")))?;
                        builders::put_sasl_response(&mut out, &fin);
                    }
                    AuthRequest::SaslFinal { data } => {
                        let c = scram
                            .as_mut()
                            .ok_or_else(|| PoolError::Auth("unexpected SASL final".to_string()))?;
                        c.handle_server_final(data)
                            .map_err(|e| PoolError::Auth(format!("SCRAM: {e}")))?;
                        continue;
                    }
                    AuthRequest::Other(n) => {
                        return Err(PoolError::Auth(format!(
                            "server asks for unsupported authentication method {n}"
                        )))
                    }
                }
                conn.write_all(&out).await?;
            }
            backend::PARAMETER_STATUS => conn.note_parameter(&m),
            backend::BACKEND_KEY_DATA => {
                let (pid, key) = backend::backend_key_data(m.body())?;
                conn.backend_pid = pid;
                conn.backend_key = key;
            }
            backend::ERROR_RESPONSE => return Err(PoolError::from_error_response(m.body())?),
            backend::READY_FOR_QUERY => {
                conn.info = Arc::new(server_info(&conn));
                return Ok(conn);
            }
            // NoticeResponse, NegotiateProtocolVersion: nothing to do.
            _ => {}
        }
    }
}

fn no_password(p: &LoginParams, method: &str) -> PoolError {
    PoolError::Auth(format!(
        "server at {} asks for {method} authentication for user \"{}\" but no usable password is configured",
        p.addr.describe(),
        p.user
    ))
}

/// The facts SHOW SERVERS lists, taken once the login is complete.
fn server_info(c: &ServerConn) -> ServerInfo {
    let (addr, port) = match &*c.addr {
        ServerAddr::Tcp { host, port } => (host.clone(), *port),
        ServerAddr::Unix(path) => {
            let port = path
                .extension()
                .and_then(|e| e.to_str())
                .and_then(|e| e.parse().ok())
                .unwrap_or(0);
            let dir = path.parent().map(|d| d.display().to_string());
            (dir.unwrap_or_default(), port)
        }
    };
    let (local_addr, local_port) = c.stream.local_endpoint();
    ServerInfo::new(
        c.id,
        addr,
        port,
        local_addr,
        local_port,
        c.backend_pid,
        c.stream.tls_description(),
    )
}
