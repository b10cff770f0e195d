//! Routing CancelRequests: each client gets a Sluice-issued (pid, key); while
//! it holds a server, its slot names that server's own cancel key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sluice_pool::{ServerAddr, ServerStream};
use tokio::io::AsyncWriteExt;

#[derive(Debug, Clone)]
pub struct CancelTarget {
    pub addr: std::sync::Arc<ServerAddr>,
    pub pid: i32,
    pub key: i32,
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

    fn get(&self) -> Option<CancelTarget> {
        self.target
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
                Some(s) if s.key == key => s.get(),
                _ => None,
            }
        };
        let Some(t) = target else {
            tracing::debug!(pid, "cancel request for no running query");
            return;
        };
        match ServerStream::connect(&t.addr).await {
            Ok(mut s) => {
                let pkt = sluice_protocol::builders::cancel_request(t.pid, t.key);
                if let Err(e) = s.write_all(&pkt).await {
                    tracing::warn!("sending cancel to {}: {e}", t.addr.describe());
                }
            }
            Err(e) => tracing::warn!("connecting to {} for cancel: {e}", t.addr.describe()),
        }
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
