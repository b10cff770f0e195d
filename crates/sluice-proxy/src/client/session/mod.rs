//! A logged-in client: the loop that moves bytes between the client and the
//! server it holds, takes a server at the start of a transaction, and gives
//! it back when nothing is owed and the server says it is idle. Taking and
//! giving back servers is in `lending.rs`, named prepared statements in
//! `prepared.rs`, server replies in `server_input.rs`.

mod lending;
mod prepared;
mod server_input;

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use sluice_config::PoolMode;
use sluice_pool::PooledConn;
use sluice_protocol::backend::TxStatus;
use sluice_protocol::{frontend, take_message};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Sleep;
use tokio_util::io::poll_read_buf;

use super::expect::{Expect, ExpectQueue, Reply};
use super::io::ClientIo;
use super::params::ClientParams;
use super::spare;
use super::statements::{self, ClientStatements};
use super::stream::ReadReady;
use crate::cancel::CancelHandle;
use crate::clients::ClientInfo;
use crate::errors::ClientError;
use crate::pools::Route;
use crate::shared::Shared;
use crate::stats::{DbStats, Totals};

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
    Killed,
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
    /// Made the first time a timeout applies (none do by default): an
    /// idle client without timeouts carries no timer.
    timer: Option<Pin<Box<Sleep>>>,
    timer_armed: bool,
    /// A write went into a buffering layer (TLS) that may still hold it.
    client_needs_flush: bool,
    server_needs_flush: bool,
    last_activity: Instant,
    query_start: Instant,
    /// Start of the transaction under way (for xact_time).
    xact_start: Option<Instant>,
    /// Counters not yet added to the database's stats.
    tally: Totals,
    stats: Arc<DbStats>,
    /// This client in the registry (SHOW CLIENTS, KILL).
    info: Arc<ClientInfo>,
}

/// Who the client is and what it may use, as the login found it.
pub struct SessionSetup {
    pub shared: Arc<Shared>,
    pub route: Route,
    pub params: ClientParams,
    pub id: u64,
    pub cancel: CancelHandle,
    pub timeouts: Timeouts,
    pub peer: String,
    pub user: String,
    pub database: String,
    pub info: Arc<ClientInfo>,
}

impl<S: AsyncRead + AsyncWrite + ReadReady + Unpin + Send + 'static> Session<S> {
    pub fn new(io: ClientIo<S>, setup: SessionSetup) -> Self {
        let SessionSetup {
            shared,
            route,
            params,
            id,
            cancel,
            timeouts,
            peer,
            user,
            database,
            info,
        } = setup;
        let now = Instant::now();
        let stats = shared.stats.db(&database);
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
            timer: None,
            timer_armed: false,
            client_needs_flush: false,
            server_needs_flush: false,
            last_activity: now,
            query_start: now,
            xact_start: None,
            tally: Totals::default(),
            stats,
            info,
        }
    }

    /// Serves the client until it leaves or fails; always cleans up the
    /// server it holds.
    pub async fn run(&mut self) -> Result<(), ClientError> {
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
            if self.server.is_none() {
                self.shed_buffers();
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
                Event::ServerData => {
                    self.handle_server_input()?;
                    if self.t.pending == 0 {
                        // Everything asked is answered: the counters go
                        // to SHOW STATS now (also mid-transaction and in
                        // session mode).
                        self.flush_tally();
                    }
                }
                Event::ServerGone => {
                    // Pass on whatever complete messages arrived (e.g. a FATAL).
                    let _ = self.handle_server_input();
                    if let Some(s) = self.server.take() {
                        s.close();
                    }
                    return Err(ClientError::fatal("08P01", "server conn crashed?"));
                }
                Event::Timer => self.on_timer()?,
                Event::Killed => {
                    return Err(ClientError::fatal("08P01", self.info.kill_reason()));
                }
            }
        }
    }

    fn arm_timer(&mut self) {
        let deadline = self.deadline();
        match deadline {
            Some(d) => {
                match &mut self.timer {
                    Some(t) => t.as_mut().reset(d.into()),
                    None => self.timer = Some(Box::pin(tokio::time::sleep_until(d.into()))),
                }
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
            if self.t.pending > 0 {
                // query_timeout: the query is cancelled, not left running.
                s.abandon();
            } else {
                s.close();
            }
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
            // An idle client with no buffer waits for readability first and
            // gets a buffer only when there is something to read.
            let wait_unbuffered = io.rbuf.capacity() == 0
                && !matches!(io.stream.poll_read_ready(cx), Some(Poll::Ready(_)) | None);
            if self.sout.len() < HIGH_WATER && !wait_unbuffered {
                if io.rbuf.capacity() == 0 {
                    io.rbuf = spare::take();
                } else if io.rbuf.capacity() - io.rbuf.len() < 4096 {
                    io.rbuf.reserve(spare::READ_BUF);
                }
                match poll_read_buf(Pin::new(&mut io.stream), cx, &mut io.rbuf) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                        return Poll::Ready(Event::ClientGone)
                    }
                    Poll::Ready(Ok(_)) => return Poll::Ready(Event::ClientData),
                    Poll::Pending => {}
                }
            }
            if self.info.poll_killed(cx).is_ready() {
                return Poll::Ready(Event::Killed);
            }
            let timer_fired = match (self.timer_armed, &mut self.timer) {
                (true, Some(t)) => t.as_mut().poll(cx).is_ready(),
                _ => false,
            };
            if timer_fired {
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
            self.tally.received += msg.raw().len() as u64;
            if tag == frontend::TERMINATE {
                return Ok(true);
            }
            if !frontend::is_session_message(tag) {
                // PgBouncer's words; no server is asked (it would close).
                tracing::warn!(client = self.id, tag, "unknown pkt");
                return Err(ClientError::fatal("08P01", "unknown pkt"));
            }
            if self.server.is_none() {
                // Earlier results first: the client may be waiting on them.
                self.io.flush().await?;
                self.acquire().await?;
            }
            if self.sout.capacity() == 0 {
                self.sout = spare::take();
            }
            if self.io.wbuf.capacity() == 0 {
                self.io.wbuf = spare::take();
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
                    match tag {
                        frontend::PARSE => self.tally.client_parse_count += 1,
                        frontend::BIND => self.tally.bind_count += 1,
                        _ => {}
                    }
                    if self.max_prepared > 0 && self.handle_statement_message(&msg)? {
                        continue;
                    }
                    let reply = match tag {
                        frontend::PARSE => {
                            self.tally.server_parse_count += 1;
                            Reply::Parse
                        }
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

    /// Between transactions a client keeps no buffers (they are allocated
    /// again when it next sends something): idle clients cost little
    /// memory. Not for TLS clients, which cannot wait unbuffered.
    fn shed_buffers(&mut self) {
        let io = &mut self.io;
        // (Plain sockets have no buffering layer: nothing is left to flush.)
        let can_wait = io.rbuf.is_empty()
            && io.wbuf.is_empty()
            && self.sout.is_empty()
            && io.stream.can_wait_unbuffered();
        if can_wait && io.rbuf.capacity() > 0 {
            spare::give(std::mem::take(&mut io.rbuf));
            spare::give(std::mem::take(&mut io.wbuf));
            spare::give(std::mem::take(&mut self.sout));
        }
    }

    fn note_request(&mut self) {
        if self.t.pending == 0 {
            // Set when this input arrived (or when its wait for a server
            // ended): no need to read the clock again.
            let now = self.last_activity;
            self.query_start = now;
            self.xact_start.get_or_insert(now);
        }
        self.t.pending += 1;
    }

    /// Adds this client's counters to its database's stats.
    fn flush_tally(&mut self) {
        if !self.tally.is_empty() {
            self.stats.add(&self.tally);
            self.tally = Totals::default();
        }
    }
}

pub(super) fn micros(d: Duration) -> u64 {
    d.as_micros() as u64
}
