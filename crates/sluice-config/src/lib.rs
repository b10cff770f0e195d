//! Sluice's configuration: the settings model and a PgBouncer-compatible
//! pgbouncer.ini reader (`%include`, `[pgbouncer]`, `[databases]`
//! connection strings, `[users]`; `[peers]` is accepted with a warning).
//!
//! ```no_run
//! let (config, warnings) = sluice_config::load(std::path::Path::new("/etc/pgbouncer/pgbouncer.ini"))?;
//! for w in &warnings {
//!     eprintln!("warning: {w}");
//! }
//! # Ok::<(), sluice_config::ConfigError>(())
//! ```
//!
//! Rules, as in PgBouncer unless noted:
//! - unknown `[pgbouncer]` keys and keys Sluice does not implement yet
//!   ([`NOT_YET_IMPLEMENTED`]) are warnings; an invalid value for a known key
//!   is an error naming file, line, key, value and reason;
//! - an unknown key in a `[databases]`/`[users]` connection string is an
//!   error; PgBouncer keys Sluice does not implement there are warnings;
//! - a later line wins over an earlier one with the same key, across
//!   `%include`s too; a repeated `[databases]`/`[users]` name replaces the
//!   whole earlier entry;
//! - relative `auth_file`, `auth_hba_file`, `auth_ident_file`, `logfile` and
//!   `pidfile` paths are kept as written and so resolve against the working
//!   directory, as PgBouncer does; a relative `%include` path, unlike
//!   PgBouncer, resolves against the directory of the including file;
//! - an unknown section is an error; a file without `[pgbouncer]` loads with
//!   defaults and a warning (PgBouncer refuses it).

mod connstr;
mod databases;
mod error;
mod general;
mod ini;
mod loader;
mod model;
mod settings_text;
mod users;
mod values;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use connstr::parse_connstr;
pub use databases::{
    DATABASE_KEYS, DEFAULT_SERVER_PORT, NOT_YET_IMPLEMENTED_DATABASE_KEYS, RESERVED_DATABASE_NAMES,
};
pub use error::{ConfigError, Warning};
pub use general::{NOT_YET_IMPLEMENTED, SUPPORTED_KEYS};
pub use ini::MAX_INCLUDE_DEPTH;
pub use model::*;
pub use settings_text::{config_rows, set_value, ConfigRow, NEEDS_RESTART};
pub use users::{NOT_YET_IMPLEMENTED_USER_KEYS, USER_KEYS};
pub use values::{parse_bool, parse_duration_secs};

/// Reads a pgbouncer.ini file and every file it `%include`s.
pub fn load(path: &Path) -> Result<(Config, Vec<Warning>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str(&text, path)
}

/// Parses pgbouncer.ini text as if it were the contents of `origin`: errors
/// and warnings name `origin`, and relative `%include` paths are taken from
/// `origin`'s directory. `Config::source` is set to `origin`.
pub fn parse_str(text: &str, origin: &Path) -> Result<(Config, Vec<Warning>), ConfigError> {
    let events = ini::read_events(text, origin)?;
    loader::build(events, origin)
}

/// The `[pgbouncer]` keys Sluice reads, and those it accepts but does not
/// implement yet: `(supported, not_yet)`, each in alphabetical order.
pub fn describe_supported_keys() -> (&'static [&'static str], &'static [&'static str]) {
    (SUPPORTED_KEYS, NOT_YET_IMPLEMENTED)
}
