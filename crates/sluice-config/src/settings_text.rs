//! The `[pgbouncer]` settings as text, for SHOW CONFIG and SET on the
//! admin console: every key Sluice acts on with its value in PgBouncer's
//! notation (booleans 0/1, durations in seconds), its default, and whether
//! it can change without a restart.

use std::path::PathBuf;
use std::time::Duration;

use crate::general::{apply, Applied};
use crate::model::GeneralSettings;

/// Keys that only take effect at start (PgBouncer's CF_NO_RELOAD).
pub const NEEDS_RESTART: &[&str] = &[
    "listen_addr",
    "listen_port",
    "log_format",
    "pidfile",
    "prometheus_listen",
    "syslog",
    "syslog_facility",
    "syslog_ident",
    "unix_socket_dir",
    "unix_socket_mode",
    "user",
];

/// One row of SHOW CONFIG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRow {
    pub key: &'static str,
    pub value: String,
    pub default: String,
    pub changeable: bool,
}

/// Every supported key with its current and default value, by key.
pub fn config_rows(g: &GeneralSettings) -> Vec<ConfigRow> {
    let defaults = values(&GeneralSettings::default());
    let mut rows: Vec<ConfigRow> = values(g)
        .into_iter()
        .zip(defaults)
        .map(|((key, value), (_, default))| ConfigRow {
            key,
            value,
            default,
            changeable: !NEEDS_RESTART.contains(&key),
        })
        .collect();
    rows.sort_by_key(|r| r.key);
    rows
}

/// SET key = value: checks the key is known and changeable and the value
/// valid, then applies it to `g`.
pub fn set_value(g: &mut GeneralSettings, key: &str, value: &str) -> Result<(), String> {
    let key = key.to_ascii_lowercase();
    if NEEDS_RESTART.contains(&key.as_str()) {
        return Err(format!("{key} cannot be changed without a restart"));
    }
    match apply(g, &key, value)? {
        Applied::Set => Ok(()),
        Applied::NotYetImplemented => Err(format!("{key} is not implemented by Sluice")),
        Applied::Unknown => Err(format!("unknown parameter: {key}")),
    }
}

fn path(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Seconds as PgBouncer prints them (`%g`): 3600, 0.5.
fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.to_string()
}

fn values(g: &GeneralSettings) -> Vec<(&'static str, String)> {
    vec![
        ("listen_addr", g.listen_addr.join(",")),
        ("listen_port", g.listen_port.to_string()),
        ("unix_socket_dir", g.unix_socket_dir.clone()),
        ("unix_socket_mode", format!("0{:o}", g.unix_socket_mode)),
        ("user", g.user.clone().unwrap_or_default()),
        ("auth_type", g.auth_type.as_str().to_string()),
        ("auth_file", path(&g.auth_file)),
        ("auth_hba_file", path(&g.auth_hba_file)),
        ("auth_ident_file", path(&g.auth_ident_file)),
        ("auth_user", g.auth_user.clone().unwrap_or_default()),
        ("auth_query", g.auth_query.clone()),
        ("auth_dbname", g.auth_dbname.clone().unwrap_or_default()),
        ("auth_pam_confdir", path(&g.auth_pam_confdir)),
        ("pool_mode", g.pool_mode.as_str().to_string()),
        ("max_client_conn", g.max_client_conn.to_string()),
        ("default_pool_size", g.default_pool_size.to_string()),
        ("min_pool_size", g.min_pool_size.to_string()),
        ("reserve_pool_size", g.reserve_pool_size.to_string()),
        ("reserve_pool_timeout", secs(g.reserve_pool_timeout)),
        ("max_db_connections", g.max_db_connections.to_string()),
        ("max_user_connections", g.max_user_connections.to_string()),
        ("server_reset_query", g.server_reset_query.clone()),
        (
            "server_reset_query_always",
            flag(g.server_reset_query_always),
        ),
        ("server_check_query", g.server_check_query.clone()),
        ("server_check_delay", secs(g.server_check_delay)),
        ("server_lifetime", secs(g.server_lifetime)),
        ("server_idle_timeout", secs(g.server_idle_timeout)),
        ("server_connect_timeout", secs(g.server_connect_timeout)),
        ("server_login_retry", secs(g.server_login_retry)),
        ("query_timeout", secs(g.query_timeout)),
        ("query_wait_timeout", secs(g.query_wait_timeout)),
        ("client_idle_timeout", secs(g.client_idle_timeout)),
        ("client_login_timeout", secs(g.client_login_timeout)),
        ("idle_transaction_timeout", secs(g.idle_transaction_timeout)),
        (
            "ignore_startup_parameters",
            g.ignore_startup_parameters.join(","),
        ),
        (
            "application_name_add_host",
            flag(g.application_name_add_host),
        ),
        ("logfile", path(&g.logfile)),
        ("pidfile", path(&g.pidfile)),
        ("log_connections", flag(g.log_connections)),
        ("log_disconnections", flag(g.log_disconnections)),
        ("log_pooler_errors", flag(g.log_pooler_errors)),
        ("log_stats", flag(g.log_stats)),
        ("log_format", g.log_format.as_str().to_string()),
        ("syslog", flag(g.syslog)),
        ("syslog_ident", g.syslog_ident.clone()),
        ("syslog_facility", g.syslog_facility.clone()),
        ("stats_period", secs(g.stats_period)),
        ("verbose", g.verbose.to_string()),
        ("pkt_buf", g.pkt_buf.to_string()),
        ("max_packet_size", g.max_packet_size.to_string()),
        (
            "max_prepared_statements",
            g.max_prepared_statements.to_string(),
        ),
        ("tcp_keepalive", flag(g.tcp_keepalive)),
        ("tcp_keepcnt", g.tcp_keepcnt.to_string()),
        ("tcp_keepidle", g.tcp_keepidle.to_string()),
        ("tcp_keepintvl", g.tcp_keepintvl.to_string()),
        ("tcp_user_timeout", g.tcp_user_timeout.to_string()),
        (
            "client_tls_sslmode",
            g.client_tls_sslmode.as_str().to_string(),
        ),
        ("client_tls_key_file", path(&g.client_tls_key_file)),
        ("client_tls_cert_file", path(&g.client_tls_cert_file)),
        ("client_tls_ca_file", path(&g.client_tls_ca_file)),
        ("client_tls_protocols", g.client_tls_protocols.clone()),
        ("client_tls_ciphers", g.client_tls_ciphers.clone()),
        ("client_tls13_ciphers", g.client_tls13_ciphers.clone()),
        ("client_tls_ecdhcurve", g.client_tls_ecdhcurve.clone()),
        ("client_tls_dheparams", g.client_tls_dheparams.clone()),
        (
            "server_tls_sslmode",
            g.server_tls_sslmode.as_str().to_string(),
        ),
        ("server_tls_ca_file", path(&g.server_tls_ca_file)),
        ("server_tls_key_file", path(&g.server_tls_key_file)),
        ("server_tls_cert_file", path(&g.server_tls_cert_file)),
        ("server_tls_protocols", g.server_tls_protocols.clone()),
        ("server_tls_ciphers", g.server_tls_ciphers.clone()),
        ("server_tls13_ciphers", g.server_tls13_ciphers.clone()),
        ("admin_users", g.admin_users.join(",")),
        (
            "prometheus_listen",
            g.prometheus_listen.clone().unwrap_or_default(),
        ),
        ("stats_users", g.stats_users.join(",")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::general::SUPPORTED_KEYS;

    #[test]
    fn every_supported_key_has_a_row_in_pgbouncer_notation() {
        let rows = config_rows(&GeneralSettings::default());
        let keys: Vec<&str> = rows.iter().map(|r| r.key).collect();
        assert_eq!(keys, SUPPORTED_KEYS);
        let get = |k: &str| rows.iter().find(|r| r.key == k).unwrap().clone();
        assert_eq!(get("server_lifetime").value, "3600");
        assert_eq!(get("log_connections").value, "1");
        assert_eq!(get("pool_mode").value, "session");
        assert_eq!(get("unix_socket_mode").value, "0777");
        assert!(!get("listen_port").changeable);
        assert!(get("default_pool_size").changeable);
    }

    #[test]
    fn set_changes_a_value_and_refuses_unknown_restart_only_or_invalid_ones() {
        let mut g = GeneralSettings::default();
        set_value(&mut g, "default_pool_size", "7").unwrap();
        assert_eq!(g.default_pool_size, 7);
        set_value(&mut g, "query_wait_timeout", "2.5").unwrap();
        assert_eq!(g.query_wait_timeout, Duration::from_millis(2500));
        assert!(set_value(&mut g, "no_such_key", "1").is_err());
        assert!(set_value(&mut g, "listen_port", "1").is_err());
        assert!(set_value(&mut g, "default_pool_size", "many").is_err());
    }
}
