//! Routing CancelRequests: each client gets a Sluice-issued (pid, key); while
//! it holds a server, its slot names that server's own cancel key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_pool::{CancelGate, CancelInFlight, ServerAddr, ServerStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone)]
pub struct CancelTarget {
    pub addr: std::sync::Arc<ServerAddr>,
    pub pid: i32,
    pub key: i32,
    /// The server's count of cancels in flight: it is not lent again
    /// until they are handled.
    pub gate: Arc<CancelGate>,
}

#[derive(Debug)]
pub struct CancelSlot {
    pub pid: i32,
    pub key: i32,
    target: Mutex<Option<CancelTarget>>,
}

impl CancelSlot {
    pub fn set(&self, t: Option<CancelTarget>) {
        *self.target.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }

    /// The server this client holds now, counted as being cancelled
    /// before the lock is let go: a server given back after this point
    /// waits for the cancel (the client clears the slot first).
    fn begin_cancel(&self) -> Option<(CancelTarget, CancelInFlight)> {
        let target = self.target.lock().unwrap_or_else(|e| e.into_inner());
        target.as_ref().map(|t| (t.clone(), t.gate.begin()))
    }
}

#[derive(Default)]
pub struct CancelRegistry {
    slots: Mutex<HashMap<i32, Arc<CancelSlot>>>,
}

impl CancelRegistry {
    /// A fresh slot with an unused random pid and a random key.
    pub fn register(self: &Arc<Self>) -> CancelHandle {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mut pid: i32 = rand::random::<i32>() & 0x7fff_ffff;
        while pid == 0 || slots.contains_key(&pid) {
            pid = rand::random::<i32>() & 0x7fff_ffff;
        }
        let slot = Arc::new(CancelSlot {
            pid,
            key: rand::random(),
            target: Mutex::new(None),
        });
        slots.insert(pid, slot.clone());
        CancelHandle {
            registry: self.clone(),
            slot,
        }
    }

    /// Forwards a cancel to the server the matching client holds now, if any.
    pub async fn cancel(&self, pid: i32, key: i32) {
        let target = {
            let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            match slots.get(&pid) {
                Some(s) if s.key == key => s.begin_cancel(),
                _ => None,
            }
        };
        let Some((t, in_flight)) = target else {
            tracing::debug!(pid, "cancel request for no running query");
            return;
        };
        let sent = async {
            let mut s = ServerStream::connect(&t.addr)
                .await
                .map_err(|e| format!("connecting to {} for cancel: {e}", t.addr.describe()))?;
            let pkt = sluice_protocol::builders::cancel_request(t.pid, t.key);
            s.write_all(&pkt)
                .await
                .map_err(|e| format!("sending cancel to {}: {e}", t.addr.describe()))?;
            // PostgreSQL closes the connection once it has signalled the
            // backend: only then may the server be lent again.
            let mut sink = [0u8; 64];
            while s.read(&mut sink).await.is_ok_and(|n| n > 0) {}
            Ok::<_, String>(())
        };
        match tokio::time::timeout(Duration::from_secs(5), sent).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("{e}"),
            Err(_) => tracing::warn!("cancel to {} not handled within 5 s", t.addr.describe()),
        }
        drop(in_flight);
    }
}

/// A client's registration; unregisters on drop.
pub struct CancelHandle {
    registry: Arc<CancelRegistry>,
    pub slot: Arc<CancelSlot>,
}

impl Drop for CancelHandle {
    fn drop(&mut self) {
        let mut slots = self
            .registry
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        slots.remove(&self.slot.pid);
    }
}
