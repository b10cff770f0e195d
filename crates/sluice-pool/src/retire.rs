//! Closing a lent server that cannot go back to the pool (its client left
//! mid-request, broke the protocol, or timed out). The server's slot stays
//! counted until PostgreSQL's backend has really gone: Sluice says
//! Terminate and waits for the backend to close the socket, cancelling a
//! query that may still be running first. Closing the socket at once
//! instead (as PgBouncer does) frees the slot while the backend runs on
//! until it next writes to the dead socket, so a pool of 20 could keep
//! more than 20 backends busy in PostgreSQL (issue #8's soak saw 26).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::events;
use crate::pool::Pool;
use crate::server::ServerConn;
use crate::stream::ServerStream;

/// How long a retiring server may take to go; past it the socket is
/// dropped and the slot freed anyway (a backend that ignores a cancel and
/// a Terminate, e.g. a stopped process, must not hold a slot for ever).
const RETIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl Pool {
    /// Closes `c`, a lent server that is not clean; `running`: a query may
    /// still be running on it (a CancelRequest goes first).
    pub(crate) fn discard(self: &Arc<Self>, c: Box<ServerConn>, running: bool) {
        events::closing(self, &c, "unclean server");
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let pool = self.clone();
                pool.closing.fetch_add(1, Ordering::Relaxed);
                rt.spawn(async move {
                    let _ = tokio::time::timeout(RETIRE_TIMEOUT, retire(c, running)).await;
                    pool.closing.fetch_sub(1, Ordering::Relaxed);
                    let mut st = pool.state();
                    pool.shrink(&mut st);
                });
            }
            Err(_) => {
                c.terminate();
                let mut st = self.state();
                self.shrink(&mut st);
            }
        }
    }
}

/// Cancel (if asked), Terminate, then read until the backend closes its end.
async fn retire(mut c: Box<ServerConn>, running: bool) {
    if running {
        if let Ok(mut s) = ServerStream::connect(&c.addr).await {
            let pkt = sluice_protocol::builders::cancel_request(c.backend_pid, c.backend_key);
            let _ = s.write_all(&pkt).await;
        }
    }
    if c.stream.write_all(b"X\0\0\0\x04").await.is_err() {
        return;
    }
    let _ = c.stream.flush().await;
    let mut sink = [0u8; 8192];
    while let Ok(n) = c.stream.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}
