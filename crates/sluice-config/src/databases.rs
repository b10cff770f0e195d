//! The `[databases]` section: `name = connection string` lines parsed into
//! `DatabaseDef`s, with PgBouncer's key set and error wording
//! ("unrecognized connection parameter: …").

use crate::connstr::parse_connstr;
use crate::model::DatabaseDef;
use crate::values::{
    optional_string, parse_optional_duration, parse_optional_uint, parse_pool_mode, parse_port,
};

/// The port used when a database entry names none.
pub const DEFAULT_SERVER_PORT: u16 = 5432;

/// Connection-string keys Sluice reads in `[databases]`.
/// `reserve_pool` is PgBouncer's older alias of `reserve_pool_size`.
pub const DATABASE_KEYS: &[&str] = &[
    "application_name",
    "auth_dbname",
    "auth_query",
    "auth_user",
    "client_encoding",
    "connect_query",
    "datestyle",
    "dbname",
    "host",
    "max_db_connections",
    "min_pool_size",
    "password",
    "pool_mode",
    "pool_size",
    "port",
    "query_wait_timeout",
    "reserve_pool",
    "reserve_pool_size",
    "server_lifetime",
    "timezone",
    "user",
];

/// `[databases]` keys PgBouncer has that Sluice accepts (with a warning)
/// without acting on them yet.
pub const NOT_YET_IMPLEMENTED_DATABASE_KEYS: &[&str] = &[
    "load_balance_hosts",
    "max_db_client_connections",
    "target_session_attrs",
];

/// Names that cannot be defined: they are the admin console's.
pub const RESERVED_DATABASE_NAMES: &[&str] = &["pgbouncer", "sluice"];

/// A parsed entry and the notes (warnings) it produced.
#[derive(Debug)]
pub(crate) struct ParsedDatabase {
    pub def: DatabaseDef,
    pub notes: Vec<String>,
}

/// Parses one `[databases]` line. `Err` is the reason, without file/line.
/// An empty value for a string key means "not set".
pub(crate) fn parse_database(name: &str, connstr: &str) -> Result<ParsedDatabase, String> {
    if RESERVED_DATABASE_NAMES.contains(&name) {
        return Err(format!(
            "database name \"{name}\" is reserved for the admin console"
        ));
    }
    let pairs =
        parse_connstr(connstr).map_err(|e| format!("syntax error in connection string: {e}"))?;

    let mut def = DatabaseDef {
        name: name.to_string(),
        port: DEFAULT_SERVER_PORT,
        ..DatabaseDef::default()
    };
    let mut notes = Vec::new();
    for (key, value) in &pairs {
        let lower = key.to_ascii_lowercase();
        let invalid = |reason: String| format!("invalid value for {lower}: \"{value}\" ({reason})");
        match lower.as_str() {
            "dbname" => def.dbname = optional_string(value),
            "host" => def.host = optional_string(value),
            "port" => def.port = parse_port(value).map_err(invalid)?,
            "user" => def.user = optional_string(value),
            "password" => def.password = (!value.is_empty()).then(|| value.clone()),
            "auth_user" => def.auth_user = optional_string(value),
            "auth_dbname" => def.auth_dbname = optional_string(value),
            "auth_query" => def.auth_query = optional_string(value),
            "pool_size" => def.pool_size = parse_optional_uint(value).map_err(invalid)?,
            "min_pool_size" => def.min_pool_size = parse_optional_uint(value).map_err(invalid)?,
            "reserve_pool" | "reserve_pool_size" => {
                def.reserve_pool_size = parse_optional_uint(value).map_err(invalid)?;
            }
            "max_db_connections" => {
                def.max_db_connections = parse_optional_uint(value).map_err(invalid)?;
            }
            "pool_mode" => def.pool_mode = Some(parse_pool_mode(value).map_err(invalid)?),
            "connect_query" => def.connect_query = optional_string(value),
            "client_encoding" => def.client_encoding = optional_string(value),
            "datestyle" => def.datestyle = optional_string(value),
            "timezone" => def.timezone = optional_string(value),
            "application_name" => def.application_name = optional_string(value),
            "server_lifetime" => {
                def.server_lifetime = parse_optional_duration(value).map_err(invalid)?;
            }
            "query_wait_timeout" => {
                def.query_wait_timeout = parse_optional_duration(value).map_err(invalid)?;
            }
            other if NOT_YET_IMPLEMENTED_DATABASE_KEYS.contains(&other) => notes.push(format!(
                "connection parameter {other} is accepted but not implemented yet; ignored"
            )),
            _ => return Err(format!("unrecognized connection parameter: {key}")),
        }
    }
    Ok(ParsedDatabase { def, notes })
}
