//! Cancel requests in flight to a server. A CancelRequest forwarded to
//! PostgreSQL races the query it is meant for: if that query ends first
//! and the server is lent to another client, the late cancel kills the
//! other client's statement (issue #8's soak saw it 14 times in a million
//! transactions). As PgBouncer does (`sv_being_canceled` in SHOW POOLS), a
//! server with a cancel in flight does not go back to the pool until
//! PostgreSQL has handled the cancel (it closes the cancel connection
//! after signalling the backend).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// Longest a returned server waits for its cancels before it is closed
/// instead (a cancel that never completes must not hold it for ever).
pub(crate) const CANCEL_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct CancelGate {
    in_flight: AtomicUsize,
    done: Notify,
}

impl CancelGate {
    /// A cancel to this server starts; it counts until the guard drops.
    pub fn begin(self: &Arc<Self>) -> CancelInFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        CancelInFlight(self.clone())
    }

    pub fn busy(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) > 0
    }

    /// Resolves once no cancel is in flight.
    pub(crate) async fn settled(&self) {
        loop {
            let notified = self.done.notified();
            if !self.busy() {
                return;
            }
            notified.await;
        }
    }
}

/// One forwarded cancel; dropping it says PostgreSQL is done with it.
#[derive(Debug)]
pub struct CancelInFlight(Arc<CancelGate>);

impl Drop for CancelInFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.done.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settles_when_the_last_cancel_is_done() {
        let gate = Arc::new(CancelGate::default());
        assert!(!gate.busy());
        let a = gate.begin();
        let b = gate.begin();
        assert!(gate.busy());
        let g = gate.clone();
        let waiter = tokio::spawn(async move { g.settled().await });
        drop(a);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(b);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("settled() did not wake")
            .unwrap();
    }
}
