//! PAUSE / RESUME / SUSPEND / ENABLE / DISABLE state: which databases may
//! start transactions and take new clients. Sessions wait here before they
//! take a server.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio::sync::Notify;

#[derive(Default)]
struct Inner {
    /// PAUSE without a database, or SUSPEND.
    all: bool,
    suspended: bool,
    dbs: HashSet<String>,
    disabled: HashSet<String>,
}

#[derive(Default)]
pub struct PauseGate {
    inner: Mutex<Inner>,
    /// Anything paused at all: lets every transaction start skip the lock.
    any: AtomicBool,
    resumed: Notify,
}

/// The lock; dropping it refreshes the lock-free `any` flag.
struct Guard<'a> {
    inner: std::sync::MutexGuard<'a, Inner>,
    any: &'a AtomicBool,
}

impl std::ops::Deref for Guard<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl std::ops::DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.inner
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let any = self.inner.all || !self.inner.dbs.is_empty();
        self.any.store(any, Ordering::Release);
    }
}

impl PauseGate {
    fn inner(&self) -> Guard<'_> {
        Guard {
            inner: self.inner.lock().unwrap_or_else(|e| e.into_inner()),
            any: &self.any,
        }
    }

    pub fn is_paused(&self, db: &str) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let i = self.inner();
        i.all || i.dbs.contains(db)
    }

    /// PAUSE without a database (or SUSPEND).
    pub fn is_all_paused(&self) -> bool {
        self.inner().all
    }

    pub fn is_suspended(&self) -> bool {
        self.inner().suspended
    }

    pub fn pause_all(&self) {
        self.inner().all = true;
    }

    pub fn suspend(&self) {
        let mut i = self.inner();
        i.all = true;
        i.suspended = true;
    }

    pub fn pause_db(&self, db: &str) {
        self.inner().dbs.insert(db.to_string());
    }

    /// RESUME: everything, including SUSPEND.
    pub fn resume_all(&self) {
        {
            let mut i = self.inner();
            i.all = false;
            i.suspended = false;
            i.dbs.clear();
        }
        self.resumed.notify_waiters();
    }

    /// RESUME db: false if it was not paused by name.
    pub fn resume_db(&self, db: &str) -> bool {
        let was = self.inner().dbs.remove(db);
        self.resumed.notify_waiters();
        was
    }

    pub fn any_paused(&self) -> bool {
        let i = self.inner();
        i.all || !i.dbs.is_empty()
    }

    pub fn is_disabled(&self, db: &str) -> bool {
        self.inner().disabled.contains(db)
    }

    pub fn set_disabled(&self, db: &str, disabled: bool) {
        let mut i = self.inner();
        if disabled {
            i.disabled.insert(db.to_string());
        } else {
            i.disabled.remove(db);
        }
    }

    /// Returns once `db` is not paused.
    pub async fn wait_resumed(&self, db: &str) {
        loop {
            let notified = self.resumed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.is_paused(db) {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_paused_database_waits_until_resumed() {
        let g = Arc::new(PauseGate::default());
        g.pause_db("app");
        assert!(g.is_paused("app"));
        assert!(!g.is_paused("other"));
        let w = {
            let g = g.clone();
            tokio::spawn(async move { g.wait_resumed("app").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!w.is_finished());
        assert!(g.resume_db("app"));
        tokio::time::timeout(Duration::from_secs(1), w)
            .await
            .expect("resumed")
            .unwrap();
    }
}
