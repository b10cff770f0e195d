//! Prometheus text exposition of the admin console's numbers, with the
//! names and labels of the prometheus-community pgbouncer_exporter
//! (`pgbouncer_pools_client_active_connections{database,user}`, …), so
//! dashboards and alerts built for it work unchanged. Everything is read
//! from the same result sets SHOW returns, at scrape time; nothing is
//! counted twice.

use std::fmt::Write;

use crate::admin::{show, ResultSet, Value};
use crate::shared::Shared;

/// (column, metric name, divisor (1e6 for microseconds), help) per
/// exported column.
type Mapping = (&'static str, &'static str, f64, &'static str);

const POOLS: &[Mapping] = &[
    ("cl_active", "client_active_connections", 1.0, "Client connections linked to server connection and able to process queries, shown as connection"),
    ("cl_active_cancel_req", "client_active_cancel_connections", 1.0, "Client connections that have forwarded query cancellations to the server and are waiting for the server response"),
    ("cl_waiting", "client_waiting_connections", 1.0, "Client connections waiting on a server connection, shown as connection"),
    ("cl_waiting_cancel_req", "client_waiting_cancel_connections", 1.0, "Client connections that have not forwarded query cancellations to the server yet"),
    ("sv_active", "server_active_connections", 1.0, "Server connections linked to a client connection, shown as connection"),
    ("sv_active_cancel", "server_active_cancel_connections", 1.0, "Server connections that are currently forwarding a cancel request."),
    ("sv_being_canceled", "server_being_canceled_connections", 1.0, "Servers that normally could become idle but are waiting to do so until all in-flight cancel requests have completed that were sent to cancel a query on this server."),
    ("sv_idle", "server_idle_connections", 1.0, "Server connections idle and ready for a client query, shown as connection"),
    ("sv_used", "server_used_connections", 1.0, "Server connections idle more than server_check_delay, needing server_check_query, shown as connection"),
    ("sv_tested", "server_testing_connections", 1.0, "Server connections currently running either server_reset_query or server_check_query, shown as connection"),
    ("sv_login", "server_login_connections", 1.0, "Server connections currently in the process of logging in, shown as connection"),
    ("maxwait", "client_maxwait_seconds", 1.0, "Age of oldest unserved client connection, shown as second"),
];

const STATS_TOTALS: &[Mapping] = &[
    ("query_count", "queries_pooled_total", 1.0, "Total number of SQL queries pooled"),
    ("query_time", "queries_duration_seconds_total", 1e6, "Total number of seconds spent by pgbouncer when actively connected to PostgreSQL, executing queries"),
    ("bytes_received", "received_bytes_total", 1.0, "Total volume in bytes of network traffic received by pgbouncer, shown as bytes"),
    ("bytes_sent", "sent_bytes_total", 1.0, "Total volume in bytes of network traffic sent by pgbouncer, shown as bytes"),
    ("wait_time", "client_wait_seconds_total", 1e6, "Time spent by clients waiting for a server in seconds"),
    ("xact_count", "sql_transactions_pooled_total", 1.0, "Total number of SQL transactions pooled"),
    ("xact_time", "server_in_transaction_seconds_total", 1e6, "Total number of seconds spent by pgbouncer when connected to PostgreSQL in a transaction, either idle in transaction or executing queries"),
    ("client_parse_count", "client_parses_total", 1.0, "Total number of prepared statement Parse messages received from clients"),
    ("server_parse_count", "server_parses_total", 1.0, "Total number of prepared statement Parse messages sent by pgbouncer to PostgreSQL"),
    ("bind_count", "binds_total", 1.0, "Total number of prepared statements readied for execution with a Bind message"),
    ("server_assignment_count", "server_assignments_total", 1.0, "Total number of times a server connection was assigned to a client"),
];

const DATABASES: &[Mapping] = &[
    (
        "pool_size",
        "pool_size",
        1.0,
        "Maximum number of server connections",
    ),
    (
        "reserve_pool_size",
        "reserve_pool",
        1.0,
        "Maximum number of additional connections for this database",
    ),
    (
        "max_connections",
        "max_connections",
        1.0,
        "Maximum number of allowed connections for this database",
    ),
    (
        "current_connections",
        "current_connections",
        1.0,
        "Current number of connections for this database",
    ),
    (
        "paused",
        "paused",
        1.0,
        "1 if this database is currently paused, else 0",
    ),
    (
        "disabled",
        "disabled",
        1.0,
        "1 if this database is currently disabled, else 0",
    ),
];

const LISTS: &[(&str, &str, &str)] = &[
    ("databases", "databases", "Count of databases"),
    ("users", "users", "Count of users"),
    ("pools", "pools", "Count of pools"),
    ("free_clients", "free_clients", "Count of free clients"),
    ("used_clients", "used_clients", "Count of used clients"),
    (
        "login_clients",
        "login_clients",
        "Count of clients in login state",
    ),
    ("free_servers", "free_servers", "Count of free servers"),
    ("used_servers", "used_servers", "Count of used servers"),
    (
        "dns_names",
        "cached_dns_names",
        "Count of DNS names in the cache",
    ),
    (
        "dns_zones",
        "cached_dns_zones",
        "Count of DNS zones in the cache",
    ),
    (
        "dns_queries",
        "in_flight_dns_queries",
        "Count of in-flight DNS queries",
    ),
];

/// The whole `/metrics` page.
pub fn render(shared: &Shared) -> String {
    let mut out = String::with_capacity(16 * 1024);
    gauge(
        &mut out,
        "pgbouncer_up",
        "The pgbouncer scrape succeeded",
        &[],
        1.0,
    );
    metric_help(
        &mut out,
        "pgbouncer_version_info",
        "The pgbouncer version info",
        "gauge",
    );
    sample(
        &mut out,
        "pgbouncer_version_info",
        &[("version", crate::admin::version_string())],
        1.0,
    );
    columns(
        &mut out,
        "pools",
        &show::pools(shared),
        &["database", "user"],
        POOLS,
        "gauge",
    );
    columns(
        &mut out,
        "stats_totals",
        &crate::admin::show_stats::stats_totals(shared),
        &["database"],
        STATS_TOTALS,
        "counter",
    );
    columns(
        &mut out,
        "databases",
        &show::databases(shared),
        &[
            "name",
            "host",
            "port",
            "database",
            "force_user",
            "pool_mode",
        ],
        DATABASES,
        "gauge",
    );
    let lists = show::lists(shared);
    for (list, name, help) in LISTS {
        if let Some(row) = lists.rows().iter().find(|r| r[0] == Value::from(*list)) {
            let v = number(&row[1]).unwrap_or(0.0);
            gauge(&mut out, &format!("pgbouncer_{name}"), help, &[], v);
        }
    }
    let g = &shared.config().general;
    gauge(
        &mut out,
        "pgbouncer_config_max_client_connections",
        "Config maximum number of client connections",
        &[],
        g.max_client_conn as f64,
    );
    gauge(
        &mut out,
        "pgbouncer_config_max_user_connections",
        "Config maximum number of server connections per user",
        &[],
        g.max_user_connections as f64,
    );
    process_metrics(&mut out, shared);
    out
}

/// One metric per mapped column and row, labelled by the label columns.
fn columns(
    out: &mut String,
    family: &str,
    rs: &ResultSet,
    label_columns: &[&str],
    mappings: &[Mapping],
    kind: &str,
) {
    let names = rs.column_names();
    let index = |c: &str| names.iter().position(|n| *n == c);
    for (column, metric, divisor, help) in mappings {
        let Some(i) = index(column) else { continue };
        let name = format!("pgbouncer_{family}_{metric}");
        metric_help(out, &name, help, kind);
        for row in rs.rows() {
            let labels: Vec<(&str, String)> = label_columns
                .iter()
                .filter_map(|l| index(l).map(|j| (*l, text(&row[j]))))
                .collect();
            if let Some(v) = number(&row[i]) {
                sample(out, &name, &labels, v / divisor);
            }
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Text(s) => s.clone(),
        Value::Int(i) => i.to_string(),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Text(s) => s.trim().parse().ok(),
        Value::Null => None,
    }
}

fn metric_help(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, labels: &[(&str, String)], v: f64) {
    metric_help(out, name, help, "gauge");
    sample(out, name, labels, v);
}

fn sample(out: &mut String, name: &str, labels: &[(&str, String)], v: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, val)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape(val));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {v}");
}

/// Label values escape backslash, quote and newline.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The standard process_* metrics, from /proc.
fn process_metrics(out: &mut String, shared: &Shared) {
    let ticks = 100.0; // USER_HZ on Linux
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the parenthesised command name.
        if let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            // utime and stime are fields 14 and 15 of stat (11 and 12 here).
            gauge_kind(
                out,
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                "counter",
                (num(11) + num(12)) / ticks,
            );
            gauge(
                out,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                &[],
                num(20),
            );
            let page = 4096.0;
            gauge(
                out,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                &[],
                num(21) * page,
            );
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge(
            out,
            "process_open_fds",
            "Number of open file descriptors.",
            &[],
            fds.count() as f64,
        );
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        gauge(
            out,
            "process_max_fds",
            "Maximum number of open file descriptors.",
            &[],
            lim.rlim_cur as f64,
        );
    }
    gauge(
        out,
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        &[],
        shared.started as f64 / 1e6,
    );
}

fn gauge_kind(out: &mut String, name: &str, help: &str, kind: &str, v: f64) {
    metric_help(out, name, help, kind);
    sample(out, name, &[], v);
}
