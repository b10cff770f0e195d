//! The registry of logged-in clients, for SHOW CLIENTS / POOLS / USERS and
//! for the commands that act on clients (KILL, KILL_CLIENT). A client
//! registers after login and drops out when its session ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use sluice_pool::info::now_micros;
use sluice_pool::PoolKey;

/// How a client appears in SHOW CLIENTS' `ptr` and in log lines.
pub fn client_ptr(id: u64) -> String {
    format!("0x{:x}", 0xc1_0000_0000u64 + id)
}

/// Where a client stands, as SHOW CLIENTS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ClientState {
    /// Logged in: idle, or running on a server.
    Active = 0,
    /// Waiting for a server (queue or PAUSE).
    Waiting = 1,
}

#[derive(Debug)]
pub struct ClientInfo {
    pub id: u64,
    pub user: String,
    pub database: String,
    /// The pool it runs on (database, server user); None on the console.
    pub pool: Option<PoolKey>,
    pub addr: String,
    pub port: u16,
    pub local_addr: String,
    pub local_port: u16,
    /// Unix microseconds.
    pub connect_time: u64,
    pub tls: String,
    pub application_name: String,
    state: AtomicU8,
    request_time: AtomicU64,
    wait_since: AtomicU64,
    server: AtomicU64,
    prepared: AtomicUsize,
    kill_reason: Mutex<String>,
    /// Set by KILL; the session's task polls it at every wait.
    killed: AtomicBool,
    kill_waker: AtomicWaker,
}

/// The facts of a client known at login.
pub struct NewClient {
    pub user: String,
    pub database: String,
    pub pool: Option<PoolKey>,
    pub addr: String,
    pub port: u16,
    pub local_addr: String,
    pub local_port: u16,
    pub tls: String,
    pub application_name: String,
}

impl ClientInfo {
    pub fn state(&self) -> ClientState {
        match self.state.load(Ordering::Relaxed) {
            1 => ClientState::Waiting,
            _ => ClientState::Active,
        }
    }

    /// Starts waiting for a server.
    pub fn set_waiting(&self) {
        let now = now_micros();
        self.wait_since.store(now, Ordering::Relaxed);
        self.request_time.store(now, Ordering::Relaxed);
        self.state
            .store(ClientState::Waiting as u8, Ordering::Relaxed);
    }

    /// Got a server (`server` = its id), or gave it back (0).
    pub fn set_server(&self, server: u64) {
        self.state
            .store(ClientState::Active as u8, Ordering::Relaxed);
        self.server.store(server, Ordering::Relaxed);
    }

    pub fn server(&self) -> u64 {
        self.server.load(Ordering::Relaxed)
    }

    /// When the client last asked for something (unix microseconds).
    pub fn request_time(&self) -> u64 {
        self.request_time.load(Ordering::Relaxed)
    }

    pub fn note_request(&self) {
        self.request_time.store(now_micros(), Ordering::Relaxed);
    }

    /// Microseconds waited so far, if waiting.
    pub fn waited_micros(&self) -> u64 {
        if self.state() != ClientState::Waiting {
            return 0;
        }
        now_micros().saturating_sub(self.wait_since.load(Ordering::Relaxed))
    }

    pub fn set_prepared(&self, n: usize) {
        self.prepared.store(n, Ordering::Relaxed);
    }

    pub fn prepared(&self) -> usize {
        self.prepared.load(Ordering::Relaxed)
    }

    /// Asks the session to close with `reason` (KILL, KILL_CLIENT).
    pub fn kill(&self, reason: &str) {
        *self.kill_reason.lock().unwrap_or_else(|e| e.into_inner()) = reason.to_string();
        self.killed.store(true, Ordering::Release);
        self.kill_waker.wake();
    }

    /// Ready once the client is killed; KILL wakes the task that polled it
    /// last (one task per client). A few atomics per poll, where a
    /// CancellationToken's future takes two locks and its node a heap
    /// allocation per client.
    pub fn poll_killed(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.killed.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.kill_waker.register(cx.waker());
        if self.killed.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    pub fn kill_reason(&self) -> String {
        self.kill_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[derive(Default)]
pub struct ClientRegistry {
    all: Mutex<HashMap<u64, Arc<ClientInfo>>>,
}

/// Removes the client from the registry when its session ends.
pub struct Registration {
    pub info: Arc<ClientInfo>,
    registry: Arc<ClientRegistry>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry
            .all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.info.id);
    }
}

impl ClientRegistry {
    pub fn register(self: &Arc<Self>, id: u64, c: NewClient) -> Registration {
        let now = now_micros();
        let info = Arc::new(ClientInfo {
            id,
            user: c.user,
            database: c.database,
            pool: c.pool,
            addr: c.addr,
            port: c.port,
            local_addr: c.local_addr,
            local_port: c.local_port,
            connect_time: now,
            tls: c.tls,
            application_name: c.application_name,
            state: AtomicU8::new(ClientState::Active as u8),
            request_time: AtomicU64::new(now),
            wait_since: AtomicU64::new(0),
            server: AtomicU64::new(0),
            prepared: AtomicUsize::new(0),
            kill_reason: Mutex::new(String::new()),
            killed: AtomicBool::new(false),
            kill_waker: AtomicWaker::new(),
        });
        self.all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, info.clone());
        Registration {
            info,
            registry: self.clone(),
        }
    }

    /// All clients, by id.
    pub fn list(&self) -> Vec<Arc<ClientInfo>> {
        let mut v: Vec<Arc<ClientInfo>> = self
            .all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }
}
