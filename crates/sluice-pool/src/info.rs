//! What the admin console shows of one server connection: the facts fixed
//! at login plus a few atomics that lending and giving back update. The
//! pool keeps weak references, so a closed server drops out by itself.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where a server stands, as SHOW SERVERS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ServerState {
    Idle = 0,
    Active = 1,
}

#[derive(Debug)]
pub struct ServerInfo {
    pub id: u64,
    /// Host name or IP, or the unix socket directory.
    pub addr: String,
    pub port: u16,
    pub local_addr: String,
    pub local_port: u16,
    /// Unix time in microseconds.
    pub connect_time: u64,
    pub remote_pid: i32,
    /// Empty for plaintext, else protocol and cipher suite.
    pub tls: String,
    state: AtomicU8,
    client: AtomicU64,
    request_time: AtomicU64,
    prepared: AtomicUsize,
}

/// Unix time now, in microseconds.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl ServerInfo {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u64,
        addr: String,
        port: u16,
        local_addr: String,
        local_port: u16,
        remote_pid: i32,
        tls: String,
    ) -> ServerInfo {
        let now = now_micros();
        ServerInfo {
            id,
            addr,
            port,
            local_addr,
            local_port,
            connect_time: now,
            remote_pid,
            tls,
            state: AtomicU8::new(ServerState::Idle as u8),
            client: AtomicU64::new(0),
            request_time: AtomicU64::new(now),
            prepared: AtomicUsize::new(0),
        }
    }

    pub fn state(&self) -> ServerState {
        match self.state.load(Ordering::Relaxed) {
            1 => ServerState::Active,
            _ => ServerState::Idle,
        }
    }

    /// Lent out (to the client `client`, 0 when not known yet).
    pub(crate) fn set_active(&self) {
        self.state
            .store(ServerState::Active as u8, Ordering::Relaxed);
        self.request_time.store(now_micros(), Ordering::Relaxed);
    }

    pub(crate) fn set_idle(&self, prepared: usize) {
        self.state.store(ServerState::Idle as u8, Ordering::Relaxed);
        self.client.store(0, Ordering::Relaxed);
        self.prepared.store(prepared, Ordering::Relaxed);
    }

    /// The client this server works for now (0 = none).
    pub fn client(&self) -> u64 {
        self.client.load(Ordering::Relaxed)
    }

    pub fn set_client(&self, id: u64) {
        self.client.store(id, Ordering::Relaxed);
    }

    /// When the server was last lent (unix microseconds).
    pub fn request_time(&self) -> u64 {
        self.request_time.load(Ordering::Relaxed)
    }

    /// Named statements Sluice prepared here, as of its last return.
    pub fn prepared(&self) -> usize {
        self.prepared.load(Ordering::Relaxed)
    }
}
