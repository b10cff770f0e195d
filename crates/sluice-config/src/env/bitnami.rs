//! The `bitnami/pgbouncer` image: `POSTGRESQL_HOST`, `_PORT`, `_USERNAME`,
//! `_PASSWORD`, `_DATABASE` and `PGBOUNCER_DATABASE` make one `[databases]`
//! line, `PGBOUNCER_DSN_0`, `_1`, … more; `PGBOUNCER_*` variables from the
//! image's list set `[pgbouncer]` keys; the userlist gets
//! `POSTGRESQL_USERNAME` / `POSTGRESQL_PASSWORD` in plaintext plus the
//! lines of `PGBOUNCER_USERLIST`. Every variable may come from `<VAR>_FILE`.
//!
//! Unlike the image's shell, a value with `:` in it is not cut short.

use super::{conn_pair, Builder, EnvVars};
use crate::error::ConfigError;

/// `PGBOUNCER_<X>` → `[pgbouncer]` key, as the image maps them.
const KEYS: [(&str, &str); 46] = [
    ("PGBOUNCER_PORT", "listen_port"),
    ("PGBOUNCER_LISTEN_ADDRESS", "listen_addr"),
    ("PGBOUNCER_SOCKET_DIR", "unix_socket_dir"),
    ("PGBOUNCER_SOCKET_MODE", "unix_socket_mode"),
    ("PGBOUNCER_SOCKET_GROUP", "unix_socket_group"),
    ("PGBOUNCER_AUTH_TYPE", "auth_type"),
    ("PGBOUNCER_AUTH_HBA_FILE", "auth_hba_file"),
    ("PGBOUNCER_AUTH_IDENT_FILE", "auth_ident_file"),
    ("PGBOUNCER_AUTH_QUERY", "auth_query"),
    ("PGBOUNCER_LOG_FILE", "logfile"),
    ("PGBOUNCER_STATS_USERS", "stats_users"),
    ("PGBOUNCER_CLIENT_TLS_SSLMODE", "client_tls_sslmode"),
    ("PGBOUNCER_CLIENT_TLS_CERT_FILE", "client_tls_cert_file"),
    ("PGBOUNCER_CLIENT_TLS_KEY_FILE", "client_tls_key_file"),
    ("PGBOUNCER_CLIENT_TLS_CA_FILE", "client_tls_ca_file"),
    ("PGBOUNCER_CLIENT_TLS_CIPHERS", "client_tls_ciphers"),
    ("PGBOUNCER_SERVER_TLS_SSLMODE", "server_tls_sslmode"),
    ("PGBOUNCER_SERVER_TLS_CA_FILE", "server_tls_ca_file"),
    ("PGBOUNCER_SERVER_TLS_CERT_FILE", "server_tls_cert_file"),
    ("PGBOUNCER_SERVER_TLS_KEY_FILE", "server_tls_key_file"),
    ("PGBOUNCER_SERVER_TLS_CIPHERS", "server_tls_ciphers"),
    ("PGBOUNCER_SERVER_TLS_PROTOCOLS", "server_tls_protocols"),
    ("PGBOUNCER_QUERY_WAIT_TIMEOUT", "query_wait_timeout"),
    ("PGBOUNCER_POOL_MODE", "pool_mode"),
    ("PGBOUNCER_MAX_CLIENT_CONN", "max_client_conn"),
    ("PGBOUNCER_MAX_DB_CONNECTIONS", "max_db_connections"),
    (
        "PGBOUNCER_IDLE_TRANSACTION_TIMEOUT",
        "idle_transaction_timeout",
    ),
    ("PGBOUNCER_SERVER_IDLE_TIMEOUT", "server_idle_timeout"),
    ("PGBOUNCER_SERVER_RESET_QUERY", "server_reset_query"),
    ("PGBOUNCER_DEFAULT_POOL_SIZE", "default_pool_size"),
    ("PGBOUNCER_MIN_POOL_SIZE", "min_pool_size"),
    ("PGBOUNCER_RESERVE_POOL_SIZE", "reserve_pool_size"),
    ("PGBOUNCER_RESERVE_POOL_TIMEOUT", "reserve_pool_timeout"),
    (
        "PGBOUNCER_IGNORE_STARTUP_PARAMETERS",
        "ignore_startup_parameters",
    ),
    ("PGBOUNCER_LOG_CONNECTIONS", "log_connections"),
    ("PGBOUNCER_LOG_DISCONNECTIONS", "log_disconnections"),
    ("PGBOUNCER_LOG_POOLER_ERRORS", "log_pooler_errors"),
    ("PGBOUNCER_LOG_STATS", "log_stats"),
    ("PGBOUNCER_STATS_PERIOD", "stats_period"),
    ("PGBOUNCER_SERVER_ROUND_ROBIN", "server_round_robin"),
    ("PGBOUNCER_SERVER_FAST_CLOSE", "server_fast_close"),
    ("PGBOUNCER_SERVER_LIFETIME", "server_lifetime"),
    ("PGBOUNCER_SERVER_CONNECT_TIMEOUT", "server_connect_timeout"),
    ("PGBOUNCER_SERVER_LOGIN_RETRY", "server_login_retry"),
    ("PGBOUNCER_CLIENT_LOGIN_TIMEOUT", "client_login_timeout"),
    ("PGBOUNCER_QUERY_TIMEOUT", "query_timeout"),
];

/// Further keys of the image's list, kept apart to keep the table short.
const MORE_KEYS: [(&str, &str); 4] = [
    ("PGBOUNCER_CLIENT_IDLE_TIMEOUT", "client_idle_timeout"),
    (
        "PGBOUNCER_MAX_PREPARED_STATEMENTS",
        "max_prepared_statements",
    ),
    (
        "PGBOUNCER_APPLICATION_NAME_ADD_HOST",
        "application_name_add_host",
    ),
    ("PGBOUNCER_AUTODB_IDLE_TIMEOUT", "autodb_idle_timeout"),
];

/// The image's defaults where they differ from PgBouncer's.
const DEFAULTS: [(&str, &str); 5] = [
    ("PGBOUNCER_LISTEN_ADDRESS", "0.0.0.0"),
    ("PGBOUNCER_PORT", "6432"),
    ("PGBOUNCER_AUTH_TYPE", "scram-sha-256"),
    ("PGBOUNCER_IGNORE_STARTUP_PARAMETERS", "extra_float_digits"),
    ("PGBOUNCER_SERVER_TLS_SSLMODE", "disable"),
];

pub(super) fn read(vars: &EnvVars, out: &mut Builder) -> Result<(), ConfigError> {
    let username = vars.get_or("POSTGRESQL_USERNAME", "postgres")?;
    for (var, key) in KEYS.iter().chain(&MORE_KEYS) {
        let default = DEFAULTS.iter().find(|(d, _)| d == var).map(|(_, v)| *v);
        let value = match (vars.get(var)?, default) {
            (Some(v), _) => v,
            (None, Some(d)) => d.to_owned(),
            (None, None) => continue,
        };
        out.general(key, &value, var);
    }
    out.general("admin_users", &username, "POSTGRESQL_USERNAME");

    let auth_type = vars.get_or("PGBOUNCER_AUTH_TYPE", "scram-sha-256")?;
    let password = vars.get("POSTGRESQL_PASSWORD")?;
    if password.is_none() && auth_type != "trust" {
        return Err(ConfigError::Env(format!(
            "POSTGRESQL_PASSWORD is required (auth_type {auth_type})"
        )));
    }
    let database = vars.get_or("PGBOUNCER_DATABASE", "postgres")?;
    let mut pairs = vec![
        conn_pair("host", &vars.get_or("POSTGRESQL_HOST", "postgresql")?),
        conn_pair("port", &vars.get_or("POSTGRESQL_PORT", "5432")?),
    ];
    if is_yes(vars.get("PGBOUNCER_SET_DATABASE_USER")?) {
        pairs.push(conn_pair("user", &username));
    }
    if is_yes(vars.get("PGBOUNCER_SET_DATABASE_PASSWORD")?) {
        if let Some(p) = &password {
            pairs.push(conn_pair("password", p));
        }
    }
    if database != "*" {
        pairs.push(conn_pair(
            "dbname",
            &vars.get_or("POSTGRESQL_DATABASE", &database)?,
        ));
    }
    if let Some(a) = vars.get("PGBOUNCER_AUTH_USER")? {
        pairs.push(conn_pair("auth_user", &a));
    }
    if let Some(q) = vars.get("PGBOUNCER_CONNECT_QUERY")? {
        pairs.push(conn_pair("connect_query", &q));
    }
    out.database(&database, &pairs.join(" "), "PGBOUNCER_DATABASE");
    for i in 0.. {
        let var = format!("PGBOUNCER_DSN_{i}");
        let Some(dsn) = vars.get(&var)? else {
            break;
        };
        let Some((name, connstr)) = dsn.split_once('=') else {
            return Err(ConfigError::Env(format!(
                "{var}: expected name=connection string"
            )));
        };
        out.database(name.trim(), connstr.trim(), &var);
    }

    if let Some(p) = &password {
        out.user(&username, p);
    }
    if let Some(extra) = vars.get("PGBOUNCER_USERLIST")? {
        out.userlist.push_str(&extra);
        out.userlist.push('\n');
    }
    Ok(())
}

fn is_yes(v: Option<String>) -> bool {
    matches!(
        v.as_deref().map(str::to_ascii_lowercase).as_deref(),
        Some("yes" | "true" | "1")
    )
}
