//! The session's handling of named prepared statements: Parse, Bind,
//! Describe and Close of a client statement are rewritten to the
//! server-side statement, which is prepared first where the server lacks it,
//! or answered by Sluice itself.

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::expect::{Expect, Reply, CLOSE_COMPLETE, PARSE_COMPLETE};
use super::super::statements::{self, StmtDef};
use super::super::stream::ReadReady;
use super::Session;
use crate::errors::ClientError;
use sluice_protocol::frontend;

impl<S: AsyncRead + AsyncWrite + ReadReady + Unpin + Send + 'static> Session<S> {
    /// Parse/Bind/Describe/Close of a named statement: rewritten to the
    /// server-side name (prepared first where missing) or answered here.
    /// Returns true when the message was fully handled (nothing more to
    /// forward); false to forward it unchanged (unnamed statement, portal).
    pub(super) fn handle_statement_message(
        &mut self,
        msg: &sluice_protocol::Message,
    ) -> Result<bool, ClientError> {
        let body = msg.body();
        match msg.tag() {
            frontend::PARSE => {
                let (name, rest) = frontend::parse_name(body)?;
                if name.is_empty() {
                    return Ok(false);
                }
                let def = self.stmts.define(name, rest);
                let known = self
                    .server
                    .as_deref_mut()
                    .is_some_and(|srv| srv.prepared.touch(&def.server_name));
                if known {
                    self.expect
                        .push(Expect::Synthetic(PARSE_COMPLETE), &mut self.io.wbuf);
                } else {
                    self.prepare_on_server(&def, Expect::Forward(Reply::Parse));
                }
                Ok(true)
            }
            frontend::BIND => {
                let (portal, stmt, rest) = frontend::bind_names(body)?;
                let Some(def) = (!stmt.is_empty()).then(|| self.stmts.get(stmt)).flatten() else {
                    return Ok(false);
                };
                self.ensure_prepared(&def);
                statements::rewrite_bind(&mut self.sout, portal, &def.server_name, rest);
                self.expect
                    .push(Expect::Forward(Reply::Bind), &mut self.io.wbuf);
                Ok(true)
            }
            frontend::DESCRIBE => {
                let (kind, name) = frontend::target(body)?;
                let Some(def) = (kind == b'S' && !name.is_empty())
                    .then(|| self.stmts.get(name))
                    .flatten()
                else {
                    return Ok(false);
                };
                self.ensure_prepared(&def);
                statements::put_target(&mut self.sout, frontend::DESCRIBE, &def.server_name);
                self.expect
                    .push(Expect::Forward(Reply::DescribeStatement), &mut self.io.wbuf);
                Ok(true)
            }
            _ => {
                let (kind, name) = frontend::target(body)?;
                if kind != b'S' || name.is_empty() {
                    return Ok(false);
                }
                // The server-side statement may serve other clients: keep it.
                self.stmts.remove(name);
                self.expect
                    .push(Expect::Synthetic(CLOSE_COMPLETE), &mut self.io.wbuf);
                Ok(true)
            }
        }
    }

    /// Prepares `def` on the current server unless it is there already.
    fn ensure_prepared(&mut self, def: &StmtDef) {
        let known = self
            .server
            .as_deref_mut()
            .is_some_and(|srv| srv.prepared.touch(&def.server_name));
        if !known {
            self.prepare_on_server(def, Expect::Swallow(Reply::Parse));
        }
    }

    /// Sends `def`'s Parse (closing the least recently used statement first
    /// when the server is at max_prepared_statements).
    fn prepare_on_server(&mut self, def: &StmtDef, reply: Expect) {
        let Some(srv) = self.server.as_deref_mut() else {
            return;
        };
        if let Some(old) = srv.prepared.insert(&def.server_name, self.max_prepared) {
            statements::put_target(&mut self.sout, frontend::CLOSE, &old);
            self.expect
                .push(Expect::Swallow(Reply::Close), &mut self.io.wbuf);
        }
        self.sout.extend_from_slice(&def.parse);
        self.tally.server_parse_count += 1;
        self.expect.push(reply, &mut self.io.wbuf);
    }
}
