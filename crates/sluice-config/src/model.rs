//! The settings model: what a pgbouncer.ini means once read. Parsing lives in
//! `ini.rs`/`values.rs`/`connstr.rs`; this file only says what the settings are.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How long a server connection stays with one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    Session,
    Transaction,
    Statement,
}

impl PoolMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
            PoolMode::Statement => "statement",
        }
    }
}

/// How clients prove who they are (`auth_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    Trust,
    Any,
    /// `plain` (PgBouncer) — cleartext password over the wire.
    Plain,
    Md5,
    ScramSha256,
    Cert,
    Hba,
    Pam,
}

impl AuthType {
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthType::Trust => "trust",
            AuthType::Any => "any",
            AuthType::Plain => "plain",
            AuthType::Md5 => "md5",
            AuthType::ScramSha256 => "scram-sha-256",
            AuthType::Cert => "cert",
            AuthType::Hba => "hba",
            AuthType::Pam => "pam",
        }
    }
}

/// A TLS mode (`client_tls_sslmode`, `server_tls_sslmode`), with libpq's
/// names. What each means on either side is PgBouncer's; see `sluice-tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Allow => "allow",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }

    /// `verify-ca` or `verify-full`: the peer's certificate must verify.
    pub fn verifies_peer(&self) -> bool {
        matches!(self, TlsMode::VerifyCa | TlsMode::VerifyFull)
    }

    /// `require`, `verify-ca` or `verify-full`: plaintext is refused.
    pub fn requires_tls(&self) -> bool {
        matches!(
            self,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull
        )
    }
}

/// The `[pgbouncer]` section. A `Duration::ZERO` timeout means "disabled",
/// as in PgBouncer. A limit of 0 means "unlimited" where PgBouncer says so.
/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn as_str(&self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GeneralSettings {
    /// `listen_addr`: list; `*` means all addresses; empty = unix socket only.
    pub listen_addr: Vec<String>,
    pub listen_port: u16,
    /// `unix_socket_dir`; empty disables the unix socket.
    pub unix_socket_dir: String,
    pub unix_socket_mode: u32,
    pub auth_type: AuthType,
    pub auth_file: Option<PathBuf>,
    /// `auth_hba_file`: the HBA rules for `auth_type = hba`.
    pub auth_hba_file: Option<PathBuf>,
    /// `auth_ident_file`: user name maps for `map=` in the HBA file.
    pub auth_ident_file: Option<PathBuf>,
    pub auth_user: Option<String>,
    pub auth_query: String,
    /// Database whose pool runs auth_query (default: the client's).
    pub auth_dbname: Option<String>,
    /// Directory of PAM service files for auth_type=pam (default /etc/pam.d).
    pub auth_pam_confdir: Option<PathBuf>,
    pub pool_mode: PoolMode,
    pub max_client_conn: usize,
    pub default_pool_size: usize,
    pub min_pool_size: usize,
    pub reserve_pool_size: usize,
    pub reserve_pool_timeout: Duration,
    pub max_db_connections: usize,
    pub max_user_connections: usize,
    pub server_reset_query: String,
    pub server_reset_query_always: bool,
    pub server_check_query: String,
    pub server_check_delay: Duration,
    pub server_lifetime: Duration,
    pub server_idle_timeout: Duration,
    pub server_connect_timeout: Duration,
    pub server_login_retry: Duration,
    pub query_timeout: Duration,
    pub query_wait_timeout: Duration,
    pub client_idle_timeout: Duration,
    pub client_login_timeout: Duration,
    pub idle_transaction_timeout: Duration,
    /// Lower-cased parameter names.
    pub ignore_startup_parameters: Vec<String>,
    pub application_name_add_host: bool,
    pub logfile: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub log_connections: bool,
    pub log_disconnections: bool,
    pub log_pooler_errors: bool,
    /// Log the `stats:` line every stats_period.
    pub log_stats: bool,
    /// `log_format` (Sluice's own key): text (default) or JSON lines.
    pub log_format: LogFormat,
    pub syslog: bool,
    pub syslog_ident: String,
    pub syslog_facility: String,
    /// How often averages are computed (and logged).
    pub stats_period: Duration,
    pub verbose: u8,
    pub pkt_buf: usize,
    pub max_packet_size: usize,
    /// Named prepared statements tracked per server (0 = no tracking).
    pub max_prepared_statements: usize,
    pub tcp_keepalive: bool,
    /// 0 = OS default.
    pub tcp_keepcnt: u32,
    pub tcp_keepidle: u32,
    pub tcp_keepintvl: u32,
    pub tcp_user_timeout: u32,
    pub admin_users: Vec<String>,
    pub stats_users: Vec<String>,
    /// `prometheus_listen` (Sluice's own key): `host:port` of the
    /// Prometheus `/metrics` endpoint; off when unset.
    pub prometheus_listen: Option<String>,
    /// `user` key: switch to this OS user after start.
    pub user: Option<String>,

    // TLS towards clients (Sluice is the TLS server). The strings are kept
    // as written; `sluice-tls` interprets them.
    pub client_tls_sslmode: TlsMode,
    pub client_tls_key_file: Option<PathBuf>,
    pub client_tls_cert_file: Option<PathBuf>,
    pub client_tls_ca_file: Option<PathBuf>,
    /// `secure`, `all`, `legacy`, `default` or a list such as `tlsv1.2,tlsv1.3`.
    pub client_tls_protocols: String,
    /// A keyword (`default`, `secure`, `fast`, `normal`, `compat`, `legacy`,
    /// `all`, `insecure`) or an OpenSSL cipher string; TLS 1.2 and lower.
    pub client_tls_ciphers: String,
    /// TLS 1.3 suites (`TLS_AES_256_GCM_SHA384:...`); empty = follow
    /// `client_tls_ciphers`.
    pub client_tls13_ciphers: String,
    pub client_tls_ecdhcurve: String,
    pub client_tls_dheparams: String,

    // TLS towards PostgreSQL servers (Sluice is the TLS client).
    pub server_tls_sslmode: TlsMode,
    pub server_tls_ca_file: Option<PathBuf>,
    pub server_tls_key_file: Option<PathBuf>,
    pub server_tls_cert_file: Option<PathBuf>,
    pub server_tls_protocols: String,
    pub server_tls_ciphers: String,
    pub server_tls13_ciphers: String,
}

impl Default for GeneralSettings {
    fn default() -> Self {
        GeneralSettings {
            listen_addr: Vec::new(),
            listen_port: 6432,
            unix_socket_dir: "/tmp".to_string(),
            unix_socket_mode: 0o777,
            auth_type: AuthType::Md5,
            auth_file: None,
            auth_hba_file: None,
            auth_ident_file: None,
            auth_user: None,
            auth_dbname: None,
            auth_pam_confdir: None,
            auth_query: "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM pg_authid WHERE rolname=$1 AND rolcanlogin".to_string(),
            pool_mode: PoolMode::Session,
            max_client_conn: 100,
            default_pool_size: 20,
            min_pool_size: 0,
            reserve_pool_size: 0,
            reserve_pool_timeout: Duration::from_secs(5),
            max_db_connections: 0,
            max_user_connections: 0,
            server_reset_query: "DISCARD ALL".to_string(),
            server_reset_query_always: false,
            server_check_query: String::new(),
            server_check_delay: Duration::from_secs(30),
            server_lifetime: Duration::from_secs(3600),
            server_idle_timeout: Duration::from_secs(600),
            server_connect_timeout: Duration::from_secs(15),
            server_login_retry: Duration::from_secs(15),
            query_timeout: Duration::ZERO,
            query_wait_timeout: Duration::from_secs(120),
            client_idle_timeout: Duration::ZERO,
            client_login_timeout: Duration::from_secs(60),
            idle_transaction_timeout: Duration::ZERO,
            ignore_startup_parameters: Vec::new(),
            application_name_add_host: false,
            logfile: None,
            pidfile: None,
            log_connections: true,
            log_disconnections: true,
            log_pooler_errors: true,
            log_stats: true,
            log_format: LogFormat::Text,
            syslog: false,
            syslog_ident: "pgbouncer".to_string(),
            syslog_facility: "daemon".to_string(),
            stats_period: Duration::from_secs(60),
            verbose: 0,
            pkt_buf: 4096,
            max_packet_size: 2147483647,
            max_prepared_statements: 200,
            tcp_keepalive: true,
            tcp_keepcnt: 0,
            tcp_keepidle: 0,
            tcp_keepintvl: 0,
            tcp_user_timeout: 0,
            admin_users: Vec::new(),
            stats_users: Vec::new(),
            prometheus_listen: None,
            user: None,
            client_tls_sslmode: TlsMode::Disable,
            client_tls_key_file: None,
            client_tls_cert_file: None,
            client_tls_ca_file: None,
            client_tls_protocols: "secure".to_string(),
            client_tls_ciphers: "default".to_string(),
            client_tls13_ciphers: String::new(),
            client_tls_ecdhcurve: "auto".to_string(),
            client_tls_dheparams: "auto".to_string(),
            server_tls_sslmode: TlsMode::Prefer,
            server_tls_ca_file: None,
            server_tls_key_file: None,
            server_tls_cert_file: None,
            server_tls_protocols: "secure".to_string(),
            server_tls_ciphers: "default".to_string(),
            server_tls13_ciphers: String::new(),
        }
    }
}

/// One `[databases]` entry. `None` means "not given, use the general default".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DatabaseDef {
    /// The name clients connect to (`*` for the fallback entry).
    pub name: String,
    /// `host`: hostname, IP, or a unix socket directory (starts with `/`).
    /// `None` = unix socket in the default dir, as libpq does.
    pub host: Option<String>,
    pub port: u16,
    /// Real database name on the server; `None` = same as `name`
    /// (for `*`: the name the client asked for).
    pub dbname: Option<String>,
    /// Forced server user/password.
    pub user: Option<String>,
    pub password: Option<String>,
    pub auth_user: Option<String>,
    pub auth_dbname: Option<String>,
    pub auth_query: Option<String>,
    pub pool_size: Option<usize>,
    pub min_pool_size: Option<usize>,
    pub reserve_pool_size: Option<usize>,
    pub pool_mode: Option<PoolMode>,
    pub max_db_connections: Option<usize>,
    pub connect_query: Option<String>,
    pub client_encoding: Option<String>,
    pub datestyle: Option<String>,
    pub timezone: Option<String>,
    pub application_name: Option<String>,
    pub server_lifetime: Option<Duration>,
    pub query_wait_timeout: Option<Duration>,
}

/// One `[users]` entry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserDef {
    pub name: String,
    pub pool_mode: Option<PoolMode>,
    pub pool_size: Option<usize>,
    pub reserve_pool_size: Option<usize>,
    pub max_user_connections: Option<usize>,
    pub query_timeout: Option<Duration>,
    pub query_wait_timeout: Option<Duration>,
    pub idle_transaction_timeout: Option<Duration>,
    pub client_idle_timeout: Option<Duration>,
}

/// A whole configuration, as read from one ini file and its `%include`s.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub general: GeneralSettings,
    pub databases: BTreeMap<String, DatabaseDef>,
    pub users: BTreeMap<String, UserDef>,
    /// The main file, as given on the command line.
    pub source: PathBuf,
}

impl Config {
    /// The entry for a client-requested database name, falling back to `*`.
    pub fn database(&self, name: &str) -> Option<&DatabaseDef> {
        self.databases.get(name).or_else(|| self.databases.get("*"))
    }
}
