//! The `[pgbouncer]` section: which keys Sluice reads, which it accepts but
//! does not implement yet, and how each value is parsed into
//! `GeneralSettings`. Keys are case-insensitive.

use crate::model::GeneralSettings;
use crate::values::{
    optional_path, optional_string, parse_auth_type, parse_bool, parse_duration_secs, parse_list,
    parse_octal_mode, parse_pool_mode, parse_tls_mode, parse_uint,
};

/// `[pgbouncer]` keys that Sluice reads and acts on, in alphabetical order.
pub const SUPPORTED_KEYS: &[&str] = &[
    "admin_users",
    "application_name_add_host",
    "auth_dbname",
    "auth_file",
    "auth_hba_file",
    "auth_ident_file",
    "auth_pam_confdir",
    "auth_query",
    "auth_type",
    "auth_user",
    "client_idle_timeout",
    "client_login_timeout",
    "client_tls13_ciphers",
    "client_tls_ca_file",
    "client_tls_cert_file",
    "client_tls_ciphers",
    "client_tls_dheparams",
    "client_tls_ecdhcurve",
    "client_tls_key_file",
    "client_tls_protocols",
    "client_tls_sslmode",
    "default_pool_size",
    "idle_transaction_timeout",
    "ignore_startup_parameters",
    "listen_addr",
    "listen_port",
    "log_connections",
    "log_disconnections",
    "log_format",
    "log_pooler_errors",
    "log_stats",
    "logfile",
    "max_client_conn",
    "max_db_connections",
    "max_packet_size",
    "max_prepared_statements",
    "max_user_connections",
    "min_pool_size",
    "pidfile",
    "pkt_buf",
    "pool_mode",
    "prometheus_listen",
    "query_timeout",
    "query_wait_timeout",
    "reserve_pool_size",
    "reserve_pool_timeout",
    "server_check_delay",
    "server_check_query",
    "server_connect_timeout",
    "server_idle_timeout",
    "server_lifetime",
    "server_login_retry",
    "server_reset_query",
    "server_reset_query_always",
    "server_tls13_ciphers",
    "server_tls_ca_file",
    "server_tls_cert_file",
    "server_tls_ciphers",
    "server_tls_key_file",
    "server_tls_protocols",
    "server_tls_sslmode",
    "stats_period",
    "stats_users",
    "syslog",
    "syslog_facility",
    "syslog_ident",
    "tcp_keepalive",
    "tcp_keepcnt",
    "tcp_keepidle",
    "tcp_keepintvl",
    "tcp_user_timeout",
    "unix_socket_dir",
    "unix_socket_mode",
    "user",
    "verbose",
];

/// `[pgbouncer]` keys that PgBouncer has and Sluice accepts without acting on
/// them yet (each gives a warning), in alphabetical order.
pub const NOT_YET_IMPLEMENTED: &[&str] = &[
    "auth_ldap_options",
    "autodb_idle_timeout",
    "cancel_wait_timeout",
    "conffile",
    "disable_pqexec",
    "dns_max_ttl",
    "dns_nxdomain_ttl",
    "dns_zone_check_period",
    "job_name",
    "listen_backlog",
    "login_notify_message",
    "max_db_client_connections",
    "max_user_client_connections",
    "peer_id",
    "pool_idle_timeout",
    "query_wait_notify",
    "resolv_conf",
    "sbuf_loopcnt",
    "scram_iterations",
    "server_fast_close",
    "server_round_robin",
    "service_name",
    "so_reuseport",
    "suspend_timeout",
    "tcp_defer_accept",
    "tcp_socket_buffer",
    "track_extra_parameters",
    "transaction_timeout",
    "unix_socket_group",
];

fn parse_log_format(v: &str) -> Result<crate::model::LogFormat, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "text" | "" => Ok(crate::model::LogFormat::Text),
        "json" => Ok(crate::model::LogFormat::Json),
        other => Err(format!("invalid log_format {other:?} (text or json)")),
    }
}

/// What became of one `[pgbouncer]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The value was parsed into the settings.
    Set,
    /// A PgBouncer key that Sluice does not act on yet; the value is ignored.
    NotYetImplemented,
    /// Neither PgBouncer's nor Sluice's; the value is ignored.
    Unknown,
}

/// Applies `key = value` to `g`. `Err` carries the reason the value is
/// invalid for a known key.
pub(crate) fn apply(g: &mut GeneralSettings, key: &str, value: &str) -> Result<Applied, String> {
    let key = key.to_ascii_lowercase();
    match key.as_str() {
        "listen_addr" => g.listen_addr = parse_list(value),
        "listen_port" => g.listen_port = parse_uint(value)?,
        "unix_socket_dir" => g.unix_socket_dir = value.to_string(),
        "unix_socket_mode" => g.unix_socket_mode = parse_octal_mode(value)?,
        "user" => g.user = optional_string(value),

        "auth_type" => g.auth_type = parse_auth_type(value)?,
        "auth_file" => g.auth_file = optional_path(value),
        "auth_hba_file" => g.auth_hba_file = optional_path(value),
        "auth_ident_file" => g.auth_ident_file = optional_path(value),
        "auth_user" => g.auth_user = optional_string(value),
        "auth_query" => g.auth_query = value.to_string(),
        "auth_dbname" => g.auth_dbname = optional_string(value),
        "auth_pam_confdir" => g.auth_pam_confdir = optional_path(value),

        "pool_mode" => g.pool_mode = parse_pool_mode(value)?,
        "max_client_conn" => g.max_client_conn = parse_uint(value)?,
        "default_pool_size" => g.default_pool_size = parse_uint(value)?,
        "min_pool_size" => g.min_pool_size = parse_uint(value)?,
        "reserve_pool_size" => g.reserve_pool_size = parse_uint(value)?,
        "reserve_pool_timeout" => g.reserve_pool_timeout = parse_duration_secs(value)?,
        "max_db_connections" => g.max_db_connections = parse_uint(value)?,
        "max_user_connections" => g.max_user_connections = parse_uint(value)?,

        "server_reset_query" => g.server_reset_query = value.to_string(),
        "server_reset_query_always" => g.server_reset_query_always = parse_bool(value)?,
        "server_check_query" => g.server_check_query = value.to_string(),
        "server_check_delay" => g.server_check_delay = parse_duration_secs(value)?,
        "server_lifetime" => g.server_lifetime = parse_duration_secs(value)?,
        "server_idle_timeout" => g.server_idle_timeout = parse_duration_secs(value)?,
        "server_connect_timeout" => g.server_connect_timeout = parse_duration_secs(value)?,
        "server_login_retry" => g.server_login_retry = parse_duration_secs(value)?,
        "query_timeout" => g.query_timeout = parse_duration_secs(value)?,
        "query_wait_timeout" => g.query_wait_timeout = parse_duration_secs(value)?,
        "client_idle_timeout" => g.client_idle_timeout = parse_duration_secs(value)?,
        "client_login_timeout" => g.client_login_timeout = parse_duration_secs(value)?,
        "idle_transaction_timeout" => g.idle_transaction_timeout = parse_duration_secs(value)?,

        "ignore_startup_parameters" => {
            g.ignore_startup_parameters = parse_list(value)
                .into_iter()
                .map(|name| name.to_ascii_lowercase())
                .collect();
        }
        "application_name_add_host" => g.application_name_add_host = parse_bool(value)?,

        "logfile" => g.logfile = optional_path(value),
        "pidfile" => g.pidfile = optional_path(value),
        "log_connections" => g.log_connections = parse_bool(value)?,
        "log_disconnections" => g.log_disconnections = parse_bool(value)?,
        "log_pooler_errors" => g.log_pooler_errors = parse_bool(value)?,
        "log_stats" => g.log_stats = parse_bool(value)?,
        "log_format" => g.log_format = parse_log_format(value)?,
        "syslog" => g.syslog = parse_bool(value)?,
        "syslog_ident" => g.syslog_ident = value.trim().to_string(),
        "syslog_facility" => g.syslog_facility = value.trim().to_string(),
        "stats_period" => g.stats_period = parse_duration_secs(value)?,
        "verbose" => g.verbose = parse_uint(value)?,

        "pkt_buf" => g.pkt_buf = parse_uint(value)?,
        "max_packet_size" => g.max_packet_size = parse_uint(value)?,
        "max_prepared_statements" => g.max_prepared_statements = parse_uint(value)?,
        "tcp_keepalive" => g.tcp_keepalive = parse_bool(value)?,
        "tcp_keepcnt" => g.tcp_keepcnt = parse_uint(value)?,
        "tcp_keepidle" => g.tcp_keepidle = parse_uint(value)?,
        "tcp_keepintvl" => g.tcp_keepintvl = parse_uint(value)?,
        "tcp_user_timeout" => g.tcp_user_timeout = parse_uint(value)?,

        "client_tls_sslmode" => g.client_tls_sslmode = parse_tls_mode(value)?,
        "client_tls_key_file" => g.client_tls_key_file = optional_path(value),
        "client_tls_cert_file" => g.client_tls_cert_file = optional_path(value),
        "client_tls_ca_file" => g.client_tls_ca_file = optional_path(value),
        "client_tls_protocols" => g.client_tls_protocols = value.trim().to_string(),
        "client_tls_ciphers" => g.client_tls_ciphers = value.trim().to_string(),
        "client_tls13_ciphers" => g.client_tls13_ciphers = value.trim().to_string(),
        "client_tls_ecdhcurve" => g.client_tls_ecdhcurve = value.trim().to_string(),
        "client_tls_dheparams" => g.client_tls_dheparams = value.trim().to_string(),
        "server_tls_sslmode" => g.server_tls_sslmode = parse_tls_mode(value)?,
        "server_tls_ca_file" => g.server_tls_ca_file = optional_path(value),
        "server_tls_key_file" => g.server_tls_key_file = optional_path(value),
        "server_tls_cert_file" => g.server_tls_cert_file = optional_path(value),
        "server_tls_protocols" => g.server_tls_protocols = value.trim().to_string(),
        "server_tls_ciphers" => g.server_tls_ciphers = value.trim().to_string(),
        "server_tls13_ciphers" => g.server_tls13_ciphers = value.trim().to_string(),

        "admin_users" => g.admin_users = parse_list(value),
        "prometheus_listen" => g.prometheus_listen = optional_string(value),
        "stats_users" => g.stats_users = parse_list(value),

        other if NOT_YET_IMPLEMENTED.contains(&other) => return Ok(Applied::NotYetImplemented),
        _ => return Ok(Applied::Unknown),
    }
    Ok(Applied::Set)
}

/// The known key closest to a misspelt one, if any is close enough to be a
/// likely typo.
pub(crate) fn suggest_key(unknown: &str) -> Option<&'static str> {
    let unknown = unknown.to_ascii_lowercase();
    SUPPORTED_KEYS
        .iter()
        .chain(NOT_YET_IMPLEMENTED)
        .map(|known| (edit_distance(&unknown, known), *known))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// Levenshtein distance over bytes (keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}
