//! Per-database counters (SHOW STATS, the exporters' *_total metrics) and
//! the averages over the last stats_period (SHOW STATS_AVERAGES, the
//! `stats:` log line). Sessions add to them once per transaction from
//! their own tallies, so the hot path touches no shared cache line per
//! message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// The counters of one database, all since start.
#[derive(Debug, Default)]
pub struct DbStats {
    pub server_assignment_count: AtomicU64,
    pub xact_count: AtomicU64,
    pub query_count: AtomicU64,
    pub received: AtomicU64,
    pub sent: AtomicU64,
    /// Microseconds.
    pub xact_time: AtomicU64,
    pub query_time: AtomicU64,
    pub wait_time: AtomicU64,
    pub client_parse_count: AtomicU64,
    pub server_parse_count: AtomicU64,
    pub bind_count: AtomicU64,
    pub client_login_count: AtomicU64,
}

/// A plain copy of [`DbStats`], and the shape of a session's tally.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub server_assignment_count: u64,
    pub xact_count: u64,
    pub query_count: u64,
    pub received: u64,
    pub sent: u64,
    pub xact_time: u64,
    pub query_time: u64,
    pub wait_time: u64,
    pub client_parse_count: u64,
    pub server_parse_count: u64,
    pub bind_count: u64,
    pub client_login_count: u64,
}

macro_rules! each_counter {
    ($m:ident) => {
        $m!(
            server_assignment_count,
            xact_count,
            query_count,
            received,
            sent,
            xact_time,
            query_time,
            wait_time,
            client_parse_count,
            server_parse_count,
            bind_count,
            client_login_count
        )
    };
}

impl DbStats {
    /// Adds a session's tally.
    pub fn add(&self, t: &Totals) {
        macro_rules! add {
            ($($f:ident),*) => {
                $(if t.$f != 0 {
                    self.$f.fetch_add(t.$f, Ordering::Relaxed);
                })*
            };
        }
        each_counter!(add);
    }

    pub fn totals(&self) -> Totals {
        macro_rules! load {
            ($($f:ident),*) => {
                Totals { $($f: self.$f.load(Ordering::Relaxed)),* }
            };
        }
        each_counter!(load)
    }
}

impl Totals {
    pub fn is_empty(&self) -> bool {
        *self == Totals::default()
    }

    /// Field-wise sum (the TOTALS line over all databases).
    pub fn plus(&self, o: &Totals) -> Totals {
        macro_rules! sum {
            ($($f:ident),*) => {
                Totals { $($f: self.$f + o.$f),* }
            };
        }
        each_counter!(sum)
    }

    fn minus(&self, o: &Totals) -> Totals {
        macro_rules! diff {
            ($($f:ident),*) => {
                Totals { $($f: self.$f.saturating_sub(o.$f)),* }
            };
        }
        each_counter!(diff)
    }

    /// Averages over an interval of `secs` seconds in which `self` is the
    /// increase, the way PgBouncer reports them: counts and bytes per
    /// second, times per transaction / query / assignment in microseconds.
    pub fn averages(&self, secs: f64) -> Totals {
        let rate = |v: u64| {
            if secs > 0.0 {
                (v as f64 / secs) as u64
            } else {
                0
            }
        };
        let per = |v: u64, n: u64| v.checked_div(n).unwrap_or(0);
        Totals {
            server_assignment_count: rate(self.server_assignment_count),
            xact_count: rate(self.xact_count),
            query_count: rate(self.query_count),
            received: rate(self.received),
            sent: rate(self.sent),
            xact_time: per(self.xact_time, self.xact_count),
            query_time: per(self.query_time, self.query_count),
            wait_time: per(self.wait_time, self.server_assignment_count),
            client_parse_count: rate(self.client_parse_count),
            server_parse_count: rate(self.server_parse_count),
            bind_count: rate(self.bind_count),
            client_login_count: rate(self.client_login_count),
        }
    }
}

/// All databases' counters, plus the averages of the last period.
#[derive(Default)]
pub struct StatsRegistry {
    by_db: RwLock<HashMap<String, Arc<DbStats>>>,
    period: Mutex<Period>,
}

#[derive(Default)]
struct Period {
    /// Totals at the start of the current period.
    last: HashMap<String, Totals>,
    at: Option<Instant>,
    averages: HashMap<String, Totals>,
}

impl StatsRegistry {
    /// The counters of `database`, created on first use.
    pub fn db(&self, database: &str) -> Arc<DbStats> {
        if let Some(s) = self
            .by_db
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(database)
        {
            return s.clone();
        }
        self.by_db
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(database.to_string())
            .or_default()
            .clone()
    }

    /// Every database's totals, sorted by name.
    pub fn totals(&self) -> Vec<(String, Totals)> {
        let mut v: Vec<(String, Totals)> = self
            .by_db
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, s)| (k.clone(), s.totals()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The averages computed at the end of the last period.
    pub fn averages(&self, database: &str) -> Totals {
        self.period
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .averages
            .get(database)
            .copied()
            .unwrap_or_default()
    }

    /// Ends a stats period: computes each database's averages from the
    /// increase since the last call, and returns the increase over all
    /// databases with the period's length (for the `stats:` log line).
    pub fn roll_period(&self) -> (Totals, f64) {
        let now = Instant::now();
        let totals = self.totals();
        let mut p = self.period.lock().unwrap_or_else(|e| e.into_inner());
        let secs = p.at.map(|t| (now - t).as_secs_f64()).unwrap_or(0.0);
        let mut all = Totals::default();
        let mut averages = HashMap::new();
        for (db, t) in &totals {
            let before = p.last.get(db).copied().unwrap_or_default();
            let delta = t.minus(&before);
            all = all.plus(&delta);
            averages.insert(db.clone(), delta.averages(secs));
        }
        p.last = totals.into_iter().collect();
        p.at = Some(now);
        p.averages = averages;
        (all, secs)
    }
}

/// PgBouncer's periodic log line, from the increase over one period.
pub fn log_line(delta: &Totals, secs: f64) -> String {
    let a = delta.averages(secs);
    format!(
        "stats: {} xacts/s, {} queries/s, {} client parses/s, {} server parses/s, {} binds/s, in {} B/s, out {} B/s, xact {} us, query {} us, wait {} us",
        a.xact_count,
        a.query_count,
        a.client_parse_count,
        a.server_parse_count,
        a.bind_count,
        a.received,
        a.sent,
        a.xact_time,
        a.query_time,
        a.wait_time
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_are_rates_for_counts_and_means_for_times() {
        let d = Totals {
            xact_count: 100,
            query_count: 200,
            xact_time: 5_000,
            query_time: 4_000,
            received: 1000,
            server_assignment_count: 10,
            wait_time: 50,
            ..Totals::default()
        };
        let a = d.averages(10.0);
        assert_eq!(a.xact_count, 10);
        assert_eq!(a.query_count, 20);
        assert_eq!(a.received, 100);
        assert_eq!(a.xact_time, 50);
        assert_eq!(a.query_time, 20);
        assert_eq!(a.wait_time, 5);
        assert_eq!(Totals::default().averages(0.0), Totals::default());
    }

    #[test]
    fn a_period_reports_only_the_increase() {
        let r = StatsRegistry::default();
        let s = r.db("app");
        s.add(&Totals {
            xact_count: 7,
            ..Totals::default()
        });
        r.roll_period();
        s.add(&Totals {
            xact_count: 3,
            ..Totals::default()
        });
        let (delta, _) = r.roll_period();
        assert_eq!(delta.xact_count, 3);
        assert_eq!(r.totals()[0].1.xact_count, 10);
    }
}
