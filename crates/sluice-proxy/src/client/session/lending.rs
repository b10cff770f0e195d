//! Taking a server at the start of a transaction (after any PAUSE, in the
//! pool's queue), giving it back when the transaction is over, and the
//! cleanup when the client leaves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_config::PoolMode;
use sluice_pool::{Pool, PooledConn};
use sluice_protocol::backend::TxStatus;
use tokio::io::{AsyncRead, AsyncWrite};

use super::super::io::ClientIo;
use super::super::stream::ReadReady;
use super::{micros, Session, Tracker};
use crate::cancel::CancelTarget;
use crate::clients::ClientInfo;
use crate::errors::ClientError;
use crate::shared::Shared;

impl<S: AsyncRead + AsyncWrite + ReadReady + Unpin + Send + 'static> Session<S> {
    /// The server is done with this client's work: nothing owed, nothing
    /// unsent, idle (or, in session mode, never).
    pub(super) fn server_is_clean(&self) -> bool {
        let Some(srv) = self.server.as_ref() else {
            return false;
        };
        self.t.pending == 0
            && self.expect.is_empty()
            && !self.t.in_extended
            && !self.t.copy_in
            && self.t.skip == 0
            && self.sout.is_empty()
            && srv.read_buf.is_empty()
    }

    pub(super) async fn maybe_release(&mut self) -> Result<(), ClientError> {
        if self.route.mode == PoolMode::Session || !self.server_is_clean() {
            return Ok(());
        }
        if !matches!(self.t.status, Some(TxStatus::Idle) | None) {
            return Ok(());
        }
        self.cancel.slot.set(None);
        let Some(mut srv) = self.server.take() else {
            return Ok(());
        };
        let cfg = self.shared.config();
        if cfg.general.server_reset_query_always && !cfg.general.server_reset_query.is_empty() {
            let reset = cfg.general.server_reset_query.clone();
            drop(cfg);
            let Some(reset_ok) = Box::pin(reset_server(srv, reset)).await else {
                return Ok(());
            };
            srv = reset_ok;
        }
        srv.last_client = self.id;
        srv.release();
        self.flush_tally();
        self.info.set_server(0);
        self.info.set_prepared(self.stmts.len());
        Ok(())
    }

    /// Takes a server from the pool and brings its settings in line. The
    /// common case (an idle server ready, settings already right) involves
    /// no await; the rest (queue, PAUSE, opening a server, SET) is boxed,
    /// so that its large state is not part of every client's task.
    pub(super) async fn acquire(&mut self) -> Result<(), ClientError> {
        if self.shared.is_draining() {
            // SIGINT: finish what is running, start nothing new.
            return Err(ClientError::fatal("08P01", "pooler is shutting down"));
        }
        let fast = if self.shared.pause.is_paused(&self.database) {
            None
        } else {
            self.route.pool.try_take_idle()
        };
        let srv = match fast {
            // No wait to count (and no clock to read).
            Some(srv) => srv,
            None => {
                let start = Instant::now();
                let wait = Waiting {
                    info: &self.info,
                    shared: &self.shared,
                    pool: &self.route.pool,
                    database: &self.database,
                    limit: self.timeouts.query_wait_timeout,
                };
                let srv = Box::pin(wait.run(&mut self.io, start)).await?;
                // The request starts now that it can run (query_time
                // counts from here; the wait is wait_time).
                self.last_activity = Instant::now();
                self.tally.wait_time += micros(self.last_activity - start);
                srv
            }
        };
        self.tally.server_assignment_count += 1;
        let mut srv = srv;
        srv.info.set_client(self.id);
        self.info.set_server(srv.info.id);
        if srv.last_client != self.id {
            if let Some(sql) = self.params.sync_sql(&mut srv) {
                srv = Box::pin(self.sync_settings(srv, sql)).await?;
            }
        }
        self.cancel.slot.set(Some(CancelTarget {
            addr: srv.addr.clone(),
            pid: srv.backend_pid,
            key: srv.backend_key,
            gate: srv.cancels.clone(),
        }));
        self.t = Tracker::default();
        self.expect.clear();
        self.server_needs_flush = false;
        self.server = Some(srv);
        Ok(())
    }

    /// Runs the SET that brings a server's settings in line with ours.
    async fn sync_settings(
        &mut self,
        mut srv: PooledConn,
        sql: String,
    ) -> Result<PooledConn, ClientError> {
        if let Err(e) = srv.run_silent(&sql).await {
            srv.close();
            return Err(ClientError::from_pool(e));
        }
        self.params.adopt_server_values(&srv);
        Ok(srv)
    }

    /// Returns the server after the client left: clean ones go back (after
    /// the reset query in session mode), ones inside a transaction are
    /// rolled back first, anything else is closed.
    pub(super) fn finish(&mut self) {
        self.cancel.slot.set(None);
        self.flush_tally();
        let clean = self.server_is_clean();
        let Some(mut srv) = self.server.take() else {
            return;
        };
        if !clean {
            // Something is still owed (a query may be running): cancel it
            // and keep the slot until the backend has gone.
            srv.abandon();
            return;
        }
        let cfg = self.shared.config();
        let reset = (self.route.mode == PoolMode::Session || cfg.general.server_reset_query_always)
            && !cfg.general.server_reset_query.is_empty();
        let rollback = !matches!(self.t.status, Some(TxStatus::Idle) | None);
        if !reset && !rollback {
            srv.last_client = self.id;
            srv.release();
            return;
        }
        let reset_query = cfg.general.server_reset_query.clone();
        tokio::spawn(async move {
            let work = async {
                if rollback {
                    srv.run_silent("ROLLBACK").await?;
                }
                if reset {
                    srv.run_silent(&reset_query).await?;
                    srv.forget_settings();
                }
                Ok::<_, sluice_pool::PoolError>(())
            };
            match tokio::time::timeout(Duration::from_secs(10), work).await {
                Ok(Ok(())) => srv.release(),
                _ => srv.close(),
            }
        });
    }
}

/// server_reset_query_always: the reset query after a transaction; `None`
/// when it failed (the server is closed then).
async fn reset_server(mut srv: PooledConn, reset: String) -> Option<PooledConn> {
    if srv.run_silent(&reset).await.is_err() {
        srv.close();
        return None;
    }
    srv.forget_settings();
    Some(srv)
}

/// Bytes a waiting client may send ahead (pipelined requests) before
/// Sluice stops reading it until a server is free.
const READ_AHEAD_WHILE_WAITING: usize = 64 * 1024;

/// What a client waiting for a server needs of its session (borrowed
/// apart from its socket, which is watched at the same time).
struct Waiting<'a> {
    info: &'a Arc<ClientInfo>,
    shared: &'a Arc<Shared>,
    pool: &'a Arc<Pool>,
    database: &'a str,
    limit: Duration,
}

impl Waiting<'_> {
    /// The slow way to a server: in the queue (or behind a PAUSE), until
    /// one is free, query_wait_timeout passes, the client is killed, or it
    /// hangs up (then it leaves the queue at once and its request is
    /// never run).
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut ClientIo<S>,
        start: Instant,
    ) -> Result<PooledConn, ClientError> {
        self.info.set_waiting();
        let killed = std::future::poll_fn(|cx| self.info.poll_killed(cx));
        let waited = tokio::select! {
            r = self.wait_for_server(start) => r,
            _ = killed => Err(ClientError::fatal("08P01", self.info.kill_reason())),
            e = hang_up(io) => Err(e),
        };
        self.info.set_server(0);
        waited
    }

    /// Waits out a PAUSE of the database, then for a server from the pool,
    /// within query_wait_timeout in all.
    async fn wait_for_server(&self, start: Instant) -> Result<PooledConn, ClientError> {
        let limit = self.limit;
        if self.shared.pause.is_paused(self.database) {
            let resumed = self.shared.pause.wait_resumed(self.database);
            if limit.is_zero() {
                resumed.await;
            } else if tokio::time::timeout(limit, resumed).await.is_err() {
                return Err(ClientError::fatal("08P01", "query_wait_timeout"));
            }
        }
        let left = if limit.is_zero() {
            limit
        } else {
            limit
                .checked_sub(start.elapsed())
                .unwrap_or(Duration::from_millis(1))
                .max(Duration::from_millis(1))
        };
        self.pool
            .acquire(left)
            .await
            .map_err(ClientError::from_pool)
    }
}

/// Resolves when a waiting client's socket closes or fails. What it sends
/// meanwhile stays in its read buffer for later, up to
/// [`READ_AHEAD_WHILE_WAITING`]; past that it is not read (nor watched).
async fn hang_up<S: AsyncRead + AsyncWrite + Unpin>(io: &mut ClientIo<S>) -> ClientError {
    loop {
        if io.rbuf.len() >= READ_AHEAD_WHILE_WAITING {
            return std::future::pending().await;
        }
        if let Err(e) = io.fill().await {
            return e;
        }
    }
}
