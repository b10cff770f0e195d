//! What the admin console, metrics and RECONNECT see of a pool: its
//! numbers at one moment, its servers, and the generation that retires
//! servers opened before a RECONNECT or a moved database.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::info::ServerInfo;
use crate::pool::{Pool, PoolSettings};
use crate::server::ServerConn;

/// A pool's numbers at one moment, for SHOW POOLS and metrics.
#[derive(Debug, Clone, Default)]
pub struct PoolStatus {
    /// Servers lent to clients.
    pub active: usize,
    /// Idle servers ready to lend.
    pub idle: usize,
    /// Idle servers that will be checked (server_check_delay) before use.
    pub used: usize,
    /// Servers being opened.
    pub login: usize,
    /// Returned servers waiting for cancel requests sent to them to be
    /// handled before they are lent again.
    pub being_canceled: usize,
    /// Clients in the wait queue.
    pub waiting: usize,
    /// How long the oldest waiter has waited.
    pub maxwait: Duration,
}

impl Pool {
    /// Why `c` must go: opened before the last RECONNECT, or past
    /// server_lifetime.
    pub(crate) fn expired(&self, c: &ServerConn, s: &PoolSettings) -> Option<&'static str> {
        self.expired_at(c, s, Instant::now())
    }

    /// [`Pool::expired`] with the time already at hand.
    pub(crate) fn expired_at(
        &self,
        c: &ServerConn,
        s: &PoolSettings,
        now: Instant,
    ) -> Option<&'static str> {
        if c.generation < self.generation.load(Ordering::Relaxed) {
            Some(
                *self
                    .retired_because
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
            )
        } else if !s.server_lifetime.is_zero()
            && now.saturating_duration_since(c.created) >= s.server_lifetime
        {
            Some("server lifetime over")
        } else {
            None
        }
    }

    /// RECONNECT: idle servers close now, lent ones when they come back.
    pub fn reconnect(&self) {
        self.retire_all("RECONNECT");
    }

    /// Every server open now is retired: idle ones close at once, lent
    /// ones when they come back (e.g. the database moved on reload).
    pub fn retire_all(&self, reason: &'static str) {
        *self
            .retired_because
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = reason;
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.close_idle(reason);
    }

    /// Servers still open that were opened before the last RECONNECT
    /// (WAIT_CLOSE waits for none to be left).
    pub fn old_servers(&self) -> usize {
        let now = self.generation.load(Ordering::Relaxed);
        let mut all = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|(_, w)| w.strong_count() > 0);
        all.iter().filter(|(g, _)| *g < now).count()
    }

    /// Servers lent to clients now.
    pub fn lent(&self) -> usize {
        self.lent.load(Ordering::Relaxed)
    }

    pub fn status(&self) -> PoolStatus {
        let s = self.settings();
        let st = self.state();
        let lent = self.lent.load(Ordering::Relaxed);
        let being_canceled = self.being_canceled.load(Ordering::Relaxed);
        let closing = self.closing.load(Ordering::Relaxed);
        let check = s.server_check_delay;
        let used = if check.is_zero() {
            0
        } else {
            st.idle
                .iter()
                .filter(|c| c.last_used.elapsed() >= check)
                .count()
        };
        PoolStatus {
            active: lent,
            idle: st.idle.len() - used,
            used,
            login: st
                .total
                .saturating_sub(st.idle.len() + lent + being_canceled + closing),
            being_canceled,
            waiting: st.waiters.len(),
            maxwait: st
                .waiters
                .front()
                .map(|w| w.since.elapsed())
                .unwrap_or_default(),
        }
    }

    /// The logged-in servers of this pool (idle and lent).
    pub fn servers(&self) -> Vec<Arc<ServerInfo>> {
        let mut all = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|(_, w)| w.strong_count() > 0);
        all.iter().filter_map(|(_, w)| w.upgrade()).collect()
    }
}
