//! The named statements prepared on one server connection, with a
//! least-recently-used order so the set stays within max_prepared_statements.

use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct PreparedSet {
    tick: u64,
    names: HashMap<String, u64>,
}

impl PreparedSet {
    /// Whether `name` is prepared here; marks it as just used.
    pub fn touch(&mut self, name: &str) -> bool {
        self.tick += 1;
        match self.names.get_mut(name) {
            Some(t) => {
                *t = self.tick;
                true
            }
            None => false,
        }
    }

    /// Records `name` as prepared; returns the least recently used name to
    /// close first if the set would grow past `cap`.
    pub fn insert(&mut self, name: &str, cap: usize) -> Option<String> {
        self.tick += 1;
        let evict = if self.names.len() >= cap.max(1) && !self.names.contains_key(name) {
            let oldest = self
                .names
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(n, _)| n.clone());
            if let Some(o) = &oldest {
                self.names.remove(o);
            }
            oldest
        } else {
            None
        };
        self.names.insert(name.to_string(), self.tick);
        evict
    }

    pub fn remove(&mut self, name: &str) {
        self.names.remove(name);
    }

    pub fn clear(&mut self) {
        self.names.clear();
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_name_is_evicted_at_the_cap() {
        let mut s = PreparedSet::default();
        assert_eq!(s.insert("a", 2), None);
        assert_eq!(s.insert("b", 2), None);
        assert!(s.touch("a"));
        assert_eq!(s.insert("c", 2), Some("b".to_string()));
        assert!(s.touch("a") && s.touch("c") && !s.touch("b"));
        assert_eq!(s.insert("c", 2), None);
        assert_eq!(s.len(), 2);
    }
}
