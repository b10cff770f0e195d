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
pub mod env;
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

use std::path::{Path, PathBuf};

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

/// Where the configuration comes from: a pgbouncer.ini, the environment
/// (the container images' variables), or both — the environment's lines
/// then come after the file's, so they win.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    pub file: Option<PathBuf>,
    /// Read when set: when no file is given, or with `--env`.
    pub env: Option<env::EnvVars>,
}

/// A configuration as loaded from a [`ConfigSource`].
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Warning>,
    /// The environment's dialect, if it configured anything.
    pub dialect: Option<env::Dialect>,
    /// userlist.txt lines the environment adds.
    pub env_userlist: String,
    /// Whether they win over the auth_file's lines for the same user.
    pub env_userlist_wins: bool,
}

impl ConfigSource {
    /// Reads the file (and its includes) and the environment.
    pub fn load(&self) -> Result<Loaded, ConfigError> {
        let mut events = Vec::new();
        let origin = match &self.file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    path: path.clone(),
                    source,
                })?;
                events = ini::read_events(&text, path)?;
                path.clone()
            }
            None => PathBuf::from("<environment>"),
        };
        let from_env = match &self.env {
            Some(vars) => env::from_env(vars)?,
            None => None,
        };
        if self.file.is_none() && from_env.is_none() {
            return Err(ConfigError::Env(
                "no config file given, and no configuration in the environment \
                 (DATABASES_HOST, DATABASE_URL, DB_HOST, POSTGRESQL_HOST, … as the \
                 pgbouncer/pgbouncer, edoburu/pgbouncer and bitnami/pgbouncer images \
                 take them)"
                    .into(),
            ));
        }
        let (dialect, env_userlist, env_userlist_wins) = match from_env {
            Some(e) => {
                events.extend(e.events);
                (Some(e.dialect), e.userlist, e.userlist_wins)
            }
            None => (None, String::new(), false),
        };
        let (config, warnings) = loader::build(events, &origin)?;
        Ok(Loaded {
            config,
            warnings,
            dialect,
            env_userlist,
            env_userlist_wins,
        })
    }
}

/// The `[pgbouncer]` keys Sluice reads, and those it accepts but does not
/// implement yet: `(supported, not_yet)`, each in alphabetical order.
pub fn describe_supported_keys() -> (&'static [&'static str], &'static [&'static str]) {
    (SUPPORTED_KEYS, NOT_YET_IMPLEMENTED)
}
