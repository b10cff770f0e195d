//! Counters shared by all pools of one database (max_db_connections) or one
//! user (max_user_connections).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::Pool;

/// A connection budget; `max == 0` means unlimited. Knows the pools that
/// share it, so a full budget can be freed by closing another pool's idle
/// server (as PgBouncer's evict_connection does).
#[derive(Debug, Default)]
pub struct Limit {
    max: AtomicUsize,
    used: AtomicUsize,
    members: Mutex<Vec<Weak<Pool>>>,
}

impl Limit {
    pub fn new(max: usize) -> Limit {
        Limit {
            max: AtomicUsize::new(max),
            used: AtomicUsize::new(0),
            members: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn join(&self, pool: &Arc<Pool>) {
        let mut m = self.members.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|w| w.strong_count() > 0);
        m.push(Arc::downgrade(pool));
    }

    pub(crate) fn members(&self) -> Vec<Arc<Pool>> {
        let m = self.members.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().filter_map(Weak::upgrade).collect()
    }

    /// True when the budget is limited and used up.
    pub fn is_full(&self) -> bool {
        let max = self.max();
        max > 0 && self.used() >= max
    }

    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    pub fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes one slot if the budget allows.
    pub fn try_acquire(&self) -> bool {
        let max = self.max();
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                if max == 0 || u < max {
                    Some(u + 1)
                } else {
                    None
                }
            })
            .is_ok()
    }

    pub fn release(&self) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| u.checked_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_counts_up_to_max_and_zero_is_unlimited() {
        let l = Limit::new(2);
        assert!(l.try_acquire());
        assert!(l.try_acquire());
        assert!(!l.try_acquire());
        l.release();
        assert!(l.try_acquire());
        let u = Limit::new(0);
        for _ in 0..100 {
            assert!(u.try_acquire());
        }
        assert_eq!(u.used(), 100);
    }
}
