//! Server bytes on their way to the client: every message's tag is
//! looked at (which request it answers), the few that change what the
//! session knows are looked into (ReadyForQuery, ParameterStatus, COPY
//! starts), and large ones that end nothing stream through unbuffered.

use std::time::Instant;

use bytes::Buf;
use sluice_config::PoolMode;
use sluice_protocol::backend::{self, TxStatus};
use sluice_protocol::framing::peek_header;
use tokio::io::{AsyncRead, AsyncWrite};

use super::super::stream::ReadReady;
use super::{micros, Session};
use crate::errors::ClientError;

impl<S: AsyncRead + AsyncWrite + ReadReady + Unpin + Send + 'static> Session<S> {
    /// Passes server bytes on to the client, looking at the tag of every
    /// message (which request it answers) and into the few that change what
    /// we know: ReadyForQuery, ParameterStatus, COPY starts. Large messages
    /// that end nothing (DataRow, CopyData) stream through unbuffered.
    pub(super) fn handle_server_input(&mut self) -> Result<(), ClientError> {
        let out_before = self.io.wbuf.len();
        let r = self.forward_server_messages();
        self.tally.sent += self.io.wbuf.len().saturating_sub(out_before) as u64;
        r
    }

    fn forward_server_messages(&mut self) -> Result<(), ClientError> {
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
                    // SHOW STATS: a query done, and a transaction if idle.
                    let now = Instant::now();
                    self.tally.query_count += 1;
                    self.tally.query_time += micros(now - self.query_start);
                    self.query_start = now;
                    if st == TxStatus::Idle {
                        if let Some(start) = self.xact_start.take() {
                            self.tally.xact_count += 1;
                            self.tally.xact_time += micros(now - start);
                        }
                    }
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
                        srv.settings_mark = 0;
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
}
