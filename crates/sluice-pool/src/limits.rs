//! Counters shared by all pools of one database (max_db_connections) or one
//! user (max_user_connections).

use std::sync::atomic::{AtomicUsize, Ordering};

/// A connection budget; `max == 0` means unlimited.
#[derive(Debug, Default)]
pub struct Limit {
    max: AtomicUsize,
    used: AtomicUsize,
}

impl Limit {
    pub fn new(max: usize) -> Limit {
        Limit {
            max: AtomicUsize::new(max),
            used: AtomicUsize::new(0),
        }
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
