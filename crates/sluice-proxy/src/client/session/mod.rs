//! A logged-in client: the loop that moves bytes between the client and the
//! server it holds, takes a server at the start of a transaction, and gives
//! it back when nothing is owed and the server says it is idle. Named
//! prepared statements are handled in `prepared.rs`.

mod prepared;

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use sluice_config::PoolMode;
use sluice_pool::PooledConn;
use sluice_protocol::backend::{self, TxStatus};
use sluice_protocol::framing::peek_header;
use sluice_protocol::{frontend, take_message};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Sleep;
use tokio_util::io::poll_read_buf;

use super::expect::{Expect, ExpectQueue, Reply};
use super::io::ClientIo;
use super::params::ClientParams;
use super::statements::{self, ClientStatements};
use crate::cancel::{CancelHandle, CancelTarget};
use crate::errors::ClientError;
use crate::pools::Route;
use crate::shared::Shared;

/// Stop reading one side while this much is queued for the other.
const HIGH_WATER: usize = 256 * 1024;

/// Timeouts that apply to this client (general, or from [users]).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub query_timeout: Duration,
    pub query_wait_timeout: Duration,
    pub client_idle_timeout: Duration,
    pub idle_transaction_timeout: Duration,
}

enum Event {
    Progress,
    ClientData,
    ClientGone,
    ServerData,
    ServerGone,
    Timer,
}

/// Where the current server stands in its conversation with this client.
#[derive(Debug, Default)]
struct Tracker {
    /// ReadyForQuery messages still owed (one per Query, Sync, FunctionCall).
    pending: usize,
    /// Extended-protocol messages sent since the last Sync.
    in_extended: bool,
    copy_in: bool,
    status: Option<TxStatus>,
    /// Bytes of the current server message passed on without a look.
    skip: usize,
    /// The message being skipped is a reply to our own request: drop it.
    skip_discard: bool,
    /// Syncs sent since the last Execute and before any CopyDone/CopyFail.
    /// If that Execute turns out to start a COPY FROM STDIN, the server
    /// ignores those Syncs (copy-in mode) and owes no ReadyForQuery for them.
    syncs_since_execute: usize,
    counting_syncs: bool,
}

pub struct Session<S> {
    pub io: ClientIo<S>,
    pub shared: Arc<Shared>,
    pub route: Route,
    pub params: ClientParams,
    pub id: u64,
    pub cancel: CancelHandle,
    pub timeouts: Timeouts,
    pub peer: String,
    pub user: String,
    pub database: String,
    server: Option<PooledConn>,
    sout: BytesMut,
    t: Tracker,
    /// Replies owed by the server, in order.
    expect: ExpectQueue,
    /// This client's named statements (transaction/statement mode).
    stmts: ClientStatements,
    /// max_prepared_statements when statements are tracked, else 0.
    max_prepared: usize,
    timer: Pin<Box<Sleep>>,
    timer_armed: bool,
    /// A write went into a buffering layer (TLS) that may still hold it.
    client_needs_flush: bool,
    server_needs_flush: bool,
    last_activity: Instant,
    query_start: Instant,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Session<S> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        io: ClientIo<S>,
        shared: Arc<Shared>,
        route: Route,
        params: ClientParams,
        id: u64,
        cancel: CancelHandle,
        timeouts: Timeouts,
        peer: String,
        user: String,
        database: String,
    ) -> Self {
        let now = Instant::now();
        // Named statements are tracked where a client changes servers.
        let max_prepared = match route.mode {
            PoolMode::Session => 0,
            _ => shared.config().general.max_prepared_statements,
        };
        Session {
            io,
            shared,
            route,
            params,
            id,
            cancel,
            timeouts,
            peer,
            user,
            database,
            server: None,
            sout: BytesMut::with_capacity(4096),
            t: Tracker::default(),
            expect: ExpectQueue::default(),
            stmts: ClientStatements::default(),
            max_prepared,
            timer: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
            timer_armed: false,
            client_needs_flush: false,
            server_needs_flush: false,
            last_activity: now,
            query_start: now,
        }
    }

    /// Serves the client until it leaves or fails; always cleans up the
    /// server it holds.
    pub async fn run(mut self) -> Result<(), ClientError> {
        let r = self.serve().await;
        if let Err(e) = &r {
            self.io.send_error(e).await;
        }
        self.finish();
        r
    }

    async fn serve(&mut self) -> Result<(), ClientError> {
        loop {
            if self.server.is_some() {
                self.maybe_release().await?;
            }
            self.arm_timer();
            match self.next_event().await {
                Event::Progress => {}
                Event::ClientData => {
                    self.last_activity = Instant::now();
                    if self.handle_client_input().await? {
                        // Terminate: flush what is queued for the client.
                        return self.io.flush().await;
                    }
                }
                Event::ClientGone => return Ok(()),
                Event::ServerData => self.handle_server_input()?,
                Event::ServerGone => {
                    // Pass on whatever complete messages arrived (e.g. a FATAL).
                    let _ = self.handle_server_input();
                    if let Some(s) = self.server.take() {
                        s.close();
                    }
                    return Err(ClientError::fatal("08P01", "server conn crashed?"));
                }
                Event::Timer => self.on_timer()?,
            }
        }
    }

    fn arm_timer(&mut self) {
        let deadline = self.deadline();
        match deadline {
            Some(d) => {
                self.timer.as_mut().reset(d.into());
                self.timer_armed = true;
            }
            None => self.timer_armed = false,
        }
    }

    /// The next moment a timeout could fire, given the current state.
    fn deadline(&self) -> Option<Instant> {
        let t = &self.timeouts;
        if self.server.is_none() {
            return (!t.client_idle_timeout.is_zero())
                .then(|| self.last_activity + t.client_idle_timeout);
        }
        if self.t.pending > 0 {
            return (!t.query_timeout.is_zero()).then(|| self.query_start + t.query_timeout);
        }
        if matches!(
            self.t.status,
            Some(TxStatus::InTransaction | TxStatus::Failed)
        ) && !t.idle_transaction_timeout.is_zero()
        {
            return Some(self.last_activity + t.idle_transaction_timeout);
        }
        None
    }

    fn on_timer(&mut self) -> Result<(), ClientError> {
        let now = Instant::now();
        match self.deadline() {
            Some(d) if now >= d => {}
            _ => return Ok(()),
        }
        if self.server.is_none() {
            return Err(ClientError::fatal("08P01", "client_idle_timeout"));
        }
        if let Some(s) = self.server.take() {
            s.close();
        }
        if self.t.pending > 0 {
            Err(ClientError::fatal("08P01", "query_timeout"))
        } else {
            Err(ClientError::fatal("08P01", "idle transaction timeout"))
        }
    }

    async fn next_event(&mut self) -> Event {
        poll_fn(|cx| {
            let io = &mut self.io;
            if !io.wbuf.is_empty() {
                match Pin::new(&mut io.stream).poll_write(cx, &io.wbuf) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                        return Poll::Ready(Event::ClientGone)
                    }
                    Poll::Ready(Ok(n)) => {
                        io.wbuf.advance(n);
                        self.client_needs_flush = true;
                        return Poll::Ready(Event::Progress);
                    }
                    Poll::Pending => {}
                }
            } else if self.client_needs_flush {
                match Pin::new(&mut io.stream).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.client_needs_flush = false,
                    Poll::Ready(Err(_)) => return Poll::Ready(Event::ClientGone),
                    Poll::Pending => {}
                }
            }
            if let Some(srv) = self.server.as_deref_mut() {
                if !self.sout.is_empty() {
                    match Pin::new(&mut srv.stream).poll_write(cx, &self.sout) {
                        Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                            return Poll::Ready(Event::ServerGone)
                        }
                        Poll::Ready(Ok(n)) => {
                            self.sout.advance(n);
                            self.server_needs_flush = true;
                            return Poll::Ready(Event::Progress);
                        }
                        Poll::Pending => {}
                    }
                } else if self.server_needs_flush {
                    match Pin::new(&mut srv.stream).poll_flush(cx) {
                        Poll::Ready(Ok(())) => self.server_needs_flush = false,
                        Poll::Ready(Err(_)) => return Poll::Ready(Event::ServerGone),
                        Poll::Pending => {}
                    }
                }
                if io.wbuf.len() < HIGH_WATER {
                    if srv.read_buf.capacity() - srv.read_buf.len() < 4096 {
                        srv.read_buf.reserve(16 * 1024);
                    }
                    match poll_read_buf(Pin::new(&mut srv.stream), cx, &mut srv.read_buf) {
                        Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                            return Poll::Ready(Event::ServerGone)
                        }
                        Poll::Ready(Ok(_)) => return Poll::Ready(Event::ServerData),
                        Poll::Pending => {}
                    }
                }
            }
            if self.sout.len() < HIGH_WATER {
                if io.rbuf.capacity() - io.rbuf.len() < 4096 {
                    io.rbuf.reserve(16 * 1024);
                }
                match poll_read_buf(Pin::new(&mut io.stream), cx, &mut io.rbuf) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                        return Poll::Ready(Event::ClientGone)
                    }
                    Poll::Ready(Ok(_)) => return Poll::Ready(Event::ClientData),
                    Poll::Pending => {}
                }
            }
            if self.timer_armed && self.timer.as_mut().poll(cx).is_ready() {
                self.timer_armed = false;
                return Poll::Ready(Event::Timer);
            }
            Poll::Pending
        })
        .await
    }

    /// Forwards whole client messages; takes a server first if needed.
    /// Named statements are mapped to server-side ones and prepared where
    /// missing. Returns true when the client said Terminate.
    async fn handle_client_input(&mut self) -> Result<bool, ClientError> {
        while let Some(msg) = take_message(&mut self.io.rbuf, self.io.max_packet)? {
            let tag = msg.tag();
            if tag == frontend::TERMINATE {
                return Ok(true);
            }
            if self.server.is_none() {
                // Earlier results first: the client may be waiting on them.
                self.io.flush().await?;
                self.acquire().await?;
            }
            match tag {
                frontend::QUERY | frontend::FUNCTION_CALL => {
                    self.note_request();
                    self.t.counting_syncs = false;
                    self.t.syncs_since_execute = 0;
                    let reply = if tag == frontend::QUERY {
                        if frontend::query_text(msg.body())
                            .is_ok_and(statements::drops_all_statements)
                        {
                            self.stmts.clear();
                            if let Some(srv) = self.server.as_deref_mut() {
                                srv.prepared.clear();
                            }
                        }
                        Reply::Query
                    } else {
                        Reply::FunctionCall
                    };
                    self.expect.push(Expect::Forward(reply), &mut self.io.wbuf);
                }
                frontend::SYNC => {
                    self.note_request();
                    self.t.in_extended = false;
                    if self.t.counting_syncs {
                        self.t.syncs_since_execute += 1;
                    }
                    self.expect
                        .push(Expect::Forward(Reply::Sync), &mut self.io.wbuf);
                }
                frontend::EXECUTE => {
                    self.t.in_extended = true;
                    self.t.counting_syncs = true;
                    self.t.syncs_since_execute = 0;
                    self.expect
                        .push(Expect::Forward(Reply::Execute), &mut self.io.wbuf);
                }
                frontend::PARSE | frontend::BIND | frontend::DESCRIBE | frontend::CLOSE => {
                    self.t.in_extended = true;
                    if self.max_prepared > 0 && self.handle_statement_message(&msg)? {
                        continue;
                    }
                    let reply = match tag {
                        frontend::PARSE => Reply::Parse,
                        frontend::BIND => Reply::Bind,
                        frontend::CLOSE => Reply::Close,
                        _ => match frontend::target(msg.body())?.0 {
                            b'S' => Reply::DescribeStatement,
                            _ => Reply::DescribePortal,
                        },
                    };
                    self.expect.push(Expect::Forward(reply), &mut self.io.wbuf);
                }
                frontend::FLUSH => self.t.in_extended = true,
                frontend::COPY_DONE | frontend::COPY_FAIL => {
                    self.t.copy_in = false;
                    self.t.counting_syncs = false;
                }
                _ => {}
            }
            self.sout.extend_from_slice(msg.raw());
        }
        Ok(false)
    }

    fn note_request(&mut self) {
        if self.t.pending == 0 {
            self.query_start = Instant::now();
        }
        self.t.pending += 1;
    }

    /// Passes server bytes on to the client, looking at the tag of every
    /// message (which request it answers) and into the few that change what
    /// we know: ReadyForQuery, ParameterStatus, COPY starts. Large messages
    /// that end nothing (DataRow, CopyData) stream through unbuffered.
    fn handle_server_input(&mut self) -> Result<(), ClientError> {
        let Some(srv) = self.server.as_deref_mut() else {
            return Ok(());
        };
        let max = srv.max_packet_size;
        let out = &mut self.io.wbuf;
        loop {
            let buf = &mut srv.read_buf;
            if self.t.skip > 0 {
                let n = self.t.skip.min(buf.len());
                if n == 0 {
                    break;
                }
                if !self.t.skip_discard {
                    out.extend_from_slice(&buf[..n]);
                }
                buf.advance(n);
                self.t.skip -= n;
                continue;
            }
            let Some((tag, total)) = peek_header(buf, max).map_err(|e| {
                tracing::warn!("server sent a bad message: {e}");
                ClientError::fatal("08P01", "server conn crashed?")
            })?
            else {
                break;
            };
            let completes = self.expect.completes(tag);
            let inspect = matches!(
                tag,
                backend::READY_FOR_QUERY
                    | backend::PARAMETER_STATUS
                    | backend::COPY_IN_RESPONSE
                    | backend::COPY_BOTH_RESPONSE
            );
            if !completes && !inspect {
                self.t.skip = total;
                self.t.skip_discard = self.expect.swallows(tag);
                continue;
            }
            if buf.len() < total {
                break;
            }
            let m = buf.split_to(total);
            match tag {
                backend::READY_FOR_QUERY => {
                    let st = backend::ready_for_query(&m[5..])?;
                    self.t.status = Some(st);
                    self.t.pending = self.t.pending.saturating_sub(1);
                    self.t.copy_in = false;
                    if self.route.mode == PoolMode::Statement
                        && st != TxStatus::Idle
                        && self.t.pending == 0
                    {
                        // As PgBouncer: the client never sees the
                        // transaction start; it gets the error instead.
                        return Err(ClientError::fatal(
                            "08P01",
                            "transaction blocks not allowed in statement pooling mode",
                        ));
                    }
                }
                backend::PARAMETER_STATUS => {
                    if let Ok((k, v)) = backend::parameter_status(&m[5..]) {
                        srv.params.insert(k.to_string(), v.to_string());
                        self.params.note_report(k, v);
                    }
                }
                backend::COPY_IN_RESPONSE | backend::COPY_BOTH_RESPONSE => {
                    self.t.copy_in = true;
                    // Syncs that reached the server in copy-in mode are
                    // ignored by it: nothing is owed for them.
                    if tag == backend::COPY_IN_RESPONSE {
                        self.t.pending = self.t.pending.saturating_sub(self.t.syncs_since_execute);
                        self.expect
                            .drop_syncs_after_front(self.t.syncs_since_execute);
                        self.t.syncs_since_execute = 0;
                    }
                }
                _ => {}
            }
            if !self.expect.swallows(tag) {
                out.extend_from_slice(&m);
            }
            if completes {
                self.expect.complete(tag, out);
            }
        }
        Ok(())
    }

    /// The server is done with this client's work: nothing owed, nothing
    /// unsent, idle (or, in session mode, never).
    fn server_is_clean(&self) -> bool {
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

    async fn maybe_release(&mut self) -> Result<(), ClientError> {
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
            if srv
                .run_silent(&cfg.general.server_reset_query)
                .await
                .is_err()
            {
                srv.close();
                return Ok(());
            }
            srv.applied.clear();
        }
        srv.last_client = self.id;
        srv.release();
        Ok(())
    }

    /// Takes a server from the pool and brings its settings in line.
    async fn acquire(&mut self) -> Result<(), ClientError> {
        if self.shared.is_draining() {
            // SIGINT: finish what is running, start nothing new.
            return Err(ClientError::fatal("08P01", "pooler is shutting down"));
        }
        let mut srv = self
            .route
            .pool
            .acquire(self.timeouts.query_wait_timeout)
            .await
            .map_err(ClientError::from_pool)?;
        if srv.last_client != self.id {
            if let Some(sql) = self.params.sync_sql(&mut srv) {
                if let Err(e) = srv.run_silent(&sql).await {
                    srv.close();
                    return Err(ClientError::from_pool(e));
                }
                self.params.adopt_server_values(&srv);
            }
        }
        self.cancel.slot.set(Some(CancelTarget {
            addr: srv.addr.clone(),
            pid: srv.backend_pid,
            key: srv.backend_key,
        }));
        self.t = Tracker::default();
        self.expect.clear();
        self.server_needs_flush = false;
        self.server = Some(srv);
        Ok(())
    }

    /// Returns the server after the client left: clean ones go back (after
    /// the reset query in session mode), ones inside a transaction are
    /// rolled back first, anything else is closed.
    fn finish(&mut self) {
        self.cancel.slot.set(None);
        let clean = self.server_is_clean();
        let Some(mut srv) = self.server.take() else {
            return;
        };
        if !clean {
            srv.close();
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
                    srv.applied.clear();
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
