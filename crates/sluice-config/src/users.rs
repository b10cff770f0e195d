//! The `[users]` section: `name = key=value …` lines parsed into `UserDef`s,
//! with PgBouncer's key set and error wording ("unrecognized user
//! parameter: …").

use crate::connstr::parse_connstr;
use crate::model::UserDef;
use crate::values::{parse_optional_duration, parse_optional_uint, parse_pool_mode};

/// Keys Sluice reads in `[users]` entries.
pub const USER_KEYS: &[&str] = &[
    "client_idle_timeout",
    "idle_transaction_timeout",
    "max_user_connections",
    "pool_mode",
    "pool_size",
    "query_timeout",
    "query_wait_timeout",
    "reserve_pool_size",
];

/// `[users]` keys PgBouncer has that Sluice accepts (with a warning) without
/// acting on them yet.
pub const NOT_YET_IMPLEMENTED_USER_KEYS: &[&str] =
    &["max_user_client_connections", "transaction_timeout"];

/// A parsed entry and the notes (warnings) it produced.
#[derive(Debug)]
pub(crate) struct ParsedUser {
    pub def: UserDef,
    pub notes: Vec<String>,
}

/// Parses one `[users]` line. `Err` is the reason, without file/line.
/// As in PgBouncer's connection strings, `-1` means "not set".
pub(crate) fn parse_user(name: &str, settings: &str) -> Result<ParsedUser, String> {
    let pairs =
        parse_connstr(settings).map_err(|e| format!("syntax error in user settings: {e}"))?;

    let mut def = UserDef {
        name: name.to_string(),
        ..UserDef::default()
    };
    let mut notes = Vec::new();
    for (key, value) in &pairs {
        let lower = key.to_ascii_lowercase();
        let invalid = |reason: String| format!("invalid value for {lower}: \"{value}\" ({reason})");
        match lower.as_str() {
            "pool_mode" => def.pool_mode = Some(parse_pool_mode(value).map_err(invalid)?),
            "pool_size" => def.pool_size = parse_optional_uint(value).map_err(invalid)?,
            "reserve_pool_size" => {
                def.reserve_pool_size = parse_optional_uint(value).map_err(invalid)?;
            }
            "max_user_connections" => {
                def.max_user_connections = parse_optional_uint(value).map_err(invalid)?;
            }
            "query_timeout" => {
                def.query_timeout = parse_optional_duration(value).map_err(invalid)?
            }
            "query_wait_timeout" => {
                def.query_wait_timeout = parse_optional_duration(value).map_err(invalid)?;
            }
            "idle_transaction_timeout" => {
                def.idle_transaction_timeout = parse_optional_duration(value).map_err(invalid)?;
            }
            "client_idle_timeout" => {
                def.client_idle_timeout = parse_optional_duration(value).map_err(invalid)?;
            }
            other if NOT_YET_IMPLEMENTED_USER_KEYS.contains(&other) => notes.push(format!(
                "user parameter {other} is accepted but not implemented yet; ignored"
            )),
            _ => return Err(format!("unrecognized user parameter: {key}")),
        }
    }
    Ok(ParsedUser { def, notes })
}
