//! SHOW STATS, STATS_TOTALS, STATS_AVERAGES and TOTALS: the per-database
//! counters with PgBouncer's (inconsistent) column names, all `numeric`.

use std::collections::BTreeMap;

use super::resultset::{ColType, ResultSet, Value};
use super::show::ADMIN_DB;
use crate::shared::Shared;
use crate::stats::Totals;

use ColType::{Numeric, Text};

/// Databases that have counters, plus the console's.
pub(crate) fn stats_rows(shared: &Shared) -> Vec<(String, Totals, Totals)> {
    let mut by_db: BTreeMap<String, Totals> = shared.stats.totals().into_iter().collect();
    for p in shared.pools.all() {
        by_db.entry(p.key.database.clone()).or_default();
    }
    by_db.entry(ADMIN_DB.to_string()).or_default();
    by_db
        .into_iter()
        .map(|(db, t)| {
            let avg = shared.stats.averages(&db);
            (db, t, avg)
        })
        .collect()
}

fn counters(t: &Totals) -> [u64; 12] {
    [
        t.server_assignment_count,
        t.xact_count,
        t.query_count,
        t.received,
        t.sent,
        t.xact_time,
        t.query_time,
        t.wait_time,
        t.client_parse_count,
        t.server_parse_count,
        t.bind_count,
        t.client_login_count,
    ]
}

fn numeric_row(db: &str, groups: &[&Totals]) -> Vec<Value> {
    let mut row = vec![Value::from(db)];
    for t in groups {
        row.extend(counters(t).into_iter().map(Value::from));
    }
    row
}

pub(crate) fn stats(shared: &Shared) -> ResultSet {
    let mut cols: Vec<(&'static str, ColType)> = vec![("database", Text)];
    for name in [
        "total_server_assignment_count",
        "total_xact_count",
        "total_query_count",
        "total_received",
        "total_sent",
        "total_xact_time",
        "total_query_time",
        "total_wait_time",
        "total_client_parse_count",
        "total_server_parse_count",
        "total_bind_count",
        "total_client_login_count",
        "avg_server_assignment_count",
        "avg_xact_count",
        "avg_query_count",
        "avg_recv",
        "avg_sent",
        "avg_xact_time",
        "avg_query_time",
        "avg_wait_time",
        "avg_client_parse_count",
        "avg_server_parse_count",
        "avg_bind_count",
        "avg_client_login_count",
    ] {
        cols.push((name, Numeric));
    }
    let mut rs = ResultSet::new(&cols);
    for (db, t, avg) in stats_rows(shared) {
        rs.row(numeric_row(&db, &[&t, &avg]));
    }
    rs
}

fn twelve(names: [&'static str; 12]) -> Vec<(&'static str, ColType)> {
    let mut cols = vec![("database", Text)];
    cols.extend(names.into_iter().map(|n| (n, Numeric)));
    cols
}

pub(crate) fn stats_totals(shared: &Shared) -> ResultSet {
    let mut rs = ResultSet::new(&twelve([
        "server_assignment_count",
        "xact_count",
        "query_count",
        "bytes_received",
        "bytes_sent",
        "xact_time",
        "query_time",
        "wait_time",
        "client_parse_count",
        "server_parse_count",
        "bind_count",
        "client_login_count",
    ]));
    for (db, t, _) in stats_rows(shared) {
        rs.row(numeric_row(&db, &[&t]));
    }
    rs
}

pub(crate) fn stats_averages(shared: &Shared) -> ResultSet {
    // PgBouncer's own (inconsistent) names.
    let mut rs = ResultSet::new(&twelve([
        "server_assignment_count",
        "xact_count",
        "query_count",
        "bytes_received",
        "bytes_sent",
        "xact_time",
        "query_time",
        "wait_time",
        "avg_client_parse_count",
        "avg_server_parse_count",
        "avg_bind_count",
        "client_login_count",
    ]));
    for (db, _, avg) in stats_rows(shared) {
        rs.row(numeric_row(&db, &[&avg]));
    }
    rs
}

pub(crate) fn totals(shared: &Shared) -> ResultSet {
    let mut rs = ResultSet::new(&[("name", Text), ("value", Numeric)]);
    let (mut all, mut avg) = (Totals::default(), Totals::default());
    for (_, t, a) in stats_rows(shared) {
        all = all.plus(&t);
        avg = avg.plus(&a);
    }
    const NAMES: [&str; 12] = [
        "server_assignment_count",
        "xact_count",
        "query_count",
        "client_bytes",
        "server_bytes",
        "xact_time",
        "query_time",
        "wait_time",
        "ps_client_parse_count",
        "ps_server_parse_count",
        "ps_bind_count",
        "client_login_count",
    ];
    for (prefix, t) in [("total_", &all), ("avg_", &avg)] {
        for (name, v) in NAMES.iter().zip(counters(t)) {
            rs.row(vec![format!("{prefix}{name}").into(), v.into()]);
        }
    }
    rs
}
