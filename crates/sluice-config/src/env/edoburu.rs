//! The `edoburu/pgbouncer` image: `DATABASE_URL` / `DATABASE_URLS` or
//! `DB_HOST`, `DB_PORT`, `DB_USER`, `DB_PASSWORD`, `DB_NAME` make
//! `name = host= port= auth_user=` lines; unprefixed variables named after
//! `[pgbouncer]` keys (`POOL_MODE`, `MAX_CLIENT_CONN`, …) set those keys;
//! `DB_USER` goes into the userlist as the image writes it (md5 hash, or
//! the password itself for auth_type plain and scram-sha-256).
//!
//! Unlike the image's shell: URLs are percent-decoded, a `?query` is not
//! part of the database name, each of several URLs stands alone, and the
//! fixed `user = postgres` (an OS user to switch to) is not written.

use super::{conn_pair, key_of, Builder, EnvVars};
use crate::error::ConfigError;

/// The unprefixed variables the image reads as `[pgbouncer]` keys.
const KEYS: [&str; 66] = [
    "LISTEN_ADDR",
    "LISTEN_PORT",
    "UNIX_SOCKET_DIR",
    "AUTH_FILE",
    "AUTH_TYPE",
    "IGNORE_STARTUP_PARAMETERS",
    "ADMIN_USERS",
    "AUTH_HBA_FILE",
    "AUTH_USER",
    "AUTH_QUERY",
    "AUTH_DBNAME",
    "POOL_MODE",
    "MAX_CLIENT_CONN",
    "DEFAULT_POOL_SIZE",
    "MIN_POOL_SIZE",
    "RESERVE_POOL_SIZE",
    "RESERVE_POOL_TIMEOUT",
    "MAX_DB_CONNECTIONS",
    "MAX_USER_CONNECTIONS",
    "SERVER_ROUND_ROBIN",
    "DISABLE_PQEXEC",
    "APPLICATION_NAME_ADD_HOST",
    "MAX_PREPARED_STATEMENTS",
    "LOG_CONNECTIONS",
    "LOG_DISCONNECTIONS",
    "LOG_POOLER_ERRORS",
    "LOG_STATS",
    "STATS_PERIOD",
    "VERBOSE",
    "STATS_USERS",
    "LOGFILE",
    "SERVER_RESET_QUERY",
    "SERVER_RESET_QUERY_ALWAYS",
    "SERVER_CHECK_DELAY",
    "SERVER_CHECK_QUERY",
    "SERVER_LIFETIME",
    "SERVER_IDLE_TIMEOUT",
    "SERVER_CONNECT_TIMEOUT",
    "SERVER_LOGIN_RETRY",
    "CLIENT_LOGIN_TIMEOUT",
    "AUTODB_IDLE_TIMEOUT",
    "DNS_MAX_TTL",
    "DNS_NXDOMAIN_TTL",
    "CLIENT_TLS_SSLMODE",
    "CLIENT_TLS_KEY_FILE",
    "CLIENT_TLS_CERT_FILE",
    "CLIENT_TLS_CA_FILE",
    "CLIENT_TLS_PROTOCOLS",
    "CLIENT_TLS_CIPHERS",
    "CLIENT_TLS_ECDHCURVE",
    "CLIENT_TLS_DHEPARAMS",
    "SERVER_TLS_SSLMODE",
    "SERVER_TLS_CA_FILE",
    "SERVER_TLS_KEY_FILE",
    "SERVER_TLS_CERT_FILE",
    "SERVER_TLS_PROTOCOLS",
    "SERVER_TLS_CIPHERS",
    "QUERY_TIMEOUT",
    "QUERY_WAIT_TIMEOUT",
    "CLIENT_IDLE_TIMEOUT",
    "IDLE_TRANSACTION_TIMEOUT",
    "PKT_BUF",
    "MAX_PACKET_SIZE",
    "TCP_KEEPALIVE",
    "TCP_KEEPIDLE",
    "TCP_USER_TIMEOUT",
];

/// The image's defaults for keys it always writes.
const DEFAULTS: [(&str, &str); 5] = [
    ("LISTEN_ADDR", "0.0.0.0"),
    ("LISTEN_PORT", "5432"),
    ("AUTH_TYPE", "md5"),
    ("IGNORE_STARTUP_PARAMETERS", "extra_float_digits"),
    ("ADMIN_USERS", "postgres"),
];

/// One backend as a URL or the DB_* variables give it.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Backend {
    pub host: Option<String>,
    pub port: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub dbname: Option<String>,
}

pub(super) fn read(vars: &EnvVars, out: &mut Builder) -> Result<(), ConfigError> {
    for (var, default) in DEFAULTS {
        out.general(&key_of(var), &vars.get_or(var, default)?, var);
    }
    // Written even when empty: no unix socket unless one is asked for.
    out.general(
        "unix_socket_dir",
        &vars.get("UNIX_SOCKET_DIR")?.unwrap_or_default(),
        "UNIX_SOCKET_DIR",
    );
    for var in KEYS {
        if DEFAULTS.iter().any(|(d, _)| *d == var) || var == "UNIX_SOCKET_DIR" {
            continue;
        }
        if let Some(value) = vars.get(var)? {
            out.general(&key_of(var), &value, var);
        }
    }

    let (backends, source) = if let Some(urls) = vars.get("DATABASE_URLS")? {
        let list = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| parse_url(u).map_err(|e| ConfigError::Env(format!("DATABASE_URLS: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        (list, "DATABASE_URLS")
    } else {
        let mut b = match vars.get("DATABASE_URL")? {
            Some(url) => {
                parse_url(&url).map_err(|e| ConfigError::Env(format!("DATABASE_URL: {e}")))?
            }
            None => Backend::default(),
        };
        // The variables fill in what the URL leaves out (the image lets
        // the URL win where it has a value).
        for (field, var) in [
            (&mut b.host, "DB_HOST"),
            (&mut b.port, "DB_PORT"),
            (&mut b.user, "DB_USER"),
            (&mut b.password, "DB_PASSWORD"),
            (&mut b.dbname, "DB_NAME"),
        ] {
            if field.is_none() {
                *field = vars.get(var)?;
            }
        }
        (vec![b], "DB_HOST")
    };
    let auth_type = vars.get_or("AUTH_TYPE", "md5")?;
    for b in &backends {
        let Some(host) = &b.host else {
            return Err(ConfigError::Env(
                "DB_HOST (or DATABASE_URL) is required: the database server's host".into(),
            ));
        };
        let user = b.user.clone().unwrap_or_else(|| "postgres".to_owned());
        let line = [
            conn_pair("host", host),
            conn_pair("port", b.port.as_deref().unwrap_or("5432")),
            conn_pair("auth_user", &user),
        ]
        .join(" ");
        out.database(b.dbname.as_deref().unwrap_or("*"), &line, source);
        if let (Some(user), Some(password)) = (&b.user, &b.password) {
            out.user(user, &userlist_secret(user, password, &auth_type));
        }
    }
    Ok(())
}

/// What the image writes into the userlist for `user`.
fn userlist_secret(user: &str, password: &str, auth_type: &str) -> String {
    let already_hashed = (password.len() == 35
        && password.starts_with("md5")
        && password[3..].bytes().all(|b| b.is_ascii_hexdigit()))
        || password.starts_with("SCRAM-SHA-256$");
    if already_hashed || matches!(auth_type, "plain" | "scram-sha-256") {
        password.to_owned()
    } else {
        use md5::{Digest, Md5};
        format!(
            "md5{:x}",
            Md5::digest(format!("{password}{user}").as_bytes())
        )
    }
}

/// `postgres://user:password@host:port/dbname?params`: user, password and
/// database percent-decoded; the query is ignored.
pub(super) fn parse_url(url: &str) -> Result<Backend, String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or_else(|| format!("{} is not a URL (scheme://…)", mask(url)))?;
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (rest, None),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut b = Backend::default();
    if let Some(info) = userinfo {
        let (user, password) = match info.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (info, None),
        };
        b.user = Some(decode(user)?).filter(|u| !u.is_empty());
        b.password = password.map(decode).transpose()?.filter(|p| !p.is_empty());
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| "unterminated [IPv6] host".to_owned())?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    b.host = Some(decode(host)?).filter(|h| !h.is_empty());
    if let Some(p) = port.filter(|p| !p.is_empty()) {
        if p.parse::<u16>().is_err() {
            return Err(format!("port \"{p}\" is not a number"));
        }
        b.port = Some(p.to_owned());
    }
    b.dbname = path.map(decode).transpose()?.filter(|d| !d.is_empty());
    Ok(b)
}

fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "bad %-escape in URL".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "URL escapes are not UTF-8".to_owned())
}

/// A URL with its password hidden, for messages.
fn mask(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:*****{}", &url[..s + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}
