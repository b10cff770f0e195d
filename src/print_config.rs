//! `sluice --print-config`: the effective configuration (file, environment
//! or both) as a pgbouncer.ini, with passwords and secrets masked.

use std::fmt::Write;

use sluice_auth::Userlist;
use sluice_config::{config_rows, DatabaseDef, Loaded, UserDef};

const MASK: &str = "*****";

pub fn render(loaded: &Loaded, userlist: &Userlist) -> String {
    let mut out = String::new();
    let config = &loaded.config;
    let _ = writeln!(out, "; effective configuration of Sluice");
    let mut from = Vec::new();
    if loaded.config.source.to_string_lossy() != "<environment>" {
        from.push(config.source.display().to_string());
    }
    if let Some(d) = loaded.dialect {
        from.push(format!("environment variables ({d} dialect)"));
    }
    let _ = writeln!(out, "; from: {}", from.join(", then "));
    let _ = writeln!(out, "\n[databases]");
    for db in config.databases.values() {
        let _ = writeln!(out, "{} = {}", db.name, database_line(db));
    }
    if !config.users.is_empty() {
        let _ = writeln!(out, "\n[users]");
        for u in config.users.values() {
            let _ = writeln!(out, "{} = {}", u.name, user_line(u));
        }
    }
    let _ = writeln!(out, "\n[pgbouncer]");
    for row in config_rows(&config.general) {
        let _ = writeln!(out, "{} = {}", row.key, row.value);
    }
    let mut users: Vec<&String> = userlist.keys().collect();
    users.sort();
    let _ = writeln!(
        out,
        "\n; auth users (secrets masked): {}",
        if users.is_empty() {
            "none".to_owned()
        } else {
            users
                .iter()
                .map(|u| format!("\"{u}\""))
                .collect::<Vec<_>>()
                .join(" ")
        }
    );
    out
}

fn database_line(db: &DatabaseDef) -> String {
    let mut parts = Vec::new();
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    };
    add("host", db.host.clone());
    add("port", Some(db.port.to_string()));
    add("dbname", db.dbname.clone());
    add("user", db.user.clone());
    add("password", db.password.as_ref().map(|_| MASK.to_owned()));
    add("auth_user", db.auth_user.clone());
    add("auth_dbname", db.auth_dbname.clone());
    add(
        "auth_query",
        db.auth_query.as_ref().map(|q| format!("'{q}'")),
    );
    add("pool_size", db.pool_size.map(|n| n.to_string()));
    add("min_pool_size", db.min_pool_size.map(|n| n.to_string()));
    add("reserve_pool", db.reserve_pool_size.map(|n| n.to_string()));
    add("pool_mode", db.pool_mode.map(|m| m.as_str().to_owned()));
    add(
        "max_db_connections",
        db.max_db_connections.map(|n| n.to_string()),
    );
    add(
        "connect_query",
        db.connect_query.as_ref().map(|q| format!("'{q}'")),
    );
    add("client_encoding", db.client_encoding.clone());
    add("datestyle", db.datestyle.clone());
    add("timezone", db.timezone.clone());
    add("application_name", db.application_name.clone());
    add(
        "server_lifetime",
        db.server_lifetime.map(|d| d.as_secs_f64().to_string()),
    );
    add(
        "query_wait_timeout",
        db.query_wait_timeout.map(|d| d.as_secs_f64().to_string()),
    );
    parts.join(" ")
}

fn user_line(u: &UserDef) -> String {
    let secs = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64().to_string());
    [
        ("pool_mode", u.pool_mode.map(|m| m.as_str().to_owned())),
        ("pool_size", u.pool_size.map(|n| n.to_string())),
        (
            "reserve_pool_size",
            u.reserve_pool_size.map(|n| n.to_string()),
        ),
        (
            "max_user_connections",
            u.max_user_connections.map(|n| n.to_string()),
        ),
        ("query_timeout", secs(u.query_timeout)),
        ("query_wait_timeout", secs(u.query_wait_timeout)),
        ("idle_transaction_timeout", secs(u.idle_transaction_timeout)),
        ("client_idle_timeout", secs(u.client_idle_timeout)),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some(format!("{k}={}", v?)))
    .collect::<Vec<_>>()
    .join(" ")
}
