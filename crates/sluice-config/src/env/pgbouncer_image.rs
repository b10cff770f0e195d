//! The `pgbouncer/pgbouncer` image (Cal.com's guide): `DATABASES_*` make
//! one `[databases]` line, `DATABASES` / `DATABASES_RAW` give whole lines,
//! `PGBOUNCER_<KEY>` sets any `[pgbouncer]` key (the image knows a fixed
//! list; Sluice takes every key it knows). No userlist: the image's
//! default is `auth_type = any` with the user and password on the line.
//! `DATABASES` (`,`-separated) and `DATABASES_RAW` (`|`-separated) whole
//! `name = connstr` lines are Sluice's additions (a fork of the image has
//! the first).

use super::{conn_pair, key_of, Builder, EnvVars};
use crate::error::ConfigError;

/// `DATABASES_<X>` → connection-string key, in the order the image writes them.
const DB_KEYS: [(&str, &str); 14] = [
    ("HOST", "host"),
    ("PORT", "port"),
    ("USER", "user"),
    ("PASSWORD", "password"),
    ("DBNAME", "dbname"),
    ("AUTH_USER", "auth_user"),
    ("POOL_SIZE", "pool_size"),
    ("RESERVE_POOL", "reserve_pool"),
    ("CONNECT_QUERY", "connect_query"),
    ("POOL_MODE", "pool_mode"),
    ("MAX_DB_CONNECTIONS", "max_db_connections"),
    ("CLIENT_ENCODING", "client_encoding"),
    ("DATESTYLE", "datestyle"),
    ("TIMEZONE", "timezone"),
];

/// The image's `[pgbouncer]` defaults (its pgbouncer.ini template;
/// listen_port is PgBouncer's 6432 unless set).
const DEFAULTS: [(&str, &str); 4] = [
    ("listen_addr", "0.0.0.0"),
    ("auth_type", "any"),
    ("ignore_startup_parameters", "extra_float_digits"),
    ("admin_users", "postgres"),
];

pub(super) fn read(vars: &EnvVars, out: &mut Builder) -> Result<(), ConfigError> {
    for (key, value) in DEFAULTS {
        out.general(key, value, "defaults of the pgbouncer/pgbouncer image");
    }
    for var in vars.with_prefix("PGBOUNCER_") {
        if let Some(value) = vars.get(&var)? {
            let key = key_of(&var["PGBOUNCER_".len()..]);
            out.general(&key, &value, &var);
        }
    }

    let single: Vec<String> = DB_KEYS
        .iter()
        .map(|(suffix, _)| format!("DATABASES_{suffix}"))
        .chain(["DATABASES_CLIENT_SIDE_DBNAME".to_owned()])
        .filter(|v| vars.has(v))
        .collect();
    if !single.is_empty() {
        let Some(host) = vars.get("DATABASES_HOST")? else {
            return Err(ConfigError::Env(format!(
                "DATABASES_HOST is required with {}",
                single.join(", ")
            )));
        };
        let port = vars.get_or("DATABASES_PORT", "5432")?;
        let mut pairs = vec![conn_pair("host", &host), conn_pair("port", &port)];
        for (suffix, key) in &DB_KEYS[2..] {
            if let Some(v) = vars.get(&format!("DATABASES_{suffix}"))? {
                pairs.push(conn_pair(key, &v));
            }
        }
        let name = vars
            .get("DATABASES_CLIENT_SIDE_DBNAME")?
            .unwrap_or_else(|| "*".to_owned());
        out.database(&name, &pairs.join(" "), "DATABASES_HOST");
    }
    for (var, separator) in [("DATABASES", ','), ("DATABASES_RAW", '|')] {
        let Some(lines) = vars.get(var)? else {
            continue;
        };
        for line in lines
            .split(separator)
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            let Some((name, connstr)) = line.split_once('=') else {
                return Err(ConfigError::Env(format!(
                    "{var}: \"{line}\" is not `name = connection string`"
                )));
            };
            out.database(name.trim(), connstr.trim(), var);
        }
    }
    Ok(())
}
