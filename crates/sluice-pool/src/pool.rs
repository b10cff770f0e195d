//! One pool of server connections for a (database, user) pair: idle list
//! (LIFO, the warmest server first), a FIFO queue of waiting clients, the
//! size limits and upkeep. The lending guards live in `lend.rs`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::events;
use crate::info::ServerInfo;
pub use crate::lend::PooledConn;
use crate::lend::{SlotGuard, WaitGuard};
use crate::login::{login, LoginParams};
use crate::server::ServerConn;
pub use crate::status::PoolStatus;
use crate::{Limit, PoolError};

/// A server's ParameterStatus set, sorted by name.
pub type ServerParams = Arc<Vec<(String, String)>>;

static NEXT_SERVER_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolKey {
    pub database: String,
    pub user: String,
}

/// A pool's settings; replaced as a whole on reload.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub login: LoginParams,
    pub pool_size: usize,
    pub min_pool_size: usize,
    pub reserve_pool_size: usize,
    pub reserve_pool_timeout: Duration,
    pub server_lifetime: Duration,
    pub server_idle_timeout: Duration,
    pub server_connect_timeout: Duration,
    pub server_login_retry: Duration,
    pub server_check_delay: Duration,
    pub server_check_query: String,
    pub connect_query: Option<String>,
    /// Log servers opened / closed (log_connections, log_disconnections).
    pub log_connections: bool,
    pub log_disconnections: bool,
}

pub(crate) enum Grant {
    Conn(Box<ServerConn>),
    /// Room freed up: the waiter may open a new connection.
    Permit,
}

pub(crate) struct Waiter {
    pub(crate) id: u64,
    pub(crate) tx: oneshot::Sender<Grant>,
    pub(crate) since: Instant,
}

pub(crate) struct State {
    /// The same settings as `Pool::settings`, for the lending fast paths,
    /// which hold this lock anyway (one lock instead of two per lend).
    pub(crate) settings: Arc<PoolSettings>,
    /// Boxed: a server moves between the idle list and its client by
    /// pointer, and a client's task holds only that pointer.
    pub(crate) idle: VecDeque<Box<ServerConn>>,
    /// Servers that exist or are being opened: idle + lent + connecting.
    pub(crate) total: usize,
    /// How many of `total` are beyond pool_size (reserve).
    pub(crate) waiters: VecDeque<Waiter>,
    pub(crate) next_waiter: u64,
    pub(crate) last_login_error: Option<(Instant, String)>,
    pub(crate) closed: bool,
}

pub struct Pool {
    pub key: PoolKey,
    settings: RwLock<Arc<PoolSettings>>,
    state: Mutex<State>,
    pub(crate) db_limit: Arc<Limit>,
    pub(crate) user_limit: Arc<Limit>,
    /// ParameterStatus set of the last server login, shown to new clients.
    server_params: Mutex<Option<ServerParams>>,
    /// Moved on by RECONNECT: servers of older generations close when
    /// they come back.
    pub(crate) generation: AtomicU64,
    /// Why the generation last moved on (for the close log line).
    pub(crate) retired_because: Mutex<&'static str>,
    /// Servers lent to clients now.
    pub(crate) lent: AtomicUsize,
    /// Returned servers held back until their cancel requests are handled.
    pub(crate) being_canceled: AtomicUsize,
    /// Unclean servers waiting for their backend to go (retire.rs).
    pub(crate) closing: AtomicUsize,
    /// Every logged-in server, for SHOW SERVERS.
    pub(crate) servers: Mutex<Vec<(u64, Weak<ServerInfo>)>>,
}

enum Step {
    Got(Box<ServerConn>),
    Connect,
    Wait(u64, oneshot::Receiver<Grant>),
}

impl Pool {
    pub fn new(
        key: PoolKey,
        settings: PoolSettings,
        db_limit: Arc<Limit>,
        user_limit: Arc<Limit>,
    ) -> Arc<Pool> {
        let settings = Arc::new(settings);
        let pool = Arc::new(Pool {
            key,
            settings: RwLock::new(settings.clone()),
            state: Mutex::new(State {
                settings,
                idle: VecDeque::new(),
                total: 0,
                waiters: VecDeque::new(),
                next_waiter: 0,
                last_login_error: None,
                closed: false,
            }),
            db_limit,
            user_limit,
            server_params: Mutex::new(None),
            generation: AtomicU64::new(0),
            retired_because: Mutex::new("RECONNECT"),
            lent: AtomicUsize::new(0),
            being_canceled: AtomicUsize::new(0),
            closing: AtomicUsize::new(0),
            servers: Mutex::new(Vec::new()),
        });
        pool.db_limit.join(&pool);
        pool.user_limit.join(&pool);
        pool
    }

    /// Closes one idle server of another pool that shares a full database
    /// or user budget with this one. Never called with our own lock held.
    pub(crate) fn evict_from_peers(self: &Arc<Self>) -> bool {
        for limit in [&self.db_limit, &self.user_limit] {
            if !limit.is_full() {
                continue;
            }
            for peer in limit.members() {
                if !Arc::ptr_eq(&peer, self) && peer.close_one_idle() {
                    return true;
                }
            }
        }
        false
    }

    fn close_one_idle(&self) -> bool {
        let mut st = self.state();
        match st.idle.pop_front() {
            Some(c) => {
                events::close(self, c, "evicted to make room for another pool");
                self.shrink(&mut st);
                true
            }
            None => false,
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn settings(&self) -> Arc<PoolSettings> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Installs new settings (reload). A bigger pool lets waiting clients
    /// open servers now; a smaller one closes servers as they come back.
    pub fn set_settings(&self, s: PoolSettings) {
        let s = Arc::new(s);
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = s.clone();
        let mut st = self.state();
        st.settings = s;
        self.grant_permits(&mut st);
    }

    /// Updates the login secret (e.g. with a SCRAM ClientKey learned from a client).
    pub fn update_login(&self, f: impl FnOnce(&mut LoginParams)) {
        let mut w = self.settings.write().unwrap_or_else(|e| e.into_inner());
        let mut s = (**w).clone();
        f(&mut s.login);
        *w = Arc::new(s);
        self.state().settings = w.clone();
    }

    /// (total, idle, waiting) for stats and tests.
    pub fn counts(&self) -> (usize, usize, usize) {
        let st = self.state();
        (st.total, st.idle.len(), st.waiters.len())
    }

    pub fn server_params(&self) -> Option<ServerParams> {
        self.server_params
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn last_login_error(&self) -> Option<(Instant, String)> {
        self.state().last_login_error.clone()
    }

    /// Tries to take one more server slot within pool_size (+ reserve when
    /// `reserve`) and the database/user limits.
    pub(crate) fn try_grow(&self, st: &mut State, s: &PoolSettings, reserve: bool) -> bool {
        let cap = s.pool_size + if reserve { s.reserve_pool_size } else { 0 };
        if st.total >= cap {
            return false;
        }
        if !self.db_limit.try_acquire() {
            return false;
        }
        if !self.user_limit.try_acquire() {
            self.db_limit.release();
            return false;
        }
        if st.total >= s.pool_size {
            events::reserve(self);
        }
        st.total += 1;
        true
    }

    /// Gives one server slot back and passes the room to a waiter.
    pub(crate) fn shrink(&self, st: &mut State) {
        st.total = st.total.saturating_sub(1);
        self.db_limit.release();
        self.user_limit.release();
        self.grant_permits(st);
    }

    /// While clients wait and the pool has room, lets the first waiter
    /// open a server.
    fn grant_permits(&self, st: &mut State) {
        let s = self.settings();
        while !st.waiters.is_empty() && self.try_grow(st, &s, false) {
            let mut granted = false;
            while let Some(w) = st.waiters.pop_front() {
                if w.tx.send(Grant::Permit).is_ok() {
                    granted = true;
                    break;
                }
            }
            if !granted {
                st.total -= 1;
                self.db_limit.release();
                self.user_limit.release();
                return;
            }
        }
    }

    /// Lends a server, waiting in FIFO order up to `wait_timeout`
    /// (zero = forever).
    pub async fn acquire(
        self: &Arc<Self>,
        wait_timeout: Duration,
    ) -> Result<PooledConn, PoolError> {
        let start = Instant::now();
        let deadline = (!wait_timeout.is_zero()).then(|| start + wait_timeout);
        loop {
            let s = self.settings();
            let step = {
                let mut st = self.state();
                if st.closed {
                    return Err(PoolError::PoolClosed);
                }
                let mut got = None;
                while let Some(c) = st.idle.pop_back() {
                    if let Some(why) = self.expired(&c, &s) {
                        events::close(self, c, why);
                        self.shrink(&mut st);
                        continue;
                    }
                    got = Some(c);
                    break;
                }
                match got {
                    Some(c) => Step::Got(c),
                    None if st.waiters.is_empty() && self.try_grow(&mut st, &s, false) => {
                        Step::Connect
                    }
                    None => {
                        let (tx, rx) = oneshot::channel();
                        st.next_waiter += 1;
                        let id = st.next_waiter;
                        st.waiters.push_back(Waiter {
                            id,
                            tx,
                            since: Instant::now(),
                        });
                        Step::Wait(id, rx)
                    }
                }
            };
            let conn = match step {
                Step::Got(c) => self.checked(c, &s).await,
                Step::Connect => Some(Box::pin(self.open_reserved(&s)).await?),
                Step::Wait(id, rx) => {
                    let mut guard = WaitGuard {
                        pool: self,
                        id,
                        rx: Some(rx),
                    };
                    match guard.wait(start, deadline, &s).await? {
                        Grant::Conn(c) => self.checked(c, &s).await,
                        Grant::Permit => Some(Box::pin(self.open_reserved(&s)).await?),
                    }
                }
            };
            if let Some(c) = conn {
                c.info.set_active();
                self.lent.fetch_add(1, Ordering::Relaxed);
                return Ok(PooledConn {
                    conn: Some(c),
                    pool: self.clone(),
                });
            }
        }
    }

    /// An idle server at once, when one is ready and nobody waits before
    /// us; `None` sends the caller to [`Pool::acquire`] (which also handles
    /// servers due for server_check_query, dead ones and growing the pool).
    pub fn try_take_idle(self: &Arc<Self>) -> Option<PooledConn> {
        let mut guard = self.state();
        let st = &mut *guard;
        if st.closed || !st.waiters.is_empty() {
            return None;
        }
        let mut c = st.idle.pop_back()?;
        let s = &st.settings;
        let now = Instant::now();
        let due_check = !s.server_check_delay.is_zero()
            && now.saturating_duration_since(c.last_used) >= s.server_check_delay;
        if due_check || self.expired_at(&c, s, now).is_some() || !c.looks_alive() {
            st.idle.push_back(c);
            return None;
        }
        drop(guard);
        c.info.set_active();
        self.lent.fetch_add(1, Ordering::Relaxed);
        Some(PooledConn {
            conn: Some(c),
            pool: self.clone(),
        })
    }

    /// A server from the idle list, if it is still good; a bad one is closed
    /// (and its slot freed) and `None` says "try again".
    async fn checked(&self, mut c: Box<ServerConn>, s: &PoolSettings) -> Option<Box<ServerConn>> {
        let mut ok = c.looks_alive();
        if ok && !s.server_check_delay.is_zero() && c.last_used.elapsed() >= s.server_check_delay {
            let q = if s.server_check_query.is_empty() {
                ""
            } else {
                &s.server_check_query
            };
            ok = tokio::time::timeout(
                s.server_connect_timeout.max(Duration::from_secs(1)),
                c.run_silent(q),
            )
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false);
        }
        if ok {
            Some(c)
        } else {
            events::close(self, c, "server check failed");
            let mut st = self.state();
            self.shrink(&mut st);
            None
        }
    }

    /// Opens a server for a slot already counted in `total`.
    async fn open_reserved(&self, s: &PoolSettings) -> Result<Box<ServerConn>, PoolError> {
        let mut slot = SlotGuard {
            pool: self,
            armed: true,
        };
        let id = NEXT_SERVER_ID.fetch_add(1, Ordering::Relaxed);
        let r = self.open(s, id).await;
        match r {
            Ok(c) => {
                slot.armed = false;
                Ok(Box::new(c))
            }
            Err(e) => {
                events::login_failed(self, id, s, &e);
                self.state().last_login_error = Some((Instant::now(), e.to_string()));
                Err(e)
            }
        }
    }

    async fn open(&self, s: &PoolSettings, id: u64) -> Result<ServerConn, PoolError> {
        let fut = async {
            let mut c = login(&s.login, id).await?;
            if let Some(q) = &s.connect_query {
                c.run_silent(q).await?;
            }
            Ok::<_, PoolError>(c)
        };
        let mut c = if s.server_connect_timeout.is_zero() {
            fut.await?
        } else {
            tokio::time::timeout(s.server_connect_timeout, fut)
                .await
                .map_err(|_| PoolError::ConnectTimeout)??
        };
        c.generation = self.generation.load(Ordering::Relaxed);
        {
            let mut all = self.servers.lock().unwrap_or_else(|e| e.into_inner());
            all.retain(|(_, w)| w.strong_count() > 0);
            all.push((c.generation, Arc::downgrade(&c.info)));
        }
        let mut params: Vec<(String, String)> = c
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        params.sort();
        *self.server_params.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(params));
        self.state().last_login_error = None;
        events::opened(self, &c, s);
        Ok(c)
    }

    /// Takes back a server in a clean, idle state; one with a cancel
    /// request in flight only once PostgreSQL has handled it.
    pub(crate) fn put_back(self: &Arc<Self>, c: Box<ServerConn>) {
        if !c.cancels.busy() {
            return self.put_back_now(c);
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return self.put_back_now(c);
        };
        let pool = self.clone();
        pool.being_canceled.fetch_add(1, Ordering::Relaxed);
        rt.spawn(async move {
            let gate = c.cancels.clone();
            let settled = tokio::time::timeout(crate::cancel_gate::CANCEL_WAIT, gate.settled())
                .await
                .is_ok();
            pool.being_canceled.fetch_sub(1, Ordering::Relaxed);
            if settled {
                pool.put_back_now(c);
            } else {
                pool.discard(c, false);
            }
        });
    }

    fn put_back_now(&self, mut c: Box<ServerConn>) {
        let mut st = self.state();
        let s = &st.settings;
        let now = Instant::now();
        // Above pool_size + reserve (the pool shrank on reload): close it.
        let why = if st.closed {
            Some("database removed")
        } else if st.total > s.pool_size + s.reserve_pool_size {
            Some("pool size reduced")
        } else {
            self.expired_at(&c, s, now)
        };
        if let Some(why) = why {
            events::close(self, c, why);
            self.shrink(&mut st);
            return;
        }
        c.last_used = now;
        c.info.set_idle(c.prepared.len());
        while let Some(w) = st.waiters.pop_front() {
            match w.tx.send(Grant::Conn(c)) {
                Ok(()) => return,
                Err(Grant::Conn(back)) => c = back,
                Err(Grant::Permit) => return,
            }
        }
        st.idle.push_back(c);
    }

    /// Closes a server that cannot be reused.
    /// Periodic upkeep: close servers idle too long or past their lifetime
    /// (down to min_pool_size for idleness), drop dead idle ones, and open
    /// servers up to min_pool_size.
    pub async fn maintain(self: &Arc<Self>) {
        let s = self.settings();
        let to_open = {
            let mut st = self.state();
            let mut keep = VecDeque::with_capacity(st.idle.len());
            let mut closed = 0;
            while let Some(mut c) = st.idle.pop_front() {
                let idle_too_long = !s.server_idle_timeout.is_zero()
                    && c.last_used.elapsed() >= s.server_idle_timeout
                    && st.total - closed > s.min_pool_size;
                let over_size = st.total - closed > s.pool_size + s.reserve_pool_size;
                let why = self.expired(&c, &s).or(if idle_too_long {
                    Some("server idle timeout")
                } else if over_size {
                    Some("pool size reduced")
                } else if !c.looks_alive() {
                    Some("server conn crashed?")
                } else {
                    None
                });
                if let Some(why) = why {
                    events::close(self, c, why);
                    closed += 1;
                } else {
                    keep.push_back(c);
                }
            }
            st.idle = keep;
            for _ in 0..closed {
                self.shrink(&mut st);
            }
            let retry_wait = st
                .last_login_error
                .as_ref()
                .map(|(t, _)| t.elapsed() < s.server_login_retry)
                .unwrap_or(false);
            let mut n = 0;
            if !st.closed && !retry_wait {
                while st.total < s.min_pool_size && self.try_grow(&mut st, &s, false) {
                    n += 1;
                }
            }
            n
        };
        for _ in 0..to_open {
            match self.open_reserved(&s).await {
                Ok(c) => self.put_back(c),
                Err(e) => {
                    tracing::warn!(db = %self.key.database, user = %self.key.user, "min_pool_size connect failed: {e}");
                    break;
                }
            }
        }
    }

    /// Closes idle servers now and every server when it comes back.
    pub fn close(&self) {
        let mut st = self.state();
        st.closed = true;
        while let Some(c) = st.idle.pop_front() {
            events::close(self, c, "database removed");
            self.shrink(&mut st);
        }
        st.waiters.clear();
    }

    /// Closes all idle servers now, logging `reason`.
    pub fn close_idle(&self, reason: &str) {
        let mut st = self.state();
        while let Some(c) = st.idle.pop_front() {
            events::close(self, c, reason);
            self.shrink(&mut st);
        }
    }
}
