//! One live connection to a PostgreSQL server, with what we know of its
//! session: reported parameters, the settings we applied, its cancel key.

use std::collections::HashMap;
use std::io;
use std::time::Instant;

use bytes::BytesMut;
use sluice_auth::ScramSecret;
use sluice_protocol::backend;
use sluice_protocol::framing::take_message;
use sluice_protocol::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::stream::{ServerAddr, ServerStream};
use crate::PoolError;

/// What the pooler knows of the password for logging in to a server.
#[derive(Debug, Clone)]
pub enum ServerSecret {
    Plain(String),
    /// "md5…" as stored in a userlist: enough for md5 server auth.
    Md5(String),
    /// A SCRAM secret plus, once a client has logged in with SCRAM, the
    /// ClientKey recovered from its proof (pass-through).
    Scram {
        secret: ScramSecret,
        client_key: Option<[u8; 32]>,
    },
}

#[derive(Debug)]
pub struct ServerConn {
    pub id: u64,
    pub stream: ServerStream,
    pub read_buf: BytesMut,
    pub addr: std::sync::Arc<ServerAddr>,
    /// Parameters the server reported (ParameterStatus), kept current.
    pub params: HashMap<String, String>,
    /// Settings we SET that the server does not report (e.g. search_path).
    pub applied: HashMap<String, String>,
    /// Set by the client side to a hash of the settings this server was
    /// last brought in line with; 0 (unknown) whenever `params` or
    /// `applied` change otherwise.
    pub settings_mark: u64,
    pub backend_pid: i32,
    pub backend_key: i32,
    pub created: Instant,
    pub last_used: Instant,
    /// Id of the client that had this server last (0 = none).
    pub last_client: u64,
    pub max_packet_size: usize,
    /// Named statements Sluice prepared here (server-side names).
    pub prepared: crate::PreparedSet,
    /// What SHOW SERVERS shows of this server.
    pub info: std::sync::Arc<crate::info::ServerInfo>,
    /// The pool's generation when this server was opened; RECONNECT moves
    /// the pool on, and older servers close when they come back.
    pub generation: u64,
    /// Cancel requests forwarded to this server and not yet handled.
    pub cancels: std::sync::Arc<crate::CancelGate>,
}

impl ServerConn {
    /// Reads one whole message from the server.
    pub async fn read_message(&mut self) -> Result<Message, PoolError> {
        loop {
            if let Some(m) = take_message(&mut self.read_buf, self.max_packet_size)? {
                return Ok(m);
            }
            if self.read_buf.capacity() - self.read_buf.len() < 1024 {
                self.read_buf.reserve(8192);
            }
            let n = self.stream.read_buf(&mut self.read_buf).await?;
            if n == 0 {
                return Err(PoolError::Closed);
            }
        }
    }

    pub async fn write_all(&mut self, data: &[u8]) -> Result<(), PoolError> {
        self.stream.write_all(data).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Notes a ParameterStatus the server sent.
    pub fn note_parameter(&mut self, msg: &Message) {
        if let Ok((k, v)) = backend::parameter_status(msg.body()) {
            self.params.insert(k.to_string(), v.to_string());
            self.settings_mark = 0;
        }
    }

    /// After a reset (DISCARD ALL…): nothing we SET is left.
    pub fn forget_settings(&mut self) {
        self.applied.clear();
        self.settings_mark = 0;
    }

    /// Runs a simple query whose results nobody needs (reset, check,
    /// connect_query, ROLLBACK). Fails on ErrorResponse or if the server
    /// does not end up idle.
    pub async fn run_silent(&mut self, sql: &str) -> Result<(), PoolError> {
        let upper = sql.to_ascii_uppercase();
        if upper.contains("DISCARD") || upper.contains("DEALLOCATE") {
            // Whatever we prepared here may be gone after this.
            self.prepared.clear();
        }
        let mut out = BytesMut::new();
        sluice_protocol::builders::put_query(&mut out, sql);
        self.write_all(&out).await?;
        self.read_until_ready(sql, |_| Ok(())).await
    }

    /// Runs `sql` with text parameters through the extended protocol (no
    /// quoting needed) and returns its first row, if any.
    pub async fn query_row(
        &mut self,
        sql: &str,
        params: &[Option<&str>],
    ) -> Result<Option<Vec<Option<String>>>, PoolError> {
        let mut out = BytesMut::new();
        sluice_protocol::builders::put_parse_unnamed(&mut out, sql);
        sluice_protocol::builders::put_bind_unnamed(&mut out, params);
        sluice_protocol::builders::put_execute_unnamed(&mut out);
        sluice_protocol::builders::put_sync(&mut out);
        self.write_all(&out).await?;
        let mut row = None;
        self.read_until_ready(sql, |m| {
            if m.tag() == backend::DATA_ROW && row.is_none() {
                row = Some(backend::data_row(m.body())?);
            }
            Ok(())
        })
        .await?;
        Ok(row)
    }

    /// Reads the replies to a request of Sluice's own up to ReadyForQuery:
    /// ParameterStatus noted, other messages handed to `on_message`. Fails
    /// on an ErrorResponse, on COPY, or if a transaction is left open.
    async fn read_until_ready(
        &mut self,
        sql: &str,
        mut on_message: impl FnMut(&Message) -> Result<(), PoolError>,
    ) -> Result<(), PoolError> {
        let mut error = None;
        loop {
            let m = self.read_message().await?;
            match m.tag() {
                backend::ERROR_RESPONSE => error = Some(PoolError::from_error_response(m.body())?),
                backend::PARAMETER_STATUS => self.note_parameter(&m),
                backend::COPY_IN_RESPONSE
                | backend::COPY_OUT_RESPONSE
                | backend::COPY_BOTH_RESPONSE => {
                    return Err(PoolError::Auth(format!("query {sql:?} started COPY")));
                }
                backend::READY_FOR_QUERY => {
                    let st = backend::ready_for_query(m.body())?;
                    return match error {
                        Some(e) => Err(e),
                        None if st != backend::TxStatus::Idle => Err(PoolError::Auth(format!(
                            "query {sql:?} left a transaction open"
                        ))),
                        None => Ok(()),
                    };
                }
                _ => on_message(&m)?,
            }
        }
    }

    /// True when an idle server shows no sign of having gone away: nothing to
    /// read (an idle server only speaks to say it is terminating) and no EOF.
    pub fn looks_alive(&mut self) -> bool {
        if !self.read_buf.is_empty() {
            return false;
        }
        // Nothing arrived since the socket was last read dry: alive, and
        // no syscall spent on every checkout.
        if self.stream.poll_read_ready_now().is_pending() {
            return true;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Says goodbye without waiting; the socket closes on drop.
    pub fn terminate(self) {
        let _ = self.stream.try_write(b"X\0\0\0\x04");
    }
}
