//! The guards around lending: a place in the wait queue, a slot being
//! opened, and a server out on loan. Each gives back what it holds when
//! dropped, so a vanished client never leaks a server or a slot.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::pool::{Grant, Pool, PoolSettings};
use crate::server::ServerConn;
use crate::PoolError;

/// Frees a counted slot if opening the server is abandoned or fails.
pub(crate) struct SlotGuard<'a> {
    pub(crate) pool: &'a Pool,
    pub(crate) armed: bool,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut st = self.pool.state();
            self.pool.shrink(&mut st);
        }
    }
}

/// A place in the wait queue; leaving it (timeout, client gone) removes it
/// and hands on whatever was granted meanwhile.
pub(crate) struct WaitGuard<'a> {
    pub(crate) pool: &'a Arc<Pool>,
    pub(crate) id: u64,
    pub(crate) rx: Option<oneshot::Receiver<Grant>>,
}

impl WaitGuard<'_> {
    pub(crate) async fn wait(
        &mut self,
        start: Instant,
        deadline: Option<Instant>,
        s: &PoolSettings,
    ) -> Result<Grant, PoolError> {
        let reserve_at = (s.reserve_pool_size > 0).then(|| start + s.reserve_pool_timeout);
        let limited = self.pool.db_limit.max() > 0 || self.pool.user_limit.max() > 0;
        loop {
            let mut wake = deadline;
            if let Some(r) = reserve_at {
                let r = r.max(Instant::now() + Duration::from_millis(50));
                wake = Some(wake.map_or(r, |w| w.min(r)));
            }
            if limited {
                let t = Instant::now() + Duration::from_millis(100);
                wake = Some(wake.map_or(t, |w| w.min(t)));
            }
            let Some(rx) = self.rx.as_mut() else {
                return Err(PoolError::PoolClosed);
            };
            let got = match wake {
                Some(w) => tokio::time::timeout_at(w.into(), rx).await.ok(),
                None => Some(rx.await),
            };
            match got {
                Some(Ok(g)) => {
                    self.rx = None;
                    return Ok(g);
                }
                Some(Err(_)) => {
                    self.rx = None;
                    return Err(PoolError::PoolClosed);
                }
                None => {}
            }
            // Woken by time: out of time, or may we grow (reserve, limits)?
            let now = Instant::now();
            let timed_out = deadline.is_some_and(|d| now >= d);
            let use_reserve = reserve_at.is_some_and(|r| now >= r);
            let mut st = self.pool.state();
            let pos = st.waiters.iter().position(|w| w.id == self.id);
            let Some(pos) = pos else {
                drop(st);
                continue; // granted meanwhile; the receive above gets it
            };
            if timed_out {
                st.waiters.remove(pos);
                return Err(PoolError::WaitTimeout);
            }
            if pos == 0 && self.pool.try_grow(&mut st, s, use_reserve) {
                st.waiters.remove(pos);
                self.rx = None;
                return Ok(Grant::Permit);
            }
            // Below our own size but out of database/user budget: make room
            // by closing an idle server of a sibling pool, then try again.
            if pos == 0 && limited && st.total < s.pool_size {
                drop(st);
                if self.pool.evict_from_peers() {
                    let mut st = self.pool.state();
                    if let Some(pos) = st.waiters.iter().position(|w| w.id == self.id) {
                        if pos == 0 && self.pool.try_grow(&mut st, s, use_reserve) {
                            st.waiters.remove(pos);
                            self.rx = None;
                            return Ok(Grant::Permit);
                        }
                    }
                }
            }
        }
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        let mut st = self.pool.state();
        if let Some(pos) = st.waiters.iter().position(|w| w.id == self.id) {
            st.waiters.remove(pos);
            return;
        }
        drop(st);
        match rx.try_recv() {
            Ok(Grant::Conn(c)) => self.pool.put_back(c),
            Ok(Grant::Permit) => {
                let mut st = self.pool.state();
                self.pool.shrink(&mut st);
            }
            Err(_) => {}
        }
    }
}

/// A server lent to a client. Give it back with [`PooledConn::release`]
/// when clean; dropping it any other way closes the server.
pub struct PooledConn {
    pub(crate) conn: Option<Box<ServerConn>>,
    pub(crate) pool: Arc<Pool>,
}

impl PooledConn {
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Returns a clean server (idle, nothing owed) to the pool.
    pub fn release(mut self) {
        if let Some(c) = self.conn.take() {
            self.pool.lent.fetch_sub(1, Ordering::Relaxed);
            self.pool.put_back(c);
        }
    }

    /// Closes the server (dirty, broken, or past use). Its slot is freed
    /// once the backend has gone (see `retire.rs`).
    pub fn close(mut self) {
        if let Some(c) = self.conn.take() {
            self.pool.lent.fetch_sub(1, Ordering::Relaxed);
            self.pool.discard(c, false);
        }
    }

    /// Closes a server that may still be running a query for a client that
    /// left: the query is cancelled first, so the backend goes at once
    /// rather than when it next writes.
    pub fn abandon(mut self) {
        if let Some(c) = self.conn.take() {
            self.pool.lent.fetch_sub(1, Ordering::Relaxed);
            self.pool.discard(c, true);
        }
    }
}

impl std::ops::Deref for PooledConn {
    type Target = ServerConn;
    fn deref(&self) -> &ServerConn {
        self.conn.as_ref().expect("PooledConn used after release")
    }
}

impl std::ops::DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut ServerConn {
        self.conn.as_mut().expect("PooledConn used after release")
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.pool.lent.fetch_sub(1, Ordering::Relaxed);
            self.pool.discard(c, false);
        }
    }
}
