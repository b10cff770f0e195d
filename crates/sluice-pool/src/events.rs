//! Server connection events, logged in PgBouncer's shape so that operators'
//! alerts keep matching: `S-0x…: db/user@host:port new connection to
//! server (from addr:port)`, `… closing because: <reason> (age=Ns)`,
//! `… server login failed: …`, `… taking connection from reserve_pool`.

use crate::pool::{Pool, PoolSettings};
use crate::server::ServerConn;
use crate::stream::ServerAddr;

/// How a server appears in SHOW SERVERS' `ptr` and in log lines.
pub fn server_ptr(id: u64) -> String {
    format!("0x{:x}", 0x5e_0000_0000u64 + id)
}

fn prefix(pool: &Pool, id: u64, addr: &ServerAddr) -> String {
    format!(
        "S-{}: {}/{}@{}",
        server_ptr(id),
        pool.key.database,
        pool.key.user,
        addr.describe()
    )
}

pub(crate) fn opened(pool: &Pool, c: &ServerConn, s: &PoolSettings) {
    tracing::debug!(
        "{} logged in, backend pid {}, {} parameters",
        prefix(pool, c.id, &c.addr),
        c.backend_pid,
        c.params.len()
    );
    if s.log_connections {
        let (local, port) = c.stream.local_endpoint();
        let from = if local.is_empty() {
            "unix socket".to_string()
        } else {
            format!("{local}:{port}")
        };
        tracing::info!(
            "{} new connection to server (from {from})",
            prefix(pool, c.id, &c.addr)
        );
    }
}

/// Closes `c` (a polite Terminate, then the socket), logging why.
pub(crate) fn close(pool: &Pool, c: Box<ServerConn>, reason: &str) {
    closing(pool, &c, reason);
    c.terminate();
}

/// Logs that `c` is being closed (log_disconnections), without closing it.
pub(crate) fn closing(pool: &Pool, c: &ServerConn, reason: &str) {
    if pool.settings().log_disconnections {
        tracing::info!(
            "{} closing because: {reason} (age={}s)",
            prefix(pool, c.id, &c.addr),
            c.created.elapsed().as_secs()
        );
    }
}

pub(crate) fn login_failed(pool: &Pool, id: u64, s: &PoolSettings, e: &crate::PoolError) {
    tracing::warn!(
        "{} server login failed: {e}",
        prefix(pool, id, &s.login.addr)
    );
}

pub(crate) fn reserve(pool: &Pool) {
    tracing::info!(
        "{}/{} taking connection from reserve_pool",
        pool.key.database,
        pool.key.user
    );
}
